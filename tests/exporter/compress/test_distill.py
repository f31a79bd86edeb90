"""Label-free distillation, computed for real on a tiny CNN and procedurally drawn 32x32 images.

The teacher is a small BatchNorm CNN trained here for a second on the shapes of
tests/support/trained.py; students start as noisy copies of it. The model ends in
BatchNorm1d after global pooling, so a training batch of one image would raise.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exporter.compress.distill import DistillRecord, distill, masks_of
from exporter.errors import DataError
from exporter.options import FinetuneOptions
from runtimes.architectures import Preprocess
from tests.support import trained

PRE = Preprocess(resize=32, crop=32, mean=trained.MEAN, std=trained.STD)


def tiny_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(32), nn.Linear(32, 4),
    )


def perturbed(model: nn.Module, scale: float = 1.0, seed: int = 1) -> nn.Module:
    """A copy with Gaussian noise (``scale`` times each weight's spread) on every conv and linear weight."""
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in out.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight += scale * m.weight.std() * torch.randn(m.weight.shape, generator=g)
    return out


def kl_to(student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> float:
    student.eval()
    teacher.eval()
    with torch.no_grad():
        return float(F.kl_div(F.log_softmax(student(x), 1), F.log_softmax(teacher(x), 1),
                              log_target=True, reduction="batchmean"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a model this small, splitting each op across threads costs more than it
    gains, and on a loaded machine a descheduled thread stalls every op (seen: 6 ms steps became 400 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("distill")
    return (trained.write_image_folder(root / "train", per_class=16, seed=0),
            trained.write_image_folder(root / "val", per_class=16, seed=1))


@pytest.fixture(scope="module")
def teacher(folders) -> nn.Module:
    """Trained with labels (the student never sees them), so its outputs are confident and meaningful."""
    x, y = trained.load_tensors(folders[0])
    model = tiny_cnn(0).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 16):
            idx = perm[i:i + 16]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def opts(data: Path, **kw) -> FinetuneOptions:
    base = dict(data=data, epochs=3, batch=32, seed=0, lr=0.01)  # this tiny task was tuned at 0.01; T = 4, the default
    return FinetuneOptions(**{**base, **kw})


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Recorder:
    def __init__(self):
        self.lines: list[str] = []
        self.tasks: list[str] = []
        self.updates: list[tuple] = []

    def say(self, message: str) -> None:
        self.lines.append(message)

    def task(self, label: str):
        import contextlib

        self.tasks.append(label)

        @contextlib.contextmanager
        def cm():
            yield lambda done, total, label="": self.updates.append((done, total, label))

        return cm()


def test_distillation_brings_the_student_closer_to_the_teacher_on_held_out_images(folders, teacher):
    student = perturbed(teacher)
    x_val, _ = trained.load_tensors(folders[1])
    before = kl_to(student, teacher, x_val)
    rec = distill(student, teacher, opts(folders[0], batch=16), PRE)
    after = kl_to(student, teacher, x_val)
    assert before > 0.5, before  # the noise made a real difference to begin with
    assert after < 0.5 * before, (before, after)
    assert rec.loss_last_epoch < rec.loss_first_epoch
    # Both models come back on CPU, in eval mode, in float32.
    assert not student.training and not teacher.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in student.parameters())
    assert all(p.device.type == "cpu" for p in teacher.parameters())


def test_same_seed_gives_identical_weights_and_another_seed_does_not(folders, teacher):
    start = perturbed(teacher)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        student = copy.deepcopy(start)
        rng = torch.get_rng_state()
        distill(student, teacher, opts(folders[0], epochs=2, seed=seed), PRE, device="cpu")
        assert torch.equal(torch.get_rng_state(), rng)  # the caller's random stream is left as it was
        runs[name] = student
    assert same_state(runs["a"], runs["b"])
    assert not same_state(runs["a"], runs["c"])


def test_masked_zeros_stay_exactly_zero(folders, teacher):
    assert masks_of(teacher) == {}  # a dense model has nothing to hold
    start = perturbed(teacher)
    with torch.no_grad():
        for w in (start[0].weight, start[12].weight):  # the first conv and the classifier, half pruned
            w[w.abs() < w.abs().median()] = 0.0
    masks = masks_of(start)
    assert sorted(masks) == ["0.weight", "12.weight"]
    assert all(m.dtype == torch.bool and torch.equal(m, start.get_parameter(k) != 0) for k, m in masks.items())

    held = copy.deepcopy(start)
    rec = distill(held, teacher, opts(folders[0], epochs=2), PRE, masks=masks)
    assert rec.masked_layers == 2
    for name, keep in masks.items():
        w0, w = start.get_parameter(name), held.get_parameter(name)
        assert torch.all(w[~keep] == 0), name
        assert (w[keep] != w0[keep]).float().mean() > 0.9, name  # the kept weights did train
    assert masks_of(held).keys() == masks.keys()

    # Without the masks the same run revives the zeros: holding them is the masks' doing.
    free = copy.deepcopy(start)
    distill(free, teacher, opts(folders[0], epochs=2), PRE)
    assert (free[0].weight[~masks["0.weight"]] != 0).any()

    with pytest.raises(ValueError, match="not a parameter"):
        distill(copy.deepcopy(start), teacher, opts(folders[0], epochs=1), PRE,
                masks={"nope.weight": masks["0.weight"]})


def test_labels_are_never_read(folders, teacher, tmp_path):
    # The same files under other class folders: other names, another count, images moved between them.
    relabelled = tmp_path / "relabelled"
    rng = random.Random(3)
    for path in sorted(folders[0].rglob("*.png")):
        dst = relabelled / f"class_{rng.randrange(3)}"
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dst / path.name)
    start = perturbed(teacher)
    a, b = copy.deepcopy(start), copy.deepcopy(start)
    ra = distill(a, teacher, opts(folders[0], epochs=2), PRE, device="cpu")
    rb = distill(b, teacher, opts(relabelled, epochs=2), PRE, device="cpu")
    assert same_state(a, b)
    assert ra.loss_last_epoch == rb.loss_last_epoch and ra.images == rb.images


def test_unreadable_files_are_skipped_and_counted(folders, teacher, tmp_path):
    root = trained.write_image_folder(tmp_path / "mixed", per_class=3, seed=2)
    real = next((root / "disc").iterdir()).read_bytes()
    (root / "disc" / "garbage.png").write_bytes(b"not an image at all")
    (root / "outline" / "truncated.png").write_bytes(real[: len(real) // 2])
    (root / "hstripes" / "notes.txt").write_text("not an image file")
    rec = distill(perturbed(teacher), teacher, opts(root, epochs=1, batch=4), PRE)
    assert (rec.images, rec.skipped) == (12, 3)

    broken = tmp_path / "broken"
    (broken / "a").mkdir(parents=True)
    for i in range(3):
        (broken / "a" / f"{i}.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DataError) as err:
        distill(perturbed(teacher), teacher, opts(broken, epochs=1), PRE)
    message = str(err.value)
    assert "\n" not in message and str(broken) in message and "no readable images" in message


def test_record_holds_json_numbers_and_progress_is_reported(folders, teacher):
    reporter = Recorder()
    # 9 images in batches of 4: 4 + 5, since a last batch of one image would break BatchNorm1d.
    rec = distill(perturbed(teacher), teacher, opts(folders[0], epochs=2, batch=4, images=9), PRE, reporter)
    assert isinstance(rec, DistillRecord)
    d = asdict(rec)
    assert json.loads(json.dumps(d)) == d
    kinds = {f.name: f.type for f in fields(DistillRecord)}
    for name, value in d.items():
        want = {"str": str, "int": int, "float": float}[kinds[name]]
        assert type(value) is want, (name, value)
    assert (rec.images, rec.skipped, rec.epochs, rec.batch, rec.seed) == (9, 0, 2, 4, 0)
    assert (rec.lr, rec.temperature, rec.masked_layers) == (0.01, 4.0, 0)
    assert rec.data == str(folders[0]) and rec.device in ("cpu", "cuda")
    assert rec.seconds > 0 and rec.images_per_s > 0
    assert rec.loss_first_epoch > 0 and rec.loss_last_epoch > 0

    assert reporter.tasks == ["distill"]
    training = [u for u in reporter.updates if u[2].startswith("distill epoch")]
    assert [u[:2] for u in training] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert training[-1][2].startswith("distill epoch 2/2: loss ")
    assert len(reporter.lines) == 1 and "2 epochs on 9 images" in reporter.lines[0]


def test_zero_epochs_and_a_failed_run(folders, teacher):
    with pytest.raises(ValueError, match="epochs"):
        distill(perturbed(teacher), teacher, opts(folders[0], epochs=0), PRE)
    # A teacher with other outputs fails the first step; the student still comes back in eval mode.
    other = tiny_cnn(1)
    other[12] = nn.Linear(32, 5)
    student = perturbed(teacher)
    with pytest.raises(ValueError, match="teacher"):
        distill(student, other, opts(folders[0], epochs=1), PRE)
    assert not student.training
