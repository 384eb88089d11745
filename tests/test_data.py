"""make_beam_movies, make_moving_shapes, move_shape, next_frame_dataset, next_frame_loader: shapes,
values, motion, seeds, errors."""

import pytest
import torch
import torch.nn.functional as F

from convlstm_lib import (
    all_beam_movies,
    beam_lane,
    make_beam_movies,
    make_moving_shapes,
    move_shape,
    nearest_distance,
    next_frame_dataset,
    next_frame_loader,
)


def hand_made(length=6, size=24, beam_length=6, top=12, left=6):
    """The post's movie built independently: lit pixels listed one by one, no roll, no pad."""
    movie = torch.zeros(length, 1, size, size)
    for t in range(length):
        for k in range(beam_length):
            movie[t, 0, top + k - t, left + k + t] = 1.0
    return movie


def shift(frames, dy, dx):
    """Translate (..., H, W) by whole pixels, filling with 0 and dropping what leaves the frame."""
    height, width = frames.shape[-2:]
    padded = F.pad(frames, (width, width, height, height))
    return padded[..., height - dy : 2 * height - dy, width - dx : 2 * width - dx]


@pytest.mark.parametrize(
    ("n", "length", "size", "beam_length"),
    [(100, 6, 24, 6), (3, 2, 5, 4), (5, 10, 16, 3), (1, 6, 24, 6)],
)
def test_shape_dtype_and_values(n, length, size, beam_length):
    movies = make_beam_movies(n, length=length, size=size, beam_length=beam_length)
    assert movies.shape == (n, length, 1, size, size)
    assert movies.dtype == torch.float32
    assert ((movies == 0) | (movies == 1)).all()


def test_movie_zero_is_the_posts_hand_made_movie():
    # torch_eye(6) padded by (left 6, right 12, top 12, bottom 6), rolled (-t, +t).
    movies = make_beam_movies(4)
    assert torch.equal(movies[0], hand_made())


@pytest.mark.parametrize(("length", "size", "beam_length"), [(6, 24, 6), (2, 5, 4), (10, 16, 3)])
def test_movie_zero_keeps_the_whole_beam_in_every_frame(length, size, beam_length):
    movie = make_beam_movies(1, length=length, size=size, beam_length=beam_length)[0]
    assert (movie.sum(dim=(1, 2, 3)) == beam_length).all()
    lit = movie[0, 0].nonzero()
    # A diagonal from top-left to bottom-right: row and column rise together.
    assert ((lit[:, 0] - lit[:, 1]) == lit[0, 0] - lit[0, 1]).all()


@pytest.mark.parametrize("translate", [0.0, 0.25, 0.5, 1.0])
def test_motion_rule_on_every_movie(translate):
    movies = make_beam_movies(60, translate=translate, seed=3)
    # Pixel (r, c) of frame t is pixel (r - 1, c + 1) of frame t + 1 wherever both are inside.
    assert torch.equal(movies[:, 1:, :, :-1, 1:], movies[:, :-1, :, 1:, :-1])


def test_every_movie_is_movie_zero_shifted_by_at_most_translate():
    size, translate = 24, 0.25
    movies = make_beam_movies(40, size=size, translate=translate, seed=5)
    reach = round(translate * size)
    shifts = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
    for movie in movies:
        matches = [s for s in shifts if torch.equal(movie, shift(movies[0], *s))]
        assert matches, "a movie is not a whole-pixel translation of movie 0 within reach"


def test_translations_vary_and_translate_zero_copies_movie_zero():
    movies = make_beam_movies(20, seed=0)
    assert len({m.numpy().tobytes() for m in movies}) > 10
    still = make_beam_movies(5, translate=0.0)
    assert torch.equal(still, still[:1].expand_as(still))


def test_same_seed_same_movies_other_seed_other_movies():
    assert torch.equal(make_beam_movies(20, seed=7), make_beam_movies(20, seed=7))
    assert not torch.equal(make_beam_movies(20, seed=7), make_beam_movies(20, seed=8))
    # A larger n extends the same sequence of draws.
    assert torch.equal(make_beam_movies(30, seed=7)[:20], make_beam_movies(20, seed=7))


def test_global_random_state_is_left_alone():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    make_beam_movies(10, seed=1)
    assert torch.equal(torch.rand(5), expected)
    # ...and the global seed does not change the movies.
    torch.manual_seed(0)
    first = make_beam_movies(10, seed=1)
    torch.manual_seed(99)
    assert torch.equal(make_beam_movies(10, seed=1), first)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0}, ValueError, "expected n to be positive, got 0"),
        ({"n": 2.0}, TypeError, "expected n to be an int, got float"),
        ({"length": 1}, ValueError, "expected length of at least 2 frames, got 1"),
        ({"size": 0}, ValueError, "expected size to be positive, got 0"),
        ({"beam_length": 0}, ValueError, "expected beam_length to be positive, got 0"),
        (
            {"beam_length": 20},
            ValueError,
            r"expected beam_length \+ speed \* \(length - 1\) <= size .* got 20 \+ 1 \* \(6 - 1\) > 24",
        ),
        (
            {"size": 10},
            ValueError,
            r"expected beam_length .* stays in the frame, got 6 \+ 1 \* \(6 - 1\) > 10",
        ),
        ({"translate": 1.5}, ValueError, r"expected translate in \[0, 1\], got 1.5"),
        ({"translate": -0.1}, ValueError, r"expected translate in \[0, 1\], got -0.1"),
        ({"translate": "0.5"}, TypeError, "expected translate to be a float, got str"),
        ({"seed": 1.0}, TypeError, "expected seed to be an int, got float"),
    ],
)
def test_errors(kwargs, error, message):
    with pytest.raises(error, match=f"make_beam_movies: {message}"):
        make_beam_movies(**kwargs)


def test_next_frame_dataset_splits_inputs_and_last_frame():
    movies = make_beam_movies(7, length=4)
    dataset = next_frame_dataset(movies)
    assert len(dataset) == 7
    inputs, target = dataset[3]
    assert inputs.shape == (3, 1, 24, 24)
    assert target.shape == (1, 24, 24)
    assert torch.equal(inputs, movies[3, :3])
    assert torch.equal(target, movies[3, 3])


def test_next_frame_loader_batches_every_movie_once_reproducibly():
    movies = make_beam_movies(10)
    loader = next_frame_loader(movies, batch_size=4, seed=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 5, 1, 24, 24)] * 2 + [(2, 5, 1, 24, 24)]
    assert [b[1].shape for b in batches] == [(4, 1, 24, 24)] * 2 + [(2, 1, 24, 24)]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(t.sum().item() for t in seen) == sorted(t.sum().item() for t in movies[:, -1])
    again = list(next_frame_loader(movies, batch_size=4, seed=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    ordered = list(next_frame_loader(movies, batch_size=4, shuffle=False))
    assert torch.equal(torch.cat([b[0] for b in ordered]), movies[:, :-1])


@pytest.mark.parametrize(
    ("movies", "error", "message"),
    [
        ("movies", TypeError, "expected movies to be a Tensor, got str"),
        (
            torch.zeros(2, 3, 24, 24),
            ValueError,
            r"expected movies with 5 dims \(N, T, C, H, W\), got 4",
        ),
        (
            torch.zeros(2, 1, 1, 4, 4),
            ValueError,
            r"expected movies with at least 2 frames \(T >= 2\), got T=1",
        ),
    ],
)
def test_dataset_errors(movies, error, message):
    with pytest.raises(error, match=f"next_frame_dataset: {message}"):
        next_frame_dataset(movies)
    with pytest.raises(error, match=f"next_frame_loader: {message}"):
        next_frame_loader(movies)


@pytest.mark.parametrize("speed", [1, 2, 3])
def test_speed_moves_the_beam_that_many_pixels_up_and_right(speed):
    movies = make_beam_movies(12, length=5, size=24, speed=speed, seed=2)
    s = speed
    assert torch.equal(movies[:, 1:, :, :-s, s:], movies[:, :-1, :, s:, :-s])
    assert movies[0].sum(dim=(1, 2, 3)).eq(6).all()  # movie 0 keeps its whole beam in the frame
    assert make_beam_movies(1, speed=1).equal(make_beam_movies(1))  # the default is the post's


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"length": 20, "size": 32}, {"speed": 2, "length": 5}, {"translate": 0.25}],
)
def test_train_and_test_splits_cannot_produce_the_same_movie(kwargs):
    train, test = all_beam_movies(split="train", **kwargs), all_beam_movies(split="test", **kwargs)
    # Every movie either split can draw is in its enumeration...
    for split, space in (("train", train), ("test", test)):
        drawn = make_beam_movies(300, split=split, seed=11, **kwargs)
        assert nearest_distance(drawn, space)[0].max() == 0
    # ...the enumerations share no movie, and no frame that shows the whole beam.
    assert nearest_distance(test, train)[0].min() > 0
    whole = train.flatten(0, 1).sum(dim=(1, 2, 3)) == 6  # (M T,)
    whole_frames = {f.numpy().tobytes() for f in train.flatten(0, 1)[whole]}
    whole = test.flatten(0, 1).sum(dim=(1, 2, 3)) == 6
    assert not any(f.numpy().tobytes() in whole_frames for f in test.flatten(0, 1)[whole])
    # Together they are everything "all" can draw.
    assert len(train) + len(test) >= len(all_beam_movies(**kwargs))


def test_splits_keep_movie_zero_in_training_and_draw_deterministically():
    train = make_beam_movies(20, split="train", seed=4)
    assert torch.equal(train[0], make_beam_movies(1)[0])
    assert torch.equal(train, make_beam_movies(20, split="train", seed=4))
    test = make_beam_movies(20, split="test", seed=4)
    assert not torch.equal(test[0], make_beam_movies(1)[0])
    assert torch.equal(make_beam_movies(100, seed=0)[:5], make_beam_movies(5, split="all"))


def test_beam_lane_holds_out_every_fourth_lane():
    lanes = [beam_lane(tx, 0) for tx in range(-4, 5)]
    assert lanes.count("test") == 2 and beam_lane(0, 0) == "train"
    assert beam_lane(3, -1) == beam_lane(-1, 3) == beam_lane(2, 0) == "test"


def test_nearest_distance_finds_exact_matches_and_checks_shapes():
    refs = make_beam_movies(10, seed=1)
    distance, index = nearest_distance(refs[[3, 7]], refs)
    assert distance.tolist() == [0.0, 0.0] and torch.equal(refs[index], refs[[3, 7]])
    moved = refs[:1].clone()
    moved[0, 0, 0, 0, 0] = 1 - moved[0, 0, 0, 0, 0]  # one pixel flipped
    assert nearest_distance(moved, refs[:1])[0].item() == 1.0
    with pytest.raises(ValueError, match=r"^nearest_distance: expected queries and references"):
        nearest_distance(refs, refs[:, :2])
    with pytest.raises(TypeError, match=r"^nearest_distance: expected queries to be a Tensor"):
        nearest_distance(refs.numpy(), refs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"speed": 0}, ValueError, "expected speed to be positive, got 0"),
        ({"speed": 1.5}, TypeError, "expected speed to be an int, got float"),
        (
            {"speed": 4},
            ValueError,
            r"expected beam_length \+ speed \* \(length - 1\) <= size .* got 6 \+ 4 \* \(6 - 1\) > 24",
        ),
        ({"split": "val"}, ValueError, r"expected split in \['all', 'train', 'test'\], got 'val'"),
    ],
)
def test_split_and_speed_errors(kwargs, error, message):
    with pytest.raises(error, match=f"^make_beam_movies: {message}"):
        make_beam_movies(**kwargs)
    with pytest.raises(error, match=f"^make_beam_movies: {message}"):
        all_beam_movies(**kwargs)


# ---- move_shape and make_moving_shapes: any drawing, any whole-pixel velocity.


@pytest.mark.parametrize("velocity", [(0, 0), (1, 0), (-2, 1), (3, -3), (0, -1)])
@pytest.mark.parametrize("length", [2, 5, 6])
def test_move_shape_shifts_the_drawing_by_velocity_times_frames_from_the_middle(velocity, length):
    shape = (torch.rand(16, 16) > 0.7).float()
    movie = move_shape(shape, velocity, length=length)
    assert movie.shape == (length, 1, 16, 16)
    middle = (length - 1) // 2
    assert torch.equal(movie[middle, 0], shape)  # the movie passes through the drawing
    for t in range(length):
        dy, dx = velocity[0] * (t - middle), velocity[1] * (t - middle)
        assert torch.equal(movie[t, 0], shift(shape, dy, dx)), t


def test_move_shape_reproduces_the_posts_movies_and_loses_what_leaves():
    # Movies whose beam is whole in every frame (6 lit pixels); others have pixels entering.
    post = make_beam_movies(40, seed=3)
    whole = [movie for movie in post if (movie.sum(dim=(1, 2, 3)) == 6).all()]
    assert len(whole) > 5
    for movie in whole:
        assert torch.equal(move_shape(movie[2, 0], (-1, 1)), movie)
    assert torch.equal(move_shape(hand_made()[2, 0], (-1, 1)), hand_made())
    dot = torch.zeros(8, 8)
    dot[0, 0] = 1.0
    assert move_shape(dot, (-1, 0), length=4)[3].sum() == 0  # moved out of the frame: gone


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((torch.zeros(1, 8, 8), (0, 1)), {}, ValueError, "expected shape to be a tensor of 2 dims"),
        (("x", (0, 1)), {}, ValueError, r"expected shape to be .* got str"),
        ((torch.zeros(8, 8), (0.5, 1)), {}, TypeError, r"expected velocity to be a pair of ints"),
        ((torch.zeros(8, 8), (1,)), {}, TypeError, r"expected velocity to be a pair of ints"),
        ((torch.zeros(8, 8), (0, 1)), {"length": 0}, ValueError, "expected length to be positive"),
    ],
)
def test_move_shape_errors(args, kwargs, error, message):
    with pytest.raises(error, match=f"move_shape: {message}"):
        move_shape(*args, **kwargs)


def _is_a_stroke(drawing):
    """One 8-connected piece of at most 13 pixels, not on one row, column or diagonal."""
    pixels = {tuple(p) for p in drawing.nonzero().tolist()}
    start = next(iter(pixels))
    reached, frontier = {start}, [start]
    while frontier:
        r, c = frontier.pop()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (r + dr, c + dc) in pixels and (r + dr, c + dc) not in reached:
                    reached.add((r + dr, c + dc))
                    frontier.append((r + dr, c + dc))
    keys = [lambda p: p[0], lambda p: p[1], lambda p: p[0] - p[1], lambda p: p[0] + p[1]]
    on_a_line = any(len({key(p) for p in pixels}) == 1 for key in keys)
    return reached == pixels and 3 <= len(pixels) <= 13 and not on_a_line


def test_moving_shapes_are_strokes_moved_at_their_velocity():
    movies, velocities = make_moving_shapes(400, seed=2)
    assert movies.shape == (400, 6, 1, 24, 24) and movies.dtype == torch.float32
    assert velocities.shape == (400, 2) and velocities.dtype == torch.int64
    assert set(movies.unique().tolist()) == {0.0, 1.0}
    # Every one of the 49 velocities occurs, and none beyond max_speed.
    assert velocities.abs().max() == 3
    assert len({tuple(v) for v in velocities.tolist()}) == 49
    for movie, velocity in zip(movies, velocities.tolist(), strict=True):
        assert _is_a_stroke(movie[2, 0])  # whole at frame 2, inside the frame
        assert torch.equal(movie, move_shape(movie[2, 0], tuple(velocity)))


def test_moving_shapes_seeds_and_global_state():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first, first_v = make_moving_shapes(20, seed=7)
    assert torch.equal(torch.rand(3), expected)  # the global random state is left alone
    again, again_v = make_moving_shapes(20, seed=7)
    assert torch.equal(first, again) and torch.equal(first_v, again_v)
    assert not torch.equal(first, make_moving_shapes(20, seed=8)[0])
    still, still_v = make_moving_shapes(10, max_speed=0, length=3, size=12)
    assert still.shape == (10, 3, 1, 12, 12) and still_v.abs().max() == 0
    assert torch.equal(still[:, 0], still[:, 2])  # standing still


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0}, ValueError, "expected n to be positive, got 0"),
        ({"length": 0}, ValueError, "expected length to be positive, got 0"),
        ({"max_speed": -1}, ValueError, r"expected max_speed to be an int >= 0, got -1"),
        ({"max_speed": 1.5}, ValueError, r"expected max_speed to be an int >= 0, got 1.5"),
        ({"seed": 1.0}, TypeError, "expected seed to be an int, got float"),
    ],
)
def test_moving_shapes_errors(kwargs, error, message):
    with pytest.raises(error, match=f"make_moving_shapes: {message}"):
        make_moving_shapes(**kwargs)
