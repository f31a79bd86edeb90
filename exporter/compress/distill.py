"""Recovery by label-free knowledge distillation: a compressed student learns the FP32 teacher's outputs.

After pruning, a student that is trained to reproduce the uncompressed model's
softened output distribution recovers most of the lost accuracy without any
labels (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015).
The folder is an ImageFolder only because that is the layout users have; its
class folders are never read as labels, and the order images are drawn in does
not depend on them either.

Images are decoded once, at the preprocessing's resize scale, and kept in
memory; each epoch sees fresh standard augmentations of them. Every random
choice (subset, shuffling, augmentation) comes from ``opts.seed``, so two calls
with the same inputs give bit-identical weights on CPU.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from exporter.data import _decode
from exporter.errors import DataError
from exporter.image_folder import list_image_folder
from exporter.options import FinetuneOptions
from exporter.progress import SILENT, Reporter
from runtimes.architectures import Preprocess
from runtimes.manifest import FinetuneRecord

# RandomResizedCrop's area range: the lower bound is above torchvision's 0.08 because a small student
# recovering on a few hundred images needs views that still look like whole images, not texture patches.
CROP_SCALE = (0.35, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
MOMENTUM = 0.9


# The record is the manifest's: the runtimes package owns every manifest type.
DistillRecord = FinetuneRecord


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The keep-mask ``w != 0`` of every Conv2d/Linear weight holding at least one exact zero.

    Keys are qualified parameter names, as :func:`distill` takes them, so an
    unstructured-pruned model can be fine-tuned with its zeros held fixed.
    """
    masks: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            keep = module.weight.detach() != 0
            if not bool(keep.all()):
                masks[f"{name}.weight" if name else "weight"] = keep
    return masks


def distill(student: nn.Module, teacher: nn.Module, opts: FinetuneOptions, preprocess: Preprocess,
            reporter: Reporter = SILENT, masks: dict[str, torch.Tensor] | None = None,
            device: str | torch.device | None = None) -> DistillRecord:
    """Train ``student`` in place to match ``teacher``'s softened outputs on the images at ``opts.data``.

    ``masks``: parameter name -> 0/1 tensor of its shape; the zeros stay exactly zero.
    ``device``: None = CUDA when available, else CPU. Both models end on CPU, in eval mode.
    """
    if opts.epochs <= 0:
        raise ValueError("distill needs opts.epochs > 0 (check opts.enabled first)")
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    with reporter.task("distill") as update:
        images, skipped = _decode_folder(Path(opts.data), preprocess, opts.images, opts.seed,
                                         lambda i, n: update(i, n, label="distill: decoding images"))
        # Fork the RNG: the augmentations draw from torch's global generator, which we seed for
        # determinism, but the caller's own random stream must come back as it was.
        cuda_devices = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.default_generator.manual_seed(opts.seed)
            if dev.type == "cuda":
                with torch.cuda.device(dev):
                    torch.cuda.manual_seed(opts.seed)  # dropout in the student draws on the GPU
            try:
                student.to(dev)
                teacher.to(dev).eval()
                run = _train(student, teacher, images, opts, preprocess, masks or {}, dev, update)
            finally:
                # Eval mode and CPU whatever happened, so a failed run never leaves a model half-moved.
                student.eval().to("cpu")
                teacher.to("cpu")
    losses, seconds = run
    ips = opts.epochs * len(images) / seconds if seconds > 0 else 0.0
    where = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "cpu"
    reporter.say(f"distill: {opts.epochs} epochs on {len(images)} images in {seconds:.1f} s ({ips:.0f} images/s), "
                 f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, on {where}")
    return DistillRecord(
        data=str(opts.data), images=len(images), skipped=skipped, epochs=opts.epochs, batch=opts.batch,
        lr=float(opts.lr), temperature=float(opts.temperature), seed=opts.seed, device=dev.type,
        seconds=float(seconds), images_per_s=float(ips), loss_first_epoch=float(losses[0]),
        loss_last_epoch=float(losses[-1]), masked_layers=len(masks or {}))


# ---- data -------------------------------------------------------------------------------------------


def _decode_folder(root: Path, pre: Preprocess, limit: int | None, seed: int, progress) -> tuple[list, int]:
    """The folder's images as RGB PIL images at the resize scale, in a label-independent order; and the skip count."""
    from torchvision import transforms as T

    _, samples, others = list_image_folder(root)
    # Order by file name, not by class folder: labels are not read, so which folder holds an image
    # (or what the folders are called) must not change which images are drawn or in what order.
    paths = sorted((p for p, _ in samples), key=lambda p: (p.name, str(p)))
    if limit is not None and limit < len(paths):
        paths = [paths[i] for i in sorted(random.Random(seed).sample(range(len(paths)), limit))]
    # Resize once here, to the scale the evaluation preprocessing crops from, so each epoch's random
    # crops are cheap and see the same field of view as evaluation.
    resize = T.Resize(pre.resize, interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    images, skipped = [], len(others)
    # Threads: PIL decodes with the GIL released; map keeps the order, so the result is deterministic.
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        for i, im in enumerate(pool.map(lambda p: _decode(p, resize), paths)):
            if im is None:
                skipped += 1
            else:
                images.append(im)
            progress(i + 1, len(paths))
    if not images:
        raise DataError(f"fine-tuning data {root} has no readable images ({skipped} files skipped)")
    if len(images) < 2:
        raise DataError(f"fine-tuning data {root} has only {len(images)} readable image; distillation needs at "
                        "least 2 (BatchNorm cannot train on one)")
    return images, skipped


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _chunks(order: list[int], batch: int) -> list[list[int]]:
    """``order`` in batches of ``batch``; a last batch of one image joins the one before it.

    BatchNorm in train mode cannot normalise one value per channel (it raises after global pooling),
    and leaving the image out would drop it from the epoch.
    """
    chunks = [order[i:i + batch] for i in range(0, len(order), batch)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2] += chunks.pop()
    return chunks


class _Augment:
    """RandomResizedCrop + RandomHorizontalFlip, split in two: draw the parameters, then apply them.

    The parameters are drawn in the calling thread, in a fixed order, from torch's (seeded) generator;
    the pixel work runs in threads. That keeps the result deterministic while the crops of the next
    batch are computed during the current training step.
    """

    def __init__(self, crop: int):
        self.crop = crop

    def draw(self, image) -> tuple[int, int, int, int, bool]:
        from torchvision import transforms as T

        i, j, h, w = T.RandomResizedCrop.get_params(image, list(CROP_SCALE), list(CROP_RATIO))
        return i, j, h, w, bool(torch.rand(1) < 0.5)

    def apply(self, image, params) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        i, j, h, w, flip = params
        out = TF.resized_crop(image, i, j, h, w, [self.crop, self.crop], InterpolationMode.BILINEAR,
                              antialias=True)
        if flip:
            out = TF.hflip(out)
        # uint8 (3, crop, crop): a quarter of the bytes of float to copy to the device; ToTensor's
        # scaling and Normalize run on the whole batch there.
        return TF.pil_to_tensor(out)


def _batches(images: list, chunks: list[list[int]], augment: _Augment,
             pool: ThreadPoolExecutor) -> Iterator[torch.Tensor]:
    """uint8 batches of augmented views, one batch queued ahead of the one being trained on."""
    queued: deque[list[Future]] = deque()
    for chunk in chunks:
        queued.append([pool.submit(augment.apply, images[k], augment.draw(images[k])) for k in chunk])
        if len(queued) > 1:
            yield torch.stack([f.result() for f in queued.popleft()])
    while queued:
        yield torch.stack([f.result() for f in queued.popleft()])


# ---- training ---------------------------------------------------------------------------------------


def _logits(out) -> torch.Tensor:
    # Some torchvision models return a named tuple in train mode (inception_v3's and googlenet's
    # auxiliary heads); distillation matches the main head.
    if isinstance(out, torch.Tensor):
        return out
    return out.logits if hasattr(out, "logits") else out[0]


def _kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float) -> torch.Tensor:
    # Softened by T so the teacher's small probabilities (its "dark knowledge") carry signal; times T²
    # so the gradient's size does not shrink as T grows (Hinton et al. 2015).
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    log_target=True, reduction="batchmean") * (t * t)


def _device_masks(student: nn.Module, masks: dict[str, torch.Tensor],
                  dev: torch.device) -> list[tuple[nn.Parameter, torch.Tensor]]:
    params = dict(student.named_parameters())
    held = []
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"mask for {name!r}, which is not a parameter of the student")
        p = params[name]
        if tuple(mask.shape) != tuple(p.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, the parameter {tuple(p.shape)}")
        held.append((p, mask.to(device=dev, dtype=p.dtype)))
    return held


def _train(student: nn.Module, teacher: nn.Module, images: list, opts: FinetuneOptions, pre: Preprocess,
           masks: dict[str, torch.Tensor], dev: torch.device, update) -> tuple[list[float], float]:
    """The training loop; returns each epoch's mean loss and the loop's seconds."""
    held = _device_masks(student, masks, dev)
    with torch.no_grad():
        for p, m in held:
            p.mul_(m)  # the invariant holds from the first step, whatever the caller's weights were
    params = [p for p in student.parameters() if p.requires_grad]
    # No weight decay: the teacher's outputs are the only target, and decay would pull the student
    # away from them (and, for masked weights, toward nothing useful).
    opt = torch.optim.SGD(params, lr=opts.lr, momentum=MOMENTUM, weight_decay=0.0)
    shuffle = torch.Generator().manual_seed(opts.seed)
    per_epoch = len(_chunks(list(range(len(images))), opts.batch))
    total = opts.epochs * per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    mean = torch.tensor(pre.mean, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
    augment = _Augment(pre.crop)
    losses: list[float] = []
    seen, step = 0, 0
    student.train()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        for epoch in range(opts.epochs):
            order = torch.randperm(len(images), generator=shuffle).tolist()
            loss_sum, count = 0.0, 0
            for raw in _batches(images, _chunks(order, opts.batch), augment, pool):
                x = (raw.to(dev).float().div_(255) - mean) / std
                with torch.no_grad():
                    target = _logits(teacher(x))
                out = _logits(student(x))
                if out.shape != target.shape:
                    raise ValueError(f"student outputs {tuple(out.shape)} but teacher {tuple(target.shape)}")
                loss = _kl(out, target, opts.temperature)
                value = float(loss.detach())
                if not math.isfinite(value):  # stop before a step would write NaN into the weights
                    raise FloatingPointError(f"distillation loss became {value} at epoch {epoch + 1} "
                                             f"(lower the learning rate, now {opts.lr})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                for p, m in held:
                    if p.grad is not None:
                        p.grad.mul_(m)
                opt.step()
                # Momentum carries past gradients; re-applying the mask is what guarantees exact zeros.
                with torch.no_grad():
                    for p, m in held:
                        p.mul_(m)
                sched.step()
                loss_sum += value * len(raw)
                count += len(raw)
                seen += len(raw)
                step += 1
                ips = seen / max(time.perf_counter() - start, 1e-9)
                update(step, total, label=f"distill epoch {epoch + 1}/{opts.epochs}: loss {value:.4f}, "
                                          f"{ips:.0f} images/s")
            losses.append(loss_sum / count)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return losses, time.perf_counter() - start
