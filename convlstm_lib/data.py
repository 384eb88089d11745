"""Diagonal-beam movies, the toy data of the post, and the next-frame dataset built from them."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from .cell import _positive_int

__all__ = ["make_beam_movies", "next_frame_dataset", "next_frame_loader"]

_OWNER = "make_beam_movies"


def _check_movies(movies: object, owner: str) -> Tensor:
    """Raise a clear error unless ``movies`` is a 5-dim tensor with at least two frames."""
    if not isinstance(movies, Tensor):
        raise TypeError(f"{owner}: expected movies to be a Tensor, got {type(movies).__name__}")
    if movies.dim() != 5:
        raise ValueError(
            f"{owner}: expected movies with 5 dims (N, T, C, H, W), got {movies.dim()}"
        )
    if movies.shape[1] < 2:
        raise ValueError(
            f"{owner}: expected movies with at least 2 frames (T >= 2), got T={movies.shape[1]}"
        )
    return movies


def _hand_made_movie(length: int, size: int, beam_length: int) -> Tensor:
    """Movie 0: the identity matrix padded into the frame, rolled one pixel up and right a frame.

    Returns:
        A tensor of shape :math:`(T, 1, H, W)` with ``T = length`` and ``H = W = size``.
    """
    # Centre the square the beam sweeps over its ``length`` frames, any odd pixel going to the
    # top and the right: for the post's sizes this is its nnf_pad(c(6, 12, 12, 6)).
    sweep = beam_length + length - 1
    margin = (size - sweep) // 2
    left, top = margin, size - margin - beam_length
    beam = F.pad(
        torch.eye(beam_length), (left, size - left - beam_length, top, size - top - beam_length)
    )  # (H, W)
    frames = [torch.roll(beam, shifts=(-t, t), dims=(0, 1)) for t in range(length)]
    return torch.stack(frames).unsqueeze(1)  # (T, 1, H, W)


def make_beam_movies(
    n: int = 100,
    *,
    length: int = 6,
    size: int = 24,
    beam_length: int = 6,
    translate: float = 0.5,
    seed: int = 0,
) -> Tensor:
    r"""Movies of a diagonal beam that moves one pixel up and one pixel right per frame.

    Movie 0 is made by hand, as in the post: a ``beam_length`` identity matrix padded into a
    ``size`` x ``size`` frame, then :func:`torch.roll` ed by :math:`(-t, +t)` pixels for frame
    :math:`t`. Its beam is placed so that it stays inside the frame for all ``length`` frames.
    Every other movie is movie 0 under one random translation drawn by
    :class:`torchvision.transforms.v2.RandomAffine` (``degrees=0``, up to ``translate`` of the
    frame size each way, nearest interpolation), the same for all its frames. The translation
    is a whole number of pixels, so every value stays exactly 0 or 1, and parts of the beam
    shifted out of the frame are lost, as in the post. Within every movie, a lit pixel
    :math:`(r, c)` of frame :math:`t` is lit at :math:`(r - 1, c + 1)` in frame :math:`t + 1`
    whenever that pixel is in the frame.

    The draws use their own random state, seeded by ``seed``: the same seed gives the same
    movies, and the global random state (:func:`torch.manual_seed`) is left as it was.

    Args:
        n: The number of movies :math:`N`. Default: ``100``
        length: The number of frames :math:`T` per movie, at least 2. Default: ``6``
        size: The height and width :math:`H = W` of every frame. Default: ``24``
        beam_length: The number of lit pixels of the beam; the beam's path over ``length``
            frames, ``beam_length + length - 1`` pixels on a side, must fit in the frame.
            Default: ``6``
        translate: The largest translation, as a fraction of the frame size, in each
            direction, in :math:`[0, 1]`. Default: ``0.5``
        seed: The seed of the random translations. Default: ``0``

    Returns:
        A float32 tensor of shape :math:`(N, T, 1, H, W)` with values 0 (dark) and 1 (lit).

    Examples::

        >>> movies = make_beam_movies(8, seed=1)
        >>> movies.shape
        torch.Size([8, 6, 1, 24, 24])
        >>> torch.equal(movies[:, 1:, :, :-1, 1:], movies[:, :-1, :, 1:, :-1])
        True
    """
    n = _positive_int(n, "n", _OWNER)
    length = _positive_int(length, "length", _OWNER)
    size = _positive_int(size, "size", _OWNER)
    beam_length = _positive_int(beam_length, "beam_length", _OWNER)
    if length < 2:
        raise ValueError(f"{_OWNER}: expected length of at least 2 frames, got {length}")
    if beam_length + length - 1 > size:
        raise ValueError(
            f"{_OWNER}: expected beam_length + length - 1 <= size so the beam stays in the "
            f"frame, got {beam_length} + {length} - 1 > {size}"
        )
    if isinstance(translate, bool) or not isinstance(translate, (int, float)):
        raise TypeError(
            f"{_OWNER}: expected translate to be a float, got {type(translate).__name__}"
        )
    if not 0.0 <= translate <= 1.0:
        raise ValueError(f"{_OWNER}: expected translate in [0, 1], got {translate}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{_OWNER}: expected seed to be an int, got {type(seed).__name__}")

    # The library's one use of torchvision, imported here so that the rest does not need it.
    from torchvision.transforms import v2

    movie = _hand_made_movie(length, size, beam_length)  # (T, 1, H, W)
    shift = v2.RandomAffine(
        degrees=0,
        translate=(float(translate), float(translate)),
        interpolation=v2.InterpolationMode.NEAREST,
    )
    # RandomAffine draws from the global generator; fork it so the caller's sequence of random
    # numbers is unchanged. One call on the (T, 1, H, W) stack draws one translation for all
    # its frames. The draws happen on the CPU whatever the default device.
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(seed)
        movies = [movie] + [shift(movie) for _ in range(n - 1)]
    return torch.stack(movies)  # (N, T, 1, H, W)


def next_frame_dataset(movies: Tensor) -> TensorDataset:
    r"""The next-frame task: every movie's first frames as the input, its last frame as the target.

    Args:
        movies: tensor of shape :math:`(N, T, C, H, W)`, :math:`T \ge 2`.

    Returns:
        A :class:`~torch.utils.data.TensorDataset` of :math:`N` pairs ``(inputs, target)``:
        ``inputs`` of shape :math:`(T - 1, C, H, W)` and ``target`` of shape :math:`(C, H, W)`.

    Examples::

        >>> dataset = next_frame_dataset(make_beam_movies(10))
        >>> inputs, target = dataset[0]
        >>> inputs.shape, target.shape
        (torch.Size([5, 1, 24, 24]), torch.Size([1, 24, 24]))
    """
    movies = _check_movies(movies, "next_frame_dataset")
    return TensorDataset(movies[:, :-1], movies[:, -1])  # (N, T - 1, C, H, W), (N, C, H, W)


def next_frame_loader(
    movies: Tensor, batch_size: int = 32, *, shuffle: bool = True, seed: int = 0
) -> DataLoader:
    r"""A :class:`~torch.utils.data.DataLoader` over :func:`next_frame_dataset` of ``movies``.

    Args:
        movies: tensor of shape :math:`(N, T, C, H, W)`, :math:`T \ge 2`.
        batch_size: The number of movies per batch :math:`B`. Default: ``32``
        shuffle: If ``True``, visit the movies in a new random order every epoch. Default: ``True``
        seed: The seed of the shuffling, kept apart from the global random state. Default: ``0``

    Returns:
        A loader of batches ``(inputs, target)``, of shapes :math:`(B, T - 1, C, H, W)` and
        :math:`(B, C, H, W)`.

    Examples::

        >>> loader = next_frame_loader(make_beam_movies(10), batch_size=4)
        >>> inputs, target = next(iter(loader))
        >>> inputs.shape, target.shape
        (torch.Size([4, 5, 1, 24, 24]), torch.Size([4, 1, 24, 24]))
    """
    movies = _check_movies(movies, "next_frame_loader")
    dataset = next_frame_dataset(movies)
    batch_size = _positive_int(batch_size, "batch_size", "next_frame_loader")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
