import math

import numpy as np
import pytest

from runtimes import metrics as M

REF = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]], dtype=np.float32)
TEST = np.array([[1.5, 2.0, 2.0], [0.0, -1.0, 4.0]], dtype=np.float32)


def test_abs_errors():
    # |diff| = [0.5, 0, 1, 0, 0, 0]
    assert M.max_abs_error(REF, TEST) == 1.0
    assert M.mean_abs_error(REF, TEST) == pytest.approx(1.5 / 6)
    assert isinstance(M.max_abs_error(REF, TEST), float)


def test_max_rel_error_scales_with_the_reference():
    # max |diff| = 1, max |ref| = 4
    assert M.max_rel_error(REF, TEST) == pytest.approx(0.25)
    assert M.max_rel_error(REF * 100, TEST * 100) == pytest.approx(0.25)  # same relative error at any scale
    assert M.max_abs_error(REF * 100, TEST * 100) == pytest.approx(100.0)
    assert M.max_rel_error(REF, REF) == 0.0
    z = np.zeros((1, 3))
    assert M.max_rel_error(z, z) == 0.0 and M.max_rel_error(z, np.ones((1, 3))) == math.inf


def test_cosine_mean_over_rows():
    # row 0: dot = 1.5 + 4 + 6 = 11.5, |a| = sqrt(14), |b| = sqrt(10.25); row 1: identical → 1
    row0 = 11.5 / (math.sqrt(14) * math.sqrt(10.25))
    assert M.cosine_similarity(REF, TEST) == pytest.approx((row0 + 1.0) / 2, abs=1e-12)
    assert M.cosine_similarity(REF, -REF) == pytest.approx(-1.0)


def test_cosine_zero_rows():
    z = np.zeros((1, 3))
    assert M.cosine_similarity(z, z) == 1.0
    assert M.cosine_similarity(z, np.ones((1, 3))) == 0.0


def test_sqnr():
    # signal = 1+4+9+0+1+16 = 31, noise = 0.25 + 1 = 1.25
    assert M.sqnr_db(REF, TEST) == pytest.approx(10 * math.log10(31 / 1.25))
    assert M.sqnr_db(REF, REF) == math.inf
    assert M.sqnr_db(REF, REF * 1.1) == pytest.approx(20.0)  # noise = 0.01 * signal


def test_kl_divergence():
    ref = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    assert M.kl_divergence(ref, ref) == pytest.approx(0.0, abs=1e-15)
    assert M.kl_divergence(ref, ref + 5.0) == pytest.approx(0.0, abs=1e-12)  # softmax ignores a shift per row
    p = np.exp(ref) / np.exp(ref).sum(1, keepdims=True)
    q_logits = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    q = np.exp(q_logits) / np.exp(q_logits).sum(1, keepdims=True)
    expected = np.mean([np.sum(p[0] * np.log(p[0] / q[0])), 0.0])
    assert M.kl_divergence(ref, q_logits) == pytest.approx(expected)
    assert M.kl_divergence(ref, q_logits) != pytest.approx(M.kl_divergence(q_logits, ref))  # not symmetric
    assert math.isfinite(M.kl_divergence(np.array([[1000.0, -1000.0]]), np.array([[-1000.0, 1000.0]])))
    with pytest.raises(ValueError):
        M.kl_divergence(ref, ref[:1])


def test_top1_and_topk():
    ref = np.array([[0.1, 0.9, 0.0, 0.5], [0.7, 0.2, 0.3, 0.1]])
    test = np.array([[0.9, 0.1, 0.0, 0.5], [0.7, 0.2, 0.3, 0.0]])
    assert M.top1_agreement(ref, test) == 0.5
    # top-2: row 0 {1,3} vs {0,3} → 1 shared; row 1 {0,2} vs {0,2} → 2 shared
    assert M.topk_overlap(ref, test, k=2) == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert M.topk_overlap(ref, test, k=4) == 1.0


def test_topk_accuracy_percent():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 0])
    acc = M.topk_accuracy(logits, labels, ks=(1, 2))
    assert acc == {1: 50.0, 2: 75.0}  # row 2's label 0 is third


def test_latency_stats_and_throughput():
    times = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = M.latency_stats(times)
    assert s["median"] == 3.0
    assert s["p90"] == pytest.approx(4 + 0.6 * 6)  # linear interpolation, numpy's default
    assert s["p99"] == pytest.approx(4 + 0.96 * 6)
    assert s["mean"] == 4.0
    assert s["std"] == pytest.approx(math.sqrt((9 + 4 + 1 + 0 + 36) / 5))
    assert (s["min"], s["max"]) == (1.0, 10.0)
    assert M.throughput(8, 4.0) == 2000.0


@pytest.mark.parametrize("call", [
    lambda: M.max_abs_error(np.zeros((2, 3)), np.zeros((3, 2))),
    lambda: M.cosine_similarity(np.zeros(3), np.zeros(3)),
    lambda: M.sqnr_db(np.zeros((1, 2)), np.zeros((1, 3))),
    lambda: M.topk_overlap(np.zeros((1, 3)), np.zeros((1, 3)), k=4),
    lambda: M.topk_accuracy(np.zeros((2, 3)), np.array([0])),
    lambda: M.topk_accuracy(np.zeros((1, 3)), np.array([3])),
    lambda: M.latency_stats([]),
    lambda: M.throughput(0, 1.0),
    lambda: M.throughput(1, 0.0),
])
def test_bad_shapes_and_values_raise(call):
    with pytest.raises(ValueError):
        call()
