"""The report's PyTorch 2 section: each variant's .pt2 against its TorchScript and INT8 .pt2 against .pt2 FP32, and
by how much a .pt2 is slower where it is."""

from __future__ import annotations

from tests.support.runs import base_cells, cell, write_run


def test_pt2_rows_compare_the_fastest_runtime_of_each_format(tmp_path):
    from exporter.report.context import load_context
    from exporter.report.pt2 import pt2_section

    cells = base_cells() + [
        cell("fp32", "torchscript", "libtorch-cpp", 17.0), cell("fp32", "pt2", "aoti", 9.0),
        cell("fp32", "pt2", "aoti-cpp", 8.0), cell("int8", "pt2", "aoti", 2.6), cell("int8", "pt2", "aoti-cpp", 2.55)]
    text = pt2_section(load_context(write_run(tmp_path / "run", cells=cells)))
    assert "## PyTorch 2 path: .pt2 against TorchScript" in text
    # FP32: aoti-cpp 8.0 against libtorch-cpp 17.0, the fastest of each format
    assert "| `fp32` | 1 | 17.00 (libtorch-cpp) | 8.00 (aoti-cpp) | 0.47× (faster) | — |" in text
    # INT8: 2.55 against TorchScript's 1.7, 50% slower, said in the row and in the closing sentence
    assert "| `int8` | 1 | 1.70 (torchscript) | 2.55 (aoti-cpp) | 1.50× (**50% slower**) | 0.32× (faster) |" in text
    assert "Where `.pt2` is slower than TorchScript beyond the noise: `int8` at batch 1: 1.50×" in text


def test_no_pt2_cells_no_section(tmp_path):
    from exporter.report.context import load_context
    from exporter.report.pt2 import pt2_section

    assert pt2_section(load_context(write_run(tmp_path / "run"))) == ""


def test_within_the_noise_is_not_called_slower(tmp_path):
    from exporter.report.context import load_context
    from exporter.report.pt2 import pt2_section

    cells = [cell("fp32", "torchscript", "torchscript", 10.0), cell("fp32", "pt2", "aoti", 10.3)]
    text = pt2_section(load_context(write_run(tmp_path / "run", cells=cells)))
    assert "1.03× (within the noise)" in text and "nowhere slower" in text
