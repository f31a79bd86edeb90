"""TorchScript artifacts are self-contained: they load and run with plain torch, without shrinkwrap."""

from __future__ import annotations

import subprocess
import sys


def test_torchscript_loads_in_a_clean_process(exported):
    code = ("import sys, torch; torch.backends.quantized.engine='fbgemm'; "
            "assert not any(m.split('.')[0] in ('exporter','runtimes') for m in sys.modules); "
            "m = torch.jit.load(sys.argv[1]); y = m(torch.randn(3, 3, 64, 64)); print(tuple(y.shape))")
    for v in ("fp32", "int8", "fp16", "mixed"):
        out = subprocess.run([sys.executable, "-c", code, str(exported / f"{v}.pt")], capture_output=True,
                             text=True, cwd="/", timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "(3, 1000)"
