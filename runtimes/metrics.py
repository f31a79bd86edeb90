"""Pure numeric metrics on numpy arrays; every result is a plain Python float.

Logits are compared row-wise: ``(N, C)`` arrays, one row per input. Shape
mismatches raise ``ValueError``; callers decide what that means for the user.
Everything is computed in float64 so that float32 round-off in the sums does
not blur differences in the last bits of the inputs.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty arrays")
    return a, b


def _rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _pair(a, b)
    if a.ndim != 2:
        raise ValueError(f"expected (N, C) logits, got shape {a.shape}")
    return a, b


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _pair(a, b)
    return float(np.max(np.abs(a - b)))


def max_rel_error(reference: np.ndarray, test: np.ndarray) -> float:
    """The largest absolute difference over the reference's own scale (its largest |value|).

    Unlike the absolute error it does not grow with the logits: two FP32 implementations of a network whose
    logits reach the hundreds differ by ~0.03 in absolute terms but by ~1e-4 of the scale. 0 when identical;
    inf when the reference is all zeros and the test is not.
    """
    ref, tst = _pair(reference, test)
    diff = float(np.max(np.abs(ref - tst)))
    scale = float(np.max(np.abs(ref)))
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0.0 else math.inf


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _pair(a, b)
    return float(np.mean(np.abs(a - b)))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the cosine between matching rows.

    A zero row has no direction: two zero rows count as identical (1.0), a zero
    row against a non-zero one as unrelated (0.0).
    """
    a, b = _rows(a, b)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    denom = np.where(na * nb == 0, 1.0, na * nb)
    cos = np.where(both_zero, 1.0, dot / denom)
    return float(np.mean(cos))


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio: 10·log10(Σref² / Σ(ref−test)²); inf when identical."""
    ref, tst = _pair(reference, test)
    noise = float(np.sum((ref - tst) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return float(10.0 * math.log10(signal / noise))


def output_variation(logits: np.ndarray) -> float:
    """How much outputs vary with the input: the mean over classes of the standard deviation
    across inputs, relative to the mean absolute output. 0 when every input gives the same
    logits (a degenerate model); about 1 for a healthy one. Needs at least two rows."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, C) logits, got shape {x.shape}")
    scale = float(np.mean(np.abs(x)))
    spread = float(np.mean(np.std(x, axis=0)))
    if scale == 0.0:
        return 0.0
    return spread / scale


def top1_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    """Fraction of rows whose argmax is the same."""
    ref, tst = _rows(reference, test)
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(tst, axis=1)))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def kl_divergence(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean over rows of KL(softmax(reference) || softmax(test)), in nats: how much of the reference's output
    distribution the test loses. 0 for equal logits; it weighs the classes the reference believes in, so it
    sees a drift that flips no argmax and ignores noise in logits of classes both models rule out."""
    ref, tst = _rows(reference, test)
    lr, lt = _log_softmax(ref), _log_softmax(tst)
    return float(np.mean(np.sum(np.exp(lr) * (lr - lt), axis=1)))


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    # Stable sort on the negated values: ties resolve to the lower class index,
    # the same in reference and test.
    return np.argsort(-x, axis=1, kind="stable")[:, :k]


def topk_overlap(reference: np.ndarray, test: np.ndarray, k: int = 5) -> float:
    """Mean over rows of |top-k(ref) ∩ top-k(test)| / k."""
    ref, tst = _rows(reference, test)
    if not 1 <= k <= ref.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the number of classes ({ref.shape[1]})")
    tr, tt = _topk(ref, k), _topk(tst, k)
    shared = [len(set(r.tolist()) & set(t.tolist())) for r, t in zip(tr, tt)]
    return float(np.mean(shared) / k)


def topk_correct(logits: np.ndarray, labels: np.ndarray, ks: Iterable[int] = (1, 5)) -> dict[int, int]:
    """How many images have their label among the top k logits, for each k: {1: 712, 5: 901}.

    Counts, not percentages, so that shards of one evaluation merge exactly: the union's accuracy is
    :func:`percent` of the summed counts, the same number the serial evaluation computes.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"need (N, C) logits and (N,) labels, got {logits.shape} and {labels.shape}")
    if logits.shape[0] == 0:
        raise ValueError("empty arrays")
    n_classes = logits.shape[1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes})")
    out: dict[int, int] = {}
    for k in ks:
        if not 1 <= k <= n_classes:
            raise ValueError(f"k={k} must be between 1 and the number of classes ({n_classes})")
        out[int(k)] = int(np.count_nonzero(np.any(_topk(logits.astype(np.float64), k) == labels[:, None], axis=1)))
    return out


def percent(correct: int, total: int) -> float:
    """``correct`` of ``total`` in percent (the one formula serial and merged evaluations share)."""
    if total <= 0:
        raise ValueError("no images")
    return float(100.0 * correct / total)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in percent for each k: {1: 71.2, 5: 90.1}."""
    counts = topk_correct(logits, labels, ks)
    return {k: percent(c, len(labels)) for k, c in counts.items()}


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """median, p90, p99, mean, std (population), min, max of per-iteration times in ms."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError("need a non-empty 1-D sequence of times")
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("times must be finite and non-negative")
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return {
        "median": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(np.mean(t)),
        "std": float(np.std(t)),
        "min": float(np.min(t)),
        "max": float(np.max(t)),
    }


def throughput(batch: int, median_ms: float) -> float:
    """Images per second for ``batch`` images taking ``median_ms``."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not median_ms > 0:
        raise ValueError(f"median_ms must be > 0, got {median_ms}")
    return float(batch * 1000.0 / median_ms)
