"""How a bench cell's process is started: a fresh interpreter, or a fork of a preloaded one.

Every cell and interleaved comparison runs ``python -m MODULE ARGV`` in a process of its
own (so one runtime's thread pools, allocator state or crash cannot leak into the next
measurement) and prints its typed record as the last line of stdout. Starting that
process from scratch costs the interpreter plus ``import torch`` (and torchvision for
eager cells): 2-4 s on a 2-core machine, more than many cells take to measure.

:class:`PreloadedFork` keeps that isolation and drops the cost. One server process,
started once per sweep with the cells' environment (``OMP_NUM_THREADS`` included),
imports the modules the sweep's runtimes declare in ``preload`` and nothing else: it
runs no operator, so no thread pool, allocator pool or CUDA context exists in it. For
each cell it forks; the child becomes its own session (a timeout kills it and anything
it started, e.g. libtorch-cpp's binary), sends stdout and stderr to files, and runs the
module as ``__main__`` exactly as ``python -m`` would. The parent sees the same
(exit status, stdout, stderr) as from a fresh interpreter, so a crash, a hang or a bad
record reads the same either way. The ``multiprocessing`` forkserver does the same
with pickled callables; a cell here is a module and argv, which keeps the child's
entry point the one a user runs by hand.

:class:`FreshInterpreter` is the plain ``subprocess`` start: used when the sweep's
runtimes preload nothing, when ``fork`` is unavailable, and when the server has died.

    python -m runtimes.bench.launch MODULE ...   # the server: reads requests on stdin
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol


@dataclass(frozen=True)
class Finished:
    """What a cell process left: its exit status (negative: killed by that signal) and its output."""

    returncode: int
    stdout: str
    stderr: str


PRELOAD_TIMEOUT_S = 120.0


class TimedOut(Exception):
    """The cell process ran past its timeout and was killed with everything it started."""


class Launcher(Protocol):
    def run(self, module: str, argv: list[str], timeout_s: float) -> Finished: ...

    def close(self) -> None: ...


class FreshInterpreter:
    """``python -m module argv`` in a new interpreter, in its own session."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, module: str, argv: list[str], timeout_s: float) -> Finished:
        proc = subprocess.Popen([sys.executable, "-m", module, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=self.env,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.communicate()
            raise TimedOut(timeout_s) from None
        return Finished(proc.returncode, out, err)

    def close(self) -> None:
        pass


class ServerGone(RuntimeError):
    """The preloading server exited or stopped answering; the caller starts cells fresh instead."""


class PreloadedFork:
    """Cells forked from one server that has imported ``preload`` (see the module docstring)."""

    def __init__(self, env: dict[str, str], preload: tuple[str, ...]) -> None:
        self.preload = preload
        self._tmp = tempfile.TemporaryDirectory(prefix="shrinkwrap-cells-")
        self._n = 0
        self._proc = subprocess.Popen([sys.executable, "-m", __name__, *preload], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                      start_new_session=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)  # end of stream: the server is gone

    def _reply(self, timeout_s: float | None) -> dict:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            raise ServerGone(f"cell server exited with status {self._proc.wait()}")
        return json.loads(line)

    def run(self, module: str, argv: list[str], timeout_s: float) -> Finished:
        self._n += 1
        out, err = (Path(self._tmp.name) / f"{self._n}.{s}" for s in ("out", "err"))
        request = {"module": module, "argv": argv, "stdout": str(out), "stderr": str(err)}
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ServerGone(f"cell server is not reading requests: {exc}") from None
        # The server answers its first request once ``preload`` is imported (seconds, not minutes).
        try:
            pid = self._reply(max(timeout_s, PRELOAD_TIMEOUT_S))["pid"]
        except TimeoutError:
            raise ServerGone("cell server did not answer") from None
        try:
            status = self._reply(timeout_s)["returncode"]
        except TimeoutError:
            kill_group(pid)
            self._reply(None)  # the server reaps the killed child and says so
            raise TimedOut(timeout_s) from None
        return Finished(status, _read_text(out), _read_text(err))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self._proc.pid)
            self._proc.wait()
        self._tmp.cleanup()


@contextlib.contextmanager
def launcher(env: dict[str, str], preload: tuple[str, ...]) -> Iterator[Launcher]:
    """The launcher for one sweep: a preloaded fork server when there is something worth preloading."""
    if not preload or not hasattr(os, "fork"):
        yield FreshInterpreter(env)
        return
    server = PreloadedFork(env, preload)
    try:
        yield _FallBack(server, FreshInterpreter(env))
    finally:
        server.close()


class _FallBack:
    """The fork server while it lives; fresh interpreters once it has gone (said nowhere else,
    because the cell's result does not depend on how its process was started)."""

    def __init__(self, first: PreloadedFork, then: FreshInterpreter) -> None:
        self._first: PreloadedFork | None = first
        self._then = then

    def run(self, module: str, argv: list[str], timeout_s: float) -> Finished:
        if self._first is not None:
            try:
                return self._first.run(module, argv, timeout_s)
            except ServerGone:
                self._first = None
        return self._then.run(module, argv, timeout_s)

    def close(self) -> None:
        pass


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished between the timeout and the kill


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- the server

def _child(request: dict) -> None:
    """In the forked child: become a fresh ``python -m`` run of the requested module; never returns."""
    code = 1
    try:
        os.setsid()
        for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_CREAT),
                               (2, request["stderr"], os.O_WRONLY | os.O_CREAT)):
            target = os.open(path, mode, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.argv = [request["module"], *request["argv"]]
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - reported as a fresh interpreter would, on stderr
            traceback.print_exc()
            code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(preload: list[str]) -> int:
    for module in preload:
        with contextlib.suppress(ImportError):  # a runtime whose package is missing: its cells say so
            importlib.import_module(module)
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
