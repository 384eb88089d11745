"""make_moving_mnist, mnist_digits: shapes, the splits, determinism, bouncing, errors."""

import pytest
import torch

from convlstm_lib import make_moving_mnist, mnist_digits, nearest_distance


def test_shape_dtype_range_and_the_benchmark_defaults():
    movies = make_moving_mnist(3, seed=1)
    assert movies.shape == (3, 20, 1, 64, 64)
    assert movies.dtype == torch.float32
    assert movies.min() >= 0 and movies.max() <= 1
    assert (movies.flatten(2).amax(dim=2) > 0.5).all()  # every frame shows a digit


def test_splits_are_disjoint_stratified_and_complete():
    sizes = {"train": 3500, "val": 500, "test": 1000}
    split_images = {}
    for split, size in sizes.items():
        images, labels = mnist_digits(split)
        assert images.shape == (size, 28, 28)
        assert labels.bincount().tolist() == [size // 10] * 10
        split_images[split] = images
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        assert nearest_distance(split_images[a], split_images[b])[0].min() > 0


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_one_digit_movies_show_an_image_of_their_split_whole_in_every_frame(split):
    images = mnist_digits(split)[0]
    others = torch.cat([mnist_digits(s)[0] for s in ("train", "val", "test") if s != split])
    movies = make_moving_mnist(3, length=6, size=40, num_digits=1, split=split, seed=2)
    for movie in movies[:, :, 0]:
        for frame in movie:
            # The digit is whole in the frame: some 28 x 28 window holds all of its ink.
            windows = frame.unfold(0, 28, 1).unfold(1, 28, 1).reshape(-1, 28, 28)
            full = windows[torch.isclose(windows.sum(dim=(1, 2)), frame.sum())]
            assert len(full) >= 1
            assert nearest_distance(full, images)[0].min() == 0
            assert nearest_distance(full, others)[0].min() > 0


def test_digits_move_step_length_of_the_free_span_and_bounce():
    size, step = 64, 0.1
    movies = make_moving_mnist(20, length=30, num_digits=1, step_length=step, seed=5)
    mass = movies.sum(dim=(2, 3, 4))  # (n, T): a digit never leaves the frame, even in part
    torch.testing.assert_close(mass, mass[:, :1].expand_as(mass))
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    centre = torch.stack([(movies[:, :, 0] * g).sum(dim=(2, 3)) for g in (ys, xs)], -1)
    centre = centre / mass.unsqueeze(-1)  # (n, T, 2)
    moved = (centre[:, 1:] - centre[:, :-1]).abs()  # (n, T - 1, 2)
    speed = step * (size - 28)  # 3.6 pixels per frame along the direction
    # Truncation to whole pixels moves a coordinate by at most one pixel more or less.
    assert ((centre[:, 1:] - centre[:, :-1]).norm(dim=-1) <= speed + 2**0.5 + 1e-4).all()
    # Over 30 frames at 3.6 pixels a frame, most digits hit a wall: a coordinate turns round.
    turns = (torch.diff(centre, dim=1)[:, 1:] * torch.diff(centre, dim=1)[:, :-1] < 0).any(1)
    assert turns.any(dim=1).float().mean() > 0.8
    assert moved.sum(dim=-1).gt(0).float().mean() > 0.95
    still = make_moving_mnist(2, length=4, step_length=0.0, seed=0)
    assert torch.equal(still, still[:, :1].expand_as(still))


def test_same_seed_same_movies_other_seed_other_movies_global_state_untouched():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    a = make_moving_mnist(4, length=5, seed=3)
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a, make_moving_mnist(4, length=5, seed=3))
    assert not torch.equal(a, make_moving_mnist(4, length=5, seed=4))
    assert not torch.equal(a, make_moving_mnist(4, length=5, seed=3, split="test"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "expected n to be positive, got 0"),
        ({"length": 2.0}, TypeError, "expected length to be an int, got float"),
        ({"size": 27}, ValueError, "expected size >= 28 so a digit fits, got 27"),
        ({"split": "all"}, ValueError, r"expected split in \['train', 'val', 'test'\], got 'all'"),
        ({"step_length": 1.5}, ValueError, r"expected step_length in \[0, 1\], got 1.5"),
        ({"step_length": "0.1"}, TypeError, "expected step_length to be a float, got str"),
        ({"seed": None}, TypeError, "expected seed to be an int, got NoneType"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=f"^make_moving_mnist: {match}"):
        make_moving_mnist(**kwargs)


def test_mnist_digits_errors():
    with pytest.raises(ValueError, match=r"^mnist_digits: expected split in \['train'"):
        mnist_digits("validation")
