"""Train a ConvLSTM to nowcast radar rain (6 frames in, 12 out) and save it.

The chapter `notebooks/08_radar_nowcasting.ipynb` loads what this writes. The runs behind the
committed checkpoints (one thread each, the two side by side on 2 CPU cores)::

    python -m experiments.nowcasting --loss mse --steps 800 --threads 1
    python -m experiments.nowcasting --loss weighted --steps 800 --threads 1

Training reads the book's radar dataset (``data/radar_nowcasting.npz``) through
:func:`convlstm_lib.split_by_event`: the held-out event (FMI 2017-05-09) is never loaded here,
and validation is the last two hours of KNMI's event, one window after the last training window.
On your own grid, any ``(T, H, W)`` array of rain rates in mm/h (``.npy``, ``.npz`` or NetCDF,
NaN outside coverage; its last fifth is held out for validation)::

    python -m experiments.nowcasting --data my_rain.nc --variable rain --steps 2000

The model is the library's :class:`~convlstm_lib.EncoderForecaster` on 2x2 patches, and what it
forecasts is a *change* of the last input frame (its head starts at zero, so the untrained
model is Eulerian persistence). Frames enter as dBR (:func:`convlstm_lib.rain_to_dbr`) scaled to
about [0, 3], with a second channel that marks radar coverage; the loss is the MSE over covered
cells only. ``--loss weighted`` weights each cell by its observed rain rate, as Shi et al. (2017)
do for heavy rain (weight 1 below 2 mm/h, then 2, 5, 10, 30 from 2, 5, 10 and 30 mm/h).

Each run writes ``<out>/radar_<loss>.pt`` (configuration and float16 weights, loadable with
``torch.load(..., weights_only=True)``) and ``<out>/radar_<loss>.log`` (the command, losses,
the validation curve and the checkpoint's SHA-256).

The same command runs on several processes under ``torchrun`` (one per core or GPU, on one
machine or several), with DistributedDataParallel; see :mod:`experiments.distributed`::

    torchrun --standalone --nproc_per_node=2 -m experiments.nowcasting ... --threads 1
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from convlstm_lib import (
    EncoderForecaster,
    encode_rain,
    load_radar,
    nowcast_rain,
    read_frames,
    residual_forecast,
    split_by_event,
    tile_corners,
    window_starts,
)
from experiments.distributed import Objective, Ranks, add_arguments
from experiments.forecasting import RunLog, end_training, save_run, store_weights, update

__all__ = ["TEST_EVENTS", "VALIDATION", "build_model", "loss_weights", "main", "splits"]

TEST_EVENTS = ("fmi_2017-05-09",)
VALIDATION = {"knmi_2010-08-26": 24}  # its last 24 frames (2 hours)
WEIGHT_EDGES = (2.0, 5.0, 10.0, 30.0)  # mm/h, and the weights from each: Shi et al. (2017)
WEIGHT_VALUES = (1.0, 2.0, 5.0, 10.0, 30.0)


def loss_weights(rain: Tensor) -> Tensor:
    """Shi et al. (2017)'s weights of observed rain rates (mm/h): 1, 2, 5, 10, 30."""
    edges = torch.tensor(WEIGHT_EDGES, dtype=rain.dtype)
    values = torch.tensor(WEIGHT_VALUES, dtype=rain.dtype)
    return values[torch.bucketize(torch.nan_to_num(rain, nan=0.0), edges, right=True)]


def build_model(config: dict) -> EncoderForecaster:
    """The untrained model a checkpoint's ``config`` describes, its head at zero."""
    model = EncoderForecaster(**config["model_kwargs"])
    with torch.no_grad():
        # The head forecasts a change of the last frame: at zero, the model is persistence.
        model.head.weight.zero_()
        model.head.bias.zero_()
    return model


def splits(events: dict[str, int] | None = None, *, window: int) -> dict:
    """The book's split of its radar events (or of one grid of your own, named ``"data"``)."""
    if events is None or "data" not in events:
        lengths = events or {name: len(e) for name, e in load_radar().items()}
        return split_by_event(lengths, test=TEST_EVENTS, validation=VALIDATION, window=window)
    length = events["data"]
    # Your own grid: its last fifth (at least one window) validates; hold out a test of your own.
    return split_by_event(
        events, test=[], validation={"data": max(window, length // 5)}, window=window
    )


def _periods(source: dict[str, np.ndarray], split: dict[str, tuple[int, int]]) -> dict:
    return {name: source[name][first:stop] for name, (first, stop) in split.items()}


def _sample(
    periods: dict[str, np.ndarray], config: dict, generator: np.random.Generator
) -> np.ndarray:
    """One training window, (T, tile, tile): a random event, start, rainy tile and rotation."""
    window, size = config["inputs"] + config["outputs"], config["tile"]
    names = list(periods)
    counts = np.array([len(periods[n]) - window + 1 for n in names], dtype=float)
    name = names[generator.choice(len(names), p=counts / counts.sum())]
    frames = periods[name]
    corners = tile_corners(
        np.isfinite(frames).all(axis=0), size, stride=size // 4, min_coverage=config["min_coverage"]
    )
    for _ in range(20):
        # Most tiles of a radar domain are dry most of the time; a window whose inputs are
        # nearly all dry teaches little, so draw again (at most 20 times).
        start = generator.integers(len(frames) - window + 1)
        row, col = corners[generator.integers(len(corners))]
        tile = frames[start : start + window, row : row + size, col : col + size]
        if np.nanmean(tile[: config["inputs"]] >= 0.1) >= config["min_wet"]:
            break
    # Any of the 8 rotations and reflections: rain moves every way, the data has few events.
    tile = np.rot90(tile, k=generator.integers(4), axes=(1, 2))
    return np.ascontiguousarray(tile[:, :, ::-1] if generator.integers(2) else tile)


def _loss(model, batch: Tensor, *, config: dict, weighted: bool, ranks: Ranks) -> Tensor:
    """The (weighted) MSE over the covered cells of the whole global batch."""
    t_in = config["inputs"]
    x = encode_rain(batch)  # (B, T, 2, H, W)
    pred = residual_forecast(  # (B, K, H, W)
        model, x[:, :t_in], config["outputs"], patch_size=config["patch_size"]
    )
    target, covered = x[:, t_in:, 0], x[:, t_in:, 1]  # (B, K, H, W) each
    weight = covered * (loss_weights(batch[:, t_in:]) if weighted else 1.0)
    return ranks.global_mean((weight * (pred - target) ** 2).sum(), covered.sum())


def _validate(model, config, periods: dict[str, np.ndarray]) -> float:
    """Masked MSE of the scaled dBR over every validation window, (a number to watch)."""
    t_in, t_out = config["inputs"], config["outputs"]
    total, cells = 0.0, 0.0
    for frames in periods.values():
        starts = window_starts(len(frames), inputs=t_in, outputs=t_out)
        windows = np.stack([frames[s : s + t_in + t_out] for s in starts])
        pred = nowcast_rain(model, windows[:, :t_in], t_out, patch_size=config["patch_size"])
        target = encode_rain(windows[:, t_in:])
        value = encode_rain(pred)[:, :, 0]
        covered = target[:, :, 1]
        total += float((covered * (value - target[:, :, 0]) ** 2).sum())
        cells += float(covered.sum())
    return total / cells


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.nowcasting", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--loss", choices=("mse", "weighted"), default="weighted")
    parser.add_argument("--data", type=Path, help="your own (T, H, W) rain file (.npy/.npz/.nc)")
    parser.add_argument("--variable", help="the entry or variable of --data to read")
    parser.add_argument("--inputs", type=int, default=6, help="frames read")
    parser.add_argument("--outputs", type=int, default=12, help="frames forecast")
    parser.add_argument("--tile", type=int, default=64, help="training tile side, in cells")
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    parser.add_argument("--kernel", type=int, default=3, help="every layer's kernel side")
    parser.add_argument("--patch", type=int, default=2, help="patch side (to_patches)")
    parser.add_argument(
        "--dropout", type=float, default=0.0, help="variational dropout on every layer's input"
    )
    parser.add_argument(
        "--recurrent-dropout", type=float, default=0.0, help="... and on its hidden state"
    )
    parser.add_argument("--steps", type=int, default=800, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's rate, cosine to 0")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("experiments/checkpoints"))
    parser.add_argument("--name", help="the files' name (default radar_<loss>)")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Train as ``argv`` says; return the validation curve and the files written (``{}`` on
    every rank of a distributed run but the first, which alone validates and saves)."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ranks = Ranks(args.device)
    # The same on every rank: each draws the same windows and trains on its slice of them.
    generator = np.random.default_rng(args.seed)
    window = args.inputs + args.outputs
    if args.data is None:
        source = {name: event.rain for name, event in load_radar().items()}
        data = "the book's radar dataset"
    else:
        source = {"data": read_frames(args.data, variable=args.variable)}
        data = str(args.data)
    split = splits({n: len(v) for n, v in source.items()}, window=window)
    # The held-out events stay out of this process from here on.
    train, val = _periods(source, split["train"]), _periods(source, split["validation"])
    del source
    config = {
        "data": data,
        "split": split,
        "inputs": args.inputs,
        "outputs": args.outputs,
        "tile": args.tile,
        "patch_size": args.patch,
        "min_coverage": 0.75,
        "min_wet": 0.05,
        "loss": args.loss,
        "model_kwargs": {
            "input_dim": 2 * args.patch**2,
            "hidden_dims": args.hidden,
            "input_kernel_sizes": args.kernel,
            "state_kernel_sizes": args.kernel,
            "output_dim": args.patch**2,
            "dropout": args.dropout,
            "recurrent_dropout": args.recurrent_dropout,
        },
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
        },
    }
    name = args.name or f"radar_{args.loss}"
    ckpt_path = args.out / f"{name}.pt"
    log = RunLog("experiments.nowcasting", argv, enabled=ranks.is_main)
    log(f"config: {config}")
    log(f"processes: {ranks.world_size} on {ranks.device}")
    model = build_model(config)
    log(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    loss = partial(_loss, config=config, weighted=args.loss == "weighted", ranks=ranks)
    objective = ranks.wrap(Objective(model, loss))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    curve = []
    if ranks.is_main:
        curve.append((0, _validate(model, config, val)))
        log(f"validation step 0  MSE {curve[-1][1]:.5f}  (persistence)")
    start, running = time.perf_counter(), 0.0
    model.train()
    for step in tqdm(range(args.steps), desc=name, mininterval=2.0, disable=not ranks.is_main):
        batch = torch.as_tensor(
            np.stack([_sample(train, config, generator) for _ in range(args.batch_size)])
        )
        running += ranks.mean(update(objective, optimiser, schedule, objective(ranks.shard(batch))))
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            count = (step % args.eval_every) + 1
            log(
                f"step {step + 1}/{args.steps}  loss {running / count:.5f}  "
                f"({time.perf_counter() - start:.0f} s)"
            )
            running = 0.0
            if ranks.is_main:
                model.eval()
                curve.append((step + 1, _validate(model, config, val)))
                model.train()
                log(f"validation step {step + 1}  MSE {curve[-1][1]:.5f}")
    if not end_training(log, ranks, start=start, steps=args.steps):
        return {}
    state = store_weights(model, float32=args.float32_weights)
    save_run(log, config, state, ckpt_path)
    return {"curve": curve, "checkpoint": ckpt_path, "log": ckpt_path.with_suffix(".log")}


if __name__ == "__main__":
    main()
