"""make_moving_digits: shapes, values, determinism, the motion, the splits, errors."""

import pytest
import torch

from convlstm_lib import make_moving_digits
from convlstm_lib.digits import _digit_images


def test_shape_dtype_and_range():
    movies = make_moving_digits(3, length=7, size=40, num_digits=3, scale=3, seed=1)
    assert movies.shape == (3, 7, 1, 40, 40)
    assert movies.dtype == torch.float32
    assert movies.min() >= 0 and movies.max() <= 1
    assert (movies.flatten(2).amax(dim=2) > 0.5).all()  # every frame shows a digit


def test_same_seed_same_movies_other_seed_other_movies():
    a = make_moving_digits(4, length=5, seed=3)
    assert torch.equal(a, make_moving_digits(4, length=5, seed=3))
    assert not torch.equal(a, make_moving_digits(4, length=5, seed=4))


def test_a_still_digit_stays_put():
    movies = make_moving_digits(2, length=4, num_digits=1, speed=(0.0, 0.0), seed=0)
    assert torch.equal(movies, movies[:, :1].expand_as(movies))


def test_one_digit_moves_whole_and_at_its_speed():
    movies = make_moving_digits(20, length=12, size=32, num_digits=1, speed=(2.0, 2.0), seed=5)
    mass = movies.sum(dim=(2, 3, 4))  # (n, T): a digit never leaves the frame, even in part
    torch.testing.assert_close(mass, mass[:, :1].expand_as(mass))
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centre = torch.stack([(movies[:, :, 0] * g).sum(dim=(2, 3)) for g in (ys, xs)], -1)
    centre = centre / mass.unsqueeze(-1)  # (n, T, 2)
    step = (centre[:, 1:] - centre[:, :-1]).norm(dim=-1)
    # At most the speed, plus rounding to whole pixels; less only when bouncing.
    assert (step <= 2.0 + 2**0.5 + 1e-4).all()
    assert (step > 0).float().mean() > 0.9


def test_splits_draw_disjoint_handwriting():
    images = _digit_images()
    assert images.shape == (1797, 8, 8) and images.max() == 1.0
    for split in ("train", "test"):
        movies = make_moving_digits(2, length=1, size=8, num_digits=1, scale=1, split=split)
        for frame in movies[:, 0, 0]:
            matches = (images == frame).flatten(1).all(dim=1).nonzero().flatten()
            assert len(matches) >= 1
            assert (matches < 1200).all() if split == "train" else (matches >= 1200).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "expected n to be positive, got 0"),
        ({"length": 2.0}, TypeError, "expected length to be an int, got float"),
        ({"size": 15, "scale": 2}, ValueError, "expected size >= 8 \\* scale = 16"),
        ({"split": "val"}, ValueError, "expected split in \\['all', 'test', 'train'\\]"),
        ({"speed": (3.0, 1.0)}, ValueError, "expected speed with 0 <= low <= high"),
        ({"speed": 2.0}, TypeError, "expected speed to be a pair"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=f"^make_moving_digits: {match}"):
        make_moving_digits(**kwargs)
