"""The OpenMP wait policy: chosen only on a busy machine, never over the user's, and never for bench cells."""

from __future__ import annotations

import os
import subprocess
import sys

from runtimes import openmp


def _choose(env: dict[str, str], busy: bool) -> dict[str, str]:
    """Run choose_wait_policy in a fresh interpreter (torch not loaded), with or without a process that keeps a
    core busy during its window; return its environment afterwards."""
    code = ("import json, os; from runtimes import openmp; openmp.choose_wait_policy(window_s=0.5); "
            "print(json.dumps({k: os.environ.get(k) for k in (openmp.WAIT_POLICY, openmp.CHOSEN)}))")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if hog is not None:
            import time

            time.sleep(0.3)  # the hog is running before the window opens
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def _env_without_policy() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (openmp.WAIT_POLICY, openmp.CHOSEN)}


def test_a_busy_machine_gets_passive_waits_and_a_users_setting_wins():
    busy = _choose(_env_without_policy(), busy=True)
    assert busy[openmp.WAIT_POLICY] == "PASSIVE" and float(busy[openmp.CHOSEN]) >= openmp.BUSY_CORES
    users = _choose({**_env_without_policy(), openmp.WAIT_POLICY: "ACTIVE"}, busy=True)
    assert users == {openmp.WAIT_POLICY: "ACTIVE", openmp.CHOSEN: None}


def test_too_late_once_torch_is_loaded(monkeypatch):
    import torch  # noqa: F401  (libgomp has read its environment)

    monkeypatch.delenv(openmp.WAIT_POLICY, raising=False)
    assert openmp.choose_wait_policy(window_s=0.0) is None and openmp.WAIT_POLICY not in os.environ


def test_cells_get_the_users_environment_back():
    chosen = {"PATH": "/bin", openmp.WAIT_POLICY: "PASSIVE", openmp.CHOSEN: "1.00"}
    assert openmp.cell_environment(chosen) == {"PATH": "/bin"}
    users = {"PATH": "/bin", openmp.WAIT_POLICY: "PASSIVE"}
    assert openmp.cell_environment(users) == users


def test_the_note_says_what_was_chosen(monkeypatch):
    monkeypatch.delenv(openmp.CHOSEN, raising=False)
    assert openmp.chosen_note() is None
    monkeypatch.setenv(openmp.CHOSEN, "1.02")
    assert "other processes used 1.02 cores" in openmp.chosen_note()


def test_ort_sessions_stop_spinning_where_openmp_waits_passively(monkeypatch, tmp_path):
    from runtimes.ort import OrtCpu, _tiny_model

    def spinning() -> str:
        opts = OrtCpu(1)._new_session(_tiny_model(), tmp_path / "probe.onnx").get_session_options()
        try:
            return opts.get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # ORT raises it for a key never set: its default, spinning
            return "default"

    monkeypatch.setenv(openmp.WAIT_POLICY, "ACTIVE")
    assert spinning() == "default"
    monkeypatch.setenv(openmp.WAIT_POLICY, "passive")
    assert spinning() == "0"
