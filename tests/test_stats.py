"""bootstrap_interval, and the per-movie scores it is fed: coverage, columns, errors."""

import pytest
import torch
from torch.nn import functional as F

from convlstm_lib import bootstrap_interval, frame_cross_entropy, frame_mse, frame_ssim


def test_the_interval_covers_the_true_mean_about_95_percent_of_the_time():
    generator = torch.Generator().manual_seed(0)
    trials, hits = 200, 0
    for trial in range(trials):
        sample = torch.randn(60, generator=generator).exp()  # skewed, true mean e^0.5
        mean, low, high = bootstrap_interval(sample, n_resamples=500, seed=trial)
        hits += bool(low <= torch.tensor(0.5).exp() <= high)
        assert low <= mean <= high
    assert 0.88 <= hits / trials <= 0.99


def test_columns_get_their_own_intervals_and_a_constant_column_a_point():
    generator = torch.Generator().manual_seed(1)
    scores = torch.stack([torch.randn(50, generator=generator), torch.full((50,), 3.0)], dim=1)
    mean, low, high = bootstrap_interval(scores)
    assert mean.shape == low.shape == high.shape == (2,)
    assert low[0] < mean[0] < high[0] and 0.2 < high[0] - low[0] < 1.0
    assert low[1] == mean[1] == high[1] == 3.0
    wide = bootstrap_interval(scores[:, 0], confidence=0.99)
    narrow = bootstrap_interval(scores[:, 0], confidence=0.5)
    assert wide.low < narrow.low < narrow.high < wide.high
    assert torch.equal(
        bootstrap_interval(scores, seed=4).low, bootstrap_interval(scores, seed=4).low
    )


@pytest.mark.parametrize(
    ("scores", "kwargs", "error", "match"),
    [
        ([1.0, 2.0], {}, TypeError, "expected scores to be a Tensor, got list"),
        (torch.ones(1), {}, ValueError, r"expected scores of shape \(N,\) or \(N, K\) with N >= 2, got \(1,\)"),
        (torch.ones(3, 2, 2), {}, ValueError, r"expected scores of shape .* got \(3, 2, 2\)"),
        (torch.ones(3), {"confidence": 1.0}, ValueError, r"expected confidence in \(0, 1\), got 1.0"),
    ],
)  # fmt: skip
def test_errors(scores, kwargs, error, match):
    with pytest.raises(error, match=f"^bootstrap_interval: {match}"):
        bootstrap_interval(scores, **kwargs)


def test_per_movie_scores_average_to_the_mean_scores():
    generator = torch.Generator().manual_seed(2)
    prediction = torch.rand(4, 3, 1, 16, 16, generator=generator)
    target = (torch.rand(4, 3, 1, 16, 16, generator=generator) > 0.8).float()
    for metric in (frame_mse, frame_ssim, frame_cross_entropy):
        per_movie = metric(prediction, target, reduction="none")
        assert per_movie.shape == (4, 3)
        torch.testing.assert_close(per_movie.mean(dim=0), metric(prediction, target))
        with pytest.raises(ValueError, match=f"^{metric.__name__}: expected reduction 'mean'"):
            metric(prediction, target, reduction="sum")
    assert frame_mse(prediction, target, reduction="none")[2, 1] == (
        (prediction[2, 1] - target[2, 1]).double().pow(2).mean()
    )


def test_cross_entropy_is_the_sum_over_a_frame_of_the_logit_loss():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 1, 8, 8, generator=generator, dtype=torch.float64)
    target = torch.rand(2, 5, 1, 8, 8, generator=generator, dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    torch.testing.assert_close(
        frame_cross_entropy(torch.sigmoid(logits), target, reduction="none"),
        expected.flatten(2).sum(dim=2),
    )
