"""Variants: frozen records registered once by name, each naming a registered builder.

A variant says *what* to build: a builder (:mod:`exporter.builders`) and its
typed parameters, the precision, the formats to write, its role in the report,
and whether it is in the default set. The builder says *how*, by composing the
small steps of :mod:`exporter.compress.quantize` and :mod:`exporter.compress.magnitude`.

Adding a variant is one :func:`register_variant` call below (and, when no
existing builder fits, one builder module).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Sequence

from exporter.builders.base import BuilderParams, get_builder
from exporter.builders.floating import FloatParams
from exporter.builders.peer import PeerParams
from exporter.builders.budgeted import BudgetParams
from exporter.builders.quantized import QuantParams
from exporter.builders.slim import SlimParams
from runtimes.errors import BadInputError
from runtimes.manifest import Format, Precision


class Role(str, enum.Enum):
    """What a variant is for in the report (which rows it is compared as)."""

    BASELINE = "baseline"  # the uncompressed model every speed-up and accuracy drop is measured against
    HEADLINE = "headline"  # the product's main artifact (INT8 + pruning)
    PEER = "peer"  # built by another tool, shown for comparison
    BUDGETED = "budgeted"  # searched against an accuracy budget
    VARIANT = "variant"  # any other variant


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    precision: Precision
    builder: str  # a registered builder name
    params: BuilderParams = BuilderParams()
    formats: tuple[str, ...] = (Format.TORCHSCRIPT, Format.ONNX)
    role: Role = Role.VARIANT
    group: str = "Other"  # the report table the variant's rows go to
    default: bool = False  # built when --variants is not given
    dense: str | None = None  # the dense variant of the same precision its speed-up is measured against

    @property
    def prunes(self) -> bool:
        return self.params.prune

    @property
    def channel_pruned(self) -> bool:
        """Whether its builder removes channels (``--channel-sparsity``): the sweep's channel axis."""
        return isinstance(self.params, SlimParams)

    @property
    def compare_with(self) -> str | None:
        """The variant whose eager model this one is compared with; None: its own (and it writes one)."""
        return self.params.compare_with()


_VARIANTS: dict[str, VariantSpec] = {}


def register_variant(spec: VariantSpec) -> VariantSpec:
    if spec.name in _VARIANTS:
        raise ValueError(f"variant {spec.name!r} is already registered")
    builder = get_builder(spec.builder)  # raises for an unknown builder
    if not isinstance(spec.params, builder.params_type):
        raise TypeError(f"variant {spec.name!r}: builder {spec.builder!r} takes "
                        f"{builder.params_type.__name__}, got {type(spec.params).__name__}")
    if spec.dense is not None and spec.dense not in _VARIANTS:
        raise ValueError(f"variant {spec.name!r} measures its speed-up against unregistered {spec.dense!r}")
    if spec.compare_with is not None and spec.compare_with not in _VARIANTS:
        raise ValueError(f"variant {spec.name!r} compares with unregistered {spec.compare_with!r}")
    _VARIANTS[spec.name] = spec
    return spec


def unregister_variant(name: str) -> None:
    """Remove a registration (for tests that register a variant of their own)."""
    _VARIANTS.pop(name, None)


def get_variant(name: str) -> VariantSpec:
    try:
        return _VARIANTS[name]
    except KeyError:
        raise BadInputError(f"unknown variant {name!r}; known variants: {', '.join(_VARIANTS)}") from None


def all_variants() -> list[VariantSpec]:
    return list(_VARIANTS.values())


def parse_variants(names: str | Iterable[str]) -> list[VariantSpec]:
    """``"int8,fp16"`` or ``["int8", "fp16"]`` → their specs, each named once."""
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [n.strip() for n in items if n.strip()]
    if not items:
        raise BadInputError("--variants is empty")
    if len(set(items)) != len(items):
        raise BadInputError(f"--variants names a variant twice: {','.join(items)}")
    return [get_variant(n) for n in items]


def default_variants(with_peers: bool) -> tuple[str, ...]:
    """The default set: ``export`` builds our own variants; ``run`` adds the peer rows."""
    return tuple(v.name for v in _VARIANTS.values() if v.default and (with_peers or v.role is not Role.PEER))


def sweepable(specs: Sequence[VariantSpec]) -> list[VariantSpec]:
    """The variants a sweep can vary: pruned and built at a sparsity the sweep chooses, or channel-pruned
    (along the channel-sparsity axis)."""
    return [s for s in specs if (s.prunes and get_builder(s.builder).sweepable) or s.channel_pruned]


def default_comparisons() -> tuple[tuple[str, str], ...]:
    """The speed-ups the report states, timed interleaved: the headline against the baseline and every
    peer, and every peer against our dense INT8 (the like-for-like artifact: a peer prunes nothing)."""
    head = next((v.name for v in _VARIANTS.values() if v.role is Role.HEADLINE), None)
    base = next((v.name for v in _VARIANTS.values() if v.role is Role.BASELINE), None)
    peers = [v.name for v in _VARIANTS.values() if v.role is Role.PEER]
    dense = [v.name for v in _VARIANTS.values() if v.name == f"{head}-dense"]
    pairs = [(a, head) for a in (base, *peers) if a and head]
    return tuple(pairs + [(p, d) for p in peers for d in dense])


def default_runtime_comparisons() -> tuple[str, ...]:
    """The variants whose one artifact is timed interleaved in two runtimes (ORT against OpenVINO on the
    same .onnx): the baseline and our INT8 variants."""
    return tuple(v.name for v in _VARIANTS.values()
                 if v.role is Role.BASELINE or (v.precision is Precision.INT8 and v.role is not Role.PEER
                                                and v.role is not Role.BUDGETED))


def needs_eval(spec: VariantSpec) -> bool:
    return get_builder(spec.builder).needs_eval


def needs_images(spec: VariantSpec) -> bool:
    """Whether its builder refuses synthetic calibration inputs (a peer calibrated on noise is a strawman)."""
    return bool(getattr(get_builder(spec.builder), "needs_images", False))


def check_request(model: str, specs: Sequence[VariantSpec], has_eval: bool, has_calib: bool = True) -> None:
    """Refuse, with one line, a set of variants that cannot be built as asked: a model a
    requested builder cannot build, a missing comparison variant, a budget without eval data,
    a variant that needs calibration images without them."""
    from runtimes import architectures, structure

    architectures.check_model(model)
    names = {s.name for s in specs}
    for spec in specs:
        if get_builder(spec.builder).quantizes:
            structure.require_quant_lane(model)
        if spec.compare_with is not None and spec.compare_with not in names:
            raise BadInputError(f"the {spec.name} variant is compared with {spec.compare_with}'s eager model: "
                                f"add {spec.compare_with} to --variants")
        if needs_eval(spec) and not has_eval:
            raise BadInputError(f"the {spec.name} variant needs --eval-data (labelled images) "
                                "to hold its accuracy budget")
        if needs_images(spec) and not has_calib:
            raise BadInputError(f"the {spec.name} variant needs --calib-data (real calibration images): "
                                "calibrated on synthetic inputs it would not be the tool's own result")


# ---------------------------------------------------------------- the built-in variants

register_variant(VariantSpec(
    "fp32", "FP32 eager baseline (no compression)", Precision.FP32, "float", FloatParams(),
    role=Role.BASELINE, group="FP32", default=True))
register_variant(VariantSpec(
    "fp32-pruned", "FP32, pruned (OBS reconstruction from calibration images, or --prune-method magnitude)",
    Precision.FP32, "float", FloatParams(prune=True), group="Pruned only", default=True))
register_variant(VariantSpec(
    "int8", ("pruning of the float weights (OBS by default), then static INT8 PTQ (fbgemm, per-channel weights); "
     "--order quantize-then-prune prunes inside the INT8 grid instead"),
    Precision.INT8, "int8", QuantParams(prune=True), role=Role.HEADLINE, group="INT8 + pruning",
    default=True))
register_variant(VariantSpec(
    "fp16", "pruning of the float weights, then half precision (float32 I/O, float16 compute)",
    Precision.FP16, "float", FloatParams(half=True, prune=True), group="FP16 + pruning", default=True))
register_variant(VariantSpec(
    "mixed", "pruning, then INT8 body with the classifier kept FP32",
    Precision.MIXED, "int8", QuantParams(prune=True, classifier_float=True), group="Mixed + pruning",
    default=True))
register_variant(VariantSpec(
    "int8-dense", "static INT8 PTQ (fbgemm) without pruning: isolates what pruning costs",
    Precision.INT8, "int8", QuantParams(), group="INT8 + pruning"))
register_variant(VariantSpec(
    "ort-quantize-static",
    "peer: ONNX Runtime quantize_static (QDQ, per-channel) of the FP32 ONNX, same calibration images",
    Precision.INT8, "ort-quantize-static", PeerParams(), formats=(Format.ONNX,), role=Role.PEER,
    group="INT8 + pruning", default=True))
register_variant(VariantSpec(
    "nncf-ptq",
    "peer: NNCF's default PTQ (nncf.quantize, ONNX backend, fast bias correction) of the FP32 ONNX, same "
    "calibration images (needs --calib-data)",
    Precision.INT8, "nncf-ptq", PeerParams(), formats=(Format.ONNX,), role=Role.PEER, group="INT8 + pruning"))
register_variant(VariantSpec(
    "auto", "accuracy-budgeted: most INT8-sensitive layers kept FP32, then the highest sparsity within "
    "--max-accuracy-drop (needs --eval-data)",
    Precision.MIXED, "budgeted-int8", BudgetParams(), role=Role.BUDGETED, group="Mixed + pruning"))
register_variant(VariantSpec(
    "fp32-slim", "FP32, channel-pruned (--channel-sparsity of each layer's channels removed), BatchNorm "
    "re-estimated + least-squares refit (+ distillation with --finetune-epochs)",
    Precision.FP32, "slim", SlimParams(), group="Channel-pruned (slim)", dense="fp32"))
register_variant(VariantSpec(
    "int8-slim", "static INT8 PTQ (fbgemm) of the fp32-slim model, calibrated on the slim model",
    Precision.INT8, "int8-slim", SlimParams(), group="Channel-pruned (slim)", dense="int8-dense"))
