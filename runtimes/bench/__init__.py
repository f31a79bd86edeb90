"""The benchmark harness: the artifact × runtime × batch grid, one subprocess per cell, typed results.

    from runtimes.bench import BenchOptions, bench
    results = bench("artifacts/run", BenchOptions(runtimes=("ort-cpu",), batches=(1, 8)))

Importing :mod:`runtimes` does not import this subpackage (it needs zstandard and
py-cpuinfo, which a deployment does not).
"""
