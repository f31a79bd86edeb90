"""The manifest schema: typed records, read/write, and sha256 verification.

``<run>/manifest.json`` is the single description of a run directory. Every
other stage (parity, bench, report) reads it through :func:`read_manifest`
and never guesses from file names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError
from runtimes.records import read_record, sha256_file, write_json

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunFiles:
    """The names of the files shrinkwrap writes into a run directory, besides the artifacts."""

    manifest: str = "manifest.json"
    parity: str = "parity.json"
    results: str = "results.json"
    results_csv: str = "results.csv"
    report: str = "report.md"
    sweep: str = "sweep.json"
    sensitivity: str = "sensitivity.json"
    readme: str = "README.md"
    figures: str = "figures"  # a directory

    def own(self) -> set[str]:
        return {getattr(self, f) for f in self.__dataclass_fields__}

    def is_own(self, name: str, is_dir: bool) -> bool:
        """Whether a file of that name is one shrinkwrap writes (parity checks on other inputs included)."""
        if is_dir:
            return name == self.figures
        stem = self.parity.removesuffix(".json")
        return name in self.own() - {self.figures} or (name.startswith(f"{stem}-") and name.endswith(".json"))


RUN_FILES = RunFiles()
MANIFEST_NAME = RUN_FILES.manifest


class Format:
    """The built-in artifact formats. A format is a name: the manifest stores it as a string, a
    runtime declares the names it runs, and the exporter registers one writer per name."""

    EAGER = "eager"  # the eager model's state_dict: the reference every artifact is compared with
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    PT2 = "pt2"  # an AOTInductor package (torch.export, compiled for this machine's CPU ISA)


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    MIXED = "mixed"  # INT8 body with some layers kept in FP32


# The precisions with an integer body. A str enum: ``"int8" in QUANTIZED`` holds for a cell's plain string too.
QUANTIZED: tuple[Precision, ...] = (Precision.INT8, Precision.MIXED)

class PruneScope(str, enum.Enum):
    GLOBAL = "global"
    LAYER = "layer"


class PruneMethod(str, enum.Enum):
    OBS = "obs"  # OBS/SparseGPT-style: choose by w²/[H⁻¹]ₚₚ, reconstruct the rest from calibration images
    MAGNITUDE = "magnitude"  # L1 magnitude, no reconstruction (the seed's recipe, kept for comparison)


class PruneOrder(str, enum.Enum):
    QUANTIZE_THEN_PRUNE = "quantize-then-prune"
    PRUNE_THEN_QUANTIZE = "prune-then-quantize"


class CalibMethod(str, enum.Enum):
    HISTOGRAM = "histogram"
    MINMAX = "minmax"


class BiasCorrection(str, enum.Enum):
    """How INT8 layer biases are corrected after convert (exporter.compress.bias_correction)."""

    NONE = "none"
    FAST = "fast"  # each layer's own error, on FP32 inputs
    FULL = "full"  # in execution order, on the quantized model's own inputs


# Every artifact's graph input and output names.
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class InputSpec:
    shape: list[int]  # -1 marks the dynamic batch dimension
    dtype: str
    resize: int
    crop: int
    mean: list[float]
    std: list[float]
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    zeros: int
    total: int
    sparsity: float


@dataclass(frozen=True)
class SparsityRecord:
    requested: float
    achieved: float  # counted from the stored weights, not assumed
    zeros: int
    total: int
    per_layer: list[LayerSparsity] = field(default_factory=list)
    shortfall: str | None = None  # why ``achieved`` is below ``requested`` (exporter.compress.unstructured.sparsity_shortfall)


@dataclass(frozen=True)
class BiasCorrectionRecord:
    """What bias correction did to an INT8 model: how, on how many images, how many layers, at what cost."""

    mode: str  # BiasCorrection value
    images: int
    layers: int  # INT8 layers whose bias was shifted
    skipped: list[str]  # layers whose shift was over the threshold (left as they were)
    max_abs_shift: float  # the largest per-channel shift applied
    seconds: float
    # Why the INT8 kernels the correction ran on are not the target's (this CPU lacks VNNI, say): the shifts were
    # fitted to this machine's arithmetic. None: measured on the target's class (or an older record).
    outside_target: str | None = None


@dataclass(frozen=True)
class EqualizationRecord:
    """Cross-layer equalization of the float model before calibration (exporter.compress.equalize)."""

    pairs: int  # conv pairs rescaled (0: the model has none, ``note`` says why)
    sweeps: int
    max_log_scale: float  # max |log s| of the last sweep: how far the scales still moved
    seconds: float
    note: str | None = None


@dataclass(frozen=True)
class QuantRecord:
    backend: str | None  # e.g. "fbgemm"; None for float variants
    scheme: str | None
    calib_method: str | None = None
    calib_source: str | None = None  # "synthetic" or the data directory
    calib_images: int | None = None
    keep_float: list[str] = field(default_factory=list)
    lane: str | None = None  # the INT8 lane that built it (runtimes.quant_lanes): "eager", "fx"
    reduce_range: bool | None = None  # 7-bit activations (safe without VNNI); None in older records
    target: str | None = None  # the deployment target (runtimes.targets) it was built for; None in older records
    bias_correction: BiasCorrectionRecord | None = None  # None: not corrected (or an older record)
    qat: FinetuneRecord | None = None  # quantization-aware training by distillation, when it ran
    equalization: EqualizationRecord | None = None  # None: not asked for (or an older record)
    # Operators that run float inside the INT8 model, measured (operator type -> where): LayerNorm, GELU, SiLU,
    # the layers kept FP32, ... (runtimes.quant_lanes.float_ops)
    float_ops: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PruneRecord:
    method: str | None  # "l1-unstructured" or None when not pruned
    scope: str | None
    order: str | None
    requested: float


@dataclass(frozen=True)
class WeightsRecord:
    source: str  # "imagenet" | "random" | "checkpoint"
    trained: bool
    label: str  # human text; says UNTRAINED for random weights
    path: str | None = None
    sha256: str | None = None
    # Random weights: what their BatchNorm statistics were estimated on, "synthetic" (standard-normal inputs)
    # or the calibration image folder; None for trained weights, which keep their own.
    batchnorm_source: str | None = None


@dataclass(frozen=True)
class FinetuneRecord:
    """Recovery by label-free distillation from the FP32 model: its settings, data source and cost."""

    data: str  # the ImageFolder (its labels are not used)
    images: int  # images decoded and trained on (after the subset and skipping)
    skipped: int  # files skipped: unreadable images and files that are not images
    epochs: int
    batch: int
    lr: float
    temperature: float
    seed: int
    device: str  # "cpu" or "cuda"
    seconds: float  # the training loop (decoding excluded)
    images_per_s: float  # training images (augmented views) per second of the training loop
    loss_first_epoch: float  # mean KL (times T²) over the first epoch
    loss_last_epoch: float
    masked_layers: int  # weights whose zeros were held fixed (unstructured-pruned models)


@dataclass(frozen=True)
class RecoveryStep:
    """One reconstruction step after pruning and what it recovered, measured without labels on the
    calibration images: top-1 agreement with the FP32 model and the logits' SQNR against it."""

    step: str  # "pruned" (before any step), "least-squares refit", "batchnorm re-estimation", "distillation"
    agreement: float  # % of images whose top-1 class is the FP32 model's
    sqnr_db: float
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class ChannelLayer:
    name: str
    kept: int  # output channels kept
    total: int  # output channels before


@dataclass(frozen=True)
class ChannelRecord:
    """Channel (structured) pruning of a slim variant."""

    requested: float  # fraction of each prunable layer's output channels removed
    round_to: int
    criterion: str  # the importance criterion used (e.g. "taylor", "l2-magnitude")
    layers: list[ChannelLayer]  # channels kept per pruned layer
    shapes: dict[str, list[int]]  # every conv/Linear weight and BatchNorm shape: rebuilds the structure
    macs_before: int  # multiply-accumulates per image
    macs_after: int
    params_before: int
    params_after: int
    recovery: list[RecoveryStep] = field(default_factory=list)


@dataclass(frozen=True)
class CompileRecord:
    """How an ahead-of-time compiled artifact (``.pt2``) was made. Unlike TorchScript and ONNX it holds machine
    code for one CPU ISA, so the ISA it was compiled for is part of the artifact."""

    compiler: str  # e.g. "aotinductor (torch 2.13.0)"
    settings: dict[str, Any]  # the Inductor configs it was compiled with (freezing, ...)
    isa: str  # the CPU ISA the package says it was compiled for, e.g. "AVX512 AVX512_VNNI"
    seconds: float  # export + (quantization) + compile wall time
    batch: int | None = None  # the batch size it was compiled for (None: any; a larger batch is that many calls)
    lane: str | None = None  # INT8: the lane that quantized it, e.g. "pt2e-x86-inductor"


@dataclass(frozen=True)
class LaneReference:
    """An artifact's own eager reference when its INT8 lane is not the variant's (a ``.pt2`` quantized by pt2e
    is compared with its ``convert_pt2e`` program, not with the fbgemm eager model): a saved ExportedProgram."""

    path: str  # relative to the manifest
    sha256: str
    bytes: int
    lane: str


# The manifest key (in ``ArtifactRecord.decisions``) naming the variant an artifact is compared with.
COMPARE_WITH = "compare_with"


@dataclass(frozen=True)
class ArtifactRecord:
    variant: str
    format: str  # a format name (see Format)
    path: str  # relative to the manifest
    bytes: int
    sha256: str
    precision: Precision
    model: str
    num_classes: int
    input: InputSpec
    sparsity: SparsityRecord
    quantization: QuantRecord
    pruning: PruneRecord
    weights: WeightsRecord
    params: int
    nonzero_params: int
    versions: dict[str, str]
    command: str
    decisions: dict[str, Any] = field(default_factory=dict)  # e.g. what `auto` chose
    warnings: list[str] = field(default_factory=list)  # e.g. "degenerate: ..." (empty in older manifests)
    macs: int | None = None  # multiply-accumulates per image the dense kernels execute (None in older manifests)
    channels: ChannelRecord | None = None  # slim variants: what channel pruning removed
    finetune: FinetuneRecord | None = None  # recovery by distillation, when it ran
    compile: CompileRecord | None = None  # ahead-of-time compiled formats (.pt2)
    lane_reference: LaneReference | None = None  # its own eager reference, when not the variant's (pt2e INT8)

    @property
    def reference_variant(self) -> str:
        """The variant whose eager reference this artifact is compared with: its own, unless its
        builder recorded another one under ``decisions["compare_with"]`` (the peer row)."""
        return str(self.decisions.get(COMPARE_WITH, self.variant))


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    created: str
    model: str
    weights: WeightsRecord
    command: str
    versions: dict[str, str]
    artifacts: list[ArtifactRecord]  # the deployable files (TorchScript, ONNX)
    references: list[ArtifactRecord]  # eager models the artifacts are compared with
    notes: list[str] = field(default_factory=list)

    def reference_for(self, variant: str) -> ArtifactRecord:
        for ref in self.references:
            if ref.variant == variant:
                return ref
        raise ArtifactError(f"manifest has no eager reference for variant {variant!r}")

    def variants(self) -> list[str]:
        """Variant names in manifest order (those with deployable artifacts)."""
        return list(dict.fromkeys(a.variant for a in self.artifacts))

    def records(self) -> list[ArtifactRecord]:
        """Every file the manifest names: the references first, then the deployable artifacts."""
        return [*self.references, *self.artifacts]

    def find(self, path: str) -> ArtifactRecord:
        """The record of the file at ``path`` (relative to the run directory)."""
        for rec in self.records():
            if rec.path == path:
                return rec
        raise ArtifactError(f"the manifest names no file {path!r}; it has: "
                            f"{', '.join(r.path for r in self.records())}")


# ---------------------------------------------------------------- files

def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    path = Path(run_dir) / MANIFEST_NAME
    write_json(path, manifest)
    return path


def read_manifest(run_dir: Path) -> Manifest:
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_NAME
    if not run_dir.is_dir():
        raise ArtifactError(f"artifact directory not found: {run_dir}")
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_NAME} in {run_dir}: not a shrinkwrap run directory")
    return read_record(path, Manifest, "manifest", SCHEMA_VERSION, list_key="artifacts")


def checked_path(run_dir: Path, record: ArtifactRecord) -> Path:
    """The artifact's path, after checking that its sha256 is the one the manifest records."""
    path = Path(run_dir) / record.path
    if not path.is_file():
        raise ArtifactError(f"{path} not found (variant {record.variant!r}, {record.format})")
    digest = sha256_file(path)
    if digest != record.sha256:
        raise ArtifactError(f"{path} was modified: sha256 {digest[:12]}… but the manifest "
                            f"records {record.sha256[:12]}…")
    return path


@dataclass(frozen=True)
class VerifyProblem:
    path: str
    problem: str  # "missing" | "modified" | "foreign" | "foreign (leftover temporary file)"


def verify_run_dir(run_dir: Path) -> list[VerifyProblem]:
    """Re-hash every file the manifest names; report missing, modified and foreign files."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    problems: list[VerifyProblem] = []
    named = set()
    files = [(r.path, r.bytes, r.sha256) for r in [*manifest.artifacts, *manifest.references]]
    files += [(r.lane_reference.path, r.lane_reference.bytes, r.lane_reference.sha256)
              for r in manifest.artifacts if r.lane_reference is not None]
    for path, size, digest in files:
        named.add(path)
        p = run_dir / path
        if not p.is_file():
            problems.append(VerifyProblem(path, "missing"))
        elif p.stat().st_size != size or sha256_file(p) != digest:
            problems.append(VerifyProblem(path, "modified"))
    for p in sorted(run_dir.iterdir()):
        if p.name in named or RUN_FILES.is_own(p.name, p.is_dir()):
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            problems.append(VerifyProblem(p.name, "foreign (leftover temporary file)"))
            continue
        problems.append(VerifyProblem(p.name, "foreign"))
    return problems


def require_verified(run_dir: Path) -> Manifest:
    """Read the manifest and raise :class:`ArtifactError` on any verification problem."""
    problems = verify_run_dir(run_dir)
    if problems:
        listing = ", ".join(f"{p.path} ({p.problem})" for p in problems)
        raise ArtifactError(f"{run_dir} failed verification: {listing}")
    return read_manifest(run_dir)
