"""Ranking metrics on probes (docs/metrics.md), to set offline metrics against online reward.

A probe request has ``C`` candidates; the agent scores them, and the world knows each
candidate's *relevance*: its true click probability when shown alone in the top slot. A
candidate is *relevant* when that probability is at least ``threshold`` (default 0.5: the user
is likelier to click it than not). Every metric is computed per request, vectorised over
requests, then averaged over the requests where it is defined.
"""

from __future__ import annotations

import math

import numpy as np

from driftrec.validation import check_integer, check_real

__all__ = ["RANKING_METRICS", "auc", "average_ranks", "ranking_metrics"]

RANKING_METRICS = ("auc", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k")
"""The keys of :func:`ranking_metrics`, in order."""


def _real_matrix(name: str, value: np.ndarray) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        hint = " (a diverged model scores NaN)" if name == "scores" else ""
        raise ValueError(
            f"{name} must be finite, got {array.size - int(finite.sum())} NaN or inf of "
            f"{array.size} values{hint}"
        )
    return array


def _binary(name: str, value: np.ndarray) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.number) or not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be booleans or 0 / 1")
        array = array.astype(bool)
    return array


def _tie_groups(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows already sorted (n, C): at each position, the first position of its run of equal
    values and the position after its last, ``(first, stop)`` (n, C) int each, without a loop
    over rows."""
    n, c = ordered.shape
    position = np.broadcast_to(np.arange(c), (n, c))
    starts = np.ones((n, c), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    stops = np.ones((n, c), dtype=bool)
    stops[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(stops, position, c - 1)[:, ::-1], axis=1)[:, ::-1]
    return first, last + 1


def average_ranks(x: np.ndarray) -> np.ndarray:
    """(n, C) 1-based ranks of each row of ``x`` (n, C) in ascending order, tied values
    sharing the average of their ranks (as ``scipy.stats.rankdata``), without a loop over rows.

    Example:
        >>> average_ranks(np.array([[0.5, 0.2, 0.5, 0.9]]))
        array([[2.5, 1. , 2.5, 4. ]])
    """
    order = np.argsort(x, axis=1, kind="stable")
    first, stop = _tie_groups(np.take_along_axis(x, order, axis=1))
    ranks = np.empty(x.shape)
    np.put_along_axis(ranks, order, (first + stop - 1) / 2 + 1, axis=1)
    return ranks


def _row_auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n,) Mann-Whitney AUC per row, ties 1/2; nan for rows without both classes."""
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    rank_sum = (average_ranks(scores) * labels).sum(axis=1)
    pairs = positives * negatives
    u = rank_sum - positives * (positives + 1) / 2
    return np.divide(u, pairs, out=np.full(len(u), math.nan), where=pairs > 0)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of one scored list: the probability that a random positive
    scores above a random negative, ties counting 1/2 (the Mann-Whitney U statistic over
    ``P * N`` pairs). Equals ``sklearn.metrics.roc_auc_score(labels, scores)``.

    Args:
        scores: (n,) finite scores.
        labels: (n,) booleans or 0 / 1.

    Returns:
        The AUC, or nan when one class is missing.

    Example:
        >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    scores = _real_matrix("scores", scores)
    labels = _binary("labels", labels)
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"scores and labels must be 1-d of one length, got {scores.shape}, {labels.shape}"
        )
    return float(_row_auc(scores[None], labels[None])[0])


def ranking_metrics(
    scores: np.ndarray, relevance: np.ndarray, k: int, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, precision@k, recall@k, F1@k and NDCG@k over ``n`` probe requests.

    The top-k of a request are its ``k`` highest-scoring candidates. Tied scores are broken
    uniformly at random; precision, recall and NDCG are their exact expectations over those
    tie-breaks (McSherry & Najork 2008), F1 follows from the first two: a tied group occupying
    ranked positions ``[a, b)`` counts each of its members in the top-k with probability
    ``|[a, b) & [0, k)| / (b - a)`` and gives each the mean of the discounts of positions
    ``[a, b)`` (0 past ``k``). A constant scorer thus scores as the average random scorer,
    whatever the candidates' order. Relevant means ``relevance >= threshold``. Per request
    ``r`` with ``hits_r`` the (expected) relevant items in the top-k and ``rel_r`` the relevant
    items among all ``C``:

    - ``precision_at_k``: ``hits_r / k``, mean over all requests;
    - ``recall_at_k``: ``hits_r / rel_r``, mean over the requests with ``rel_r >= 1``;
    - ``f1_at_k``: the harmonic mean of the two means above,
      ``2 P R / (P + R)`` (0 when both are 0), so it can be recomputed from the table; this is
      not the mean of per-request F1 scores;
    - ``ndcg_at_k``: graded, the gain of a candidate is its relevance (click probability):
      ``DCG = sum_{j<k} rel_(j) / log2(j + 2)`` over the top-k in ranked order (its expectation
      over tie-breaks), ``IDCG`` the same over the k largest relevances; ``DCG / IDCG``, mean
      over requests with ``IDCG > 0``;
    - ``auc``: :func:`auc` of all ``C`` candidates of a request (not only the top-k) against
      the relevant labels, mean over the requests with both classes.

    A metric defined on no request is nan.

    Args:
        scores: (n, C) finite agent scores.
        relevance: (n, C) finite, >= 0: each candidate's true click probability alone in the
            top slot.
        k: the slate size, ``1 <= k <= C``.
        threshold: relevance at or above which a candidate is relevant.

    Returns:
        ``{"auc", "precision_at_k", "recall_at_k", "f1_at_k", "ndcg_at_k"}`` as floats.
    """
    scores = _real_matrix("scores", scores)
    relevance = _real_matrix("relevance", relevance)
    if scores.ndim != 2 or relevance.shape != scores.shape or scores.size == 0:
        raise ValueError(
            f"scores and relevance must be non-empty (n, C) of one shape, got {scores.shape}, "
            f"{relevance.shape}"
        )
    if (relevance < 0).any():
        raise ValueError("relevance must be >= 0 (click probabilities)")
    k = check_integer("k", k, minimum=1, maximum=scores.shape[1])
    threshold = check_real("threshold", threshold)

    labels = relevance >= threshold
    order = np.argsort(-scores, axis=1, kind="stable")
    first, stop = _tie_groups(np.take_along_axis(scores, order, axis=1))
    size = stop - first
    # A member of the tied group at ranked positions [first, stop) holds each of them with
    # probability 1 / size under a random tie-break: it is in the top k with probability
    # |[first, stop) & [0, k)| / size, and its expected discount is the group's mean discount.
    in_top = np.clip(np.minimum(stop, k) - first, 0, None) / size
    discount = np.zeros(scores.shape[1])
    discount[:k] = 1.0 / np.log2(np.arange(k) + 2.0)
    cumulative = np.concatenate([[0.0], np.cumsum(discount)])
    mean_discount = (cumulative[stop] - cumulative[first]) / size
    hits = (np.take_along_axis(labels, order, axis=1) * in_top).sum(axis=1)
    relevant = labels.sum(axis=1)

    precision = float((hits / k).mean())
    has_relevant = relevant > 0
    recall = _mean(hits[has_relevant] / relevant[has_relevant])
    if math.isnan(recall):
        f1 = math.nan
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    dcg = (np.take_along_axis(relevance, order, axis=1) * mean_discount).sum(axis=1)
    idcg = -np.sort(-relevance, axis=1)[:, :k] @ discount[:k]
    ndcg = _mean(dcg[idcg > 0] / idcg[idcg > 0])

    both = has_relevant & (relevant < scores.shape[1])
    row_auc = _row_auc(scores[both], labels[both])
    return {
        "auc": _mean(row_auc),
        "precision_at_k": precision,
        "recall_at_k": recall,
        "f1_at_k": f1,
        "ndcg_at_k": ndcg,
    }


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else math.nan
