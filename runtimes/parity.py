"""Parity: does each deployable artifact compute what its eager reference computes?

Every artifact is run in the reference runtime of its format (the runtime that
declares ``reference_for`` it: TorchScript → ``torchscript``, ONNX → ``ort-cpu``)
on the same float32 inputs as its eager reference, and compared with the metrics of :mod:`runtimes.metrics` against a
:class:`Tolerance` for its precision. ONNX artifacts are also run in every runtime that declares
``parity_for`` ONNX (OpenVINO): the portability check, one result per runtime. An artifact only ONNX Runtime
reads correctly is not a portable ONNX.

An INT8/mixed artifact is compared with the *INT8* eager model (same weights,
same scales), so the tolerance covers runtime kernel differences only, not the
quantization error (that is accuracy's business). A peer artifact (its record's
``reference_variant`` is another variant, e.g. ``ort-quantize-static`` vs
``fp32``) does include quantization error and gets the looser ``peer`` row.

Default tolerances, from measurements on resnet18/50 (random weights, 64 and
224 px, minmax and histogram calibration) with margin:

* fp32: TorchScript freeze folds BN and ORT fuses Conv+BN+ReLU, so results
  differ in the last bits (measured cosine 1 - 1e-9, SQNR > 100 dB). Every FP32
  gate is relative to the output's own scale: SQNR, cosine and the largest
  error over the largest |logit| (``max_rel_error``, 1e-3). An absolute error
  limit would fail correct exports of models whose logits reach the hundreds
  (untrained RegNetY-400MF: 0.03 absolute at 90 dB); the absolute error is
  still reported, and ``fp32.max_abs=<limit>`` gates it on request.
* fp16: the artifact and the eager reference both compute in float16 but with
  different kernels and fusions (measured SQNR ≥ 55 dB even against fp32).
* int8/mixed: fbgemm TorchScript matches eager INT8 bit for bit; ORT's QDQ
  kernels round differently by one LSB in ~0.1 % of the elements of a layer,
  which compounds through the network: measured cosine 0.994–1.0 and SQNR
  19–41 dB (worst on flat, near-tied logits).

INT8 runtimes need not reproduce fbgemm's rounding. In deep networks with
squeeze-excitation gates (EfficientNet, MobileNetV3, RegNetY) a one-LSB
difference in a few elements of one layer compounds until ORT and fbgemm are as
far from each other as each is from FP32 (trained EfficientNet-B0 on the test
shapes: ORT 15.9 dB and fbgemm 16.6 dB from FP32, 11.7 dB from each other), though
neither is less accurate. So an INT8/mixed artifact that misses its tolerance
against the eager INT8 model still passes when it is as close to the FP32 model
as the eager INT8 model is (the run's FP32 model nearest to it: ``fp32``, ``fp32-pruned``
or ``fp32-slim``), within ``max_fp32_sqnr_loss_db`` (3 dB: the runtime
adds at most as much error as the quantization itself), provided the eager INT8
model itself scores at least 6 dB against its float model (an output unrelated to the
reference scores about 0 dB; an untrained EfficientNet-B0's INT8 model, at 5.9 dB,
would let nearly any runtime pass). A broken export adds far
more than that and fails both; the result says which rule passed it.

Top-1 agreement is only checked for trained weights: the logits of an untrained
network are nearly tied, so its argmax flips on noise; cosine and SQNR carry the
check there (the result says so in ``notes``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from runtimes import metrics, registry
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable
from runtimes.manifest import QUANTIZED, RUN_FILES, ArtifactRecord, Format, InputSpec, Precision, require_verified
from runtimes.protocol import ComputePrecision, FullPrecision
from runtimes.records import read_record, sha256_file, write_json

PARITY_NAME = RUN_FILES.parity
# Outputs varying less than this (relative, metrics.output_variation) do not depend on the input.
DEGENERATE_VARIATION = 1e-4
DEGENERATE = "degenerate"  # the word every degenerate warning carries
INPUT_SOURCES = ("synthetic", "images")
PEER = "peer"  # tolerance row for artifacts compared with another variant's reference
BF16 = "bf16"  # tolerance row for an FP32 artifact a runtime computed in bfloat16
BATCH = 8
# The quantization-noise rule judges a runtime against the quantization error it adds to, which only means
# something while the INT8 model approximates its float model at all: an output unrelated to the reference
# scores about 0 dB, so the eager model must be at least the allowed loss (3 dB) above that, plus as much again.
NOISE_RULE_MIN_EAGER_SQNR_DB = 6.0
# The bf16 rounding rule: a float file a runtime computed in bf16 passes anyway when its SQNR against the eager
# model is within this of the same eager model's own result computed in bf16 (PyTorch on the CPU): the runtime
# then rounds no worse than bf16 itself does on this network. The bf16 row alone is too strict for deep stacks
# whose rounding compounds (an untrained EfficientNet-B0 at 224 px computes at 24.6 dB in OpenVINO, while a
# 5%-wrong layer in an otherwise exact ResNet-18 is still caught: the FP32 gate is ONNX Runtime's result).
BF16_RULE_MAX_LOSS_DB = 3.0


@dataclass(frozen=True)
class Tolerance:
    """Thresholds; ``None`` = not checked."""

    min_cosine: float | None = None
    min_sqnr_db: float | None = None
    min_top1_agreement: float | None = None
    max_abs_error: float | None = None  # absolute: only on request (it grows with the logits' scale)
    max_rel_error: float | None = None  # max |test - reference| / max |reference|
    # INT8/mixed: passes anyway when its SQNR against the FP32 model is within this of the eager
    # INT8 model's (the quantization-noise rule, see the module doc); None = not applied.
    max_fp32_sqnr_loss_db: float | None = None


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    Precision.FP32.value: Tolerance(min_cosine=0.99999, min_sqnr_db=60.0, min_top1_agreement=1.0,
                                    max_rel_error=1e-3),
    Precision.FP16.value: Tolerance(min_cosine=0.999, min_sqnr_db=30.0, min_top1_agreement=0.95),
    Precision.INT8.value: Tolerance(min_cosine=0.99, min_sqnr_db=15.0, min_top1_agreement=0.9,
                                    max_fp32_sqnr_loss_db=3.0),
    Precision.MIXED.value: Tolerance(min_cosine=0.99, min_sqnr_db=15.0, min_top1_agreement=0.9,
                                     max_fp32_sqnr_loss_db=3.0),
    # A different quantizer vs the FP32 model: quantization error included (measured
    # INT8-vs-FP32 cosine 0.992–0.9997, SQNR 18–32 dB). A broken export scores ~0 on both.
    PEER: Tolerance(min_cosine=0.98, min_sqnr_db=10.0, min_top1_agreement=0.8),
    # An FP32 file computed in bfloat16 by the runtime's choice (OpenVINO on CPUs with BF16 instructions):
    # 8 significant bits against float16's 11 (measured on resnet18, 224 px: 35-40 dB, cosine 0.9999).
    BF16: Tolerance(min_cosine=0.999, min_sqnr_db=25.0, min_top1_agreement=0.95),
}
# A runtime's narrow float type (ComputePrecision) → the tolerance row an FP32 artifact computed in it gets.
NARROW_FLOATS = {"bf16": BF16, "f16": Precision.FP16.value}
# Significant bits of each float row: a file is judged by a narrower row only when the runtime computed in fewer
# bits than it holds (an FP16 file computed in bf16 rounds like bf16; quantized rows are looser than either).
FLOAT_BITS = {Precision.FP32.value: 24, Precision.FP16.value: 11, BF16: 8}

# Override keys: "<precision|peer>.<short name>=<value|none>".
_FIELDS = {"cosine": "min_cosine", "sqnr": "min_sqnr_db", "top1": "min_top1_agreement",
           "max_abs": "max_abs_error", "max_rel": "max_rel_error", "fp32_loss": "max_fp32_sqnr_loss_db"}


def parse_tolerance_overrides(items: Iterable[str],
                              base: dict[str, Tolerance] | None = None) -> dict[str, Tolerance]:
    """Apply ``["int8.cosine=0.995", "fp16.sqnr=25", "fp32.max_abs=none"]`` to the defaults.

    Returns the full table (every row), so it can be passed to :func:`check_parity`.
    """
    table = dict(base if base is not None else DEFAULT_TOLERANCES)
    for item in items:
        key, sep, raw = item.partition("=")
        row, dot, short = key.strip().partition(".")
        if not sep or not dot:
            raise BadInputError(f"bad tolerance {item!r}: expected ROW.METRIC=VALUE, e.g. int8.cosine=0.995")
        if row not in table:
            raise BadInputError(f"bad tolerance {item!r}: unknown row {row!r}; rows: {', '.join(table)}")
        if short not in _FIELDS:
            raise BadInputError(f"bad tolerance {item!r}: unknown metric {short!r}; "
                                f"metrics: {', '.join(_FIELDS)}")
        raw = raw.strip()
        if raw.lower() in ("none", "off"):
            value = None
        else:
            try:
                value = float(raw)
            except ValueError:
                raise BadInputError(f"bad tolerance {item!r}: {raw!r} is not a number or 'none'") from None
            if not math.isfinite(value):
                raise BadInputError(f"bad tolerance {item!r}: value must be finite")
        table[row] = dataclasses.replace(table[row], **{_FIELDS[short]: value})
    return table


@dataclass(frozen=True)
class LayerParity:
    """One layer of a localized artifact: its output in the runtime against the eager module's output."""

    layer: str  # the eager module's qualified name, e.g. "layer3.0.conv2"
    tensor: str  # what was compared in the artifact (e.g. the ONNX tensor name)
    sqnr_db: float
    cosine: float
    max_abs_error: float
    passed: bool  # within the artifact's cosine and SQNR tolerance
    folded: list[str] = field(default_factory=list)  # eager modules folded into it (e.g. a BatchNorm)


@dataclass(frozen=True)
class ParityResult:
    variant: str
    format: str
    path: str
    runtime: str
    precision: str
    reference: str  # the variant whose eager reference this was compared with
    peer: bool
    n_inputs: int
    input_source: str  # "synthetic" | "images"
    max_abs_error: float
    mean_abs_error: float
    cosine: float
    sqnr_db: float  # inf when bit-identical
    top1_agreement: float
    top5_overlap: float  # top-min(5, classes)
    tolerance: Tolerance
    passed: bool
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    output_variation: float | None = None  # metrics.output_variation of the artifact's outputs
    degenerate: bool = False  # its outputs do not depend on its input (parity alone cannot see it)
    top1_checked: bool = True  # False for untrained weights (near-tied logits)
    # --localize: the first layer (eager qualified name) outside the tolerance, the per-layer table, and
    # what the localization did or why it could not run (None: not asked).
    first_divergent_layer: str | None = None
    layers: list[LayerParity] = field(default_factory=list)
    localization: str | None = None
    # The quantization-noise rule (INT8/mixed, when the run has an FP32 reference): this artifact's SQNR
    # against the FP32 model, the eager INT8 model's, and whether the rule is what passed it.
    sqnr_vs_fp32_db: float | None = None
    eager_sqnr_vs_fp32_db: float | None = None
    passed_by_noise_rule: bool = False
    max_rel_error: float | None = None  # metrics.max_rel_error (None in records older than it)
    computed_in: str | None = None  # the float type the runtime computed in, when it says (bf16 in OpenVINO)
    # The bf16 rounding rule (a float file computed in bf16): the eager model's own SQNR when computed in bf16,
    # and whether the rule is what passed it.
    eager_bf16_sqnr_db: float | None = None
    passed_by_bf16_rule: bool = False

    @property
    def runtime_label(self) -> str:
        """The runtime, with the float type it computed in when that was not FP32: ``openvino (bf16)``."""
        return f"{self.runtime} ({self.computed_in})" if self.computed_in not in (None, "f32") else self.runtime

    def verdict(self) -> str:
        """``pass``, ``pass (quantization-noise rule: ...)`` or ``FAIL: <violations>``: what tables show."""
        if not self.passed:
            return "FAIL: " + "; ".join(self.violations)
        if self.passed_by_noise_rule:
            return (f"pass (quantization-noise rule: {self.sqnr_vs_fp32_db:.1f} dB from FP32, "
                    f"eager INT8 {self.eager_sqnr_vs_fp32_db:.1f} dB)")
        if self.passed_by_bf16_rule:
            return (f"pass (bf16 rounding rule: {self.sqnr_db:.1f} dB, the eager model in bf16 "
                    f"{self.eager_bf16_sqnr_db:.1f} dB)")
        return "pass"

    def gated(self) -> list[str]:
        """The metrics that decided pass/fail (the others are informational): result field names."""
        t = self.tolerance
        out = [name for name, limit in (("cosine", t.min_cosine), ("sqnr_db", t.min_sqnr_db),
                                        ("max_abs_error", t.max_abs_error), ("max_rel_error", t.max_rel_error))
               if limit is not None]
        if t.min_top1_agreement is not None and self.top1_checked:
            out.append("top1_agreement")
        return out


def synthetic_inputs(n: int, input_spec: InputSpec, seed: int = 0) -> np.ndarray:
    """Deterministic standard-normal NCHW inputs: the scale of ImageNet-normalized images."""
    if n < 1:
        raise BadInputError(f"need at least one input, got {n}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *input_spec.shape[1:]), dtype=np.float32)


def run_batched(runtime, inputs: np.ndarray, batch: int = BATCH) -> np.ndarray:
    return np.concatenate([runtime.run(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


def compare(reference: np.ndarray, test: np.ndarray, tol: Tolerance,
            check_top1: bool = True) -> tuple[dict[str, float], list[str]]:
    """Metrics of ``test`` against ``reference`` and the tolerance violations (text)."""
    k = min(5, reference.shape[1])
    m = {
        "max_abs_error": metrics.max_abs_error(reference, test),
        "max_rel_error": metrics.max_rel_error(reference, test),
        "mean_abs_error": metrics.mean_abs_error(reference, test),
        "cosine": metrics.cosine_similarity(reference, test),
        "sqnr_db": metrics.sqnr_db(reference, test),
        "top1_agreement": metrics.top1_agreement(reference, test),
        "top5_overlap": metrics.topk_overlap(reference, test, k=k),
    }
    bad: list[str] = []
    if not np.all(np.isfinite(test)):
        bad.append("output has NaN or Inf")
    if tol.min_cosine is not None and not m["cosine"] >= tol.min_cosine:
        bad.append(f"cosine {m['cosine']:.6f} < {tol.min_cosine}")
    if tol.min_sqnr_db is not None and not m["sqnr_db"] >= tol.min_sqnr_db:
        bad.append(f"sqnr {m['sqnr_db']:.2f} dB < {tol.min_sqnr_db} dB")
    if check_top1 and tol.min_top1_agreement is not None and not m["top1_agreement"] >= tol.min_top1_agreement:
        bad.append(f"top1 agreement {m['top1_agreement']:.3f} < {tol.min_top1_agreement}")
    if tol.max_abs_error is not None and not m["max_abs_error"] <= tol.max_abs_error:
        bad.append(f"max abs error {m['max_abs_error']:.3g} > {tol.max_abs_error}")
    if tol.max_rel_error is not None and not m["max_rel_error"] <= tol.max_rel_error:
        bad.append(f"max rel error {m['max_rel_error']:.3g} > {tol.max_rel_error} "
                   f"(max abs error {m['max_abs_error']:.3g} over max |logit| "
                   f"{float(np.max(np.abs(reference))):.3g})")
    return m, bad


def _check_inputs(inputs: np.ndarray, spec: InputSpec, input_source: str) -> np.ndarray:
    if input_source not in INPUT_SOURCES:
        raise BadInputError(f"input_source must be one of {INPUT_SOURCES}, got {input_source!r}")
    arr = np.ascontiguousarray(inputs, dtype=np.float32)
    if arr.ndim != 4 or list(arr.shape[1:]) != list(spec.shape[1:]) or len(arr) == 0:
        raise BadInputError(f"parity inputs have shape {arr.shape}; the artifacts take "
                            f"(N, {', '.join(map(str, spec.shape[1:]))}) with N ≥ 1")
    return arr


def reference_key(art: ArtifactRecord) -> str:
    """What the artifact's eager reference is, as a cache key: its lane's own program (a pt2e ``.pt2``), or
    the eager model of its reference variant."""
    return art.lane_reference.path if art.lane_reference is not None else art.reference_variant


def _reference_outputs(run_dir: Path, manifest, art: ArtifactRecord, x: np.ndarray,
                       threads: int | None) -> np.ndarray:
    if art.lane_reference is not None:
        from runtimes.aoti import run_exported_program

        path = Path(run_dir) / art.lane_reference.path
        if sha256_file(path) != art.lane_reference.sha256:
            raise ArtifactError(f"{path} was modified since the manifest was written")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        return run_exported_program(path, x)
    return _outputs(run_dir, manifest.reference_for(art.reference_variant), x, threads)[1]


def _outputs(run_dir: Path, rec: ArtifactRecord, inputs: np.ndarray, threads: int | None) -> tuple[str, np.ndarray]:
    """(runtime name, outputs) of ``rec`` in the reference runtime of its format."""
    spec = registry.reference_runtime(rec.format)
    rt = spec.create(threads)
    support = rt.supports(rec)
    if not support.ok:
        raise RuntimeUnavailable(f"parity runtime {spec.name} cannot run {rec.path}: {support.reason}")
    return spec.name, _run_in(rt, run_dir, rec, inputs)[0]


def _run_in(rt, run_dir: Path, rec: ArtifactRecord, inputs: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(outputs, the precision it computed float layers in when it says: ComputePrecision)."""
    rt.load(run_dir, rec)
    try:
        out = run_batched(rt, inputs)
        return out, rt.compute_precision() if isinstance(rt, ComputePrecision) else None
    finally:
        rt.close()


def tolerance_row(art: ArtifactRecord, peer: bool, computed_in: str | None) -> str:
    """The tolerance row an artifact is judged by: ``peer`` for another tool's artifact, else its precision,
    except that a float file a runtime computed in a narrower float type (OpenVINO's bf16 on CPUs with BF16
    instructions: FP32 or FP16 files) is judged as that type: the runtime, not the export, chose to round."""
    if peer:
        return PEER
    row = NARROW_FLOATS.get(computed_in or "")
    if row is not None and FLOAT_BITS.get(art.precision.value, 0) > FLOAT_BITS[row]:
        return row  # the runtime rounded to fewer significant bits than the file holds
    return art.precision.value


def check_parity(run_dir: Path, inputs: np.ndarray, input_source: str,
                 tolerances: dict[str, Tolerance] | None = None,
                 variants: Sequence[str] | None = None,
                 threads: int | None = None) -> list[ParityResult]:
    """Compare every artifact (optionally of ``variants`` only) with its eager reference, in the reference
    runtime of its format and in every runtime that declares ``parity_for`` it (:func:`registry.parity_runtimes`):
    one result per artifact and runtime. A portability runtime that cannot run here is named in the
    reference result's notes."""
    run_dir = Path(run_dir)
    manifest = require_verified(run_dir)
    table = tolerances if tolerances is not None else DEFAULT_TOLERANCES
    artifacts = list(manifest.artifacts)
    if variants is not None:
        unknown = sorted(set(variants) - set(manifest.variants()))
        if unknown:
            raise BadInputError(f"variants not in {run_dir}: {', '.join(unknown)}; "
                                f"it has: {', '.join(manifest.variants())}")
        artifacts = [a for a in artifacts if a.variant in set(variants)]
    if not artifacts:
        raise BadInputError(f"{run_dir} has no artifacts to check")

    cache: dict[str, np.ndarray] = {}
    results: list[ParityResult] = []
    for art in artifacts:
        x = _check_inputs(inputs, art.input, input_source)
        peer = art.reference_variant != art.variant
        key = reference_key(art)
        if key not in cache:
            cache[key] = _reference_outputs(run_dir, manifest, art, x, threads)
        if art.format == Format.EAGER:
            raise BadInputError(f"{art.path}: an eager reference is not a deployable artifact")
        not_here: list[str] = []
        first = len(results)
        for i, spec in enumerate(registry.parity_runtimes(art.format)):
            rt = spec.create(threads)
            support = rt.supports(art)
            if not support.ok:
                if i == 0:
                    raise RuntimeUnavailable(f"parity runtime {spec.name} cannot run {art.path}: {support.reason}")
                not_here.append(f"not checked in {spec.name}: {support.reason}")
                continue
            full = art.precision in QUANTIZED and isinstance(rt, FullPrecision)
            if full:
                # A runtime's narrow float type inside an INT8 graph rounds again before every re-quantization,
                # which the noise rule would charge to the file (OpenVINO's bf16 SiLU: 16.9 dB from FP32 where
                # its f32 gives 20.1 and ONNX Runtime 19.9). Parity judges the file's own arithmetic; the bench and
                # its accuracy columns run the runtime's default.
                rt.use_full_precision()
            out, computed_in = _run_in(rt, run_dir, art, x)
            row = tolerance_row(art, peer, computed_in)
            if row not in table:
                raise BadInputError(f"no tolerance row {row!r} for {art.path}; rows: {', '.join(table)}")
            results.append(_judge(run_dir, manifest, art, spec.name, table[row], row, computed_in, x, out, cache,
                                  threads, input_source))
            if full:
                results[-1].notes.append(f"{spec.name} computed this {art.precision.value.upper()} file's float "
                                         f"layers in f32 for parity (use_full_precision); its default may round "
                                         f"them narrower (bf16), which the bench's accuracy measures")
        if not_here and len(results) > first:
            results[first].notes.extend(not_here)
    return results


def _judge(run_dir: Path, manifest, art: ArtifactRecord, rt_name: str, tol: Tolerance, row: str,
           computed_in: str | None, x: np.ndarray, out: np.ndarray, cache: dict[str, np.ndarray],
           threads: int | None, input_source: str) -> ParityResult:
    """One artifact's outputs in one runtime, judged against its eager reference."""
    ref_name = art.reference_variant
    peer = ref_name != art.variant
    notes: list[str] = []
    if art.lane_reference is not None:
        ref_name = f"{ref_name} ({art.lane_reference.lane})"
        notes.append(f"compared with its own lane's eager model ({art.lane_reference.path}, "
                     f"{art.lane_reference.lane}), not with the variant's fbgemm one")
    if row in NARROW_FLOATS.values() and row != art.precision.value:
        notes.append(f"{rt_name} computed this {art.precision.value.upper()} artifact in {computed_in} "
                     f"(its default on this CPU): judged by the {row} row")
    if not art.weights.trained:
        notes.append("top-1 agreement not checked: untrained weights give near-tied logits")
    m, bad = compare(cache[reference_key(art)], out, tol, check_top1=art.weights.trained)
    noise = _noise_rule(run_dir, manifest, art, tol, x, out, cache, threads) if not peer else None
    by_noise = False
    if noise is not None and bad:
        by_noise, said = noise_rule(bad, *noise, tol.max_fp32_sqnr_loss_db)
        if by_noise:
            notes.append(said)
            bad = []
        else:
            bad.append(said)
    bf16_db, by_bf16 = None, False
    if bad and row == BF16:
        bf16_db = _eager_bf16_sqnr(run_dir, manifest, art, x, cache, threads)
        by_bf16, said = bf16_rule(bad, m["sqnr_db"], bf16_db)
        if by_bf16:
            notes.append(said)
            bad = []
        else:
            bad.append(said)
    variation = metrics.output_variation(out) if len(out) > 1 else None
    degenerate = variation is not None and variation < DEGENERATE_VARIATION
    if degenerate:
        notes.append(degenerate_warning(art.path, variation))
    return ParityResult(
        variant=art.variant, format=art.format, path=art.path, runtime=rt_name,
        precision=art.precision.value, reference=ref_name, peer=peer, n_inputs=len(x),
        input_source=input_source, tolerance=tol, passed=not bad,
        violations=[f"{art.path} ({art.variant}, {rt_name} vs eager {ref_name}): {v}" for v in bad],
        notes=notes, output_variation=variation, degenerate=degenerate,
        top1_checked=art.weights.trained, sqnr_vs_fp32_db=noise[0] if noise else None,
        eager_sqnr_vs_fp32_db=noise[1] if noise else None, passed_by_noise_rule=by_noise,
        computed_in=computed_in, eager_bf16_sqnr_db=bf16_db, passed_by_bf16_rule=by_bf16, **m)


def noise_rule(violations: Sequence[str], own_db: float, eager_db: float, max_loss_db: float) -> tuple[bool, str]:
    """The quantization-noise rule (module doc) for an artifact with ``violations`` against its eager INT8
    model: (passes, what to say). ``own_db`` / ``eager_db``: the artifact's and the eager INT8 model's SQNR
    against their float model."""
    if any("NaN" in v for v in violations):
        return False, "the quantization-noise rule does not apply to non-finite outputs"
    if not eager_db >= NOISE_RULE_MIN_EAGER_SQNR_DB:
        return False, (f"the quantization-noise rule does not apply: the eager INT8 model is itself only "
                       f"{eager_db:.1f} dB from its float model (< {NOISE_RULE_MIN_EAGER_SQNR_DB:g} dB: untrained "
                       f"weights, unrepresentative calibration images, or 7-bit activations (reduce_range) in a "
                       f"deep squeeze-excitation network?)")
    if own_db >= eager_db - max_loss_db:
        return True, (f"passed by the quantization-noise rule: {own_db:.1f} dB from its float model against the "
                      f"eager INT8 model's {eager_db:.1f} dB (allowed loss {max_loss_db:g} dB); against eager "
                      f"INT8: {'; '.join(violations)}")
    return False, (f"and {own_db:.1f} dB from its float model, more than {max_loss_db:g} dB below the eager "
                   f"INT8 model's {eager_db:.1f} dB")


def _noise_rule(run_dir: Path, manifest, art: ArtifactRecord, tol: Tolerance, x: np.ndarray, out: np.ndarray,
                cache: dict[str, np.ndarray], threads: int | None) -> tuple[float, float] | None:
    """(artifact's SQNR vs its float source, eager INT8 reference's SQNR vs it) for the quantization-noise
    rule, or None when it does not apply (not INT8/mixed, no tolerance for it, no FP32 reference in the run).

    The float source is the run's FP32 reference nearest to the eager INT8 model: ``fp32`` for a dense INT8
    model, ``fp32-pruned`` for one pruned before quantizing, ``fp32-slim`` for ``int8-slim``.
    """
    if tol.max_fp32_sqnr_loss_db is None or art.precision not in QUANTIZED:
        return None
    floats = [r for r in manifest.references if r.precision == Precision.FP32]
    if not floats:
        return None
    for rec in (*floats, manifest.reference_for(art.reference_variant)):
        if rec.variant not in cache:
            cache[rec.variant] = _outputs(run_dir, rec, x, threads)[1]
    eager = cache[reference_key(art)]
    source = max(floats, key=lambda r: metrics.sqnr_db(cache[r.variant], eager))
    ref = cache[source.variant]
    return metrics.sqnr_db(ref, out), metrics.sqnr_db(ref, eager)


def bf16_rule(violations: Sequence[str], own_db: float, eager_bf16_db: float,
              max_loss_db: float = BF16_RULE_MAX_LOSS_DB) -> tuple[bool, str]:
    """The bf16 rounding rule (see :data:`BF16_RULE_MAX_LOSS_DB`) for a float artifact a runtime computed in bf16
    with ``violations`` of the bf16 row: (passes, what to say). ``own_db``: its SQNR against the eager model;
    ``eager_bf16_db``: the eager model's own SQNR when computed in bf16."""
    if any("NaN" in v for v in violations) or not math.isfinite(own_db):
        return False, "the bf16 rounding rule does not apply to non-finite outputs"
    if own_db >= eager_bf16_db - max_loss_db:
        return True, (f"passed by the bf16 rounding rule: {own_db:.1f} dB from the eager model, which itself "
                      f"computes at {eager_bf16_db:.1f} dB in bf16 (allowed loss {max_loss_db:g} dB); "
                      f"bf16 row: {'; '.join(violations)}")
    return False, (f"and {own_db:.1f} dB from the eager model, more than {max_loss_db:g} dB below the "
                   f"{eager_bf16_db:.1f} dB of the eager model itself computed in bf16")


def _eager_bf16_sqnr(run_dir: Path, manifest, art: ArtifactRecord, x: np.ndarray, cache: dict[str, np.ndarray],
                     threads: int | None) -> float:
    """SQNR of the eager reference of ``art`` computed in bf16 (weights and inputs cast) against itself in
    its own precision: how much bf16 rounding alone costs this network on these inputs."""
    import torch

    ref_name = art.reference_variant
    key = f"{ref_name}@bf16"
    if key not in cache:
        rec = manifest.reference_for(ref_name)
        rt = registry.reference_runtime(rec.format).create(threads)
        rt.load(run_dir, rec)
        try:
            model = rt.module.to(torch.bfloat16)
            with torch.no_grad():
                cache[key] = np.concatenate([
                    model(torch.from_numpy(x[i:i + BATCH]).to(torch.bfloat16)).float().numpy()
                    for i in range(0, len(x), BATCH)])
        finally:
            rt.close()
    return metrics.sqnr_db(cache[ref_name], cache[key])


def degenerate_warning(path: str, variation: float) -> str:
    return (f"{DEGENERATE}: {path} gives the same logits for every input (output variation "
            f"{variation:.1e} < {DEGENERATE_VARIATION:g}): it no longer computes anything from the image")


@dataclass(frozen=True)
class ParityInputs:
    """What a parity check ran on, so that a later check can run on the same inputs."""

    source: str  # "images" | "synthetic"
    n: int
    data: str | None = None  # the image folder (source "images")
    seed: int = 0  # the synthetic inputs' seed, or the image subset's

    def tag(self) -> str:
        """A file-name tag for a check on these inputs."""
        return f"{self.source}-{self.n}" + (f"-seed{self.seed}" if self.seed else "")


@dataclass(frozen=True)
class ParityReport:
    """``parity.json``: every result, whether the run's own artifacts passed, and the inputs (None in older
    records). ``passed`` leaves peer rows out (they are another tool's artifacts, kept for comparison);
    ``peers_passed`` says whether those passed."""

    passed: bool
    results: list[ParityResult]
    inputs: ParityInputs | None = None
    peers_passed: bool = True

    def failures(self) -> list[ParityResult]:
        return [r for r in self.results if not r.passed]


def write_parity(run_dir: Path, results: Sequence[ParityResult], inputs: ParityInputs | None = None,
                 name: str = PARITY_NAME) -> Path:
    path = Path(run_dir) / name
    write_json(path, ParityReport(passed=all(r.passed for r in results if not r.peer), results=list(results),
                                  inputs=inputs, peers_passed=all(r.passed for r in results if r.peer)))
    return path


def read_parity(run_dir: Path) -> ParityReport | None:
    """The run's parity records, or None when parity has not been checked."""
    path = Path(run_dir) / PARITY_NAME
    return read_record(path, ParityReport, "parity", list_key="results") if path.is_file() else None
