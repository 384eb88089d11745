"""plot_frames, animate_movie, animate_prediction, markdown_table: what they show and check."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.animation import AbstractMovieWriter, FuncAnimation
from matplotlib.figure import Figure

from convlstm_lib.plot import (
    MarkdownTable,
    animate_movie,
    animate_prediction,
    animate_rain,
    markdown_table,
    plot_frames,
    print_wrapped,
)


class RecordingWriter(AbstractMovieWriter):
    """A movie writer that keeps, for every frame, the image data and title of every axes."""

    def __init__(self):
        super().__init__()
        self.frames = []

    def setup(self, fig, outfile, dpi=None):
        super().setup(fig, outfile, dpi)

    def grab_frame(self, **savefig_kwargs):
        self.frames.append(
            [(np.asarray(ax.images[0].get_array()).copy(), ax.get_title()) for ax in self.fig.axes]
        )

    def finish(self):
        pass


def record(anim):
    writer = RecordingWriter()
    anim.save("unused.none", writer=writer)
    return writer.frames


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def movie(steps=6, size=8, seed=0):
    return torch.rand(steps, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_plot_frames_one_row_shows_every_frame_in_order():
    frames = movie()
    fig = plot_frames(frames, titles=[f"t={t}" for t in range(6)])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    for t, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), frames[t, 0].numpy())
        assert ax.get_title() == f"t={t}"


def test_plot_frames_wraps_after_ncols_and_hides_spare_axes():
    frames = movie(steps=5)
    fig = plot_frames(frames, ncols=3, row_labels=["first", "second"])
    assert len(fig.axes) == 6
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5
    for t, ax in enumerate(visible):
        np.testing.assert_array_equal(ax.images[0].get_array(), frames[t, 0].numpy())
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["first", "second"]


def test_plot_frames_grid_one_row_per_movie_with_column_titles():
    movies = torch.stack([movie(4, seed=1), movie(4, seed=2)])  # (2, 4, 1, 8, 8)
    fig = plot_frames(movies, titles=["a", "b", "c", "d"], row_labels=["x", "y"])
    assert len(fig.axes) == 8
    for index, ax in enumerate(fig.axes):
        row, col = divmod(index, 4)
        np.testing.assert_array_equal(ax.images[0].get_array(), movies[row, col, 0].numpy())
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d", "", "", "", ""]


def test_plot_frames_draws_into_a_given_figure_with_the_given_colour_range():
    fig = plt.figure()
    assert plot_frames(movie(2), fig=fig, vmin=-1.0, vmax=2.0) is fig
    assert fig.axes[0].images[0].get_clim() == (-1.0, 2.0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: plot_frames(np.zeros((2, 1, 4, 4))), TypeError, "expected frames to be a Tensor"),
        (lambda: plot_frames(torch.zeros(4, 4)), ValueError, r"frames with shape \(N, 1, H, W\)"),
        (lambda: plot_frames(torch.zeros(2, 3, 4, 4)), ValueError, "one channel .* got C=3"),
        (lambda: plot_frames(movie(3), titles=["a"]), ValueError, "expected 3 titles"),
        (lambda: plot_frames(movie(3), ncols=0), ValueError, "ncols to be positive, got 0"),
        (lambda: plot_frames(movie(3), row_labels=["a", "b"]), ValueError, "expected 1 row_labels"),
    ],
)
def test_plot_frames_errors(call, error, message):
    with pytest.raises(error, match=f"plot_frames: .*{message}"):
        call()


def test_animate_movie_plays_every_frame():
    frames = movie()
    anim = animate_movie(frames, title="beam")
    assert isinstance(anim, FuncAnimation)
    shown = record(anim)
    assert len(shown) == 6
    for t, [(image, title)] in enumerate(shown):
        np.testing.assert_array_equal(image, frames[t, 0].numpy())
        assert title == f"beam {t + 1} of 6"


def test_animate_movie_draws_into_a_given_axes():
    fig, ax = plt.subplots()
    anim = animate_movie(movie(3), ax=ax)
    assert len(fig.axes) == 1
    assert len(ax.images) == 1
    assert len(record(anim)) == 3


@pytest.mark.parametrize("ahead", [None, 1, 3])
def test_animate_prediction_plays_inputs_then_prediction_beside_truth(ahead):
    inputs = movie(5, seed=1)
    shape = (1, 8, 8) if ahead is None else (ahead, 1, 8, 8)
    prediction = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    truth = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    anim = animate_prediction(inputs, prediction, truth)
    assert isinstance(anim, FuncAnimation)
    shown = record(anim)
    steps = 1 if ahead is None else ahead
    assert len(shown) == 5 + steps
    for t in range(5):
        (left, left_title), (right, right_title) = shown[t]
        np.testing.assert_array_equal(left, inputs[t, 0].numpy())
        np.testing.assert_array_equal(right, inputs[t, 0].numpy())
        assert left_title == right_title == f"input {t + 1}"
    for k in range(steps):
        (left, left_title), (right, right_title) = shown[5 + k]
        np.testing.assert_array_equal(left, prediction.reshape(steps, 8, 8)[k].numpy())
        np.testing.assert_array_equal(right, truth.reshape(steps, 8, 8)[k].numpy())
        assert (left_title, right_title) == (f"predicted {6 + k}", f"true {6 + k}")


def test_animations_render_to_jshtml():
    html = animate_prediction(movie(2), torch.rand(1, 8, 8), torch.rand(1, 8, 8)).to_jshtml()
    assert html.count("data:image/png;base64") == 3


def test_rain_panels_play_together_with_their_labels():
    rain = np.random.default_rng(0).gamma(0.3, 3.0, (4, 12, 10))
    rain[:, 0] = np.nan
    animation = animate_rain({"observed": rain, "forecast": rain[::-1]}, labels=list("abcd"))
    first, second = animation._fig.axes[:2]
    animation._func(2)
    shown = [ax.images[0] for ax in (first, second)]
    for image, frame in zip(shown, (rain[2], rain[1]), strict=True):
        data = image.get_array().filled(np.nan)
        wet = frame >= 0.1
        assert np.array_equal(data[wet], frame[wet]) and np.isnan(data[np.isnan(frame)]).all()
        # Dry cells sit below the colour scale, so they take its "under" colour, white.
        dry = np.isfinite(frame) & ~wet
        assert dry.any() and (data[dry] < image.norm.vmin).all()
        assert image.cmap.get_under().tolist() == [1.0, 1.0, 1.0, 1.0]
    assert animation._fig._suptitle.get_text() == "c"
    assert animation.to_jshtml().count("data:image/png;base64") == 4
    plt.close(animation._fig)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: animate_movie(torch.zeros(6, 8, 8)),
            ValueError,
            r"movie with shape \(T, 1, H, W\)",
        ),
        (
            lambda: animate_prediction(movie(5), torch.zeros(1, 8, 8), torch.zeros(2, 1, 8, 8)),
            ValueError,
            r"truth of the prediction's shape \(1, 1, 8, 8\), got \(2, 1, 8, 8\)",
        ),
        (
            lambda: animate_prediction(movie(5), torch.zeros(1, 6, 6), torch.zeros(1, 6, 6)),
            ValueError,
            r"predicted frames of the inputs' size \(8, 8\), got \(6, 6\)",
        ),
        (
            lambda: animate_prediction(movie(5), [0.0], torch.zeros(1, 8, 8)),
            TypeError,
            "expected prediction to be a Tensor, got list",
        ),
    ],
)
def test_animation_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("fields", "labels", "message"),
    [
        ({"a": np.zeros((3, 4, 4)), "b": np.zeros((2, 4, 4))}, None, "of one shape"),
        ({"a": np.zeros((4, 4))}, None, r"\(T, H, W\)"),
        ({"a": np.zeros((3, 4, 4))}, ["x"], "expected 3 labels, one per frame, got 1"),
    ],
)
def test_rain_animation_errors(fields, labels, message):
    with pytest.raises(ValueError, match=message):
        animate_rain(fields, labels=labels)


def test_markdown_table_lines_alignment_and_escaping():
    table = markdown_table(["name", "value"], [("`h | c`", 1.5), ("two\nlines", 2)], align="lr")
    assert isinstance(table, MarkdownTable) and isinstance(table, str)
    assert table._repr_markdown_() == str(table)
    assert table.splitlines() == [
        "| name | value |",
        "| --- | ---: |",
        "| `h \\| c` | 1.5 |",  # a "|" would end the cell
        "| two lines | 2 |",  # a line break would end the row
    ]
    assert markdown_table(["a"], [])._repr_markdown_() == "| a |\n| --- |"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": [(1, 2), (1,)]}, r"expected 2 values per row, got 1 in row 1"),
        ({"rows": [], "align": "lx"}, r"expected align to be one of l, r, c per column \(2\)"),
        ({"rows": [], "align": "l"}, r"got 'l'"),
    ],
)
def test_markdown_table_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        markdown_table(["a", "b"], **kwargs)


def test_print_wrapped_keeps_every_line_within_the_width_and_every_word(capsys):
    text = "short line\n" + "    " + " ".join(f"word{k}" for k in range(40)) + "\n\nend"
    print_wrapped(text, width=30)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 30
    assert lines[0] == "short line" and lines[-1] == "end" and lines[-2] == ""
    # The long line keeps its indent, and its continuations go four spaces further in.
    wrapped = lines[1:-2]
    assert wrapped[0].startswith("    word0") and all(
        line.startswith(" " * 8) for line in wrapped[1:]
    )
    assert " ".join(" ".join(wrapped).split()) == " ".join(f"word{k}" for k in range(40))


def test_print_wrapped_rejects_a_width_too_small_to_wrap():
    with pytest.raises(
        ValueError, match="print_wrapped: expected width to be an int of at least 20, got 5"
    ):
        print_wrapped("text", width=5)
