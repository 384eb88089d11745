"""Intervals for the book's comparisons: the bootstrap over held-out sequences, and the block
bootstrap over overlapping start times of one time series."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Interval", "block_bootstrap_indices", "bootstrap_interval"]


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


def block_bootstrap_indices(
    n: int, *, block_length: int, n_resamples: int = 2000, seed: int = 0
) -> Tensor:
    r"""Resamples of :math:`n` dependent units (start times of one series) by circular blocks.

    Forecasts started five minutes apart share most of their frames, so their scores are not
    independent and the plain bootstrap's intervals would be too narrow. The circular moving
    block bootstrap (Politis and Romano, 1992) resamples runs of ``block_length`` consecutive
    units instead, wrapping around at the end, so that the dependence inside a block is kept:
    each resample joins :math:`\lceil n / \text{block_length} \rceil` blocks whose starts are
    drawn uniformly and keeps the first :math:`n` indices. ``block_length=1`` is the plain
    bootstrap. Apply the same rows to every model, and a difference between models is paired.

    Args:
        n: The number of units, at least 2.
        block_length: The length of a block, from 1 to ``n``.
        n_resamples: The number of resamples. Default: ``2000``
        seed: The seed of the resampling. Default: ``0``

    Returns:
        A long tensor of shape :math:`(\text{n_resamples}, n)`: row :math:`r` lists the units
        of resample :math:`r`.

    Examples::

        >>> rows = block_bootstrap_indices(10, block_length=3, n_resamples=4)
        >>> rows.shape
        torch.Size([4, 10])
        >>> bool(((rows[:, 1] - rows[:, 0]) % 10 == 1).all())  # a block is consecutive
        True
    """
    owner = "block_bootstrap_indices"
    for name, value in (("n", n), ("block_length", block_length), ("n_resamples", n_resamples)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
    if n < 2:
        raise ValueError(f"{owner}: expected n >= 2, got {n}")
    if not 1 <= block_length <= n:
        raise ValueError(f"{owner}: expected block_length from 1 to n={n}, got {block_length}")
    if n_resamples < 1:
        raise ValueError(f"{owner}: expected n_resamples >= 1, got {n_resamples}")
    generator = torch.Generator().manual_seed(seed)
    blocks = -(-n // block_length)
    starts = torch.randint(n, (n_resamples, blocks, 1), generator=generator)
    offsets = torch.arange(block_length)  # (block_length,)
    rows = (starts + offsets) % n  # (n_resamples, blocks, block_length)
    return rows.reshape(n_resamples, -1)[:, :n]
