"""Shared fixtures: one small real export per test session, reused by many tests.

Small inputs (64x64) keep every stage fast on a 2-core CPU while running the same
code paths as 224x224.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

# Before torch loads: on a busy machine (a shared CI runner) OpenMP threads sleep instead of spinning, as the
# CLI's do (runtimes/openmp.py). Spinning made the OBS tests ~7× slower with one core busy. Unlike the CLI's, the
# suite's bench cells wait passively too (it becomes the suite's own setting): the tests check what cells
# record, not how fast a deployment is.
from runtimes import openmp  # noqa: E402

if openmp.choose_wait_policy():
    os.environ.pop(openmp.CHOSEN)


def pytest_configure(config: pytest.Config) -> None:
    # Here, not in pyproject's filterwarnings: naming torch's warning class there imports torch before this
    # conftest could choose the wait policy.
    config.addinivalue_line("filterwarnings", "ignore::torch.jit.TracerWarning")


# Tests that read these session fixtures are in the slow tier (``make test-fast`` leaves them out; ``make test``
# and CI run everything): building them takes minutes on 2 cores.
SLOW_FIXTURES = frozenset({"exported", "exported_copy"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet-sample"
SMALL = ["--resize", "72", "--input-size", "64"]


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip(f"the shared ImageNet sample is absent ({SAMPLE})")
    return SAMPLE


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> dict[str, Path]:
    """The procedurally drawn shapes (tests/support/trained.py): 400 training and 200 validation images, drawn
    once per session for every test that trains or evaluates on them."""
    from tests.support import trained

    root = tmp_path_factory.mktemp("shapes")
    return {"train": trained.write_image_folder(root / "train", per_class=100, seed=0),
            "val": trained.write_image_folder(root / "val", per_class=50, seed=1)}


@pytest.fixture(scope="session")
def train_on_shapes(shapes, tmp_path_factory):
    """``train_on_shapes(arch, epochs=None, size=32) -> (checkpoint, stats)``: trained once per recipe."""
    from tests.support import trained

    cache = tmp_path_factory.mktemp("trained-models")

    def get(arch: str = "resnet18", epochs: int | None = None, size: int = trained.SIZE):
        return trained.cached_train(shapes["train"], cache, arch=arch, epochs=epochs, size=size)

    return get


@pytest.fixture(scope="session")
def ray_cluster():
    """A local two-node Ray cluster (tests/support/ray_cluster.py), started once for the session."""
    from tests.support.ray_cluster import start_two_node_cluster

    cluster = start_two_node_cluster()
    try:
        yield cluster
    finally:
        cluster.shutdown()


def run_cli(*args: str):
    from typer.testing import CliRunner

    from exporter.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """All registered export variants of an untrained resnet18 at 64x64, parity-checked.

    Magnitude pruning: the tests that read this run check files, formats, parity, bench and report, not how
    weights were chosen; OBS (reconstruction from synthetic inputs would be meaningless anyway) has its own
    tests and goes through ``export`` in tests/exporter/test_families.py."""
    out = tmp_path_factory.mktemp("run") / "run"
    res = run_cli("export", "--out", str(out), "--weights", "random", *SMALL, "--calib-images", "16",
                  "--parity-images", "8", "--prune-method", "magnitude",
                  "--variants", "fp32,fp32-pruned,int8,fp16,mixed,int8-dense,ort-quantize-static,fp32-slim,int8-slim")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture()
def exported_copy(exported, tmp_path) -> Path:
    """A private copy that a test may damage."""
    dst = tmp_path / "run"
    shutil.copytree(exported, dst)
    return dst
