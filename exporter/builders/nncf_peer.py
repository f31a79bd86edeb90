"""The NNCF peer row: OpenVINO's quantizer, ``nncf.quantize``, on the FP32 ONNX with the run's calibration images.

NNCF's default post-training pipeline on the ONNX backend, as its documentation gives it: the
``PERFORMANCE`` preset (symmetric INT8 weights per channel, activations per tensor), min-max-type range
estimation, then *fast bias correction* on the same images (NNCF's ``fast_bias_correction=True``, its
default). It writes a QDQ ONNX, like ours and ORT's ``quantize_static``, so every ONNX runtime
runs it: what an x86 user choosing OpenVINO would otherwise build, measured side by side with our INT8.

Like the ORT peer it is compared with the FP32 eager model (``compare_with``), so its parity includes its
own quantization error. It needs real calibration images: NNCF's statistics and bias correction on
synthetic noise would make the row a strawman, so without ``--calib-data`` the variant refuses.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable

import onnx
import torch

from exporter.builders.base import BuildContext, BuiltVariant, register_builder
from exporter.builders.peer import PeerParams, peer_variant
from exporter.options import CompressionOptions
from runtimes.manifest import QuantRecord

NNCF_SCHEME = ("nncf.quantize (ONNX backend), preset PERFORMANCE: symmetric per-channel INT8 weights, "
               "per-tensor activations, fast bias correction")


def nncf_quantize(proto: onnx.ModelProto, calib: torch.Tensor) -> onnx.ModelProto:
    """NNCF's default PTQ of an FP32 ONNX model, calibrated on ``calib`` (N, C, H, W), one image per item."""
    import nncf

    logging.getLogger("nncf").setLevel(logging.ERROR)  # its progress bars and INFO lines are not ours to print
    input_name = proto.graph.input[0].name
    items = [calib[i:i + 1].numpy() for i in range(len(calib))]
    dataset = nncf.Dataset(items, lambda x: {input_name: x})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nncf.quantize(proto, dataset, subset_size=len(items), fast_bias_correction=True)


def quantize_pass(calib: torch.Tensor) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    def peer_nncf_quantize(proto: onnx.ModelProto) -> onnx.ModelProto:
        return nncf_quantize(proto, calib)

    return peer_nncf_quantize


@register_builder
class NncfPtqBuilder:
    name = "nncf-ptq"
    params_type = PeerParams
    quantizes = False  # works on any ONNX: needs no INT8 lane of ours
    needs_eval = False
    needs_images = True  # calibration on real images (refused without --calib-data)
    sweepable = False

    def build(self, ctx: BuildContext, params: PeerParams, opts: CompressionOptions) -> BuiltVariant:
        import nncf

        quant = QuantRecord(backend=f"nncf {nncf.__version__}", scheme=NNCF_SCHEME, calib_method="nncf-default",
                            calib_source=ctx.calib_source, calib_images=int(len(ctx.calib_images)))
        return peer_variant(ctx, params, opts, quant, quantize_pass(ctx.calib_images))
