"""A stand-in for a bench cell's module, for the launcher's tests: ``python -m tests.support.cell_probe ...``.

    probe print TEXT          prints TEXT on stdout and "to stderr" on stderr, exits 0
    probe exit CODE           exits with CODE after printing to both streams
    probe raise               raises an uncaught ValueError
    probe state               prints what it found (env, modules, session, stdin), then changes env and modules
    probe hang PIDFILE        starts a grandchild that sleeps, writes its pid to PIDFILE, sleeps itself
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

def main(argv: list[str]) -> int:
    what = argv[0]
    print("to stderr", file=sys.stderr)
    if what == "print":
        print(argv[1])
    elif what == "exit":
        print("bye")
        return int(argv[1])
    elif what == "raise":
        raise ValueError("the probe failed")
    elif what == "state":
        found = {"pid": os.getpid(), "env": os.environ.get("PROBE_WAS_HERE"), "torch": "torch" in sys.modules,
                 "imported": "tests.support.onnx_edit" in sys.modules, "own_session": os.getsid(0) == os.getpid(),
                 "stdin": sys.stdin.read(), "threads_env": os.environ.get("OMP_NUM_THREADS")}
        os.environ["PROBE_WAS_HERE"] = "1"
        import tests.support.onnx_edit  # noqa: F401 - a module the next run must not find loaded
        print(json.dumps(found))
    elif what == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(argv[1], "w") as f:
            f.write(str(child.pid))
        time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
