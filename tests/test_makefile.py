"""``make run ARGS=...`` keeps the defaults ARGS does not override (read from ``make -n``: nothing runs)."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from tests.support.imports import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _run_command(tmp_path, *assignments: str) -> list[str]:
    out = subprocess.run(["make", "-n", "run", f"SAMPLE={tmp_path}", *assignments], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    (line,) = [ln for ln in out.splitlines() if "/bin/shrinkwrap run " in ln]
    return shlex.split(line)


def test_args_add_to_the_defaults(tmp_path):
    argv = _run_command(tmp_path, "ARGS=--model mobilenet_v3_large")
    joined = " ".join(argv)
    assert f"--weights random --calib-data {tmp_path} --model mobilenet_v3_large" in joined


def test_args_override_what_they_name_because_the_last_value_wins(tmp_path):
    argv = _run_command(tmp_path, "ARGS=--weights ckpt.pt")
    weights = [argv[i + 1] for i, a in enumerate(argv) if a == "--weights"]
    assert weights == ["random", "ckpt.pt"] and "--calib-data" in argv  # ckpt.pt is the one typer keeps


def test_the_command_it_runs_is_said(tmp_path):
    out = subprocess.run(["make", "-n", "run", f"SAMPLE={tmp_path}", "ARGS=--model resnet50"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "make run: shrinkwrap run --out artifacts/run --force --weights random" in out and "--model resnet50" in out


def test_the_cli_keeps_the_last_value_of_a_repeated_option():
    """What lets ARGS override a default: typer keeps the last value (the error names the second model)."""
    from tests.exporter.cli.test_cli import assert_one_line_error, invoke

    assert_one_line_error(invoke("export", "--model", "resnet19", "--model", "resnet20", "--weights", "random"),
                          contains="'resnet20'")
