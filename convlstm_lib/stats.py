"""Intervals for the book's comparisons: the bootstrap over held-out sequences."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Interval", "bootstrap_interval"]


class Interval(NamedTuple):
    """A mean and its confidence interval, each of the shape of one row of the scores."""

    mean: Tensor
    low: Tensor
    high: Tensor


def bootstrap_interval(
    scores: Tensor, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    r"""The mean of per-sequence scores and its bootstrap confidence interval.

    The rows of ``scores`` are independent units (held-out movies), resampled with replacement
    by :func:`scipy.stats.bootstrap` (bias-corrected and accelerated percentiles, scipy's
    default); every column (a forecast step, a model's difference from another) gets its own
    interval. For a comparison of two models on the same sequences, bootstrap their per-sequence
    *difference*: the two intervals overlapping does not mean the difference is uncertain.

    Args:
        scores: tensor of shape :math:`(N,)` or :math:`(N, K)`, one row per sequence, at least
            two rows.
        confidence: The confidence level, in :math:`(0, 1)`. Default: ``0.95``
        n_resamples: The number of bootstrap resamples. Default: ``2000``
        seed: The seed of the resampling. Default: ``0``

    Returns:
        An :class:`Interval` ``(mean, low, high)`` of float64 tensors of shape :math:`()` or
        :math:`(K,)`.

    Examples::

        >>> scores = torch.linspace(0, 1, 101)
        >>> mean, low, high = bootstrap_interval(scores)
        >>> round(mean.item(), 2), bool(low < mean < high), bool(high - low < 0.15)
        (0.5, True, True)
    """
    from scipy.stats import bootstrap

    owner = "bootstrap_interval"
    if not isinstance(scores, Tensor):
        raise TypeError(f"{owner}: expected scores to be a Tensor, got {type(scores).__name__}")
    if scores.dim() not in (1, 2) or len(scores) < 2:
        raise ValueError(
            f"{owner}: expected scores of shape (N,) or (N, K) with N >= 2, "
            f"got {tuple(scores.shape)}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"{owner}: expected confidence in (0, 1), got {confidence}")
    values = scores.detach().double().cpu().numpy()
    flat = values.reshape(len(values), -1)  # (N, K)
    mean = flat.mean(axis=0)  # (K,)
    low, high = mean.copy(), mean.copy()
    # A column with one value throughout has no spread: its interval is the point itself (BCa
    # would divide by zero there).
    varying = (flat != flat[:1]).any(axis=0)
    if varying.any():
        result = bootstrap(
            (flat[:, varying],),
            lambda sample, axis: sample.mean(axis=axis),
            axis=0,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            rng=seed,
        )
        low[varying], high[varying] = result.confidence_interval
    shape = values.shape[1:]
    return Interval(*(torch.as_tensor(v).reshape(shape) for v in (mean, low, high)))
