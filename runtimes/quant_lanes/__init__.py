"""INT8 quantization lanes (see :mod:`runtimes.quant_lanes.base`), registered in order of precedence:
the eager-mode lane for torchvision's quantizable builders, then the FX graph-mode lane for the rest."""

from runtimes.quant_lanes.base import (CALIB_METHODS, QuantLane, lane_for, lane_named, lane_of, lanes, qconfig,
                                       register_lane)
from runtimes.quant_lanes import eager_mode, fx_graph  # noqa: E402,F401  (registration, in precedence order)
from runtimes.quant_lanes.float_ops import float_ops  # noqa: E402

__all__ = ["CALIB_METHODS", "QuantLane", "float_ops", "lane_for", "lane_named", "lane_of", "lanes", "qconfig",
           "register_lane"]
