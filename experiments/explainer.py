"""Train the next-frame models that chapter 06's page runs in the browser, and save them.

Each variant is a :class:`~convlstm_lib.NextFramePredictor` (one or two ConvLSTM layers of 16
channels, 3x3 or 5x5 kernels, a 1x1 convolution and a sigmoid as its readout) that predicts,
after every frame of a movie, the frame that comes next. It learns from movies of random
strokes (:func:`~convlstm_lib.make_moving_shapes`), each moving at its own velocity of up to
3 pixels per frame down and right (standing still and negative velocities included), so it must
infer every stroke's velocity from the frames. A fresh pool of movies is drawn for every pass,
so no movie is seen twice; the shapes the chapter tests on (beams, two beams, a disc) are never
strokes, by construction.

The runs behind the committed checkpoints (one thread each, on 2 shared CPU cores)::

    python -m experiments.explainer --variant k3_l1 --threads 1
    python -m experiments.explainer --variant k5_l1 --threads 1
    python -m experiments.explainer --variant k3_l2 --threads 1
    python -m experiments.explainer --variant k5_l2 --threads 1

Each writes ``<out>/explainer_<variant>.pt`` (the configuration and float16 weights, loadable
with ``torch.load(..., weights_only=True)``) and ``<out>/explainer_<variant>.log`` (the
command, the losses, the validation error by speed and the checkpoint's SHA-256).

The same command runs on several processes under ``torchrun`` (one per core or GPU, on one
machine or several), with DistributedDataParallel; see :mod:`experiments.distributed`::

    torchrun --standalone --nproc_per_node=2 -m experiments.explainer ... --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F
from tqdm.auto import tqdm

from convlstm_lib import ConvLSTM, NextFramePredictor, make_moving_shapes
from experiments.distributed import Objective, Ranks, add_arguments
from experiments.forecasting import RunLog, end_training, save_run, store_weights, update

__all__ = ["VARIANTS", "build_model", "main", "speed_errors"]

# The variants: layers and kernel side, 16 hidden channels each.
VARIANTS = {
    "k3_l1": {"num_layers": 1, "kernel_size": 3},
    "k5_l1": {"num_layers": 1, "kernel_size": 5},
    "k3_l2": {"num_layers": 2, "kernel_size": 3},
    "k5_l2": {"num_layers": 2, "kernel_size": 5},
}
# The movies: 6 frames of 24x24 like the post's beams, velocities up to 3 pixels a frame.
MOVIES = {"length": 6, "size": 24, "max_speed": 3}
VAL_SEED = 10**6  # training pools use seeds 0, 1, 2, ... (one per pass)


def build_model(config: dict) -> NextFramePredictor:
    """The untrained model a checkpoint's ``config`` describes."""
    hidden = [config["hidden"]] * config["num_layers"]
    convlstm = ConvLSTM(1, hidden, config["kernel_size"])
    return NextFramePredictor(convlstm, readout="conv")


def speed_errors(model: NextFramePredictor, movies: Tensor, velocities: Tensor) -> dict[int, float]:
    """Per speed (the larger of |down| and |right|), the last prediction's MSE over a black frame's.

    The prediction is that of the last frame from all frames before it, as
    ``model(movies[:, :-1])`` makes it; 0 is perfect, 1 as bad as predicting nothing.
    """
    with torch.no_grad():
        prediction = model(movies[:, :-1])  # (N, 1, H, W)
    target = movies[:, -1]  # (N, 1, H, W)
    error = (prediction - target).pow(2).flatten(1).mean(1)  # (N,)
    black = target.pow(2).flatten(1).mean(1)  # (N,)
    speed = velocities.abs().amax(dim=1)  # (N,)
    return {
        int(s): (error[speed == s].mean() / black[speed == s].mean()).item() for s in speed.unique()
    }


def _loss(model: NextFramePredictor, batch: Tensor) -> Tensor:
    # Every step's prediction is scored, so the page's model predicts after every frame.
    prediction = model.predict_every_step(batch[:, :-1])  # (B, T - 1, 1, H, W)
    return F.binary_cross_entropy(prediction, batch[:, 1:])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.explainer", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--hidden", type=int, default=16, help="hidden channels of every layer")
    parser.add_argument("--steps", type=int, default=1200, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pool", type=int, default=3200, help="movies per pass")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's peak rate (one cycle)")
    parser.add_argument("--val-size", type=int, default=1000, help="validation movies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("experiments/checkpoints"))
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Train one variant as ``argv`` says; return its validation error by speed (``{}`` on
    every rank of a distributed run but the first, which alone validates and saves)."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ranks = Ranks(args.device)
    config = {
        "variant": args.variant,
        **VARIANTS[args.variant],
        "hidden": args.hidden,
        "movies": MOVIES,
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "pool": args.pool,
            "lr": args.lr,
            "seed": args.seed,
            "pool_seeds": "seed * 1000 + pass",
        },
        "val_seed": VAL_SEED,
        "val_size": args.val_size,
    }
    name = f"explainer_{args.variant}"
    ckpt_path = args.out / f"{name}.pt"
    log = RunLog("experiments.explainer", argv, enabled=ranks.is_main)
    log(f"config: {config}")
    log(f"processes: {ranks.world_size} on {ranks.device}")
    model = build_model(config)
    # Start at the mean frame, as chapter 05's better recipe does: the head's bias is the logit
    # of the mean pixel, so no steps go into learning that the background is black.
    mean = make_moving_shapes(200, **MOVIES, seed=args.seed * 1000 + 999)[0].mean().item()
    with torch.no_grad():
        model.head.bias.fill_(torch.logit(torch.tensor(mean)).item())
    log(f"head bias: logit of the mean training pixel, {mean:.4f}")
    log(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    objective = ranks.wrap(Objective(model, _loss))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps)
    per_pool = max(1, args.pool // args.batch_size)
    start = time.perf_counter()
    running = 0.0
    model.train()
    for step in tqdm(range(args.steps), desc=name, mininterval=2.0, disable=not ranks.is_main):
        if step % per_pool == 0:
            # A fresh pool for every pass: the model never sees a movie twice. Every rank
            # draws the same pool and order, and trains on its slice of each batch.
            pool, _ = make_moving_shapes(
                per_pool * args.batch_size, **MOVIES, seed=args.seed * 1000 + step // per_pool
            )
            order = torch.randperm(len(pool))
        batch = pool[order[(step % per_pool) * args.batch_size :][: args.batch_size]]
        loss = objective(ranks.shard(batch))
        running += ranks.mean(update(objective, optimiser, schedule, loss))
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            count = (step % args.log_every) + 1
            elapsed = time.perf_counter() - start
            log(f"step {step + 1}/{args.steps}  loss {running / count:.5f}  ({elapsed:.0f} s)")
            running = 0.0
    if not end_training(log, ranks, start=start, steps=args.steps):
        return {}

    state = store_weights(model, float32=args.float32_weights)
    model.eval()
    val, val_velocities = make_moving_shapes(args.val_size, **MOVIES, seed=VAL_SEED)
    errors = speed_errors(model, val, val_velocities)
    for speed, error in errors.items():
        log(f"validation speed {speed}: MSE {error:.4f} of a black frame's")
    save_run(log, config, state, ckpt_path)
    return errors


if __name__ == "__main__":
    main()
