"""Variants: frozen, typed recipes registered once by name.

A variant says *what* to build (precision, which layers stay float, whether to
prune, which formats to write); ``exporter.recipe`` says *how*, by composing the
small steps in ``quantize`` and ``prune``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.errors import BadInputError
from runtimes.artifact import Format, Precision


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    precision: Precision
    quantize: bool = False  # static INT8 PTQ (fbgemm)
    half: bool = False  # cast the model to float16
    keep_float: tuple[str, ...] = ()  # module names that stay FP32 in a quantized model
    prune: bool = False  # magnitude pruning at --sparsity
    formats: tuple[Format, ...] = (Format.TORCHSCRIPT, Format.ONNX)
    # The variant whose eager model this one is compared with; None = its own.
    compare_with: str | None = None
    # Built by a peer tool, not by our own recipe (a reference row in reports).
    peer: bool = False
    # Searches keep_float/sparsity against an accuracy budget (needs eval data).
    budgeted: bool = False
    tags: tuple[str, ...] = field(default=())


_VARIANTS: dict[str, VariantSpec] = {}


def register_variant(spec: VariantSpec) -> VariantSpec:
    if spec.name in _VARIANTS:
        raise ValueError(f"variant {spec.name!r} is already registered")
    if spec.quantize and spec.half:
        raise ValueError(f"variant {spec.name!r}: INT8 and FP16 are exclusive")
    _VARIANTS[spec.name] = spec
    return spec


def get_variant(name: str) -> VariantSpec:
    try:
        return _VARIANTS[name]
    except KeyError:
        known = ", ".join(_VARIANTS)
        raise BadInputError(f"unknown variant {name!r}; known variants: {known}") from None


def all_variants() -> list[VariantSpec]:
    return list(_VARIANTS.values())


def parse_variants(csv: str) -> list[VariantSpec]:
    names = [n.strip() for n in csv.split(",") if n.strip()]
    if not names:
        raise BadInputError("--variants is empty")
    if len(set(names)) != len(names):
        raise BadInputError(f"--variants names a variant twice: {csv}")
    return [get_variant(n) for n in names]


SEED_VARIANTS = ("fp32", "fp32-pruned", "int8", "fp16", "mixed")

register_variant(VariantSpec(
    "fp32", "FP32 eager baseline (no compression)", Precision.FP32, tags=("baseline",)))
register_variant(VariantSpec(
    "fp32-pruned", "FP32, global L1 unstructured pruning (torch.nn.utils.prune), made permanent",
    Precision.FP32, prune=True))
register_variant(VariantSpec(
    "int8", "static INT8 PTQ (fbgemm, per-channel symmetric weights) + INT8 weight pruning",
    Precision.INT8, quantize=True, prune=True))
register_variant(VariantSpec(
    "fp16", "half precision + pruning (float32 I/O, float16 compute)",
    Precision.FP16, half=True, prune=True))
register_variant(VariantSpec(
    "mixed", "INT8 body, FP32 classifier (fc) + pruning",
    Precision.MIXED, quantize=True, keep_float=("fc",), prune=True))
register_variant(VariantSpec(
    "int8-dense", "static INT8 PTQ (fbgemm) without pruning: isolates what pruning costs",
    Precision.INT8, quantize=True))
register_variant(VariantSpec(
    "ort-quantize-static",
    "peer: ONNX Runtime quantize_static (QDQ, per-channel) of the FP32 ONNX, same calibration images",
    Precision.INT8, formats=(Format.ONNX,), compare_with="fp32", peer=True))
register_variant(VariantSpec(
    "auto", "accuracy-budgeted: most INT8-sensitive layers kept FP32, then the highest sparsity within "
    "--max-accuracy-drop (needs --eval-data)",
    Precision.MIXED, quantize=True, prune=True, budgeted=True))
