"""Moving handwritten digits, Moving-MNIST style, made offline from scikit-learn's digits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import torch
from torch import Tensor
from torch.nn import functional as F

from .cell import _positive_int

__all__ = ["make_moving_digits"]

_OWNER = "make_moving_digits"
# scikit-learn's 1,797 digits, split once so that held-out movies show unseen handwriting.
_SPLITS = {"train": slice(0, 1200), "test": slice(1200, None), "all": slice(None)}


@cache
def _digit_images() -> Tensor:
    """The 8x8 digit images of :func:`sklearn.datasets.load_digits`, scaled to [0, 1]."""
    from sklearn.datasets import load_digits  # shipped inside the package: no download

    images = load_digits().images  # (1797, 8, 8), values 0..16
    return torch.as_tensor(images, dtype=torch.float32) / 16.0


def _bounce(position: Tensor, velocity: Tensor, limit: float) -> tuple[Tensor, Tensor]:
    """Reflect positions that left [0, limit] back inside, flipping their velocity."""
    low, high = position < 0, position > limit
    position = torch.where(low, -position, torch.where(high, 2 * limit - position, position))
    velocity = torch.where(low | high, -velocity, velocity)
    return position.clamp(0, limit), velocity


def make_moving_digits(
    n: int = 100,
    *,
    length: int = 20,
    size: int = 32,
    num_digits: int = 2,
    scale: int = 2,
    speed: tuple[float, float] = (1.0, 3.0),
    split: str = "all",
    seed: int = 0,
) -> Tensor:
    r"""Movies of handwritten digits bouncing inside the frame, like Moving MNIST.

    Each movie shows ``num_digits`` digits drawn from scikit-learn's 8x8 handwritten digits
    (:func:`sklearn.datasets.load_digits`, which ships inside the package), enlarged
    ``scale`` times with bilinear interpolation. Every digit starts at a random position and
    moves in a straight line in a random direction at a random speed, bouncing off the edges of
    the frame; overlapping digits combine by their maximum, as in Moving MNIST (Srivastava et
    al., 2015). Same arguments, same movies.

    Args:
        n: The number of movies. Default: ``100``
        length: The number of frames per movie. Default: ``20``
        size: The side of the square frame, in pixels. Default: ``32``
        num_digits: The number of digits in every movie. Default: ``2``
        scale: The enlargement of the 8x8 digits (a digit is ``8 * scale`` pixels wide).
            Default: ``2``
        speed: The range ``(low, high)`` of speeds, in pixels per frame, drawn uniformly.
            Default: ``(1.0, 3.0)``
        split: Which digit images to draw from: ``"train"`` (the first 1,200), ``"test"`` (the
            other 597) or ``"all"``. Movies of the two splits never share a handwritten digit.
            Default: ``"all"``
        seed: The seed of the random positions, directions, speeds and digits. Default: ``0``

    Returns:
        A float tensor of shape :math:`(n, T, 1, H, W)` with :math:`T` = ``length`` and
        :math:`H = W` = ``size``, values in :math:`[0, 1]`.

    Examples::

        >>> movies = make_moving_digits(4, length=10, size=32, seed=0)
        >>> movies.shape
        torch.Size([4, 10, 1, 32, 32])
        >>> torch.equal(movies, make_moving_digits(4, length=10, size=32, seed=0))
        True
    """
    n = _positive_int(n, "n", _OWNER)
    length = _positive_int(length, "length", _OWNER)
    size = _positive_int(size, "size", _OWNER)
    num_digits = _positive_int(num_digits, "num_digits", _OWNER)
    scale = _positive_int(scale, "scale", _OWNER)
    if split not in _SPLITS:
        raise ValueError(f"{_OWNER}: expected split in {sorted(_SPLITS)}, got {split!r}")
    if not (isinstance(speed, Sequence) and len(speed) == 2):
        raise TypeError(f"{_OWNER}: expected speed to be a pair (low, high), got {speed!r}")
    low, high = float(speed[0]), float(speed[1])
    if not 0 <= low <= high:
        raise ValueError(f"{_OWNER}: expected speed with 0 <= low <= high, got {speed!r}")
    digit = 8 * scale
    if digit > size:
        raise ValueError(
            f"{_OWNER}: expected size >= 8 * scale = {digit} so a digit fits, got size={size}"
        )

    generator = torch.Generator().manual_seed(seed)
    pool = _digit_images()[_SPLITS[split]]  # (N, 8, 8)
    choice = torch.randint(len(pool), (n * num_digits,), generator=generator)
    glyphs = F.interpolate(
        pool[choice].unsqueeze(1), scale_factor=scale, mode="bilinear", align_corners=False
    )  # (n * num_digits, 1, digit, digit)
    glyphs = glyphs.squeeze(1).clamp(0, 1).view(n, num_digits, digit, digit)

    limit = float(size - digit)
    position = torch.rand(n, num_digits, 2, generator=generator) * limit  # (n, digits, (y, x))
    angle = torch.rand(n, num_digits, generator=generator) * 2 * math.pi
    speeds = low + (high - low) * torch.rand(n, num_digits, generator=generator)
    velocity = torch.stack([angle.sin(), angle.cos()], dim=-1) * speeds.unsqueeze(-1)
    corners = []
    for _ in range(length):
        corners.append(position.round().long())
        position, velocity = _bounce(position + velocity, velocity, limit)
    corners = torch.stack(corners, dim=2)  # (n, digits, T, (y, x))

    movies = torch.zeros(n, length, 1, size, size)
    for i in range(n):
        for d in range(num_digits):
            for t in range(length):
                y, x = corners[i, d, t].tolist()
                window = movies[i, t, 0, y : y + digit, x : x + digit]
                torch.maximum(window, glyphs[i, d], out=window)
    return movies
