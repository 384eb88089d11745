"""Real radar rainfall for nowcasting: the committed dataset, its splits, windows and scores.

:func:`load_radar` reads the book's radar events (``data/radar_nowcasting.npz``, written by
``tools/make_radar_dataset.py`` from the pysteps example composites) and :func:`read_frames`
any ``(T, H, W)`` grid of your own (NumPy or NetCDF). :func:`split_by_event` holds whole events
out; :func:`window_starts` and :func:`tile_corners` cut training examples;
:func:`rain_to_dbr` and :func:`dbr_to_rain` are pysteps' decibel transform; and
:func:`nowcast_counts` with :func:`score_nowcasts` score forecasts by lead time with
:mod:`pysteps.verification` and block-bootstrap intervals.

Arrays here are NumPy, as pysteps' are; the models take them as tensors. pysteps (and xarray,
for NetCDF) are imported only by the functions that need them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .forecaster import from_patches, to_patches
from .stats import block_bootstrap_indices

__all__ = [
    "DATASET",
    "RadarEvent",
    "dbr_to_rain",
    "decode_rain",
    "encode_rain",
    "load_radar",
    "nowcast_counts",
    "nowcast_rain",
    "rain_to_dbr",
    "read_frames",
    "residual_forecast",
    "score_nowcasts",
    "split_by_event",
    "tile_corners",
    "window_starts",
]

DATASET = "data/radar_nowcasting.npz"  # its path in the repository, for book_file
_SCALE = 100  # the dataset stores hundredths of mm/h
_MISSING = np.iinfo(np.uint16).max  # and this outside radar coverage
# The model's scale: no rain (-15 dBR) -> 0, 0.1 mm/h -> 0.5, 1 mm/h -> 1.5, 10 mm/h -> 2.5.
_DBR_OFFSET, _DBR_SCALE = 15.0, 10.0
_CATEGORICAL = ("hits", "misses", "false_alarms", "correct_negatives")
_FSS = ("sum_fct_sq", "sum_fct_obs", "sum_obs_sq")


def _pysteps():
    # pysteps prints where it found its configuration file on import; a chapter's output
    # should show its results, not that.
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps
        import pysteps.verification
    return pysteps


def _threshold(value: float, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: expected {name} to be a number, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{owner}: expected {name} > 0 (mm/h), got {value}")
    return float(value)


@dataclass(frozen=True)
class RadarEvent:
    """One radar event: its frames, their timestamps and where they come from.

    Attributes:
        name: The event's name, such as ``"fmi_2017-05-09"``.
        rain: float32 array of shape :math:`(T, H, W)`, rain rate in mm/h, NaN outside radar
            coverage.
        times: ``datetime64[s]`` array of shape :math:`(T,)`, the frames' timestamps (UTC).
        info: The event's provenance: network, institution, licence, projection, ``cell_m``
            (the side of a cell in metres), ``step_min`` (minutes between frames).
    """

    name: str
    rain: np.ndarray = field(repr=False)
    times: np.ndarray = field(repr=False)
    info: dict = field(repr=False)

    @property
    def mask(self) -> np.ndarray:
        """bool array of shape :math:`(H, W)`: the cells covered by radar in every frame."""
        return np.isfinite(self.rain).all(axis=0)

    def __len__(self) -> int:
        return len(self.rain)


def load_radar(path: str | os.PathLike | None = None) -> dict[str, RadarEvent]:
    r"""The book's radar events, by name, from the committed dataset.

    Args:
        path: The ``.npz`` file that ``tools/make_radar_dataset.py`` writes. Default: the
            committed ``data/radar_nowcasting.npz``, through :func:`~convlstm_lib.book_file`
            (its SHA-256 checked; downloaded once outside a clone)

    Returns:
        A dict from event name to :class:`RadarEvent`, in the order of the file, and the
        dataset's description under ``"snapshot"`` of every event's ``info``.

    Examples::

        >>> events = load_radar()
        >>> event = events["fmi_2017-05-09"]
        >>> event.rain.shape, str(event.times[0]), event.info["cell_m"]
        ((40, 306, 190), '2017-05-09T10:45:00', 3998.7)
    """
    owner = "load_radar"
    if path is None:
        from .files import book_file

        path = book_file(DATASET)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{owner}: expected the dataset at {path}; write it with "
            "`python tools/make_radar_dataset.py --out <file>`"
        )
    with np.load(path, allow_pickle=False) as archive:
        if "events" not in archive.files:
            raise ValueError(
                f"{owner}: expected a file written by tools/make_radar_dataset.py (with an "
                f"'events' entry), got entries {sorted(archive.files)[:5]}"
            )
        description = json.loads(str(archive["events"]))
        events = {}
        for info in description["events"]:
            stored = archive[f"{info['name']}/rain"]  # (T, H, W) uint16
            rain = stored.astype(np.float32) / _SCALE
            rain[stored == _MISSING] = np.nan
            info = {**info, "snapshot": description["snapshot"]}
            events[info["name"]] = RadarEvent(
                info["name"], rain, archive[f"{info['name']}/time"], info
            )
    return events


def read_frames(path: str | os.PathLike, *, variable: str | None = None) -> np.ndarray:
    r"""A ``(T, H, W)`` grid of your own, from a NumPy file or a NetCDF file.

    ``.npy`` holds the array; ``.npz`` holds it under ``variable`` (or as its only entry);
    ``.nc`` is opened with :func:`xarray.open_dataset` and ``variable`` (or its only data
    variable) is read, its dimensions in the order time, y, x. Missing values (NaN) mark cells
    outside coverage.

    Args:
        path: The file.
        variable: The entry or variable to read. Default: ``None`` (the only one)

    Returns:
        A float32 array of shape :math:`(T, H, W)`.

    Examples::

        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "grid.npz"
        >>> np.savez(file, rain=np.zeros((8, 16, 16)))
        >>> read_frames(file).shape
        (8, 16, 16)
    """
    owner = "read_frames"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: no file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        frames = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = archive.files
            if variable is None and len(names) != 1:
                raise ValueError(f"{owner}: {path.name} holds {names}; pass variable=")
            key = variable or names[0]
            if key not in names:
                raise ValueError(f"{owner}: expected an entry {key!r} in {path.name}, got {names}")
            frames = archive[key]
    elif suffix in (".nc", ".nc4", ".netcdf"):
        import xarray

        with xarray.open_dataset(path) as dataset:
            names = list(dataset.data_vars)
            if variable is None and len(names) != 1:
                raise ValueError(f"{owner}: {path.name} holds {names}; pass variable=")
            key = variable or names[0]
            if key not in names:
                raise ValueError(
                    f"{owner}: expected a variable {key!r} in {path.name}, got {names}"
                )
            frames = dataset[key].values
    else:
        raise ValueError(f"{owner}: expected a .npy, .npz or .nc file, got {path.name}")
    if frames.ndim != 3:
        raise ValueError(
            f"{owner}: expected frames with 3 dims (T, H, W), got shape {tuple(frames.shape)}"
        )
    return np.asarray(frames, dtype=np.float32)


def rain_to_dbr(
    rain: np.ndarray, *, threshold: float = 0.1, zerovalue: float | None = None
) -> np.ndarray:
    r"""Rain rate to decibels, as :func:`pysteps.utils.transformation.dB_transform` does.

    .. math::
        \text{dBR} = \begin{cases} 10 \log_{10} R & R \ge R_{thr} \\
        z & \text{otherwise} \end{cases}
        \qquad z = 10 \log_{10} R_{thr} - 5 \text{ by default}

    Rain rates span four orders of magnitude with a long tail; in decibels a drizzle and a
    downpour differ by tens, not thousands, which is what a network (and Lucas-Kanade's
    brightness-constancy assumption) can work with. The gap of 5 dB below the threshold keeps
    "no rain" apart from the weakest rain. NaN stays NaN.

    Args:
        rain: array of any shape, rain rate in mm/h.
        threshold: :math:`R_{thr}`, the smallest rate counted as rain, in mm/h, above 0.
            Default: ``0.1``
        zerovalue: :math:`z`, the dBR of no rain. Default: ``None`` (5 dB below the threshold)

    Returns:
        A float array of the shape of ``rain``.

    Examples::

        >>> rain_to_dbr(np.array([0.0, 0.1, 1.0, 10.0]))
        array([-15., -10.,   0.,  10.])
    """
    threshold = _threshold(threshold, "threshold", "rain_to_dbr")
    rain = np.asarray(rain, dtype=float)
    zero_db = 10 * np.log10(threshold) - 5 if zerovalue is None else float(zerovalue)
    with np.errstate(divide="ignore", invalid="ignore"):
        dbr = np.where(rain >= threshold, 10 * np.log10(np.where(rain > 0, rain, 1)), zero_db)
    return np.where(np.isnan(rain), np.nan, dbr)


def dbr_to_rain(dbr: np.ndarray, *, threshold: float = 0.1) -> np.ndarray:
    r"""Decibels back to rain rate in mm/h, below ``threshold`` (mm/h) set to 0; NaN stays NaN.

    The inverse of :func:`rain_to_dbr` above the threshold.

    Args:
        dbr: array of any shape, in dBR.
        threshold: The smallest rate kept, in mm/h, above 0. Default: ``0.1``

    Returns:
        A float array of the shape of ``dbr``.

    Examples::

        >>> dbr_to_rain(np.array([-15.0, 0.0, 10.0]))
        array([ 0.,  1., 10.])
    """
    threshold = _threshold(threshold, "threshold", "dbr_to_rain")
    rain = 10 ** (np.asarray(dbr, dtype=float) / 10)
    return np.where(rain < threshold, 0.0, rain)


def encode_rain(rain: np.ndarray | Tensor) -> Tensor:
    r"""Rain rates as a network reads them: scaled dBR and a coverage channel.

    .. math::
        x = \frac{\text{dBR} + 15}{10}

    so no rain (-15 dBR, :func:`rain_to_dbr`'s default) is 0, 0.1 mm/h is 0.5 and 10 mm/h
    is 2.5. Cells outside coverage (NaN) get :math:`x = 0` and a 0 in the second channel, 1
    elsewhere, so a model can tell "no rain" from "not seen".

    Args:
        rain: array or tensor of shape :math:`(*, H, W)`, rain rate in mm/h.

    Returns:
        A float32 tensor of shape :math:`(*, 2, H, W)`: :math:`x`, then coverage.

    Examples::

        >>> encode_rain(np.array([[[0.0, 0.1, 10.0, np.nan]]]))
        tensor([[[[0.0000, 0.5000, 2.5000, 0.0000]],
        <BLANKLINE>
                 [[1.0000, 1.0000, 1.0000, 0.0000]]]])
    """
    rain = np.asarray(rain, dtype=np.float32)
    if rain.ndim < 2:
        raise ValueError(f"encode_rain: expected rain with at least 2 dims (H, W), got {rain.ndim}")
    covered = torch.as_tensor(np.isfinite(rain))
    value = (torch.as_tensor(rain_to_dbr(rain), dtype=torch.float32) + _DBR_OFFSET) / _DBR_SCALE
    value = torch.where(covered, value, 0.0)
    return torch.stack([value, covered.float()], dim=-3)  # (*, 2, H, W)


def decode_rain(value: Tensor) -> np.ndarray:
    """:func:`encode_rain`'s first channel back to rain rates in mm/h (below 0.1 mm/h: 0).

    Args:
        value: tensor of any shape, the scaled dBR.

    Returns:
        A float64 array of the same shape.
    """
    dbr = value.detach().double().cpu().numpy() * _DBR_SCALE - _DBR_OFFSET
    return dbr_to_rain(dbr)


def residual_forecast(model: nn.Module, x: Tensor, steps: int, *, patch_size: int) -> Tensor:
    r"""An :class:`~convlstm_lib.EncoderForecaster`'s forecast as a change of the last frame.

    The model reads :func:`encode_rain`'s frames cut into patches and its head gives, for
    every future frame, a change to add to the last input frame (clamped at no rain). A head
    at zero is Eulerian persistence, so training starts from the baseline and learns what
    differs from it: motion, growth, decay.

    Args:
        model: An :class:`~convlstm_lib.EncoderForecaster` with ``input_dim`` :math:`2p^2`
            and ``output_dim`` :math:`p^2`.
        x: tensor of shape :math:`(B, T, 2, H, W)` from :func:`encode_rain`, :math:`H, W`
            multiples of :math:`p`.
        steps: The frames :math:`K` to forecast.
        patch_size: :math:`p`.

    Returns:
        A tensor of shape :math:`(B, K, H, W)`, scaled dBR.
    """
    change = from_patches(model(to_patches(x, patch_size), steps), patch_size)  # (B, K, 1, H, W)
    return (x[:, -1:, :1] + change).clamp(min=0)[:, :, 0]  # (B, K, H, W)


def nowcast_rain(
    model: nn.Module, rain: np.ndarray, steps: int, *, patch_size: int, batch_size: int = 4
) -> np.ndarray:
    r"""Rain-rate forecasts from rain-rate inputs, by :func:`residual_forecast`.

    Grids whose sides are not multiples of the patch are padded (as not covered) and cropped
    back. Runs without gradients, ``batch_size`` windows at a time, on the model's device.

    Args:
        model: The trained :class:`~convlstm_lib.EncoderForecaster`.
        rain: array of shape :math:`(S, T, H, W)`, the input frames in mm/h (NaN outside
            coverage).
        steps: The frames :math:`K` to forecast.
        patch_size: The model's patch side :math:`p`.
        batch_size: Windows per forward pass. Default: ``4``

    Returns:
        A float64 array of shape :math:`(S, K, H, W)`, rain rate in mm/h.
    """
    rain = np.asarray(rain, dtype=np.float32)
    if rain.ndim != 4:
        raise ValueError(
            f"nowcast_rain: expected rain with 4 dims (S, T, H, W), got {tuple(rain.shape)}"
        )
    height, width = rain.shape[-2:]
    pad = ((0, 0), (0, 0), (0, -height % patch_size), (0, -width % patch_size))
    x = encode_rain(np.pad(rain, pad, constant_values=np.nan))  # (S, T, 2, H', W')
    device = next(model.parameters()).device  # the windows go where the model is
    with torch.no_grad():
        out = [
            residual_forecast(model, x[i : i + batch_size].to(device), steps, patch_size=patch_size)
            for i in range(0, len(x), batch_size)
        ]
    return decode_rain(torch.cat(out))[..., :height, :width]  # (S, K, H, W)


def window_starts(
    length: int,
    *,
    inputs: int,
    outputs: int,
    start: int = 0,
    stop: int | None = None,
    stride: int = 1,
) -> list[int]:
    r"""The first frames of every window of ``inputs + outputs`` frames inside a period.

    A window is ``inputs`` frames the model reads, then the ``outputs`` frames it forecasts.
    Windows lie wholly in frames ``start`` to ``stop`` (exclusive) of an event of ``length``
    frames and begin every ``stride`` frames; consecutive windows overlap when ``stride`` is
    shorter than a window, so their scores are not independent (see
    :func:`~convlstm_lib.block_bootstrap_indices`).

    Args:
        length: The number of frames of the event.
        inputs: The frames read, at least 1.
        outputs: The frames forecast, at least 1.
        start: The period's first frame. Default: ``0``
        stop: The frame after the period's last. Default: ``None`` (``length``)
        stride: The frames from one window's start to the next. Default: ``1``

    Returns:
        A list of the windows' first frames.

    Examples::

        >>> window_starts(40, inputs=6, outputs=12)[-1]  # 40 frames hold 23 windows of 18
        22
        >>> window_starts(40, inputs=6, outputs=12, stride=6)
        [0, 6, 12, 18]
    """
    owner = "window_starts"
    for name, value in (
        ("length", length),
        ("inputs", inputs),
        ("outputs", outputs),
        ("start", start),
        ("stride", stride),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
    stop = length if stop is None else stop
    if min(inputs, outputs, stride) < 1:
        raise ValueError(
            f"{owner}: expected inputs, outputs and stride >= 1, got {inputs}, {outputs}, {stride}"
        )
    if not 0 <= start <= stop <= length:
        raise ValueError(
            f"{owner}: expected 0 <= start <= stop <= length={length}, got {start} and {stop}"
        )
    window = inputs + outputs
    if window > stop - start:
        raise ValueError(
            f"{owner}: expected a window of inputs + outputs = {window} frames to fit in the "
            f"period of {stop - start} frames ({start} to {stop})"
        )
    return list(range(start, stop - window + 1, stride))


def split_by_event(
    lengths: Mapping[str, int],
    *,
    test: Sequence[str],
    validation: Mapping[str, int],
    window: int,
) -> dict[str, dict[str, tuple[int, int]]]:
    r"""Split radar events into training, validation and test periods, never by frame.

    Every event in ``test`` is held out whole. Every event in ``validation`` gives its last
    ``validation[name]`` frames to validation, and its training period ends ``window`` frames
    before them, so that no training window comes within one window of a validation window.
    Every other event is used whole for training.

    Args:
        lengths: The number of frames of every event, by name.
        test: The events held out for the test.
        validation: Frames taken from the end of each of these events for validation, by name.
        window: The frames of one window (inputs and outputs), at least 1.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``, each a dict from event name to the
        period ``(first, stop)`` of its frames (``stop`` exclusive).

    Examples::

        >>> split_by_event({"a": 40, "b": 92, "c": 40}, test=["c"], validation={"b": 24},
        ...                window=18)
        {'train': {'a': (0, 40), 'b': (0, 50)}, 'validation': {'b': (68, 92)}, 'test': {'c': (0, 40)}}
    """
    owner = "split_by_event"
    unknown = (set(test) | set(validation)) - set(lengths)
    if unknown:
        raise ValueError(f"{owner}: expected events among {sorted(lengths)}, got {sorted(unknown)}")
    if set(test) & set(validation):
        raise ValueError(
            f"{owner}: expected test and validation events to differ, both have "
            f"{sorted(set(test) & set(validation))}"
        )
    split: dict[str, dict[str, tuple[int, int]]] = {"train": {}, "validation": {}, "test": {}}
    for name, length in lengths.items():
        if name in test:
            split["test"][name] = (0, length)
        elif name in validation:
            frames = validation[name]
            stop = length - frames - window
            if frames < window or stop < window:
                raise ValueError(
                    f"{owner}: expected {name} ({length} frames) to hold a validation period "
                    f"of at least one window ({window}), a gap of one window and a training "
                    f"period of at least one window; validation={frames} leaves {stop}"
                )
            split["train"][name] = (0, stop)
            split["validation"][name] = (length - frames, length)
        else:
            split["train"][name] = (0, length)
    return split


def tile_corners(
    mask: np.ndarray, size: int, *, stride: int | None = None, min_coverage: float = 1.0
) -> list[tuple[int, int]]:
    r"""The top-left corners of the square tiles of a grid that radar covers enough.

    Args:
        mask: bool array of shape :math:`(H, W)`, ``True`` where the radar sees.
        size: The tile's side in cells, at most :math:`\min(H, W)`.
        stride: The cells from one tile to the next. Default: ``None`` (``size // 2``)
        min_coverage: The smallest fraction of a tile's cells that must be covered, in
            :math:`(0, 1]`. Default: ``1.0``

    Returns:
        A list of ``(row, col)`` corners, row by row.

    Examples::

        >>> mask = np.ones((100, 64), dtype=bool)
        >>> tile_corners(mask, 64, stride=32)
        [(0, 0), (32, 0)]
    """
    owner = "tile_corners"
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{owner}: expected a mask with 2 dims (H, W), got {mask.ndim}")
    if not 1 <= size <= min(mask.shape):
        raise ValueError(f"{owner}: expected size from 1 to {min(mask.shape)}, got {size}")
    if not 0 < min_coverage <= 1:
        raise ValueError(f"{owner}: expected min_coverage in (0, 1], got {min_coverage}")
    stride = size // 2 or 1 if stride is None else stride
    covered = mask.astype(float)
    corners = []
    for row in range(0, mask.shape[0] - size + 1, stride):
        for col in range(0, mask.shape[1] - size + 1, stride):
            if covered[row : row + size, col : col + size].mean() >= min_coverage:
                corners.append((row, col))
    return corners


def _check_forecast(forecast: np.ndarray, truth: np.ndarray, owner: str) -> None:
    if forecast.ndim != 4 or forecast.shape != truth.shape:
        raise ValueError(
            f"{owner}: expected forecast and truth of one shape (S, K, H, W), got "
            f"{tuple(forecast.shape)} and {tuple(truth.shape)}"
        )


def nowcast_counts(
    forecast: np.ndarray,
    truth: np.ndarray,
    *,
    thresholds: Sequence[float],
    scales: Sequence[int],
    valid: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    r"""Per start and lead, what :mod:`pysteps.verification` accumulates to score a forecast.

    For every start time :math:`s` and lead :math:`k`: the contingency table of rain above each
    threshold (``det_cat_fct_init`` / ``det_cat_fct_accum``), the three sums behind the
    fractions skill score at each threshold and scale (``fss_init`` / ``fss_accum``), and the
    MSE in mm/h (``det_cont_fct``). Kept per start, so that :func:`score_nowcasts` can pool any
    resample of the starts and let pysteps compute the scores from the pooled tables. Cells
    outside ``valid`` are left out of every score (set to NaN, which pysteps ignores), so that
    several forecasts are scored on one common set of cells.

    Args:
        forecast: array of shape :math:`(S, K, H, W)`, rain rate in mm/h.
        truth: array of the same shape, the observed rain rate in mm/h (NaN outside coverage).
        thresholds: The rain rates, in mm/h, each above 0.
        scales: The neighbourhood sides of the FSS, in cells.
        valid: bool array broadcastable to :math:`(S, K, H, W)`, the cells to score.
            Default: ``None`` (every cell where both are finite)

    Returns:
        A dict of arrays, by name. ``hits``, ``misses``, ``false_alarms``, ``correct_negatives`` and
        ``observed`` (cells above the threshold in the truth), each :math:`(S, K, N_{thr})`;
        ``sum_fct_sq``, ``sum_fct_obs``, ``sum_obs_sq``, each
        :math:`(S, K, N_{thr}, N_{scale})`; ``mse`` :math:`(S, K)`; ``cells`` :math:`(S, K)`,
        the cells scored.
    """
    owner = "nowcast_counts"
    forecast = np.asarray(forecast, dtype=float)
    truth = np.asarray(truth, dtype=float)
    _check_forecast(forecast, truth, owner)
    thresholds = [_threshold(t, "every threshold", owner) for t in thresholds]
    if not thresholds or not scales:
        raise ValueError(f"{owner}: expected at least one threshold and one scale")
    keep = np.isfinite(forecast) & np.isfinite(truth)
    if valid is not None:
        keep &= np.broadcast_to(np.asarray(valid, dtype=bool), forecast.shape)
    forecast = np.where(keep, forecast, np.nan)
    truth = np.where(keep, truth, np.nan)
    verification = _pysteps().verification
    starts, leads = forecast.shape[:2]
    n_thr, n_scale = len(thresholds), len(scales)
    out = {key: np.zeros((starts, leads, n_thr)) for key in (*_CATEGORICAL, "observed")}
    out.update({key: np.zeros((starts, leads, n_thr, n_scale)) for key in _FSS})
    out["mse"] = np.zeros((starts, leads))
    out["cells"] = keep.sum(axis=(2, 3)).astype(float)
    for s in range(starts):
        for k in range(leads):
            pred, obs = forecast[s, k], truth[s, k]
            out["mse"][s, k] = verification.det_cont_fct(pred, obs, scores="MSE")["MSE"]
            for t, threshold in enumerate(thresholds):
                table = verification.det_cat_fct_init(threshold)
                verification.det_cat_fct_accum(table, pred, obs)
                for key in _CATEGORICAL:
                    out[key][s, k, t] = table[key]
                out["observed"][s, k, t] = np.nansum(obs >= threshold)
                for j, scale in enumerate(scales):
                    sums = verification.fss_init(threshold, scale)
                    verification.fss_accum(sums, pred, obs)
                    for key in _FSS:
                        out[key][s, k, t, j] = sums[key]
    return out


def score_nowcasts(
    counts: Mapping[str, Mapping[str, np.ndarray]],
    *,
    thresholds: Sequence[float],
    scales: Sequence[int],
    block_length: int,
    reference: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
):
    r"""Scores by lead time for several forecasts, pooled over start times, with intervals.

    CSI, POD and FAR at every threshold and the FSS at every threshold and scale are computed
    by :func:`pysteps.verification.det_cat_fct_compute` and
    :func:`pysteps.verification.fss_compute` from the tables of :func:`nowcast_counts`
    summed over the starts; the MSE is the mean of the starts' MSE. The interval of each is
    the percentile interval over circular block-bootstrap resamples of the starts
    (:func:`~convlstm_lib.block_bootstrap_indices`), the same resamples for every forecast, so
    that with ``reference`` the differences from it are paired.

    Args:
        counts: :func:`nowcast_counts` of every forecast, by name, over the same starts.
        thresholds: The thresholds the counts were made with, in mm/h.
        scales: The FSS scales the counts were made with, in cells.
        block_length: The starts in one bootstrap block.
        reference: A forecast in ``counts`` to subtract from every other one, adding rows
            named ``"<name> - <reference>"``. Default: ``None``
        confidence: The confidence level, in :math:`(0, 1)`. Default: ``0.95``
        n_resamples: The number of resamples. Default: ``2000``
        seed: The seed of the resampling. Default: ``0``

    Returns:
        A :class:`pandas.DataFrame` with one row per forecast, score, threshold, scale and lead:
        columns ``forecast``, ``score`` (``"CSI"``, ``"POD"``, ``"FAR"``, ``"FSS"``,
        ``"MSE"``), ``threshold`` (NaN for MSE), ``scale`` (FSS only, else NaN), ``lead``
        (1 for the first forecast frame), ``value``, ``low``, ``high``; and, for CSI, POD and
        FAR, ``observed``, the observed cells above the threshold over all starts.
    """
    import pandas as pd

    owner = "score_nowcasts"
    if not counts:
        raise ValueError(f"{owner}: expected the counts of at least one forecast")
    if reference is not None and reference not in counts:
        raise ValueError(f"{owner}: expected reference among {sorted(counts)}, got {reference!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"{owner}: expected confidence in (0, 1), got {confidence}")
    shapes = {name: c["mse"].shape for name, c in counts.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{owner}: expected counts over the same starts and leads, got {shapes}")
    starts, leads = next(iter(shapes.values()))
    verification = _pysteps().verification
    rows = block_bootstrap_indices(
        starts, block_length=block_length, n_resamples=n_resamples, seed=seed
    ).numpy()
    every = np.arange(starts)[None]  # (1, S): the point estimate pools all starts
    samples = np.concatenate([every, rows])  # (1 + R, S)

    def scores(c: Mapping[str, np.ndarray]) -> dict[tuple, np.ndarray]:
        found = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            table = {key: c[key][samples].sum(axis=1) for key in _CATEGORICAL}  # (1+R, K, T)
            for name, value in verification.det_cat_fct_compute(
                table, scores=["CSI", "POD", "FAR"]
            ).items():
                for t in range(len(thresholds)):
                    found[(name, thresholds[t], np.nan)] = value[..., t]  # (1+R, K)
            sums = {key: c[key][samples].sum(axis=1) for key in _FSS}  # (1+R, K, T, N)
            fss = verification.fss_compute(sums)
            for t in range(len(thresholds)):
                for j in range(len(scales)):
                    found[("FSS", thresholds[t], scales[j])] = fss[..., t, j]
        found[("MSE", np.nan, np.nan)] = c["mse"][samples].mean(axis=1)
        return found

    computed = {name: scores(c) for name, c in counts.items()}
    if reference is not None:
        for name in list(counts):
            if name != reference:
                computed[f"{name} - {reference}"] = {
                    key: value - computed[reference][key] for key, value in computed[name].items()
                }
    tail = 100 * (1 - confidence) / 2
    records = []
    for name, found in computed.items():
        for (score, threshold, scale), value in found.items():
            with warnings.catch_warnings():
                # A lead with no rain above a threshold has no FAR in any resample: NaN.
                warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                low, high = np.nanpercentile(value[1:], [tail, 100 - tail], axis=0)
            observed = None
            if score in ("CSI", "POD", "FAR"):
                t = list(thresholds).index(threshold)
                source = counts[name] if name in counts else counts[reference]
                observed = source["observed"][:, :, t].sum(axis=0)  # (K,)
            for k in range(leads):
                records.append(
                    {
                        "forecast": name,
                        "score": score,
                        "threshold": threshold,
                        "scale": scale,
                        "lead": k + 1,
                        "value": value[0, k],
                        "low": low[k],
                        "high": high[k],
                        "observed": np.nan if observed is None else observed[k],
                    }
                )
    return pd.DataFrame.from_records(records)
