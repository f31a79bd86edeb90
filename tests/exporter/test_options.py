"""Option groups validate themselves once; the CLI's defaults are the records' defaults."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from exporter.cli.app import app
from exporter.export import ExportOptions
from exporter.options import (CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions, ParityOptions,
                              PreprocessOptions)
from exporter.pipeline import RunOptions
from exporter.variants import default_variants
from runtimes.bench.options import BenchOptions
from runtimes.errors import BadInputError


@pytest.mark.parametrize("make,match", [
    (lambda: CompressionOptions(sparsity=1.0), r"--sparsity must be in \[0, 1\)"),
    (lambda: CalibrationOptions(images=0), "--calib-images must be positive"),
    (lambda: CalibrationOptions(data=Path("/nonexistent")), "not found"),
    (lambda: EvalOptions(max_accuracy_drop=-1.0), "--max-accuracy-drop"),
    (lambda: EvalOptions(images=0), "--eval-images"),
    (lambda: PreprocessOptions(std=(1.0, 0.0, 1.0)), "--std values must be positive"),
    (lambda: ParityOptions(tolerance=("int8.bogus=1",)), "unknown metric"),
    (lambda: BenchOptions(runtimes=("tensorrt9",)), "unknown runtime 'tensorrt9'"),
    (lambda: BenchOptions(batches=(0,)), "batch sizes must be integers >= 1"),
    (lambda: BenchOptions(threads=0), "threads must be an integer >= 1"),
    (lambda: ExportOptions(variants=("int4",)), "unknown variant 'int4'"),
    (lambda: ExportOptions(model=ModelOptions("vgg99")), "unknown or unsupported model 'vgg99'"),
    (lambda: ExportOptions(model=ModelOptions("vit_b_16")), "has no INT8 quantization lane"),
])
def test_bad_values_are_refused_at_construction(make, match):
    with pytest.raises(BadInputError, match=match):
        make()


def test_defaults_are_derived_once():
    assert ExportOptions().variants == default_variants(with_peers=False)
    assert RunOptions().export.variants == default_variants(with_peers=True)
    assert EvalOptions().max_accuracy_drop == BenchOptions().max_accuracy_drop


def _cli_defaults(command: str) -> dict:
    cmd = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    return {n: p.default for n, p in inspect.signature(cmd.callback).parameters.items()}


@pytest.mark.parametrize("command", ["export", "run"])
def test_cli_defaults_are_the_records_defaults(command):
    d = _cli_defaults(command)
    assert d["sparsity"] == CompressionOptions.sparsity and d["prune_scope"] == CompressionOptions.scope
    assert d["calib_images"] == CalibrationOptions.images and d["weights"] == ModelOptions.weights
    assert d["max_accuracy_drop"] == EvalOptions.max_accuracy_drop == BenchOptions.max_accuracy_drop
    expected = RunOptions().export.variants if command == "run" else ExportOptions().variants
    assert tuple(d["variants_csv"].split(",")) == expected
    if command == "run":
        assert tuple(int(b) for b in d["batch"].split(",")) == BenchOptions.batches
        assert d["timeout"] == BenchOptions.timeout_s and d["min_iters"] == BenchOptions.min_iters


def test_target_native_is_resolved_once_to_this_machines_target():
    from runtimes import targets

    opts = CalibrationOptions(target=targets.NATIVE)
    assert opts.target == targets.native_target().name and opts.reduce_range is targets.native_target().reduce_range
    assert CalibrationOptions(target=targets.OLDER_X86).reduce_range is True
