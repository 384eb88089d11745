"""Derive the radar chapter's dataset from the raw pysteps example composites.

Chapter 08 (`notebooks/08_radar_nowcasting.ipynb`) nowcasts real rain from one committed file,
``data/radar_nowcasting.npz``, which this script writes from the raw files of the public pysteps
example-data repository (``pySTEPS/pysteps-data``; a copy sits in ``../shared/data/pysteps-data``
beside the clone)::

    python tools/make_radar_dataset.py                      # write data/radar_nowcasting.npz
    python tools/make_radar_dataset.py --check              # exit 1 unless it re-derives the same bytes
    python tools/make_radar_dataset.py --raw DIR --out FILE

For every event it reads each file with the importer pysteps ships for that network (no parser of
our own), converts to rain rate in mm/h with ``pysteps.utils.conversion.to_rainrate`` (FMI's dBZ
through its Z-R relation, KNMI's 5-minute accumulations times 12), averages 4x4 blocks of the
1 km grid to 4 km cells with ``pysteps.utils.dimension.aggregate_fields`` (a cell outside radar
coverage as soon as one of its 16 pixels is), and stores:

* ``<event>/rain``: the frames, ``(T, H, W)`` uint16 in hundredths of mm/h, ``65535`` outside
  coverage (the loader turns it back into NaN). Rounding to 0.01 mm/h changes a rain rate by at
  most 0.005 mm/h; the script prints the largest change it made.
* ``<event>/time``: the frames' timestamps (UTC, ``datetime64[s]``), five minutes apart.
* ``events``: a JSON description of every event (network, institution, licence, projection, the
  cell size, the raw files' folder and the pysteps snapshot).

The zip archive is written with fixed timestamps, so the same raw files give the same bytes;
``tests/test_radar.py`` re-derives it when the raw folder is present and compares the SHA-256.
After changing the file, register it: ``python tools/register_files.py``.

MeteoSwiss's three events are left out. Their licence is not stated in the example-data
repository, and MeteoSwiss's open-data terms (free use, "Source: MeteoSwiss") cover the files
its open-data service publishes, which these 2015-2017 composites were not.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RAW = ROOT.parent / "shared" / "data" / "pysteps-data"
DEFAULT_OUT = ROOT / "data" / "radar_nowcasting.npz"
BLOCK = 4  # 1 km pixels per 4 km cell side
SCALE = 100  # stored unit: 0.01 mm/h
MISSING = np.iinfo(np.uint16).max

__all__ = ["BLOCK", "EVENTS", "MISSING", "SCALE", "derive", "main", "read_event", "write_npz"]

# The events, by the name the chapter uses. `source` is the pysteps data source (pystepsrc) whose
# file pattern and importer read the files; `folder` is relative to the raw repository.
EVENTS = {
    "fmi_2016-09-28": {
        "source": "fmi",
        "folder": "radar/fmi/pgm/20160928",
        "network": "FMI, the Finnish radar composite (lowest elevation)",
        "licence": "CC BY 4.0 (FMI open data); attribution: Finnish Meteorological Institute",
    },
    "fmi_2017-05-09": {
        "source": "fmi",
        "folder": "radar/fmi/pgm/20170509",
        "network": "FMI, the Finnish radar composite (lowest elevation)",
        "licence": "CC BY 4.0 (FMI open data); attribution: Finnish Meteorological Institute",
    },
    "knmi_2010-08-26": {
        "source": "knmi",
        "folder": "radar/KNMI/2010/08",
        "network": "KNMI, the Netherlands radar composite (5-min accumulation)",
        "licence": "CC BY 4.0 (KNMI Data Platform); attribution: Royal Netherlands "
        "Meteorological Institute (KNMI)",
    },
}


def _files(raw: Path, event: dict) -> tuple[list[Path], list[datetime]]:
    """The event's files in time order, with the timestamps their names carry."""
    import pysteps

    source = pysteps.rcparams.data_sources[event["source"]]
    folder = raw / event["folder"]
    files = sorted(folder.glob(f"*.{source['fn_ext']}"))
    if not files:
        raise FileNotFoundError(f"make_radar_dataset: no .{source['fn_ext']} files in {folder}")
    pattern = f"{source['fn_pattern']}.{source['fn_ext']}"
    times = [datetime.strptime(path.name, pattern) for path in files]
    return files, times


def read_event(raw: Path, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """One event as 4 km rain rates: ``(rain (T, H, W) float64 mm/h with NaN, times, info)``."""
    import pysteps
    from pysteps.utils import conversion, dimension

    event = EVENTS[name]
    source = pysteps.rcparams.data_sources[event["source"]]
    importer = pysteps.io.get_method(source["importer"], "importer")
    files, times = _files(raw, event)
    steps = {int((b - a).total_seconds()) for a, b in itertools.pairwise(times)}
    if steps != {60 * source["timestep"]}:
        raise ValueError(f"make_radar_dataset: {name} is not evenly spaced: steps {steps} s")
    frames = []
    for path in tqdm(files, desc=name, leave=False):
        field, _, metadata = importer(str(path), **source["importer_kwargs"])
        field, metadata = conversion.to_rainrate(field, metadata)
        frames.append(field)
    rain = np.stack(frames)  # (T, H1, W1) at 1 km
    # "mean" (not "nanmean"): a 4 km cell is covered only where all of its pixels are.
    rain = dimension.aggregate_fields(rain, BLOCK, axis=(1, 2), method="mean", trim=True)
    cell = BLOCK * metadata["xpixelsize"] * (1000.0 if metadata["cartesian_unit"] == "km" else 1)
    info = {
        "name": name,
        **{k: event[k] for k in ("network", "licence", "folder")},
        "institution": metadata["institution"],
        "projection": metadata["projection"],
        "cell_m": round(float(cell), 1),
        "step_min": source["timestep"],
        "importer": f"pysteps.io.import_{source['importer']}",
        "files": len(files),
    }
    return rain, np.array(times, dtype="datetime64[s]"), info


def _quantise(rain: np.ndarray) -> np.ndarray:
    stored = np.full(rain.shape, MISSING, dtype=np.uint16)
    covered = np.isfinite(rain)
    values = np.rint(np.clip(rain[covered], 0, None) * SCALE)
    if values.max(initial=0) >= MISSING:
        raise ValueError("make_radar_dataset: a rain rate is too large for uint16 storage")
    stored[covered] = values.astype(np.uint16)
    return stored


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """``np.savez_compressed``'s format with fixed zip timestamps, so the bytes reproduce."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, buffer.getvalue())


def derive(raw: Path, out: Path) -> dict:
    """Write the dataset from the raw folder; return a summary (sizes, rounding error)."""
    snapshot = (raw / "SNAPSHOT").read_text().split()[0] if (raw / "SNAPSHOT").exists() else ""
    arrays: dict[str, np.ndarray] = {}
    infos, rounding = [], 0.0
    for name in tqdm(EVENTS, desc="events"):
        rain, times, info = read_event(raw, name)
        stored = _quantise(rain)
        covered = stored != MISSING
        rounding = max(rounding, float(np.abs(stored[covered] / SCALE - rain[covered]).max()))
        arrays[f"{name}/rain"] = stored
        arrays[f"{name}/time"] = times
        infos.append({**info, "frames": int(rain.shape[0]), "shape": list(rain.shape[1:])})
    description = {"snapshot": f"pySTEPS/pysteps-data@{snapshot}", "events": infos}
    arrays["events"] = np.array(json.dumps(description, indent=1, sort_keys=True))
    write_npz(arrays, out)
    return {"bytes": out.stat().st_size, "rounding_mm_h": rounding, **description}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="the pysteps-data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the file to write")
    parser.add_argument(
        "--check", action="store_true", help="re-derive into a temporary file and compare bytes"
    )
    args = parser.parse_args(argv)
    if not args.raw.is_dir():
        parser.error(f"no raw folder at {args.raw} (pass --raw)")
    target = args.out.with_suffix(".check.npz") if args.check else args.out
    summary = derive(args.raw, target)
    for event in summary["events"]:
        print(f"{event['name']}: {event['frames']} frames of {event['shape']} cells")
    print(
        f"{target}: {summary['bytes'] / 1e6:.2f} MB, rounding at most "
        f"{summary['rounding_mm_h']:.4f} mm/h"
    )
    if args.check:
        same = (
            hashlib.sha256(target.read_bytes()).digest()
            == hashlib.sha256(args.out.read_bytes()).digest()
        )
        target.unlink()
        print("identical" if same else f"DIFFERENT from {args.out}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
