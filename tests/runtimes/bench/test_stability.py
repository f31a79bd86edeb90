"""Stability verdicts: pure functions over samples and CPU counters."""

from __future__ import annotations

import numpy as np

from runtimes.bench import stability as st


def test_quiet_samples_are_stable():
    rng = np.random.default_rng(0)
    times = 10.0 + rng.uniform(0, 0.4, 200)
    v = st.assess(times, cores=0.02)
    assert v.stable and v.reasons == [] and v.spread < 1.05 and v.floor < 1.05 and v.drift < 1.05


def test_each_kind_of_disturbance_is_named():
    base = np.full(40, 10.0)
    tail = base.copy()
    tail[::3] = 30.0  # a third of the runs slowed: the slow tail
    assert any("p90/median" in r for r in st.assess(tail, 0.0).reasons)
    drifted = np.concatenate([np.full(20, 10.0), np.full(20, 14.0)])  # the machine slowed half way
    v = st.assess(drifted, 0.0)
    assert not v.stable and any("drift" in r for r in v.reasons) and v.drift == 1.4
    floor = np.concatenate([np.full(5, 5.0), np.full(35, 10.0)])  # the median far above the fastest runs
    assert any("median/min" in r for r in st.assess(floor, 0.0).reasons)
    loaded = st.assess(base, cores=1.1)  # even runs, but another process used a core meanwhile
    assert not loaded.stable and loaded.reasons == ["other processes used 1.10 cores while it ran > 0.25"]


def test_better_prefers_stable_then_faster():
    stable, unstable = st.assess(np.full(20, 10.0), 0.0), st.assess(np.full(20, 10.0), 2.0)
    assert st.better(stable, 12.0, unstable, 9.0) and not st.better(unstable, 9.0, stable, 12.0)
    assert st.better(unstable, 9.0, unstable, 12.0)


def test_other_cores_counts_what_this_process_did_not_use():
    a = st.MachineSample(wall=0.0, busy_ticks=1000, own_ticks=100, loadavg=0.5)
    b = st.MachineSample(wall=2.0, busy_ticks=1000 + 3 * st._ticks_per_s(), own_ticks=100 + 2 * st._ticks_per_s(),
                         loadavg=0.6)
    assert abs(st.other_cores(a, b) - 0.5) < 1e-9  # 3 CPU-s busy in 2 s, 2 of them ours
    assert st.other_cores(a, st.MachineSample(2.0, None, None, None)) is None
    live = st.machine_sample()
    assert live.busy_ticks is not None and live.own_ticks is not None  # Linux CI
