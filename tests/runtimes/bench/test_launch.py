"""The cell launcher: a fork of the preloaded server reads exactly like a fresh interpreter."""

from __future__ import annotations

import json
import os
import time

import pytest

from runtimes.bench.launch import FreshInterpreter, PreloadedFork, TimedOut, launcher
from runtimes.bench.spawn import child_env as _child_env

PROBE = "tests.support.cell_probe"


@pytest.fixture(params=["fork", "fresh"])
def launch(request):
    env = _child_env(1)
    env.pop("PROBE_WAS_HERE", None)
    made = PreloadedFork(env, ("torch",)) if request.param == "fork" else FreshInterpreter(env)
    yield made
    made.close()


def test_output_and_exit_status_read_the_same_either_way(launch):
    done = launch.run(PROBE, ["print", "hello"], 60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello\n", "to stderr\n")
    assert launch.run(PROBE, ["exit", "70"], 60).returncode == 70
    raised = launch.run(PROBE, ["raise"], 60)
    assert raised.returncode == 1 and raised.stderr.strip().splitlines()[-1] == "ValueError: the probe failed"


def test_each_run_is_a_process_of_its_own_that_leaves_nothing_behind(launch):
    first, second = (json.loads(launch.run(PROBE, ["state"], 60).stdout) for _ in range(2))
    assert first["pid"] != second["pid"]
    for seen in (first, second):
        # What the first run changed (an environment variable, a module imported) is not there for the
        # second; each run is its own session (so a timeout can kill its group) with no stdin.
        assert seen["env"] is None and not seen["imported"] and seen["own_session"] and seen["stdin"] == ""
        assert seen["threads_env"] == "1"  # the sweep's thread setting reached the process
    assert first["torch"] is isinstance(launch, PreloadedFork)  # preloaded, not imported by the probe


def test_a_timeout_kills_the_process_and_what_it_started(launch, tmp_path):
    pidfile = tmp_path / "grandchild"
    started = time.perf_counter()
    with pytest.raises(TimedOut):
        launch.run(PROBE, ["hang", str(pidfile)], 8)
    assert time.perf_counter() - started < 60
    grandchild = int(pidfile.read_text())
    for _ in range(50):  # the kill is SIGKILL to the group; reaping by init can take a moment
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {grandchild} outlived the timeout")
    assert launch.run(PROBE, ["print", "after"], 60).stdout == "after\n"  # the launcher goes on


def test_a_dead_server_falls_back_to_fresh_interpreters():
    with launcher(_child_env(None), ("json",)) as launch:
        assert launch.run(PROBE, ["print", "one"], 60).stdout == "one\n"
        launch._first._proc.kill()
        launch._first._proc.wait()
        assert launch.run(PROBE, ["print", "two"], 60).stdout == "two\n"
        assert launch._first is None


def test_nothing_to_preload_means_fresh_interpreters():
    with launcher(_child_env(None), ()) as launch:
        assert isinstance(launch, FreshInterpreter)
