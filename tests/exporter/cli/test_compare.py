"""``shrinkwrap compare`` end to end on synthetic runs: exit codes, the one-line errors, JUnit XML, the summary."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

from tests.exporter.cli.test_cli import assert_one_line_error, invoke
from tests.support.runs import ENV, base_cells, slower_and_less_accurate, write_run


def test_identical_runs_pass(tmp_path):
    base, new = write_run(tmp_path / "base"), write_run(tmp_path / "new")
    res = invoke("compare", str(base), str(new), "--junit-xml", str(tmp_path / "c.xml"))
    assert res.exit_code == 0, res.output
    assert "no regression" in res.output
    suite = ET.parse(tmp_path / "c.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) > 0 and suite.get("failures") == "0"


def test_a_slower_less_accurate_int8_run_fails_with_exit_5_naming_the_cell(tmp_path):
    base = write_run(tmp_path / "base")
    new = write_run(tmp_path / "new", slower_and_less_accurate(base_cells()))
    res = invoke("compare", str(base), str(new), "--summary", str(tmp_path / "pr.md"),
                 "--junit-xml", str(tmp_path / "c.xml"))
    assert_one_line_error(res, 5, "3 regression(s)")
    error = next(ln for ln in res.output.splitlines() if ln.startswith("error:"))
    # one short line: the accuracy regression first, then how many more; every one is in the summary and JUnit
    assert "3 regression(s) against base: int8.onnx ort-cpu b1 top1 91.5 → 88.5 (-3.0 points, limit -0.5 points)" \
        in error and "+2 more" in error and len(error) <= len("error: ") + 200, error
    assert "| int8.onnx ort-cpu b1 | latency.median | 4 | 5.2 | +30.0% | +10% | ❌ regressed |" in \
        (tmp_path / "pr.md").read_text()
    summary = (tmp_path / "pr.md").read_text()
    assert "❌ **regression**" in summary
    assert "| int8.onnx ort-cpu b1 | top1 | 91.5 | 88.5 | -3.0 points | -0.5 points | ❌ regressed |" in summary
    root = ET.parse(tmp_path / "c.xml").getroot()
    failures = {(c.get("classname"), c.get("name")): c.find("failure").get("message")
                for c in root.iter("testcase") if c.find("failure") is not None}
    assert set(failures) == {("compare.int8.onnx.ort-cpu.b1", m) for m in ("latency.median", "latency.p90", "top1")}
    assert "4 → 5.2" in failures[("compare.int8.onnx.ort-cpu.b1", "latency.median")]
    assert root.find("testsuite").get("failures") == "3"


def test_json_output_and_looser_thresholds(tmp_path):
    base = write_run(tmp_path / "base")
    new = write_run(tmp_path / "new", slower_and_less_accurate(base_cells()))
    res = invoke("compare", str(base), str(new), "--max-slowdown", "40", "--max-accuracy-drop", "5", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{"):res.output.rindex("}") + 1])
    assert data["options"]["max_slowdown_pct"] == 40.0 and data["latency_gated"] is True
    assert {d["verdict"] for d in data["deltas"]} == {"ok"}


def test_another_machine_warns_first_and_gates_latency_only_when_asked(tmp_path):
    base = write_run(tmp_path / "base")
    other = dataclasses.replace(ENV, cpu_model="AMD EPYC 7B13")
    new = write_run(tmp_path / "new", slower_and_less_accurate(base_cells(), top1_drop=0.0), env=other)
    res = invoke("compare", str(base), str(new), "--summary", str(tmp_path / "pr.md"))
    assert res.exit_code == 0, res.output
    assert res.output.lstrip().startswith("warning: the runs come from different machines (CPU: Test CPU 9000 vs "
                                          "AMD EPYC 7B13); latency is not gated")
    assert "not gated" in res.output
    assert "Different machines" in (tmp_path / "pr.md").read_text()
    res = invoke("compare", str(base), str(new), "--same-machine-only", "false")
    assert_one_line_error(res, 5, "latency.median")
    assert_one_line_error(invoke("compare", str(base), str(new), "--same-machine-only", "maybe"), 2,
                          "--same-machine-only takes true or false")


def test_bad_inputs_are_one_line(tmp_path):
    base = write_run(tmp_path / "base")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("compare", str(base), str(tmp_path / "empty")), 3, "no results.json")
    assert_one_line_error(invoke("compare", str(base), str(write_run(tmp_path / "r50", model="resnet50"))), 2,
                          "different models (resnet18 vs resnet50)")
    newer = write_run(tmp_path / "newer", schema_version=7)
    assert_one_line_error(invoke("compare", str(base), str(newer)), 3, "schema_version 7 is newer")
    assert_one_line_error(invoke("compare", str(base), str(base), "--max-slowdown", "-5"), 2, "--max-slowdown")
