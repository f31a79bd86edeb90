"""Sweep and sensitivity sections render from their typed records alone."""

from exporter.analysis.records import SensitivityReport, SweepReport
from exporter.report.analyses import sensitivity_figure, sensitivity_markdown, sweep_figures, sweep_markdown
from runtimes.records import from_jsonable

SENS = {"model": "resnet18", "eval_source": "images", "eval_images": 100, "sparsity": 0.5, "fp32_top1": 70.0,
        "baseline_sqnr_db": 40.0, "baseline_top1": 69.5, "seconds": 1.0,
        "layers": [{"layer": "fc", "params": 512000, "quant_sqnr_db": 20.5, "quant_top1": 65.0,
                    "quant_top1_drop": 4.5, "prune_sqnr_db": 9.1, "prune_top1": 60.0, "prune_top1_drop": 10.0},
                   {"layer": "conv1", "params": 9408, "quant_sqnr_db": 30.0, "quant_top1": 69.0,
                    "quant_top1_drop": 0.5, "prune_sqnr_db": 19.9, "prune_top1": 68.0, "prune_top1_drop": 2.0}]}


def _pt(variant, order, s, top1):
    return {"variant": variant, "order": order, "sparsity": s, "achieved_sparsity": s, "top1": top1,
            "top5": top1 + 10, "sqnr_db": 30 - 20 * s, "onnx_bytes": 11_800_000, "zstd_bytes": int(11e6 * (1 - s / 2)),
            "seconds": 1.0}


SWEEP = {"model": "resnet18", "eval_source": "images", "eval_images": 100, "fp32_top1": 70.0,
         "sparsities": [0.0, 0.9], "seconds": 3.0, "conclusions": ["int8: prune-then-quantize is better by 3.00"],
         "points": [_pt("int8", "quantize-then-prune", 0.0, 69.0), _pt("int8", "quantize-then-prune", 0.9, 10.0),
                    _pt("int8", "prune-then-quantize", 0.0, 69.0), _pt("int8", "prune-then-quantize", 0.9, 13.0),
                    _pt("fp32-pruned", None, 0.0, 70.0), _pt("fp32-pruned", None, 0.9, 12.0)]}


SENS = from_jsonable(SensitivityReport, SENS)
SWEEP = from_jsonable(SweepReport, SWEEP)


def test_sensitivity_markdown_and_figure(tmp_path):
    md = sensitivity_markdown(SENS, "figures/sensitivity.png")
    assert "| 1 | fc | 512,000 | 20.5 | 9.1 | +4.50 | +10.00 |" in md
    assert "![layer sensitivity](figures/sensitivity.png)" in md
    png = sensitivity_figure(SENS, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_markdown_and_figures(tmp_path):
    md = sweep_markdown(SWEEP, ["figures/sweep_accuracy.png"])
    assert "| int8 | - | prune-then-quantize | 90% | 0.900 | 13.00 | 23.00 |" in md
    assert "| fp32-pruned | - | - | 0% |" in md
    assert "int8: prune-then-quantize is better" in md
    paths = sweep_figures(SWEEP, tmp_path)
    assert [p.name for p in paths] == ["sweep_accuracy.png", "sweep_size.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
