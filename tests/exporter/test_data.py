from pathlib import Path

import pytest
import torch
from PIL import Image

from exporter.cli.options import preprocess_options
from exporter.data import load_image_folder, make_preprocess, synthetic_images
from exporter.options import PreprocessOptions
from exporter.errors import BadInputError, DataError
from runtimes.architectures import IMAGENET_PREPROCESS

PRE = make_preprocess(IMAGENET_PREPROCESS, PreprocessOptions(resize=40, input_size=32))


def _img(mode: str, color):
    return Image.new(mode, (48, 40), color)


@pytest.fixture()
def mixed_folder(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _img("RGB", (255, 0, 0)).save(root / "a" / "rgb.jpg")
    _img("L", 128).save(root / "a" / "gray.png")
    _img("CMYK", (0, 255, 0, 0)).save(root / "a" / "cmyk.jpg")
    _img("P", 3).save(root / "b" / "palette.png")
    _img("RGBA", (0, 0, 255, 100)).save(root / "b" / "alpha.png")
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    return root


def test_all_modes_become_rgb_and_bad_files_are_counted(mixed_folder):
    s = load_image_folder(mixed_folder, PRE)
    assert s.images.shape == (5, 3, 32, 32)
    assert s.labels.tolist() == [0, 0, 0, 1, 1]
    assert s.classes == ["a", "b"]
    assert s.skipped == 2
    assert any("corrupt.jpg" in f for f in s.skipped_files) and any("notes.txt" in f for f in s.skipped_files)
    # gray stays gray after conversion: the three channels hold the same value before normalization
    gray = s.images[1] * torch.tensor(PRE.std).view(3, 1, 1) + torch.tensor(PRE.mean).view(3, 1, 1)
    assert torch.allclose(gray[0], gray[1], atol=1e-6) and torch.allclose(gray[1], gray[2], atol=1e-6)


def test_deterministic_subset(mixed_folder):
    a = load_image_folder(mixed_folder, PRE, limit=3, seed=0)
    b = load_image_folder(mixed_folder, PRE, limit=3, seed=0)
    assert torch.equal(a.images, b.images) and len(a.images) <= 3


def test_missing_and_empty_dirs(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "missing", PRE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path / "empty", PRE)
    (tmp_path / "junk" / "c").mkdir(parents=True)
    (tmp_path / "junk" / "c" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="no readable images"):
        load_image_folder(tmp_path / "junk", PRE)


def test_more_classes_than_outputs(mixed_folder):
    with pytest.raises(DataError, match="2 class folders but the model has only 1 outputs"):
        load_image_folder(mixed_folder, PRE, num_classes=1)


def test_bad_preprocess_options():
    with pytest.raises(BadInputError, match="--mean"):
        preprocess_options(None, None, "0.1,0.2", None)
    with pytest.raises(BadInputError, match="--std values must be positive"):
        preprocess_options(None, None, None, "0.1,0,0.2")
    with pytest.raises(BadInputError, match="--resize must be positive"):
        preprocess_options(0, None, None, None)
    with pytest.raises(BadInputError, match="larger than --resize"):
        make_preprocess(IMAGENET_PREPROCESS, PreprocessOptions(resize=100, input_size=200))
    p = make_preprocess(IMAGENET_PREPROCESS, preprocess_options(None, None, "0.5,0.5,0.5", "0.25,0.25,0.25"))
    assert p.mean == (0.5, 0.5, 0.5) and p.std == (0.25, 0.25, 0.25)


def test_imagenet_sample_order_and_grayscale(sample_dir):
    s = load_image_folder(sample_dir, PRE, limit=40, seed=0)
    assert len(s.classes) == 1000 and s.classes[0] == "n01440764"
    assert s.images.shape[1:] == (3, 32, 32) and s.skipped == 0
    # labels index the sorted wnid folders
    first = sorted(p.name for p in sample_dir.iterdir())[s.labels[0]]
    assert first == s.classes[int(s.labels[0])]


def test_synthetic_images_are_deterministic():
    a, b = synthetic_images(4, PRE, seed=3), synthetic_images(4, PRE, seed=3)
    assert torch.equal(a, b) and a.shape == (4, 3, 32, 32)
    assert 0.5 < float(a.std()) < 2.0
