"""The slim recipe: remove channels, then recover, measuring what each step gives back.

remove channels (:mod:`exporter.compress.channels`) → BatchNorm re-estimation →
least-squares refit of every layer whose inputs were pruned (:mod:`exporter.compress.refit`) →
distillation from the FP32 model when asked (:mod:`exporter.compress.distill`). Each
step's effect is measured without labels, as top-1 agreement with the FP32
model and the logits' SQNR against it, on calibration images the reconstruction
did not use.

The order was chosen by measurement (docs/pruning.md, "Channel pruning"): re-estimating
BatchNorm *after* the refit undid it (it replaces statistics the refit had
matched to the FP32 model's with a small sample's; logit SQNR 56 → 15 dB on the
trained test model), so the statistics are re-estimated first and the refit
then matches the FP32 model's normalised outputs under them.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from exporter.compress import channels, refit
from exporter.compress.batchnorm import recalibrate_batchnorm
from exporter.evaluation import model_logits
from exporter.options import CompressionOptions
from exporter.progress import SILENT, Reporter
from runtimes.architectures import Preprocess
from runtimes.manifest import ChannelLayer, ChannelRecord, FinetuneRecord, RecoveryStep
from runtimes.metrics import sqnr_db, top1_agreement

@dataclass
class SlimModel:
    model: nn.Module  # float32, eval mode
    record: ChannelRecord
    finetune: FinetuneRecord | None = None


class _Meter:
    """Top-1 agreement and SQNR of a model's logits against the FP32 model's, on fixed images."""

    def __init__(self, teacher: nn.Module, images: torch.Tensor) -> None:
        self.images = images
        self.reference = model_logits(teacher, images)

    def __call__(self, step: str, model: nn.Module, seconds: float = 0.0, detail: str = "") -> RecoveryStep:
        logits = model_logits(model, self.images)
        return RecoveryStep(step, round(top1_agreement(self.reference, logits) * 100, 2),
                            round(sqnr_db(self.reference, logits), 2), round(seconds, 2), detail)


def slim(teacher: nn.Module, calib_images: torch.Tensor, fit_images: torch.Tensor, measure_images: torch.Tensor,
         opts: CompressionOptions, preprocess: Preprocess, synthetic: bool,
         reporter: Reporter = SILENT) -> SlimModel:
    """``teacher`` with ``opts.channels.sparsity`` of its channels removed and recovered (teacher untouched)."""
    from exporter.compress.distill import distill  # training code: loaded only when a slim variant is built

    c = opts.channels
    # Taylor importance needs real images; on synthetic ones their gradients rank nothing real.
    criterion = channels.MAGNITUDE if synthetic else channels.TAYLOR
    teacher = teacher.eval()
    student = copy.deepcopy(teacher)
    example = fit_images[:1]
    macs_before, params_before = channels.count_macs_and_params(teacher, example)
    meter = _Meter(teacher, measure_images)

    t0 = time.perf_counter()
    plan = channels.remove_channels(student, fit_images, c.sparsity, c.round_to, criterion)
    steps = [meter("pruned", student, time.perf_counter() - t0, f"{criterion} importance")]
    if c.sparsity > 0:
        t0 = time.perf_counter()
        n = recalibrate_batchnorm(student, calib_images)
        steps.append(meter("batchnorm re-estimation", student, time.perf_counter() - t0,
                           f"{n} BatchNorm layers on {len(calib_images)} images"))
        layers, seconds = refit.refit(student, teacher, plan, fit_images)
        before = sum(r.before for r in layers) / max(len(layers), 1)
        after = sum(r.after for r in layers) / max(len(layers), 1)
        steps.append(meter("least-squares refit", student, seconds,
                           f"{len(layers)} layers; mean relative output error {before:.3f} → {after:.3f}"))
    finetune = None
    if opts.finetune.enabled:
        finetune = distill(student, teacher, opts.finetune, preprocess, reporter)
        steps.append(meter("distillation", student, finetune.seconds,
                           f"{finetune.epochs} epochs on {finetune.images} images, {finetune.images_per_s:.0f} images/s"))
    student.eval()
    macs_after, params_after = channels.count_macs_and_params(student, example)
    shapes = channels.channel_shapes(student)
    kept = [ChannelLayer(n, len(plan.kept.get(n, range(total))), total) for n, total in plan.original.items()]
    reporter.say(f"slim {c.sparsity:g}: MACs {macs_before / 1e6:.1f}M → {macs_after / 1e6:.1f}M, agreement with FP32 "
                 + " → ".join(f"{s.agreement:.1f}%" for s in steps) + f" ({' → '.join(s.step for s in steps)}; "
                 f"on {len(measure_images)} calibration images)")
    record = ChannelRecord(requested=c.sparsity, round_to=c.round_to, criterion=criterion, layers=kept,
                           shapes=shapes, macs_before=macs_before, macs_after=macs_after,
                           params_before=params_before, params_after=params_after, recovery=steps)
    return SlimModel(student, record, finetune)
