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


# A harder task for the pruning study (docs/pruning_study.py): ten classes, more noise, smaller shapes.
HARD_CLASSES = CLASSES + ("ring", "cross", "dstripes", "square", "dots", "triangle")
HARD_NOISE = 0.12


def draw(cls: int | str, rng: np.random.Generator, noise: float = 0.06) -> np.ndarray:
    name = CLASSES[cls] if isinstance(cls, int) else cls
    bg = rng.uniform(0, 0.5, 3)
    fg = rng.uniform(0.5, 1.0, 3)
    img = np.ones((SIZE, SIZE, 3)) * bg
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = rng.integers(6, 12)
    cy, cx = rng.integers(r, SIZE - r, 2)
    dy, dx = yy - cy, xx - cx
    if name == "disc":
        mask = dy ** 2 + dx ** 2 <= r * r
    elif name == "outline":
        inner = (abs(dy) < r - 2) & (abs(dx) < r - 2)
        mask = (abs(dy) <= r) & (abs(dx) <= r) & ~inner
    elif name in ("hstripes", "vstripes", "dstripes"):
        period = int(rng.integers(4, 8))
        phase = int(rng.integers(0, period))
        coord = {"hstripes": yy, "vstripes": xx, "dstripes": yy + xx}[name]
        mask = ((coord + phase) % period < period // 2) & (abs(dy) <= r + 4) & (abs(dx) <= r + 4)
    elif name == "ring":
        d2 = dy ** 2 + dx ** 2
        mask = (d2 <= r * r) & (d2 >= (r - 3) ** 2)
    elif name == "cross":
        mask = ((abs(dy) <= 1) & (abs(dx) <= r)) | ((abs(dx) <= 1) & (abs(dy) <= r))
    elif name == "square":
        mask = (abs(dy) <= r) & (abs(dx) <= r)
    elif name == "dots":
        mask = ((yy % 6 == cy % 6) & (xx % 6 == cx % 6)) & (abs(dy) <= r + 4) & (abs(dx) <= r + 4)
    else:  # triangle
        mask = (dy <= r) & (dy >= -r) & (abs(dx) <= (dy + r) / 2)
    img[mask] = fg
    img += rng.normal(0, noise, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: int, seed: int, classes: tuple[str, ...] = CLASSES,
                       noise: float = 0.06) -> Path:
    rng = np.random.default_rng(seed)
    for name in classes:
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw(name, rng, noise)).save(d / f"{name}_{i:04d}.png")
    return root


def load_tensors(root: Path, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (normalised with MEAN/STD) and labels; at another ``size``, through the exporter's own image
    pipeline (``--resize size --input-size size``), so a model trained on them sees what the CLI feeds it."""
    if size != SIZE:
        from exporter.data import load_image_folder, make_preprocess
        from runtimes.architectures import Preprocess

        loaded = load_image_folder(root, make_preprocess(Preprocess(size, size, MEAN, STD)))
        return loaded.images, loaded.labels
    return _load_32(root)


def _load_32(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for c, name in enumerate(sorted(d.name for d in root.iterdir() if d.is_dir())):
        for p in sorted((root / name).glob("*.png")):
            a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0
            xs.append((a - MEAN) / STD)
            ys.append(c)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous().float()
    return x, torch.tensor(ys)


# Recipes that train each family on the shapes in well under a minute on 2 cores (measured):
# (epochs, optimizer, peak lr, zero-initialised classifier). EfficientNet-B0 gets 14 epochs (30 s on the AMX
# Xeon): after 8 it held out 85% and lost 5 points to FP16 alone, too fragile a model to measure INT8 on;
# after 14 it holds out 96% and FP16 keeps it.
RECIPES = {"resnet18": (6, "sgd", 0.05, False), "mobilenet_v3_large": (6, "sgd", 0.05, False),
           "efficientnet_b0": (14, "adamw", 0.003, True)}
DEFAULT_RECIPE = (6, "adamw", 0.002, True)


def train(train_dir: Path, out: Path, epochs: int | None = None, seed: int = 0, arch: str = "resnet18",
          size: int = SIZE) -> dict:
    """Train ``arch`` (one output per class folder) in the structure of its INT8 lane and save its
    state_dict to ``out``; the recipe is :data:`RECIPES`' (AdamW with a zero head for a family without
    one; ``epochs`` overrides its epoch count)."""
    from runtimes.architectures import build_float_model
    from runtimes.structure import classifier_name

    recipe_epochs, optimizer, lr, zero_head = RECIPES.get(arch, DEFAULT_RECIPE)
    epochs = epochs or recipe_epochs
    torch.manual_seed(seed)
    x, y = load_tensors(train_dir, size)
    model = build_float_model(arch, int(y.max()) + 1).train()
    head = model.get_submodule(classifier_name(model))
    if zero_head and isinstance(head, torch.nn.Linear):
        # torchvision sizes EfficientNet's head init for 1000 classes (range 1/sqrt(classes)): with 4 classes
        # the first logits are huge and training diverges. Start from zero (not a conv head followed by a
        # ReLU, as SqueezeNet's: it would never leave zero).
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4) if optimizer == "adamw" else
           torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4))
    steps = epochs * ((len(x) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            logits = model(x[idx])
            logits = getattr(logits, "logits", logits)  # GoogLeNet and Inception v3 add auxiliary logits in training
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    # Precise BatchNorm: MobileNetV3 and EfficientNet keep running statistics with momentum 0.01, which a
    # few hundred steps leave far from the trained weights' activations.
    from exporter.compress.batchnorm import recalibrate_batchnorm

    recalibrate_batchnorm(model, x)
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean()) * 100
    torch.save(model.state_dict(), out)
    return {"train_top1": acc, "final_loss": float(loss.detach())}


def recipe_key(arch: str, train_dir: Path, epochs: int | None = None, seed: int = 0, size: int = SIZE) -> str:
    """A hash of everything :func:`train` reads: the same key, the same weights."""
    import hashlib
    import json

    recipe = RECIPES.get(arch, DEFAULT_RECIPE)
    files = sorted(str(p.relative_to(train_dir)) for p in Path(train_dir).rglob("*.png"))
    text = json.dumps({"arch": arch, "recipe": recipe, "epochs": epochs or recipe[0], "seed": seed, "size": size,
                       "files": hashlib.sha256("\n".join(files).encode()).hexdigest(), "data": str(train_dir)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_train(train_dir: Path, cache_dir: Path, arch: str = "resnet18", epochs: int | None = None, seed: int = 0,
                 size: int = SIZE) -> tuple[Path, dict]:
    """:func:`train`, once per recipe: the checkpoint and its stats are kept in ``cache_dir`` (the test session's
    temporary directory, never the repository) under the recipe's hash, so every test asking for the same
    trained model shares one training."""
    import json

    key = recipe_key(arch, train_dir, epochs, seed, size)
    ckpt, stats_file = Path(cache_dir) / f"{arch}-{key}.pt", Path(cache_dir) / f"{arch}-{key}.json"
    if not (ckpt.is_file() and stats_file.is_file()):
        stats = train(train_dir, ckpt, epochs=epochs, seed=seed, arch=arch, size=size)
        stats_file.write_text(json.dumps(stats))
    return ckpt, json.loads(stats_file.read_text())
