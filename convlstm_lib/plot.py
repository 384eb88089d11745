"""Pictures of movies (frames in a grid, animations of a movie, of a prediction and of radar
rain), the Markdown tables in which the chapters and the benchmark report their numbers, and
text wrapped to the width of the site's code blocks."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from torch import Tensor

__all__ = [
    "MarkdownTable",
    "animate_movie",
    "animate_prediction",
    "animate_rain",
    "markdown_table",
    "plot_frames",
    "print_wrapped",
    "rain_norm",
]

_ALIGN = {"l": "---", "r": "---:", "c": ":---:"}


def _as_frames(
    frames: object, dims: tuple[int, ...], layout: str, owner: str, name: str
) -> np.ndarray:
    """Check a single-channel tensor of one of ``dims`` dims; return it as a float32 array."""
    if not isinstance(frames, Tensor):
        raise TypeError(f"{owner}: expected {name} to be a Tensor, got {type(frames).__name__}")
    if frames.dim() not in dims:
        raise ValueError(f"{owner}: expected {name} with shape {layout}, got {tuple(frames.shape)}")
    if frames.shape[-3] != 1:
        raise ValueError(
            f"{owner}: expected {name} with one channel (C=1 in {layout}), got C={frames.shape[-3]}"
        )
    return frames.detach().to("cpu", torch.float32).numpy()


class MarkdownTable(str):
    """A Markdown table: a ``str`` that Jupyter displays as a table (``_repr_markdown_``)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def _markdown_cell(value: object) -> str:
    # A "|" would end the cell and a line break the row.
    return " ".join(str(value).split()).replace("|", "\\|")


def print_wrapped(value: object, *, width: int = 80) -> None:
    """Print ``str(value)`` with every line longer than ``width`` wrapped, keeping its indent.

    For what a chapter prints but does not format itself, such as ``print(model)`` (torch's
    module reprs run past 100 characters) or an error message: the site's code blocks show
    80 characters. A wrapped line continues four spaces further in than it started.

    Args:
        value: what to print; ``str`` of it is printed, line by line.
        width: the longest line printed. Default: ``80``

    Examples::

        >>> print_wrapped("  ConvLSTM: expected input with 5 dims (B, T, C_in, H, W), got 4", width=40)
          ConvLSTM: expected input with 5 dims
              (B, T, C_in, H, W), got 4
    """
    if not isinstance(width, int) or width < 20:
        raise ValueError(
            f"print_wrapped: expected width to be an int of at least 20, got {width!r}"
        )
    for line in str(value).splitlines():
        indent = " " * (len(line) - len(line.lstrip()))
        # Not at hyphens: "--data" and "-m" stay whole, as in a command line.
        wrapped = textwrap.fill(
            line, width, subsequent_indent=indent + "    ", break_on_hyphens=False
        )
        print(wrapped if line.strip() else "")


def markdown_table(
    header: Sequence[object], rows: Sequence[Sequence[object]], *, align: str | None = None
) -> MarkdownTable:
    """A table of results in Markdown, displayed as a table in a notebook and on the website.

    Args:
        header: the column titles.
        rows: the rows, each with one value per column; values are shown with ``str`` (so
            format numbers first); Markdown inside them, such as backticks for code, is kept.
        align: one letter per column, ``"l"`` (left), ``"r"`` (right) or ``"c"`` (centre), or
            ``None`` for all left. Default: ``None``

    Returns:
        The table's Markdown text, a ``str`` whose ``_repr_markdown_`` makes Jupyter render it.

    Examples::

        >>> print(markdown_table(["epoch", "loss"], [(1, "0.0090"), (2, "0.0086")], align="rr"))
        | epoch | loss |
        | ---: | ---: |
        | 1 | 0.0090 |
        | 2 | 0.0086 |
    """
    align = "l" * len(header) if align is None else align
    if len(align) != len(header) or set(align) - set(_ALIGN):
        raise ValueError(
            f"markdown_table: expected align to be one of l, r, c per column ({len(header)}), "
            f"got {align!r}"
        )
    for index, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"markdown_table: expected {len(header)} values per row, got {len(row)} in row "
                f"{index}"
            )
    lines = [header, [_ALIGN[a] for a in align], *rows]
    return MarkdownTable(
        "\n".join("| " + " | ".join(_markdown_cell(v) for v in line) + " |" for line in lines)
    )


def _style(ax: Axes) -> None:
    """A frame as a picture: no ticks, a thin grey border so dark frames stand out on white."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("0.6")


def plot_frames(
    frames: Tensor,
    *,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    ncols: int | None = None,
    fig: Figure | None = None,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    panel_size: float = 1.4,
) -> Figure:
    r"""Show single-channel frames as a grid of images.

    Args:
        frames: tensor of shape :math:`(N, 1, H, W)` (a movie: one row, wrapped every ``ncols``
            frames) or :math:`(R, N, 1, H, W)` (several movies: one row each).
        titles: One title per frame for :math:`(N, 1, H, W)`; one per column, shown above the
            first row, for :math:`(R, N, 1, H, W)`. Default: ``None``
        row_labels: One label per row of the figure, left of its first frame. Default: ``None``
        ncols: The number of frames per row for :math:`(N, 1, H, W)`; ``None`` for all of them.
            Default: ``None``
        fig: The figure to draw into, or ``None`` for a new one. Default: ``None``
        cmap: The colour map of every frame. Default: ``"gray"``
        vmin: The value shown as the darkest colour. Default: ``0.0``
        vmax: The value shown as the brightest colour. Default: ``1.0``
        panel_size: The side of one frame in inches, for a new figure. Default: ``1.4``

    Returns:
        The :class:`~matplotlib.figure.Figure`; its axes hold the frames in reading order.

    Examples::

        >>> fig = plot_frames(torch.rand(6, 1, 24, 24), titles=[f"t={t}" for t in range(6)])
        >>> len(fig.axes)
        6
        >>> fig = plot_frames(torch.rand(2, 3, 1, 8, 8), row_labels=["truth", "prediction"])
        >>> len(fig.axes)
        6
    """
    owner = "plot_frames"
    frames = _as_frames(frames, (4, 5), "(N, 1, H, W) or (R, N, 1, H, W)", owner, "frames")
    if frames.ndim == 4:
        count = frames.shape[0]
        if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int)):
            raise TypeError(f"{owner}: expected ncols to be an int, got {type(ncols).__name__}")
        if ncols is not None and ncols <= 0:
            raise ValueError(f"{owner}: expected ncols to be positive, got {ncols}")
        cols = count if ncols is None else min(ncols, count)
        rows = -(-count // cols)
        panels = list(frames[:, 0])  # N x (H, W)
        panel_titles = titles
    else:
        rows, cols = frames.shape[:2]
        count = rows * cols
        panels = list(frames[:, :, 0].reshape(count, *frames.shape[-2:]))  # R N x (H, W), by row
        panel_titles = None if titles is None else [*titles, *[""] * (count - cols)]
        if titles is not None and len(titles) != cols:
            raise ValueError(f"{owner}: expected {cols} titles, one per column, got {len(titles)}")
    if panel_titles is not None and len(panel_titles) != count:
        raise ValueError(f"{owner}: expected {count} titles, one per frame, got {len(titles)}")
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{owner}: expected {rows} row_labels, one per row, got {len(row_labels)}")

    if fig is None:
        fig = plt.figure(
            figsize=(panel_size * cols + 0.4, panel_size * rows + 0.3), layout="constrained"
        )
    axes = fig.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_visible(False)
            continue
        ax.imshow(panels[index], cmap=cmap, vmin=vmin, vmax=vmax)
        _style(ax)
        if panel_titles is not None and panel_titles[index]:
            ax.set_title(panel_titles[index], fontsize="small")
    if row_labels is not None:
        for ax, label in zip(axes[:, 0], row_labels, strict=True):
            ax.set_ylabel(label)
    return fig


def animate_movie(
    movie: Tensor,
    *,
    ax: Axes | None = None,
    interval: int = 400,
    title: str = "frame",
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> FuncAnimation:
    r"""Play a single-channel movie one frame at a time.

    In a notebook, set ``matplotlib.rcParams["animation.html"] = "jshtml"`` and display the
    returned object to get a player that needs no kernel.

    Args:
        movie: tensor of shape :math:`(T, 1, H, W)`.
        ax: The axes to draw into, or ``None`` for a new figure. Default: ``None``
        interval: The delay between frames in milliseconds. Default: ``400``
        title: The axes title, followed by " t of T" on frame ``t``. Default: ``"frame"``
        cmap: The colour map. Default: ``"gray"``
        vmin: The value shown as the darkest colour. Default: ``0.0``
        vmax: The value shown as the brightest colour. Default: ``1.0``

    Returns:
        A :class:`~matplotlib.animation.FuncAnimation` of :math:`T` frames.

    Examples::

        >>> anim = animate_movie(torch.rand(6, 1, 24, 24))
        >>> html = anim.to_jshtml()
    """
    movie = _as_frames(movie, (4,), "(T, 1, H, W)", "animate_movie", "movie")
    steps = movie.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 2.8), layout="constrained")
    image = ax.imshow(movie[0, 0], cmap=cmap, vmin=vmin, vmax=vmax)
    _style(ax)

    def show(t: int) -> list:
        image.set_data(movie[t, 0])
        ax.set_title(f"{title} {t + 1} of {steps}")
        return [image]

    show(0)
    return FuncAnimation(ax.figure, show, frames=steps, interval=interval)


def animate_prediction(
    inputs: Tensor,
    prediction: Tensor,
    truth: Tensor,
    *,
    fig: Figure | None = None,
    interval: int = 500,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> FuncAnimation:
    r"""Play the input frames, then the predicted frames next to the true ones.

    Two panels side by side. While the inputs play, both show the same input frame; then the
    left panel shows the prediction and the right one the truth, frame by frame.

    Args:
        inputs: tensor of shape :math:`(T_{in}, 1, H, W)`, the frames the model saw.
        prediction: tensor of shape :math:`(T_{out}, 1, H, W)`, or :math:`(1, H, W)` for one
            frame.
        truth: tensor of the shape of ``prediction``, the frames that really came next.
        fig: The figure to draw into, or ``None`` for a new one. Default: ``None``
        interval: The delay between frames in milliseconds. Default: ``500``
        cmap: The colour map. Default: ``"gray"``
        vmin: The value shown as the darkest colour. Default: ``0.0``
        vmax: The value shown as the brightest colour. Default: ``1.0``

    Returns:
        A :class:`~matplotlib.animation.FuncAnimation` of :math:`T_{in} + T_{out}` frames.

    Examples::

        >>> movie = torch.rand(6, 1, 24, 24)
        >>> anim = animate_prediction(movie[:5], torch.rand(1, 24, 24), movie[5])
        >>> html = anim.to_jshtml()
    """
    owner = "animate_prediction"
    inputs = _as_frames(inputs, (4,), "(T_in, 1, H, W)", owner, "inputs")
    layout = "(T_out, 1, H, W) or (1, H, W)"
    prediction = _as_frames(prediction, (3, 4), layout, owner, "prediction")
    truth = _as_frames(truth, (3, 4), layout, owner, "truth")
    if prediction.ndim == 3:
        prediction = prediction[None]  # (1, 1, H, W)
    if truth.ndim == 3:
        truth = truth[None]  # (1, 1, H, W)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"{owner}: expected truth of the prediction's shape {tuple(prediction.shape)}, "
            f"got {tuple(truth.shape)}"
        )
    if truth.shape[-2:] != inputs.shape[-2:]:
        raise ValueError(
            f"{owner}: expected predicted frames of the inputs' size {tuple(inputs.shape[-2:])}, "
            f"got {tuple(truth.shape[-2:])}"
        )
    seen, ahead = inputs.shape[0], truth.shape[0]
    if fig is None:
        fig = plt.figure(figsize=(4.8, 2.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    images = [ax.imshow(inputs[0, 0], cmap=cmap, vmin=vmin, vmax=vmax) for ax in (left, right)]
    for ax in (left, right):
        _style(ax)

    def show(t: int) -> list:
        if t < seen:
            for image, ax in zip(images, (left, right), strict=True):
                image.set_data(inputs[t, 0])
                ax.set_title(f"input {t + 1}", fontsize="medium", color="black")
        else:
            k = t - seen
            images[0].set_data(prediction[k, 0])
            images[1].set_data(truth[k, 0])
            left.set_title(f"predicted {t + 1}", fontsize="medium", color="C3")
            right.set_title(f"true {t + 1}", fontsize="medium", color="black")
        return images

    show(0)
    return FuncAnimation(fig, show, frames=seen + ahead, interval=interval)


def rain_norm(vmin: float = 0.1, vmax: float = 20.0) -> LogNorm:
    """The colour scale of rain rates (mm/h): logarithmic, as rates span orders of magnitude.

    Rates below ``vmin`` take the colour map's "under" colour and NaN its "bad" one; a rate of
    exactly 0 would be NaN on a log scale, so :func:`animate_rain` shows it as ``vmin / 10``.
    """
    return LogNorm(vmin=vmin, vmax=vmax)


def animate_rain(
    fields: Mapping[str, np.ndarray],
    *,
    labels: Sequence[str] | None = None,
    interval: int = 300,
    width: float = 2.4,
) -> FuncAnimation:
    r"""Play rain-rate fields side by side, one panel each, frame by frame.

    Rates below 0.1 mm/h are white, NaN (outside radar coverage, or where a forecast has no
    value) is grey, and the colours are logarithmic up to 20 mm/h.

    Args:
        fields: arrays of shape :math:`(T, H, W)` in mm/h, by panel title, all one shape.
        labels: One line per frame under the panels (a time, a lead). Default: ``None``
        interval: The delay between frames in milliseconds. Default: ``300``
        width: The width of one panel in inches. Default: ``2.4``

    Returns:
        A :class:`~matplotlib.animation.FuncAnimation` of :math:`T` frames.

    Examples::

        >>> rain = np.random.default_rng(0).gamma(0.3, 3.0, (4, 32, 24))
        >>> html = animate_rain({"observed": rain, "also": rain}).to_jshtml()
    """
    owner = "animate_rain"
    arrays = {name: np.asarray(value, dtype=float) for name, value in fields.items()}
    shapes = {value.shape for value in arrays.values()}
    if not arrays or len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(
            f"{owner}: expected one or more fields of one shape (T, H, W), got "
            f"{[v.shape for v in arrays.values()]}"
        )
    steps, height, w = next(iter(shapes))
    if labels is not None and len(labels) != steps:
        raise ValueError(f"{owner}: expected {steps} labels, one per frame, got {len(labels)}")
    fig, axes = plt.subplots(
        1,
        len(arrays),
        figsize=(width * len(arrays), width * height / w + 0.8),
        layout="constrained",
        squeeze=False,
    )
    norm = rain_norm()
    # Dry cells (0 mm/h, which a log scale cannot show) drawn just below the scale: white.
    arrays = {
        name: np.where(np.isfinite(value) & (value < norm.vmin), norm.vmin / 10, value)
        for name, value in arrays.items()
    }
    cmap = plt.get_cmap("viridis").with_extremes(under="white", bad="0.8")
    images = []
    for ax, (name, value) in zip(axes[0], arrays.items(), strict=True):
        images.append(ax.imshow(value[0], cmap=cmap, norm=norm))
        ax.set_title(name, fontsize="medium")
        _style(ax)
    fig.colorbar(images[-1], ax=axes[0].tolist(), label="mm/h", shrink=0.8)

    def show(t: int) -> list:
        for image, value in zip(images, arrays.values(), strict=True):
            image.set_data(value[t])
        if labels is not None:
            fig.suptitle(labels[t], fontsize="medium")
        return images

    show(0)
    return FuncAnimation(fig, show, frames=steps, interval=interval)
