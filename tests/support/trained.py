"""A small model trained for real during the test run, on procedurally generated images.

Four classes of 32x32 RGB images (a filled disc, a square outline, horizontal
stripes, vertical stripes), each drawn with random position, size, colours and
noise, so that the network must learn shapes rather than a constant. A ResNet-18
reaches high accuracy on them in well under a minute on 2 CPU cores; an untrained
one sits at chance (25%).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLASSES = ("disc", "outline", "hstripes", "vstripes")
SIZE = 32
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


def draw(cls: int, rng: np.random.Generator) -> np.ndarray:
    bg = rng.uniform(0, 0.5, 3)
    fg = rng.uniform(0.5, 1.0, 3)
    img = np.ones((SIZE, SIZE, 3)) * bg
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = rng.integers(6, 12)
    cy, cx = rng.integers(r, SIZE - r, 2)
    if cls == 0:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    elif cls == 1:
        inner = (abs(yy - cy) < r - 2) & (abs(xx - cx) < r - 2)
        mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r) & ~inner
    else:
        period = int(rng.integers(4, 8))
        phase = int(rng.integers(0, period))
        lines = ((yy if cls == 2 else xx) + phase) % period < period // 2
        mask = lines & (abs(yy - cy) <= r + 4) & (abs(xx - cx) <= r + 4)
    img[mask] = fg
    img += rng.normal(0, 0.06, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw(c, rng)).save(d / f"{name}_{i:04d}.png")
    return root


def load_tensors(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for c, name in enumerate(sorted(CLASSES)):
        for p in sorted((root / name).glob("*.png")):
            a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0
            xs.append((a - MEAN) / STD)
            ys.append(c)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous().float()
    return x, torch.tensor(ys)


def train(train_dir: Path, out: Path, epochs: int = 6, seed: int = 0) -> dict:
    """Train a quantizable ResNet-18 (4 classes) and save its state_dict to ``out``."""
    from runtimes.structure import build_float_model

    torch.manual_seed(seed)
    x, y = load_tensors(train_dir)
    model = build_float_model("resnet18", len(CLASSES)).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean()) * 100
    torch.save(model.state_dict(), out)
    return {"train_top1": acc, "final_loss": float(loss.detach())}
