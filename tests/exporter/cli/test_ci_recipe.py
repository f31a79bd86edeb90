"""The CI recipe: the workflow YAML is valid, runs the five steps, and every shrinkwrap command in it parses."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from exporter.cli import app
from tests.exporter.cli.test_cli import invoke
from tests.support.runs import write_run

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / "docs" / "shrinkwrap-workflow.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _commands() -> list[list[str]]:
    """Every ``shrinkwrap ...`` line of every ``run:`` step, its $VARS replaced by the workflow's env."""
    wf = _workflow()
    env = wf.get("env", {})
    out = []
    for step in wf["jobs"]["shrinkwrap"]["steps"]:
        for line in step.get("run", "").splitlines():
            line = line.strip()
            if line.startswith("shrinkwrap "):
                line = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), line)
                out.append(shlex.split(line)[1:])
    return out


def test_the_workflow_is_valid_github_actions_yaml():
    wf = _workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"pull_request", "push"} <= set(triggers)
    job = wf["jobs"]["shrinkwrap"]
    assert job["runs-on"] and job["steps"]
    for step in job["steps"]:
        assert ("run" in step) != ("uses" in step), step  # each step runs a command or uses an action
    assert ROOT.joinpath("docs", "ci.md").read_text().count("shrinkwrap-workflow.yml") >= 1
    assert "docs/ci.md" in ROOT.joinpath("README.md").read_text()


def test_it_runs_export_verify_parity_bench_and_compare_in_that_order():
    names = [c[0] for c in _commands() if c[0] != "--version"]
    assert names == ["export", "verify", "parity", "bench", "compare"]
    parity = next(c for c in _commands() if c[0] == "parity")
    assert "--junit-xml" in parity and "--localize" in parity


@pytest.mark.parametrize("args", _commands(), ids=lambda a: a[0])
def test_every_command_parses(args):
    group = typer.main.get_command(app)
    if args == ["--version"]:
        return
    command = group.get_command(None, args[0])
    assert command is not None, args[0]
    command.make_context(args[0], list(args[1:]))  # raises on an unknown option or a bad value


def test_the_compare_step_runs_on_two_runs(tmp_path, monkeypatch):
    """The workflow's compare command, as written, on a stored baseline and a new run (synthetic records)."""
    args = next(c for c in _commands() if c[0] == "compare")
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / args[1])
    write_run(tmp_path / args[2])
    os.makedirs(tmp_path / "reports", exist_ok=True)
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reports" / "compare.md").is_file() and (tmp_path / "reports" / "compare.xml").is_file()
