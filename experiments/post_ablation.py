"""From the post's recipe to the better one, one change at a time, over several seeds.

The training chapter (``notebooks/05_training_and_predictions.ipynb``) compares the post's recipe
with a better one that changes several things at once. This script measures each change alone:
every arm is the post's recipe with exactly one thing changed (the ``readout + bias`` arm is the
``readout`` arm with one more), trained for the same 100 epochs on the same 100 training movies,
from several seeds (the seed sets the initial weights and the batch order). Each run is scored on
every movie of the held-out lanes (:func:`convlstm_lib.all_beam_movies` with ``split="test"``),
none of which the training movies can be. Every arm from seeds 0, 1 and 2 (the default)::

    python -m experiments.post_ablation --threads 1

The committed log was written by up to four such processes at once, each given some arms and
seeds (``--arms``, ``--seeds``), one thread each, sharing 2 CPU cores with the training runs of
``experiments.forecasting``: its ``wall_seconds`` and ``epoch_seconds`` are not timings of one
run alone.

Every finished run appends one JSON line to ``<out>/post_ablation.jsonl`` (the arm, the seed,
the training loss of every epoch, the held-out MSE every 10 epochs and of every held-out movie at
the end, the seconds per epoch); runs already in the file are skipped, so an interrupted run
resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from convlstm_lib import (
    ConvLSTM,
    NextFramePredictor,
    all_beam_movies,
    fit,
    keep_freed_memory,
    make_beam_movies,
)

__all__ = ["ARMS", "build", "data", "main", "run_arm"]

# Each arm: what it changes from the post's recipe, as arguments of build() and fit().
POST = {"hidden": [64, 1], "readout": "hidden", "bias_init": False, "forget_bias": None}
POST_FIT = {"lr": 1e-3, "batch_size": None}
ARMS = {
    "post": ({}, {}),
    "readout": ({"hidden": [64], "readout": "conv"}, {}),
    "readout + bias": ({"hidden": [64], "readout": "conv", "bias_init": True}, {}),
    "width 8": ({"hidden": [8, 1]}, {}),
    "lr 2e-2": ({}, {"lr": 2e-2}),
    "batch 20": ({}, {"batch_size": 20}),
    "forget bias 1": ({"forget_bias": 1.0}, {}),
    "better": (
        {"hidden": [8], "readout": "conv", "bias_init": True},
        {"lr": 2e-2, "batch_size": 20},
    ),
}
EPOCHS = 100
EVAL_EVERY = 10


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chapter's 100 training movies and every held-out movie, as (inputs, last frame)."""
    movies = make_beam_movies(100, split="train", seed=0)  # (100, 6, 1, 24, 24)
    held_out = all_beam_movies(split="test")  # (156, 6, 1, 24, 24)
    return movies[:, :-1], movies[:, -1], held_out[:, :-1], held_out[:, -1]


def build(arm: str, seed: int, target_mean: float) -> NextFramePredictor:
    """The untrained model of ``arm`` from ``seed``."""
    options = {**POST, **ARMS[arm][0]}
    torch.manual_seed(seed)
    model = NextFramePredictor(
        ConvLSTM(1, options["hidden"], 3, forget_bias=options["forget_bias"]),
        readout=options["readout"],
    )
    if options["bias_init"]:
        # Start at the black-frame plateau: the head's sigmoid gives the fraction of lit pixels.
        with torch.no_grad():
            model.head.bias.fill_(torch.logit(torch.tensor(target_mean)).item())
    return model


def run_arm(arm: str, seed: int, *, epochs: int = EPOCHS, progress: bool = True) -> dict:
    """Train one arm from one seed; the record the log keeps."""
    x, y, held_x, held_y = data()
    model = build(arm, seed, y.mean().item())
    fit_kwargs = {**POST_FIT, **ARMS[arm][1]}
    history = fit(
        model,
        x,
        y,
        epochs=epochs,
        eval_data=(held_x, held_y),
        eval_every=EVAL_EVERY,
        seed=seed,
        progress=progress,
        desc=f"{arm}, seed {seed}",
        **fit_kwargs,
    )
    model.eval()
    with torch.no_grad():
        per_movie = (model(held_x) - held_y).pow(2).mean(dim=(1, 2, 3))  # (156,)
    return {
        "arm": arm,
        "seed": seed,
        "epochs": epochs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_loss": history.train_loss,
        "eval_epochs": history.eval_epochs,
        "eval_loss": history.eval_loss,
        "held_out_per_movie": per_movie.tolist(),
        "epoch_seconds": history.epoch_seconds,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.post_ablation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("experiments/checkpoints"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "post_ablation.jsonl"
    done = set()
    if path.exists():
        done = {(r["arm"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
    records = []
    for arm in args.arms:
        for seed in args.seeds:
            if (arm, seed) in done:
                continue
            start = time.perf_counter()
            record = run_arm(arm, seed, epochs=args.epochs)
            record["wall_seconds"] = time.perf_counter() - start
            # One line per run, appended as soon as it ends, in one write (two processes may share
            # the file).
            with path.open("a", buffering=1 << 22) as f:
                f.write(json.dumps(record) + "\n")
            records.append(record)
            final = record["eval_loss"][-1]
            print(f"{arm}, seed {seed}: held-out MSE {final:.6f} ({record['wall_seconds']:.0f} s)")
    return records


if __name__ == "__main__":
    main()
