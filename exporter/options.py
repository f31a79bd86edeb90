"""The option groups of every command: frozen records, validated once, holding every default.

The CLI turns its flags into these records and calls the library with them; a
library user builds them directly. Each record validates itself on
construction (raising :class:`~runtimes.errors.BadInputError`), so nothing
downstream re-checks a value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from exporter.errors import DataError
from exporter.image_folder import list_image_folder
from runtimes.bench.options import BenchOptions
from runtimes.errors import BadInputError
from runtimes.manifest import BiasCorrection, CalibMethod, PruneMethod, PruneOrder, PruneScope
from runtimes.targets import DEFAULT_TARGET, get_target, resolve_target

# The accuracy budget (top-1 points below FP32) has one default, the benchmark's.
DEFAULT_MAX_ACCURACY_DROP = BenchOptions.max_accuracy_drop


def check_sparsity(sparsity: float, what: str = "--sparsity") -> float:
    """The one check of a sparsity: a fraction of weights set to zero, 0 <= S < 1."""
    if not (isinstance(sparsity, (int, float)) and 0.0 <= sparsity < 1.0):
        raise BadInputError(f"{what} must be in [0, 1), got {sparsity}")
    return float(sparsity)


def _positive(value: int | None, what: str) -> None:
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise BadInputError(f"{what} must be positive, got {value}")


@dataclass(frozen=True)
class ModelOptions:
    model: str = "resnet18"
    weights: str = "imagenet"  # imagenet | random | a path to a state_dict or checkpoint


@dataclass(frozen=True)
class PreprocessOptions:
    """Overrides of the weights' own preprocessing (None = the weights' own)."""

    resize: int | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        _positive(self.resize, "--resize")
        _positive(self.input_size, "--input-size")
        for what, vals in (("--mean", self.mean), ("--std", self.std)):
            if vals is not None and (len(vals) != 3 or not all(math.isfinite(v) for v in vals)):
                raise BadInputError(f"{what} must be three finite numbers, got {vals}")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise BadInputError(f"--std values must be positive, got {self.std}")


@dataclass(frozen=True)
class CalibrationOptions:
    data: Path | None = None  # ImageFolder; None = synthetic inputs
    images: int = 256  # deterministic subset size
    method: CalibMethod = CalibMethod.HISTOGRAM
    batch: int = 32
    # The deployment target (runtimes.targets): the CPU class the INT8 artifacts are for, which sets the
    # activation width (8 bits for VNNI/AMX CPUs, the default; 7 for older x86).
    target: str = DEFAULT_TARGET
    # After convert, shift each INT8 layer's bias so its mean output matches the float model's
    # (exporter.compress.bias_correction).
    bias_correction: BiasCorrection = BiasCorrection.FULL
    # Before calibration, rescale channels between consecutive convolutions (exporter.compress.equalize).
    equalize: bool = False

    def __post_init__(self) -> None:
        _positive(self.images, "--calib-images")
        _positive(self.batch, "calibration batch")
        # ``native`` is resolved here, once, so the manifest records the CPU class the artifacts are for.
        object.__setattr__(self, "target", resolve_target(self.target))
        if self.data is not None:
            _require_images(self.data, "--calib-data")

    @property
    def reduce_range(self) -> bool:
        """7-bit activations: what the target needs (fbgemm's int16 pair sums on CPUs without VNNI)."""
        return get_target(self.target).reduce_range


@dataclass(frozen=True)
class ChannelOptions:
    """Channel (structured) pruning of the slim variants: whole output channels removed."""

    sparsity: float = 0.3  # fraction of each prunable layer's output channels removed
    round_to: int = 8  # channel counts kept are multiples of this (hardware-friendly widths)

    def __post_init__(self) -> None:
        check_sparsity(self.sparsity, "--channel-sparsity")
        _positive(self.round_to, "--channel-round")


@dataclass(frozen=True)
class FinetuneOptions:
    """Recovery by label-free distillation from the uncompressed FP32 model (off unless ``epochs`` > 0)."""

    data: Path | None = None  # an ImageFolder; its labels are never read
    epochs: int = 0
    seed: int = 0
    batch: int = 32
    # SGD (momentum 0.9), cosine-annealed to 0. Measured on the 10-class test model after the refit (3 epochs):
    # 0.002 gave +1.2 / +6.8 points at 50% / 70% of channels removed, where 0.01 lost 1.2 / gained 5.4.
    lr: float = 0.002
    temperature: float = 4.0  # KL divergence between temperature-softened logits
    images: int | None = None  # a deterministic subset of the folder (None: all of it)

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise BadInputError(f"--finetune-epochs must be a whole number >= 0, got {self.epochs}")
        if self.epochs > 0 and self.data is None:
            raise BadInputError("--finetune-epochs needs --finetune-data (a folder of images; labels are not used)")
        _positive(self.batch, "fine-tuning batch")
        _positive(self.images, "--finetune-images")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadInputError(f"fine-tuning learning rate must be > 0, got {self.lr}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise BadInputError(f"distillation temperature must be > 0, got {self.temperature}")
        if self.data is not None:
            _require_images(self.data, "--finetune-data")

    @property
    def enabled(self) -> bool:
        return self.epochs > 0


@dataclass(frozen=True)
class QatOptions:
    """Label-free quantization-aware training of the INT8 variants (off unless ``epochs`` > 0): the calibrated
    model fine-tuned fake-quantized by distillation from FP32, on ``--finetune-data`` (exporter.compress.qat)."""

    epochs: int = 0
    # SGD (momentum 0.9), cosine-annealed to 0; a quarter of the float recovery's: the INT8 model starts close.
    lr: float = 0.0005

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 0:
            raise BadInputError(f"--qat-epochs must be a whole number >= 0, got {self.epochs}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadInputError(f"--qat-lr must be a number > 0, got {self.lr}")

    @property
    def enabled(self) -> bool:
        return self.epochs > 0


@dataclass(frozen=True)
class CompressionOptions:
    sparsity: float = 0.5
    scope: PruneScope = PruneScope.GLOBAL
    # Prune (and reconstruct) the float weights, then calibrate the pruned network: measured as good on the
    # ResNet test models and far better on MobileNetV3 / EfficientNet (docs/pruning.md: "Which order").
    order: PruneOrder = PruneOrder.PRUNE_THEN_QUANTIZE
    method: PruneMethod = PruneMethod.OBS
    bn_recalibrate: bool = False  # re-estimate BatchNorm statistics after pruning float weights
    obs_images: int = 128  # calibration images OBS reconstruction uses (the first of them)
    channels: ChannelOptions = ChannelOptions()  # the slim variants' channel pruning
    finetune: FinetuneOptions = FinetuneOptions()  # recovery by distillation (slim and unstructured-pruned)
    qat: QatOptions = QatOptions()  # quantization-aware training of the INT8 variants, on finetune.data

    def __post_init__(self) -> None:
        check_sparsity(self.sparsity)
        _positive(self.obs_images, "obs images")
        if self.qat.enabled and self.finetune.data is None:
            raise BadInputError("--qat-epochs needs --finetune-data (a folder of images; labels are not used)")

    @property
    def qat_finetune(self) -> FinetuneOptions:
        """The distillation settings QAT trains with: the fine-tuning data and seed, QAT's epochs and rate."""
        return dataclasses.replace(self.finetune, epochs=self.qat.epochs, lr=self.qat.lr)


@dataclass(frozen=True)
class EvalOptions:
    data: Path | None = None  # labelled ImageFolder
    images: int | None = None  # deterministic subset
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP

    def __post_init__(self) -> None:
        _positive(self.images, "--eval-images")
        if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise BadInputError(f"--max-accuracy-drop must be a number >= 0, got {self.max_accuracy_drop}")
        if self.data is not None:
            _require_images(self.data, "--eval-data")


@dataclass(frozen=True)
class ParityOptions:
    """The parity gate's inputs and tolerances.

    With neither ``data`` nor ``synthetic``, a run that was checked before is checked on
    the inputs it recorded (same images, or same synthetic seed); a first check uses
    ``DEFAULT_IMAGES`` synthetic inputs. ``export`` and ``run`` pass ``--calib-data``.
    """

    DEFAULT_IMAGES = 16

    images: int | None = None  # None: the recorded count, else DEFAULT_IMAGES
    tolerance: tuple[str, ...] = ()  # overrides, e.g. ("int8.cosine=0.995",)
    data: Path | None = None  # real images (an ImageFolder)
    synthetic: bool = False  # deterministic synthetic inputs, even when images were recorded
    fail_on_degenerate: bool = True  # an artifact whose outputs do not depend on its input fails the gate
    localize: str | None = None  # "violating" | "all": compare layer by layer (runtimes.localize)
    # A peer row (e.g. ort-quantize-static) is there for comparison: its parity failure is reported but does
    # not fail the gate, unless asked.
    strict_peers: bool = False

    def __post_init__(self) -> None:
        from runtimes.localize import WHICH
        from runtimes.parity import parse_tolerance_overrides

        _positive(self.images, "--parity-images")
        if self.data is not None and self.synthetic:
            raise BadInputError("--data and --synthetic exclude each other")
        if self.localize is not None and self.localize not in WHICH:
            raise BadInputError(f"--localize takes {' or '.join(WHICH)}, got {self.localize!r}")
        parse_tolerance_overrides(self.tolerance)  # fail now, not after the export

    def tolerances(self):
        from runtimes.parity import parse_tolerance_overrides

        return parse_tolerance_overrides(self.tolerance)


def _require_images(folder: Path, flag: str) -> None:
    try:
        _, samples, _ = list_image_folder(folder)
    except DataError as exc:
        raise BadInputError(f"{flag}: {exc}") from None
    if not samples:
        raise BadInputError(f"{flag} {folder} holds no image files")
