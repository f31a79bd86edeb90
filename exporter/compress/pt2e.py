"""The pt2e INT8 lane: torch.export → ``prepare_pt2e(X86InductorQuantizer)`` → calibrate → ``convert_pt2e``.

PyTorch 2's successor to ``torch.ao.quantization``'s eager and FX lanes (whose deprecation warning says they are
scheduled for removal, pytorch PR #153892): torchao's quantizer annotates the exported ATen graph, observers are
inserted and calibrated on the run's images, and ``convert_pt2e`` leaves a graph of quantize/dequantize pairs
around float ops that Inductor (with freezing) lowers to oneDNN INT8 kernels. The quantizer's default config is
the x86 one the fbgemm lanes use: per-channel symmetric INT8 weights, per-tensor asymmetric 8-bit activations
with a histogram observer.

The steps are separate functions, as for the fbgemm lanes (:mod:`exporter.compress.quantize`), and the recipe's
float model goes in: dense, OBS-pruned or slim. Pruning *inside* the INT8 grid, bias correction and
cross-layer equalization stay with the fbgemm lanes: the first does not port to a graph of Q/DQ pairs, the other
two are not ported yet (the manifest's quantization record of a ``.pt2`` says which ran).

Traps the peers' trackers document, and what this module does about them:

- ``torch.export(strict=False)`` names a partition by the module that ran it, so a module called twice (the
  ReLU of torchvision's ``BasicBlock``) is one partition with two outputs and the quantizer's fusion pass
  raises "Input partition has more than one output node" (pytorch/ao #4478). :func:`capture` exports strictly
  (TorchDynamo), which names every call site.
- The old ``torch.ao`` copy of X86InductorQuantizer quantizes nothing on newer torch (pytorch #160095): the
  torchao one is used, and :func:`quantize` fails when the converted graph has no quantized op.
- Without freezing, Inductor keeps float GEMMs (pytorch #113019): see :mod:`exporter.formats.pt2`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from exporter.errors import BadInputError

LANE = "pt2e-x86-inductor"
# The exported graph's batch dimension stays symbolic, so one package serves every batch size. 0 and 1 are
# specialised by torch.export, so the example it traces has two images.
MAX_BATCH = 4096


class CaptureError(BadInputError):
    """torch.export cannot capture the model."""


class Pt2eError(BadInputError):
    """The pt2e lane cannot quantize the model."""


def batch_dim() -> dict:
    return {"x": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}


def capture(model: nn.Module, example: torch.Tensor, strict: bool = True,
            batch: int | None = None) -> torch.export.ExportedProgram:
    """The model's ATen graph (see the module doc for why strict), for inputs of ``batch`` images, or of any
    batch size when ``batch`` is None (a symbolic batch dimension)."""
    example = _two_images(example) if batch is None else example[:1].repeat(batch, 1, 1, 1)

    class Wrapped(nn.Module):  # gives the input one name for ``dynamic_shapes``, whatever the model calls it
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    if not isinstance(model, torch.fx.GraphModule):  # an exported graph is already in eval form (and refuses eval())
        model = model.eval()
    try:
        with torch.no_grad():
            return torch.export.export(Wrapped(model), (example,), strict=strict,
                                       dynamic_shapes=batch_dim() if batch is None else None)
    except Exception as exc:  # torch.export raises many types (UserError, Unsupported, GuardOnDataDependent...)
        raise CaptureError(f"torch.export cannot capture {type(model).__name__}: {type(exc).__name__}: "
                           f"{_first_line(exc)}") from exc


def _two_images(example: torch.Tensor) -> torch.Tensor:
    return example if len(example) >= 2 else example.repeat(2, 1, 1, 1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "no message")[:300]


def quantizer(keep_float: Iterable[str] = (), reduce_range: bool = False):
    """torchao's X86InductorQuantizer, static, with its default x86 config; ``keep_float`` modules stay FP32.
    ``reduce_range`` keeps activations in 7 bits, as torchao advises "on earlier CPUs without VNNI": oneDNN's
    kernels there sum u8*s8 pairs in a saturating int16, like fbgemm's (runtimes.targets)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    q = xiq.X86InductorQuantizer().set_global(config)
    for name in keep_float:
        # The captured graph names modules under the wrapper of :func:`capture`.
        q.set_module_name_qconfig(f"inner.{name}", None)
    return q


def prepare(program: torch.export.ExportedProgram, keep_float: Iterable[str] = (),
            reduce_range: bool = False) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    try:
        return prepare_pt2e(program.module(), quantizer(keep_float, reduce_range))
    except Exception as exc:
        raise Pt2eError(f"prepare_pt2e(X86InductorQuantizer) failed: {type(exc).__name__}: {_first_line(exc)}") from exc


def calibrate(prepared: torch.fx.GraphModule, images: torch.Tensor, batch: int = 32) -> None:
    """Run the calibration images through the observers."""
    with torch.no_grad():
        for i in range(0, len(images), batch):
            prepared(images[i:i + batch])


def convert(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    return convert_pt2e(prepared)


def quantized_ops(converted: torch.fx.GraphModule) -> int:
    """The quantize nodes in the converted graph (per tensor and per channel, weights folded or not)."""
    return sum(1 for n in converted.graph.nodes
               if n.op == "call_function" and "quantize_per" in str(n.target) and "dequantize" not in str(n.target))


@dataclass(frozen=True)
class Pt2eModel:
    """The converted program and what it took."""

    module: torch.fx.GraphModule
    quantize_nodes: int
    seconds: float


def quantize(model: nn.Module, example: torch.Tensor, calib_images: torch.Tensor,
             keep_float: Iterable[str] = (), reduce_range: bool = False) -> Pt2eModel:
    """The float ``model`` quantized by the pt2e lane, calibrated on ``calib_images``, with 7-bit activations
    where ``reduce_range`` (the deployment target's)."""
    if len(calib_images) == 0:
        raise Pt2eError("the pt2e lane needs calibration images")
    t0 = time.perf_counter()
    prepared = prepare(capture(model, example), tuple(keep_float), reduce_range)
    calibrate(prepared, calib_images)
    converted = convert(prepared)
    count = quantized_ops(converted)
    if count == 0:
        raise Pt2eError("X86InductorQuantizer quantized nothing in this model (no quantize node after "
                        "convert_pt2e; see pytorch #160095)")
    return Pt2eModel(converted, count, time.perf_counter() - t0)
