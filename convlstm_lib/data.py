"""Diagonal-beam movies, the toy data of the post, their train and test lanes, movies of random
strokes moving at any velocity, and the next-frame dataset built from them."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from .cell import _positive_int

__all__ = [
    "all_beam_movies",
    "beam_lane",
    "make_beam_movies",
    "make_moving_shapes",
    "move_shape",
    "nearest_distance",
    "next_frame_dataset",
    "next_frame_loader",
]

_OWNER = "make_beam_movies"
_SPLITS = ("all", "train", "test")


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


def _hand_made_movie(length: int, size: int, beam_length: int, speed: int) -> Tensor:
    """Movie 0: the identity matrix padded into the frame, rolled ``speed`` pixels up and right a frame.

    Returns:
        A tensor of shape :math:`(T, 1, H, W)` with ``T = length`` and ``H = W = size``.
    """
    # Centre the square the beam sweeps over its ``length`` frames, any odd pixel going to the
    # top and the right: for the post's sizes this is its nnf_pad(c(6, 12, 12, 6)).
    sweep = beam_length + speed * (length - 1)
    margin = (size - sweep) // 2
    left, top = margin, size - margin - beam_length
    beam = F.pad(
        torch.eye(beam_length), (left, size - left - beam_length, top, size - top - beam_length)
    )  # (H, W)
    frames = [torch.roll(beam, shifts=(-speed * t, speed * t), dims=(0, 1)) for t in range(length)]
    return torch.stack(frames).unsqueeze(1)  # (T, 1, H, W)


def beam_lane(tx: int, ty: int) -> str:
    r"""The split a beam movie translated by ``(tx, ty)`` pixels belongs to: ``"train"`` or ``"test"``.

    A lit pixel :math:`(r, c)` of a beam keeps :math:`r + c` as it moves up and right, so the
    band of :math:`r + c` values a movie sweeps, its *lane*, is fixed by :math:`t_x + t_y` (``tx``
    to the right, ``ty`` down). Every fourth lane, :math:`t_x + t_y \equiv 2 \pmod 4`, is held
    out for testing. A frame that shows the whole beam tells its lane, so no movie of one split
    occurs in the other, nor any such frame (only beams cut down at the frame's edge can look
    alike); movie 0 (no translation) is a training movie.

    Examples::

        >>> beam_lane(0, 0), beam_lane(1, 1), beam_lane(5, -3)
        ('train', 'test', 'test')
    """
    return "test" if (tx + ty) % 4 == 2 else "train"


def _check_beam_args(
    length: object, size: object, beam_length: object, speed: object, translate: object
) -> tuple[int, int, int, int, float]:
    length = _positive_int(length, "length", _OWNER)
    size = _positive_int(size, "size", _OWNER)
    beam_length = _positive_int(beam_length, "beam_length", _OWNER)
    speed = _positive_int(speed, "speed", _OWNER)
    if length < 2:
        raise ValueError(f"{_OWNER}: expected length of at least 2 frames, got {length}")
    if beam_length + speed * (length - 1) > size:
        raise ValueError(
            f"{_OWNER}: expected beam_length + speed * (length - 1) <= size so the beam stays "
            f"in the frame, got {beam_length} + {speed} * ({length} - 1) > {size}"
        )
    if isinstance(translate, bool) or not isinstance(translate, (int, float)):
        raise TypeError(
            f"{_OWNER}: expected translate to be a float, got {type(translate).__name__}"
        )
    if not 0.0 <= translate <= 1.0:
        raise ValueError(f"{_OWNER}: expected translate in [0, 1], got {translate}")
    return length, size, beam_length, speed, float(translate)


def _check_split(split: object) -> str:
    if split not in _SPLITS:
        raise ValueError(f"{_OWNER}: expected split in {list(_SPLITS)}, got {split!r}")
    return split


def make_beam_movies(
    n: int = 100,
    *,
    length: int = 6,
    size: int = 24,
    beam_length: int = 6,
    speed: int = 1,
    translate: float = 0.5,
    split: str = "all",
    seed: int = 0,
) -> Tensor:
    r"""Movies of a diagonal beam that moves ``speed`` pixels up and ``speed`` right per frame.

    Movie 0 is made by hand, as in the post: a ``beam_length`` identity matrix padded into a
    ``size`` x ``size`` frame, then rolled (:func:`torch.roll`) by :math:`(-st, +st)` pixels for frame
    :math:`t` at speed :math:`s`. Its beam is placed so that it stays inside the frame for all
    ``length`` frames. Every other movie is movie 0 under one random translation drawn by
    :class:`torchvision.transforms.v2.RandomAffine` (``degrees=0``, up to ``translate`` of the
    frame size each way, nearest interpolation), the same for all its frames. The translation
    is a whole number of pixels, so every value stays exactly 0 or 1, and parts of the beam
    shifted out of the frame are lost, as in the post. Within every movie, a lit pixel
    :math:`(r, c)` of frame :math:`t` is lit at :math:`(r - s, c + s)` in frame :math:`t + 1`
    whenever that pixel is in the frame.

    ``split="train"`` or ``"test"`` keeps only the draws whose translation lies in that split's
    lanes (:func:`beam_lane`), drawing again until there are ``n``: the two splits cannot produce
    the same movie. ``"all"`` (the post's data) keeps every draw. The draws use their own random
    state, seeded by ``seed``: the same arguments give the same movies, and the global random
    state (:func:`torch.manual_seed`) is left as it was.

    Args:
        n: The number of movies :math:`N`. Default: ``100``
        length: The number of frames :math:`T` per movie, at least 2. Default: ``6``
        size: The height and width :math:`H = W` of every frame. Default: ``24``
        beam_length: The number of lit pixels of the beam; the beam's path over ``length``
            frames, ``beam_length + speed * (length - 1)`` pixels on a side, must fit in the
            frame. Default: ``6``
        speed: The pixels the beam moves up, and right, per frame. Default: ``1``
        translate: The largest translation, as a fraction of the frame size, in each
            direction, in :math:`[0, 1]`. Default: ``0.5``
        split: ``"all"``, ``"train"`` or ``"test"``: which lanes the movies come from.
            Movie 0 is the first movie of ``"all"`` and ``"train"``. Default: ``"all"``
        seed: The seed of the random translations. Default: ``0``

    Returns:
        A float32 tensor of shape :math:`(N, T, 1, H, W)` with values 0 (dark) and 1 (lit).

    Examples::

        >>> movies = make_beam_movies(8, seed=1)
        >>> movies.shape
        torch.Size([8, 6, 1, 24, 24])
        >>> torch.equal(movies[:, 1:, :, :-1, 1:], movies[:, :-1, :, 1:, :-1])
        True
        >>> fast = make_beam_movies(4, speed=2, split="test")
        >>> torch.equal(fast[:, 1:, :, :-2, 2:], fast[:, :-1, :, 2:, :-2])
        True
    """
    n = _positive_int(n, "n", _OWNER)
    length, size, beam_length, speed, translate = _check_beam_args(
        length, size, beam_length, speed, translate
    )
    split = _check_split(split)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{_OWNER}: expected seed to be an int, got {type(seed).__name__}")

    # The library's one use of torchvision, imported here so that the rest does not need it.
    from torchvision.transforms import v2

    movie = _hand_made_movie(length, size, beam_length, speed)  # (T, 1, H, W)
    shift = v2.RandomAffine(
        degrees=0,
        translate=(translate, translate),
        interpolation=v2.InterpolationMode.NEAREST,
    )
    movies = [movie] if split != "test" else []
    # RandomAffine draws from the global generator; fork it so the caller's sequence of random
    # numbers is unchanged. One transform of the (T, 1, H, W) stack applies one translation to
    # all its frames (make_params + transform is what calling shift does, split in two so the
    # translation can be looked at). The draws happen on the CPU whatever the default device.
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(seed)
        while len(movies) < n:
            params = shift.make_params([movie])
            if split == "all" or beam_lane(*params["translate"]) == split:
                movies.append(shift.transform(movie, params))
    return torch.stack(movies)  # (N, T, 1, H, W)


def all_beam_movies(
    *,
    length: int = 6,
    size: int = 24,
    beam_length: int = 6,
    speed: int = 1,
    translate: float = 0.5,
    split: str = "all",
) -> Tensor:
    r"""Every distinct movie :func:`make_beam_movies` can draw with these arguments.

    The translations are whole pixels within ``translate`` of the frame size, so the movies are
    finitely many: this lists them, one per translation in ``split``, in the order of
    :math:`(t_y, t_x)`, dropping repeats (two translations that push the beam entirely out of
    the frame give the same dark movie). Checking a held-out set against it checks it against
    every training movie a model could have seen, however many it drew.

    Args:
        length, size, beam_length, speed, translate, split: as in :func:`make_beam_movies`.

    Returns:
        A float32 tensor of shape :math:`(M, T, 1, H, W)`.

    Examples::

        >>> train, test = all_beam_movies(split="train"), all_beam_movies(split="test")
        >>> train.shape, test.shape
        (torch.Size([468, 6, 1, 24, 24]), torch.Size([156, 6, 1, 24, 24]))
        >>> bool(nearest_distance(test, train)[0].min() > 0)
        True
    """
    length, size, beam_length, speed, translate = _check_beam_args(
        length, size, beam_length, speed, translate
    )
    split = _check_split(split)
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    movie = _hand_made_movie(length, size, beam_length, speed)  # (T, 1, H, W)
    # RandomAffine draws tx = round(uniform(-max_dx, max_dx)): these are all its outcomes.
    reach = round(translate * size)
    movies, seen = [], set()
    for ty in range(-reach, reach + 1):
        for tx in range(-reach, reach + 1):
            if split != "all" and beam_lane(tx, ty) != split:
                continue
            moved = TF.affine(
                movie,
                angle=0.0,
                translate=[tx, ty],
                scale=1.0,
                shear=[0.0, 0.0],
                interpolation=InterpolationMode.NEAREST,
            )  # (T, 1, H, W)
            key = moved.numpy().tobytes()
            if key not in seen:
                seen.add(key)
                movies.append(moved)
    return torch.stack(movies)  # (M, T, 1, H, W)


def _check_velocity(velocity: object, owner: str) -> tuple[int, int]:
    if not (
        isinstance(velocity, (tuple, list))
        and len(velocity) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in velocity)
    ):
        raise TypeError(
            f"{owner}: expected velocity to be a pair of ints (down, right), got {velocity!r}"
        )
    return int(velocity[0]), int(velocity[1])


def move_shape(shape: Tensor, velocity: tuple[int, int], *, length: int = 6) -> Tensor:
    r"""A movie of ``shape`` moving ``velocity`` whole pixels per frame, through where it is drawn.

    Frame :math:`t` is ``shape`` shifted by :math:`(t - m)\,v` pixels, with
    :math:`m = \lfloor (T - 1) / 2 \rfloor`: the movie passes through the drawing at frame
    :math:`m` (frame 2 of 6), so a shape drawn near the centre stays in view at any speed up to
    3 pixels per frame. What is shifted out of the frame is lost and nothing enters, as in
    :func:`make_beam_movies`; the shift is exact, so the values stay what they were. The post's
    movie 0 is its beam at frame 2 moving ``(-1, 1)``.

    Args:
        shape: tensor of shape :math:`(H, W)`, the drawing.
        velocity: ``(down, right)``, the pixels the shape moves down and to the right per frame
            (negative: up, left).
        length: The number of frames :math:`T`. Default: ``6``

    Returns:
        A tensor of shape :math:`(T, 1, H, W)` in ``shape``'s dtype.

    Examples::

        >>> post = make_beam_movies(1)[0]  # (6, 1, 24, 24), moving up and right
        >>> torch.equal(move_shape(post[2, 0], (-1, 1)), post)
        True
    """
    owner = "move_shape"
    if not isinstance(shape, Tensor) or shape.dim() != 2:
        got = f"{shape.dim()} dims" if isinstance(shape, Tensor) else type(shape).__name__
        raise ValueError(f"{owner}: expected shape to be a tensor of 2 dims (H, W), got {got}")
    down, right = _check_velocity(velocity, owner)
    length = _positive_int(length, "length", owner)
    height, width = shape.shape
    middle = (length - 1) // 2
    frames = shape.new_zeros(length, 1, height, width)  # (T, 1, H, W)
    for t in range(length):
        dy, dx = down * (t - middle), right * (t - middle)
        # Rows and columns that stay in the frame, before (source) and after (target) the shift.
        rows, cols = max(0, -dy), max(0, -dx)
        keep_h, keep_w = height - abs(dy), width - abs(dx)
        if keep_h > 0 and keep_w > 0:
            frames[t, 0, rows + dy : rows + dy + keep_h, cols + dx : cols + dx + keep_w] = shape[
                rows : rows + keep_h, cols : cols + keep_w
            ]
    return frames


# The eight neighbours a stroke steps to.
_NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _random_stroke(generator: torch.Generator) -> list[tuple[int, int]]:
    """The pixels of a random walk of 4 to 12 steps, drawn again while they lie on one line."""
    while True:
        steps = int(torch.randint(4, 13, (1,), generator=generator))
        moves = torch.randint(len(_NEIGHBOURS), (steps,), generator=generator).tolist()
        row = col = 0
        pixels = {(0, 0)}
        for move in moves:
            row, col = row + _NEIGHBOURS[move][0], col + _NEIGHBOURS[move][1]
            pixels.add((row, col))
        # Eight-connected pixels on one line share a row, a column or a diagonal: a beam is one.
        for key in (lambda p: p[0], lambda p: p[1], lambda p: p[0] - p[1], lambda p: p[0] + p[1]):
            if len({key(p) for p in pixels}) == 1:
                break
        else:
            return sorted(pixels)


def make_moving_shapes(
    n: int = 1000,
    *,
    length: int = 6,
    size: int = 24,
    max_speed: int = 3,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    r"""Movies of random strokes, each moving at its own velocity, to learn motion itself.

    Every movie is one stroke, the pixels of a random walk of 4 to 12 steps to any of the eight
    neighbours, drawn with its centre within 4 pixels of the frame's centre and moved with
    :func:`move_shape` at a velocity drawn uniformly from the :math:`(2 s + 1)^2` whole-pixel
    velocities :math:`(v_{down}, v_{right})` with :math:`|v| \le s` = ``max_speed`` (standing
    still included). A model that predicts the next frame of these must infer each stroke's
    velocity from the frames. By construction no stroke is a straight line (a walk that lies
    on one row, column or diagonal is drawn again), none has more than 13 pixels, and every
    stroke is connected, so beams, discs and pairs of shapes never occur: they are held out.

    Args:
        n: The number of movies :math:`N`. Default: ``1000``
        length: The number of frames :math:`T`. Default: ``6``
        size: The height and width :math:`H = W` of every frame. Default: ``24``
        max_speed: The largest speed :math:`s` along each axis, pixels per frame, 0 or more.
            Default: ``3``
        seed: The seed of the strokes, places and velocities; the global random state is left
            alone. Default: ``0``

    Returns:
        ``(movies, velocities)``: a float32 tensor of shape :math:`(N, T, 1, H, W)` with values
        0 and 1, and an int64 tensor of shape :math:`(N, 2)`, each movie's ``(down, right)``.

    Examples::

        >>> movies, velocities = make_moving_shapes(4, seed=1)
        >>> movies.shape, velocities.shape
        (torch.Size([4, 6, 1, 24, 24]), torch.Size([4, 2]))
        >>> down, right = velocities[0].tolist()
        >>> torch.equal(movies[0], move_shape(movies[0, 2, 0], (down, right)))
        True
    """
    owner = "make_moving_shapes"
    n = _positive_int(n, "n", owner)
    length = _positive_int(length, "length", owner)
    size = _positive_int(size, "size", owner)
    if isinstance(max_speed, bool) or not isinstance(max_speed, int) or max_speed < 0:
        raise ValueError(f"{owner}: expected max_speed to be an int >= 0, got {max_speed!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{owner}: expected seed to be an int, got {type(seed).__name__}")
    generator = torch.Generator().manual_seed(seed)
    speeds = 2 * max_speed + 1
    velocities = torch.randint(speeds, (n, 2), generator=generator) - max_speed  # (N, 2)
    places = torch.randint(-4, 5, (n, 2), generator=generator)  # (N, 2)
    movies = torch.zeros(n, length, 1, size, size)  # (N, T, 1, H, W)
    for index in range(n):
        pixels = _random_stroke(generator)
        rows, cols = torch.tensor(pixels).T  # (P,), (P,)
        # The stroke's bounding-box centre goes to the frame's centre plus the drawn place.
        rows = rows - (rows.min() + rows.max()) // 2 + size // 2 + places[index, 0]
        cols = cols - (cols.min() + cols.max()) // 2 + size // 2 + places[index, 1]
        inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)  # small frames
        shape = torch.zeros(size, size)
        shape[rows[inside], cols[inside]] = 1.0
        movies[index] = move_shape(shape, tuple(velocities[index].tolist()), length=length)
    return movies, velocities


def nearest_distance(queries: Tensor, references: Tensor) -> tuple[Tensor, Tensor]:
    r"""The Euclidean distance from every query to its nearest reference, and that reference.

    Both are flattened after the first dimension, so movies, frames or images of any layout
    compare as long as the two agree. A distance of exactly 0 is an exact match: the nearest
    reference is found in float64 and the distance to it computed without shortcuts.

    Args:
        queries: tensor of shape :math:`(N, *)`.
        references: tensor of shape :math:`(M, *)` with the same trailing shape.

    Returns:
        ``(distance, index)``, each of shape :math:`(N,)`: the float distance to the nearest
        reference and its index in ``references``.

    Examples::

        >>> refs = torch.eye(3)
        >>> nearest_distance(torch.tensor([[1.0, 0, 0], [0, 3, 0]]), refs)
        (tensor([0., 2.]), tensor([0, 1]))
    """
    owner = "nearest_distance"
    for name, value in (("queries", queries), ("references", references)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{owner}: expected {name} to be a Tensor, got {type(value).__name__}")
        if value.dim() < 1 or len(value) == 0:
            raise ValueError(
                f"{owner}: expected {name} with at least one row, got {tuple(value.shape)}"
            )
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(
            f"{owner}: expected queries and references of one trailing shape, "
            f"got {tuple(queries.shape[1:])} and {tuple(references.shape[1:])}"
        )
    q = queries.reshape(len(queries), -1).double()  # (N, D)
    r = references.reshape(len(references), -1).double()  # (M, D)
    # The fast matrix-product form finds the nearest reference (in float64, whose rounding is far
    # below any real gap); the distance to it is then computed directly, so a match is exactly 0.
    index = torch.cat([torch.cdist(chunk, r).argmin(dim=1) for chunk in q.split(1024)])  # (N,)
    distance = (q - r[index]).norm(dim=1).float()  # (N,)
    return distance, index  # (N,), (N,)


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
