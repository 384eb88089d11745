"""convlstm_lib.radar: the committed radar dataset, its splits, windows, transforms and scores."""

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convlstm_lib import (
    block_bootstrap_indices,
    dbr_to_rain,
    load_radar,
    nowcast_counts,
    rain_to_dbr,
    read_frames,
    score_nowcasts,
    split_by_event,
    tile_corners,
    window_starts,
)
from convlstm_lib.files import _read_registry
from convlstm_lib.radar import DATASET, _pysteps

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT.parent / "shared" / "data" / "pysteps-data"
verification = _pysteps().verification


# --- the dataset -----------------------------------------------------------------------------


def test_the_committed_dataset_holds_three_whole_events_at_4_km():
    events = load_radar()
    assert list(events) == ["fmi_2016-09-28", "fmi_2017-05-09", "knmi_2010-08-26"]
    for event in events.values():
        steps = np.diff(event.times).astype("timedelta64[m]").astype(int)
        assert (steps == 5).all() and len(event) == event.info["frames"]
        assert event.rain.dtype == np.float32 and event.rain.shape[1:] == tuple(event.info["shape"])
        # Coverage is the same in every frame, and the rain inside it is never negative.
        assert (np.isfinite(event.rain) == event.mask).all()
        assert np.nanmin(event.rain) == 0 and 3900 < event.info["cell_m"] < 4100
        assert "CC BY 4.0" in event.info["licence"]


def test_a_missing_or_foreign_file_is_refused_with_a_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_radar_dataset"):
        load_radar(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", rain=np.zeros(3))
    with pytest.raises(ValueError, match="'events' entry"):
        load_radar(tmp_path / "other.npz")


@pytest.mark.skipif(not RAW.is_dir(), reason="the raw pysteps-data folder is not beside the clone")
@pytest.mark.skipif(importlib.util.find_spec("pysteps") is None, reason="needs pysteps")
def test_the_tool_re_derives_the_committed_file_byte_for_byte(tmp_path):
    out = tmp_path / "radar.npz"
    subprocess.run(
        [sys.executable, "tools/make_radar_dataset.py", "--raw", str(RAW), "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == _read_registry()[DATASET]


# --- frames of your own ----------------------------------------------------------------------


def test_read_frames_reads_numpy_and_netcdf_alike(tmp_path):
    import xarray

    rain = np.random.default_rng(0).gamma(0.5, 2.0, (5, 6, 7)).astype(np.float32)
    rain[:, 0, 0] = np.nan
    np.save(tmp_path / "a.npy", rain)
    np.savez(tmp_path / "b.npz", rain=rain, other=rain[:1])
    xarray.Dataset({"rain": (("time", "y", "x"), rain)}).to_netcdf(tmp_path / "c.nc")
    for name, variable in (("a.npy", None), ("b.npz", "rain"), ("c.nc", None)):
        np.testing.assert_array_equal(read_frames(tmp_path / name, variable=variable), rain)
    with pytest.raises(ValueError, match=r"holds \['rain', 'other'\]; pass variable="):
        read_frames(tmp_path / "b.npz")
    with pytest.raises(ValueError, match="expected a variable 'rate'"):
        read_frames(tmp_path / "c.nc", variable="rate")
    np.save(tmp_path / "d.npy", rain[0])
    with pytest.raises(ValueError, match=r"expected frames with 3 dims \(T, H, W\), got shape"):
        read_frames(tmp_path / "d.npy")
    (tmp_path / "e.csv").write_text("1")
    with pytest.raises(ValueError, match=r"expected a \.npy, \.npz or \.nc file, got e\.csv"):
        read_frames(tmp_path / "e.csv")
    with pytest.raises(FileNotFoundError, match="no file at"):
        read_frames(tmp_path / "f.npy")


# --- transforms ------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.1, 0.5])
def test_dbr_is_pysteps_db_transform(threshold):
    from pysteps.utils import transformation

    rain = np.random.default_rng(1).gamma(0.4, 3.0, (20, 20))
    rain[rain < 0.3] = 0
    rain[0] = np.nan
    expected, _ = transformation.dB_transform(rain, threshold=threshold)
    np.testing.assert_allclose(rain_to_dbr(rain, threshold=threshold), expected)
    back = dbr_to_rain(rain_to_dbr(rain, threshold=threshold), threshold=threshold)
    wet = rain >= threshold
    np.testing.assert_allclose(back[wet], rain[wet])
    assert (back[~wet & np.isfinite(rain)] == 0).all() and np.isnan(back[0]).all()


@pytest.mark.parametrize("function", [rain_to_dbr, dbr_to_rain])
def test_a_threshold_must_be_a_positive_rate(function):
    with pytest.raises(ValueError, match=r"expected threshold > 0 \(mm/h\), got -1"):
        function(np.ones(3), threshold=-1)
    with pytest.raises(TypeError, match="expected threshold to be a number, got str"):
        function(np.ones(3), threshold="0.1")


# --- windows, splits, tiles ------------------------------------------------------------------


def test_windows_lie_inside_their_period():
    starts = window_starts(92, inputs=6, outputs=12, start=68)
    assert starts == list(range(68, 75))
    assert window_starts(18, inputs=6, outputs=12) == [0]
    with pytest.raises(
        ValueError,
        match="window of inputs . outputs = 18 frames to fit in the "
        r"period of 17 frames \(0 to 17\)",
    ):
        window_starts(17, inputs=6, outputs=12)
    with pytest.raises(ValueError, match="expected 0 <= start <= stop <= length=40"):
        window_starts(40, inputs=6, outputs=12, stop=41)
    with pytest.raises(TypeError, match="expected inputs to be an int, got float"):
        window_starts(40, inputs=6.0, outputs=12)


def test_the_split_holds_whole_events_out_and_keeps_a_window_between_train_and_validation():
    lengths = {"a": 40, "b": 92, "c": 40}
    split = split_by_event(lengths, test=["c"], validation={"b": 24}, window=18)
    assert split["test"] == {"c": (0, 40)} and "c" not in split["train"]
    (first, stop), (v_first, v_stop) = split["train"]["b"], split["validation"]["b"]
    assert v_first - stop >= 18 and v_stop == 92 and first == 0
    with pytest.raises(ValueError, match="expected events among"):
        split_by_event(lengths, test=["d"], validation={}, window=18)
    with pytest.raises(ValueError, match="expected test and validation events to differ"):
        split_by_event(lengths, test=["b"], validation={"b": 24}, window=18)
    with pytest.raises(ValueError, match="validation=60 leaves 14"):
        split_by_event(lengths, test=["c"], validation={"b": 60}, window=18)


def test_tiles_are_covered_enough():
    mask = np.zeros((40, 40), dtype=bool)
    mask[:20] = True
    assert tile_corners(mask, 20, stride=10) == [(0, 0), (0, 10), (0, 20)]
    assert len(tile_corners(mask, 20, stride=10, min_coverage=0.5)) == 6
    with pytest.raises(ValueError, match="expected size from 1 to 40, got 41"):
        tile_corners(mask, 41)
    with pytest.raises(ValueError, match=r"expected a mask with 2 dims \(H, W\), got 3"):
        tile_corners(mask[None], 4)


# --- scores ----------------------------------------------------------------------------------

THRESHOLDS, SCALES = (0.5, 2.0), (1, 5)


def _fields(seed=0, shape=(6, 3, 24, 24)):
    generator = np.random.default_rng(seed)
    truth = generator.gamma(0.6, 2.0, shape)
    forecast = np.clip(truth + generator.normal(0, 1.0, shape), 0, None)
    return forecast, truth


def test_counts_pooled_over_starts_give_pysteps_scores_of_the_pooled_fields():
    forecast, truth = _fields()
    counts = nowcast_counts(forecast, truth, thresholds=THRESHOLDS, scales=SCALES)
    table = score_nowcasts({"m": counts}, thresholds=THRESHOLDS, scales=SCALES, block_length=2)
    lead = 2
    for t, threshold in enumerate(THRESHOLDS):
        # One contingency table over every start's field at this lead, straight from pysteps.
        direct = verification.det_cat_fct(forecast[:, lead - 1], truth[:, lead - 1], threshold)
        row = table.query("score == 'CSI' and threshold == @threshold and lead == @lead")
        assert row["value"].item() == pytest.approx(direct["CSI"])
        assert row["observed"].item() == (truth[:, lead - 1] >= threshold).sum()
        fss = verification.fss_init(threshold, SCALES[1])
        for s in range(len(forecast)):
            verification.fss_accum(fss, forecast[s, lead - 1], truth[s, lead - 1])
        row = table.query("score == 'FSS' and threshold == @threshold and scale == 5 and lead == 2")
        assert row["value"].item() == pytest.approx(verification.fss_compute(fss))
        pooled = verification.det_cat_fct_init(threshold)
        verification.det_cat_fct_accum(pooled, forecast[:, lead - 1], truth[:, lead - 1])
        assert counts["hits"][:, lead - 1, t].sum() == pooled["hits"]
    mse = table.query("score == 'MSE' and lead == 1")["value"].item()
    assert mse == pytest.approx(((forecast[:, 0] - truth[:, 0]) ** 2).mean())
    assert (table["low"] <= table["value"] + 1e-12).all()
    assert (table["value"] <= table["high"] + 1e-12).all()


def test_a_perfect_forecast_scores_perfectly_and_cells_outside_valid_are_left_out():
    _, truth = _fields(1)
    valid = np.ones(truth.shape[-2:], dtype=bool)
    valid[:, :12] = False
    wrong = truth.copy()
    wrong[..., :12] += 10  # errors only where nothing is scored
    counts = nowcast_counts(wrong, truth, thresholds=THRESHOLDS, scales=SCALES, valid=valid)
    table = score_nowcasts({"m": counts}, thresholds=THRESHOLDS, scales=SCALES, block_length=1)
    assert (counts["cells"] == valid.sum()).all() and (counts["false_alarms"] == 0).all()
    for score, best in (("CSI", 1.0), ("POD", 1.0), ("FAR", 0.0), ("FSS", 1.0), ("MSE", 0.0)):
        assert np.allclose(table[table["score"] == score]["value"], best)


def test_differences_from_a_reference_are_paired():
    forecast, truth = _fields(2)
    a = nowcast_counts(forecast, truth, thresholds=THRESHOLDS, scales=SCALES)
    b = nowcast_counts(truth * 0.5, truth, thresholds=THRESHOLDS, scales=SCALES)
    table = score_nowcasts(
        {"a": a, "b": b},
        thresholds=THRESHOLDS,
        scales=SCALES,
        block_length=2,
        reference="b",
        n_resamples=500,
    )
    assert set(table["forecast"]) == {"a", "b", "a - b"}
    keys = ["score", "threshold", "scale", "lead"]
    merged = table[table.forecast == "a"].merge(table[table.forecast == "b"], on=keys)
    difference = table[table.forecast == "a - b"].merge(merged, on=keys)
    np.testing.assert_allclose(difference["value"], difference["value_x"] - difference["value_y"])
    same = score_nowcasts(
        {"a": a, "b": a},
        thresholds=THRESHOLDS,
        scales=SCALES,
        block_length=2,
        reference="b",
        n_resamples=200,
    )
    paired = same[same.forecast == "a - b"].dropna(subset=["value"])
    assert (paired[["value", "low", "high"]] == 0).all().all()  # the same resamples for both


def test_score_errors():
    forecast, truth = _fields()
    with pytest.raises(
        ValueError, match=r"expected forecast and truth of one shape \(S, K, H, W\)"
    ):
        nowcast_counts(forecast[0], truth[0], thresholds=THRESHOLDS, scales=SCALES)
    with pytest.raises(ValueError, match="expected every threshold > 0"):
        nowcast_counts(forecast, truth, thresholds=(0.0,), scales=SCALES)
    counts = nowcast_counts(forecast, truth, thresholds=THRESHOLDS, scales=SCALES)
    with pytest.raises(ValueError, match="expected reference among"):
        score_nowcasts(
            {"a": counts}, thresholds=THRESHOLDS, scales=SCALES, block_length=2, reference="b"
        )
    short = nowcast_counts(forecast[:3], truth[:3], thresholds=THRESHOLDS, scales=SCALES)
    with pytest.raises(ValueError, match="expected counts over the same starts and leads"):
        score_nowcasts(
            {"a": counts, "b": short}, thresholds=THRESHOLDS, scales=SCALES, block_length=2
        )


# --- the block bootstrap ---------------------------------------------------------------------


def test_block_resamples_are_runs_of_consecutive_starts():
    rows = block_bootstrap_indices(23, block_length=6, n_resamples=300, seed=1)
    assert rows.shape == (300, 23) and rows.dtype == torch.long
    steps = (rows[:, 1:] - rows[:, :-1]) % 23
    inside = torch.ones(22, dtype=torch.bool)
    inside[5::6] = False  # the joints between blocks
    assert (steps[:, inside] == 1).all()
    assert len(torch.unique(rows)) == 23  # every start can be drawn
    plain = block_bootstrap_indices(23, block_length=1, n_resamples=300, seed=1)
    assert ((plain[:, 1:] - plain[:, :-1]) % 23 != 1).any()


def test_longer_blocks_widen_the_interval_of_a_dependent_series():
    # A slowly varying series: neighbours are alike, so resampling single points understates
    # the uncertainty of its mean.
    series = torch.sin(torch.linspace(0, 3 * torch.pi, 60)) + 0.1 * torch.randn(60)

    def width(block):
        rows = block_bootstrap_indices(60, block_length=block, n_resamples=2000, seed=0)
        means = series[rows].mean(dim=1)
        return (means.quantile(0.975) - means.quantile(0.025)).item()

    assert width(15) > 1.5 * width(1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 1, "block_length": 1}, ValueError, "expected n >= 2, got 1"),
        ({"n": 5, "block_length": 6}, ValueError, "expected block_length from 1 to n=5, got 6"),
        ({"n": 5, "block_length": 2.0}, TypeError, "expected block_length to be an int"),
        ({"n": 5, "block_length": 2, "n_resamples": 0}, ValueError, "n_resamples >= 1"),
    ],
)
def test_block_bootstrap_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        block_bootstrap_indices(**kwargs)
