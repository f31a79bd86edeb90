"""``parity --localize`` and ``--junit-xml`` on a real export: the damaged layer is named, the XML records it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from tests.exporter.cli.test_cli import assert_one_line_error, invoke
from tests.support.onnx_edit import scale_int8_weight

DAMAGED = "layer3.0.conv1"


def test_localize_names_the_damaged_layer_in_json_junit_and_the_error(exported_copy, tmp_path):
    scale_int8_weight(exported_copy, "int8.onnx", DAMAGED, 4.0)
    assert invoke("verify", str(exported_copy)).exit_code == 0  # re-signed: only parity can tell
    xml = tmp_path / "parity.xml"
    res = invoke("parity", str(exported_copy), "--localize", "--json", "--junit-xml", str(xml))  # bare flag
    assert_one_line_error(res, 4, f"first divergent layer: {DAMAGED}")
    records = json.loads(res.output[res.output.index("["):res.output.rindex("]") + 1])
    failed = [r for r in records if not r["passed"]]
    assert [(r["path"], r["runtime"]) for r in failed] == [("int8.onnx", "ort-cpu"), ("int8.onnx", "openvino")]
    assert failed[0]["first_divergent_layer"] == DAMAGED
    table = failed[0]["layers"]
    assert {"layer", "tensor", "sqnr_db", "cosine", "max_abs_error", "passed"} <= set(table[0])
    names = [row["layer"] for row in table]
    assert all(row["passed"] for row in table[:names.index(DAMAGED)])
    assert all(r["localization"] is None for r in records if r["passed"])  # "violating" only
    # the record is in parity.json too, typed
    recorded = json.loads((exported_copy / "parity.json").read_text())["results"]
    assert next(r for r in recorded if r["path"] == "int8.onnx")["first_divergent_layer"] == DAMAGED

    suite = ET.parse(xml).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len({c.get("classname") for c in cases}) == len(records)  # one class per artifact × runtime
    failures = {c.get("name"): c.find("failure").get("message") for c in cases
                if c.get("classname") == "parity.int8.onnx.ort-cpu" and c.find("failure") is not None}
    assert set(failures) >= {"cosine", "sqnr_db"}
    assert "tolerance >= 15 dB" in failures["sqnr_db"] and f"first divergent layer: {DAMAGED}" in failures["sqnr_db"]
    # the damaged file fails in every ONNX runtime it is checked in (ort-cpu and openvino): each failing case counts
    failed = [c for c in cases if c.find("failure") is not None]
    assert {c.get("classname") for c in failed} <= {"parity.int8.onnx.ort-cpu", "parity.int8.onnx.openvino"}
    assert int(suite.get("failures")) == len(failed) >= len(failures)


def test_junit_of_a_passing_run_and_bad_localize_values(exported_copy, tmp_path):
    res = invoke("parity", str(exported_copy), "--junit-xml", str(tmp_path / "p.xml"))
    assert res.exit_code == 0, res.output
    suite = ET.parse(tmp_path / "p.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 4 * 13
    # a peer row outside a tightened tolerance is reported, and fails the run only with --strict-peers
    res = invoke("parity", str(exported_copy), "--tolerance", "peer.sqnr=80")
    assert res.exit_code == 0 and "reported, not gated" in res.output, res.output
    assert_one_line_error(invoke("parity", str(exported_copy), "--tolerance", "peer.sqnr=80", "--strict-peers"), 4,
                          "ort-quantize-static")
    assert_one_line_error(invoke("parity", str(exported_copy), "--localize", "some"), 2,
                          "--localize (violating artifacts) and --localize-all (every artifact) take no value")


def test_localize_spellings():
    """The bare flag means the violating artifacts; the older ``--localize violating|all`` still works."""
    from exporter.cli.options import localize_which

    assert localize_which(True, False, []) == "violating"
    assert localize_which(False, True, []) == "all"
    assert localize_which(False, False, []) is None
    assert localize_which(True, False, ["all"]) == "all"
    assert localize_which(True, False, ["violating"]) == "violating"
