"""Error lines a person can read: one line, at most MAX_ERROR_CHARS, what matters first."""

from __future__ import annotations

import dataclasses

import pytest

from exporter.cli.app import MAX_ERROR_CHARS, terminal_line
from exporter.parity_gate import require_parity
from runtimes.errors import ParityError
from tests.exporter.cli.test_cli import assert_one_line_error, invoke
from tests.support.runs import parity_result


def test_terminal_line_keeps_short_messages_and_cuts_long_ones():
    assert terminal_line("short") == "short"
    cut = terminal_line("x" * 1700)
    assert len(cut) == MAX_ERROR_CHARS and cut.endswith("…")


def test_a_parity_failure_is_one_short_line_naming_artifact_runtime_and_metric():
    """The issue's 1,700-character line: many failures, each with long violations."""
    failed = [dataclasses.replace(parity_result(f"int8-v{i}", "onnx", "ort-cpu", 8.2), passed=False, path=f"v{i}.onnx",
                                  violations=[f"v{i}.onnx (int8-v{i}, ort-cpu vs eager int8-v{i}): sqnr 8.20 dB < 25 dB",
                                              "quantization-noise rule refused: " + "long reason " * 40])
              for i in range(7)]
    with pytest.raises(ParityError) as info:
        require_parity(failed)
    msg = str(info.value)
    assert len(msg) <= MAX_ERROR_CHARS and "\n" not in msg, msg
    assert msg.startswith("parity failed for 7 artifact(s): v0.onnx (int8-v0) in ort-cpu: sqnr 8.20 dB < 25 dB")
    assert "+6 more" in msg and "parity.json" in msg


def test_an_unknown_model_is_a_short_line_with_the_closest_names():
    res = invoke("export", "--model", "resnet19", "--weights", "random")
    assert_one_line_error(res, contains="closest: resnet18")
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(line) <= len("error: ") + MAX_ERROR_CHARS and "`shrinkwrap models` lists all" in line
