"""Detection metrics of the router: ROC AUC, calibration (ECE, temperature) and false calls by group.

The router is a multi-label detector, and the forensic report prints its probabilities, so three
questions matter on faces it has never seen: does it rank retouched above untouched (AUC), are its
probabilities honest (ECE, fixed by one temperature; per router view by Platt scaling), and how often does it
accuse an untouched face of each type, in every demographic group (false-call rate at the shipped threshold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mofrr_core.metrics import per_type_thresholds


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative.

    Ties count one half (the Mann-Whitney U statistic). ``nan`` when either class is empty.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positive = np.asarray(positive, dtype=bool).ravel()
    if scores.shape != positive.shape:
        raise ValueError(f"scores and labels differ in length: {scores.shape} vs {positive.shape}")
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average rank of each run of equal scores (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def expected_calibration_error(probabilities: np.ndarray, positive: np.ndarray, bins: int = 15) -> float:
    """ECE: the |accuracy - confidence| gap of binary predictions, averaged over equal-width bins.

    Every entry of ``probabilities`` is one binary prediction (flatten a multi-label matrix to pool
    the types); the bins are over the probability of the positive class.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(positive, dtype=bool).ravel()
    if p.shape != y.shape:
        raise ValueError(f"probabilities and labels differ in length: {p.shape} vs {y.shape}")
    if p.size == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            gap += members.sum() * abs(y[members].mean() - p[members].mean())
    return float(gap / p.size)


def _nll(logits: np.ndarray, positive: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    # binary cross-entropy with logits, numerically stable
    return float(np.mean(np.maximum(z, 0) - z * positive + np.log1p(np.exp(-np.abs(z)))))


def fit_temperature(logits: np.ndarray, positive: np.ndarray, low: float = 0.05, high: float = 20.0,
                    iterations: int = 60) -> float:
    """The temperature ``T`` minimising the binary NLL of ``sigmoid(logits / T)`` (golden-section in log T).

    One scalar for all types keeps every decision at the 0.5 threshold unchanged (``logit > 0``)
    while making the printed probabilities honest. Fit it on validation data, never on test data.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(positive, dtype=np.float64).ravel()
    if z.shape != y.shape or z.size == 0:
        raise ValueError(f"need matching non-empty logits and labels, got {z.shape} and {y.shape}")
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = _nll(z, y, np.exp(c)), _nll(z, y, np.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = _nll(z, y, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = _nll(z, y, np.exp(d))
    return float(np.exp((a + b) / 2.0))


def fit_platt(logits: np.ndarray, positive: np.ndarray, low: float = 0.05, high: float = 20.0
              ) -> tuple[float, float]:
    """The scale ``a`` (in ``[low, high]``) and bias ``b`` minimising the binary NLL of ``sigmoid(a * logits + b)``
    (Platt scaling; Newton's method). Where a gate's logits are shifted as well as stretched (a router view that reads
    evidence its temperature was not fitted on), a temperature alone cannot make them honest; a positive scale keeps
    every ranking, and so every decision once its threshold is moved with it. Where the best scale lies outside the
    bounds (logits that rank the positives below the negatives, or separate them perfectly), the nearest bound with
    its best bias (the NLL is convex). Fit on validation data, never on test data."""
    z = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(positive, dtype=np.float64).ravel()
    if z.shape != y.shape or z.size == 0 or y.min() == y.max():
        raise ValueError(f"Platt scaling needs matching logits and labels with both classes, got {z.shape} and "
                         f"{y.shape}, {int(y.sum())} positive")
    features = np.stack([z, np.ones_like(z)], axis=1)
    scale, bias = _newton(features, y, np.array([1.0, 0.0]), free=2)
    if np.isfinite(scale) and low <= scale <= high:
        return float(scale), float(bias)
    scale = high if not np.isfinite(scale) or scale > high else low
    return float(scale), float(_newton(features, y, np.array([scale, 0.0]), free=1)[1])


def _newton(features: np.ndarray, y: np.ndarray, weights: np.ndarray, free: int, iterations: int = 100
            ) -> np.ndarray:
    """Logistic-regression ``weights`` by Newton's method with step halving, the last ``free`` of them moving."""
    moving = slice(len(weights) - free, None)

    def loss(w: np.ndarray) -> float:
        return _nll(features @ w, y, 1.0)

    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ weights, -500, 500)))
        gradient = features[:, moving].T @ (p - y) / len(y)
        hessian = (features[:, moving] * (p * (1 - p))[:, None]).T @ features[:, moving] / len(y)
        step, before = np.linalg.solve(hessian + 1e-9 * np.eye(free), gradient), loss(weights)
        for _ in range(40):  # halve the step until the loss does not grow
            trial = weights.copy()
            trial[moving] -= step
            if loss(trial) <= before:
                break
            step = step / 2
        weights = trial
        if np.abs(step).max() < 1e-10:
            break
    return weights


def detection_report(probabilities: np.ndarray, labels: np.ndarray, types: Sequence[str],
                     threshold: float | Sequence[float] = 0.5) -> dict[str, dict[str, float]]:
    """Per-type and ``any`` detection figures of ``[M, N]`` router probabilities against multi-hot labels.

    Per type: ``auc`` (faces with the type vs all faces without it), ``ece``, and ``false_calls``
    (the fraction of untouched faces, no type at all, on which the type is called at ``threshold``: one
    for all types, one per type, or one row per face).
    ``any``: retouched vs untouched ranked by the highest probability (``auc``), the fraction of
    untouched faces with any call (``false_calls``), and the ECE pooled over all types.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    if p.shape != y.shape or p.ndim != 2 or p.shape[1] != len(types):
        raise ValueError(f"expected [M, {len(types)}] probabilities and labels, got {p.shape} and {y.shape}")
    untouched, threshold = ~y.any(axis=1), per_type_thresholds(threshold, types)
    report: dict[str, dict[str, float]] = {}
    for i, name in enumerate(types):
        report[name] = {
            "auc": roc_auc(p[:, i], y[:, i]),
            "ece": expected_calibration_error(p[:, i], y[:, i]),
            "false_calls": float((p[:, i] > threshold[..., i])[untouched].mean()) if untouched.any() else float("nan"),
            "positives": float(y[:, i].sum()),
        }
    report["any"] = {
        "auc": roc_auc(p.max(axis=1), ~untouched),
        "ece": expected_calibration_error(p, y),
        "false_calls": float((p > threshold)[untouched].any(axis=1).mean()) if untouched.any() else float("nan"),
        "positives": float((~untouched).sum()),
        "untouched": float(untouched.sum()),
    }
    return report


def false_calls_by_group(probabilities: np.ndarray, labels: np.ndarray, groups: Sequence[str],
                         types: Sequence[str], threshold: float | Sequence[float] = 0.5
                         ) -> dict[str, dict[str, float]]:
    """``{group: {type: rate, "n": count}}``: false-call rates on the untouched faces of each group."""
    p, threshold = np.asarray(probabilities, dtype=np.float64), per_type_thresholds(threshold, types)
    untouched = ~(np.asarray(labels) > 0.5).any(axis=1)
    groups = np.asarray(list(groups), dtype=object)
    if len(groups) != len(p):
        raise ValueError(f"{len(groups)} group names for {len(p)} faces")
    result: dict[str, dict[str, float]] = {}
    for group in sorted(set(groups[untouched].tolist())):
        rows = untouched & (groups == group)
        entry = {name: float((p[:, i] > threshold[..., i])[rows].mean()) for i, name in enumerate(types)}
        entry["n"] = float(rows.sum())
        result[str(group)] = entry
    return result


def worst_group_rate(by_group: Mapping[str, Mapping[str, float]], types: Sequence[str]) -> tuple[float, str]:
    """The highest per-type false-call rate over all groups and the ``group/type`` it belongs to."""
    worst, where = 0.0, ""
    for group, entry in by_group.items():
        for name in types:
            if entry[name] > worst:
                worst, where = entry[name], f"{group}/{name}"
    return worst, where
