"""Train a many-frame forecaster (ConvLSTM encoder-forecaster or FC-LSTM) and save it.

The chapter `notebooks/07_forecasting_many_frames.ipynb` loads what this writes. The exact runs
behind the committed checkpoints (one thread each, on 2 shared CPU cores)::

    python -m experiments.forecasting --dataset mnist --model convlstm --steps 1500 --threads 1
    python -m experiments.forecasting --dataset mnist --model fclstm --steps 1500 --threads 1
    python -m experiments.forecasting --dataset beams --model convlstm --steps 2000 --threads 1
    python -m experiments.forecasting --dataset beams --model fclstm --steps 2000 --threads 1

Training movies come from the training split only (Moving MNIST: the training digit images;
beams: the training lanes), drawn afresh for every pass; where the dataset has a validation
split (the validation digit images), the per-frame MSE on it is logged every ``--eval-every``
steps, the budget curve. The test split is used once, at the end.

Each writes ``<out>/<dataset>_<model>.pt`` (the configuration and float16 weights, loadable with
``torch.load(..., weights_only=True)``) and ``<out>/<dataset>_<model>.log`` (the command, the
losses, the validation curve, the held-out scores and the checkpoint's SHA-256).

The same command runs on several processes under ``torchrun`` (one per core or GPU, on one
machine or several), with DistributedDataParallel; see :mod:`experiments.distributed`::

    torchrun --standalone --nproc_per_node=2 -m experiments.forecasting ... --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from convlstm_lib import (
    FCLSTM,
    EncoderForecaster,
    frame_mse,
    from_patches,
    make_beam_movies,
    make_moving_mnist,
    persistence,
    to_patches,
)
from experiments.distributed import Objective, Ranks, add_arguments

__all__ = [
    "RunLog",
    "build_model",
    "end_training",
    "forecast",
    "main",
    "make_movies",
    "save_run",
    "sha256",
    "store_weights",
    "update",
]

# The data of each dataset: frame size, movie length, the split into inputs and targets, and
# the seeds of the fixed validation and test sets (training pools use --seed + step).
DATASETS = {
    "mnist": {
        "size": 64,
        "length": 20,
        "inputs": 10,
        "num_digits": 2,
        "val_seed": 1000,
        "test_seed": 2015,
    },
    "beams": {"size": 32, "length": 20, "inputs": 10, "test_seed": 2015},
}
SPLITS = {"mnist": ("train", "val", "test"), "beams": ("train", None, "test")}
# The default architecture of each model; --hidden overrides the hidden sizes.
MODELS = {
    "convlstm": {"hidden": [32, 32], "input_kernel": 3, "state_kernel": 3, "patch_size": 4},
    "fclstm": {"hidden": [128]},
}


def make_movies(config: dict, split: str, n: int, seed: int) -> Tensor:
    """Movies of shape (n, length, 1, size, size) of one split, for a checkpoint's ``config``."""
    if config["dataset"] == "mnist":
        return make_moving_mnist(
            n,
            length=config["length"],
            size=config["size"],
            num_digits=config["num_digits"],
            split=split,
            seed=seed,
        )
    return make_beam_movies(n, length=config["length"], size=config["size"], split=split, seed=seed)


def build_model(config: dict) -> nn.Module:
    """The untrained model a checkpoint's ``config`` describes."""
    if config["model"] == "convlstm":
        return EncoderForecaster(**config["model_kwargs"])
    return FCLSTM(**config["model_kwargs"])


def forecast(model: nn.Module, config: dict, inputs: Tensor, steps: int) -> Tensor:
    """Logits of the next ``steps`` frames, (B, K, 1, H, W), from inputs (B, T, 1, H, W)."""
    patch = config.get("patch_size")
    if patch is None:
        return model(inputs, steps)
    return from_patches(model(to_patches(inputs, patch), steps), patch)  # (B, K, 1, H, W)


def _predict(model: nn.Module, config: dict, movies: Tensor) -> Tensor:
    """Probabilities of the frames after the inputs, (N, K, 1, H, W), in chunks of 50."""
    t_in, device = config["inputs"], next(model.parameters()).device
    with torch.no_grad():
        chunks = [
            torch.sigmoid(
                forecast(model, config, movies[i : i + 50, :t_in].to(device), len(movies[0]) - t_in)
            ).cpu()
            for i in range(0, len(movies), 50)
        ]
    return torch.cat(chunks)  # (N, K, 1, H, W)


def _loss(model: nn.Module, batch: Tensor, *, config: dict, bf16: bool) -> Tensor:
    """The training loss: the cross-entropy of the forecast frames, bfloat16 convolutions if asked."""
    t_in = config["inputs"]
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = forecast(model, config, batch[:, :t_in], config["length"] - t_in)
    return F.binary_cross_entropy_with_logits(logits.float(), batch[:, t_in:])


def sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def update(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    loss: Tensor,
) -> float:
    """One training step of every script here on ``loss``: gradients clipped to norm 1, the
    optimiser and its schedule stepped. Returns the loss as a float."""
    optimiser.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimiser.step()
    schedule.step()
    return loss.item()


def store_weights(model: nn.Module, *, float32: bool = False) -> dict[str, Tensor]:
    """The state dict a script saves, float16 unless ``float32``, loaded back into ``model``.

    Float16 keeps the repository small; loading the saved weights back makes every score a
    script reports after training a score of what it saved.
    """
    dtype = torch.float32 if float32 else torch.float16
    state = {k: v.detach().cpu().to(dtype) for k, v in model.state_dict().items()}
    model.cpu().load_state_dict({k: v.float() for k, v in state.items()})
    return state


class RunLog:
    """What a training script prints (above its progress bar) and keeps for its log file.

    The first line is the command that reproduces the run, ``$ python -m <module> <argv>``,
    which a chapter's ``RETRAIN`` runs again. With ``enabled=False`` (every rank of a
    distributed run but the first) it prints and keeps nothing.
    """

    def __init__(self, module: str, argv: list[str] | None, *, enabled: bool = True) -> None:
        self.lines: list[str] = []
        self.enabled = enabled
        self(f"$ python -m {module} {shlex.join(sys.argv[1:] if argv is None else argv)}")

    def __call__(self, line: str) -> None:
        if self.enabled:
            tqdm.write(line)
            self.lines.append(line)

    def write(self, path: Path) -> None:
        if self.enabled:
            Path(path).write_text("\n".join(self.lines) + "\n")


def end_training(log: RunLog, ranks: Ranks, *, start: float, steps: int) -> bool:
    """Log the training time, leave the process group; whether this process goes on to save.

    Only rank 0 (the only process without torchrun) validates, scores and saves.
    """
    wall = time.perf_counter() - start
    log(f"training wall time: {wall:.0f} s")
    log(f"seconds per step: {wall / steps:.4f}")
    ranks.close()
    return ranks.is_main


def save_run(log: RunLog, config: dict, state: dict[str, Tensor], checkpoint: Path) -> None:
    """Save ``{"config", "state_dict"}`` to ``checkpoint``, its SHA-256 in the log, and the log
    beside it (the same name, ``.log``)."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": state}, checkpoint)
    log(f"checkpoint: {checkpoint.name}  sha256 {sha256(checkpoint)}")
    log.write(checkpoint.with_suffix(".log"))


def _config(args: argparse.Namespace) -> dict:
    data = DATASETS[args.dataset]
    arch = MODELS[args.model]
    hidden = args.hidden or arch["hidden"]
    config = {"dataset": args.dataset, "model": args.model, **data}
    config["splits"] = dict(zip(("train", "val", "test"), SPLITS[args.dataset], strict=True))
    frame = data["size"] * data["size"]
    if args.model == "convlstm":
        patch = arch["patch_size"]
        config["patch_size"] = patch
        config["model_kwargs"] = {
            "input_dim": patch * patch,
            "hidden_dims": hidden,
            "input_kernel_sizes": arch["input_kernel"],
            "state_kernel_sizes": arch["state_kernel"],
        }
    else:
        if len(hidden) != 1:
            hidden_dims = ", ".join(map(str, hidden))
            raise SystemExit(f"--hidden: the FC-LSTM takes one size, got {hidden_dims}")
        config["model_kwargs"] = {"input_size": frame, "hidden_size": hidden[0]}
    config["train"] = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "train_size": args.train_size,
        "lr": args.lr,
        "bf16": args.bf16,
        "seed": args.seed,
    }
    config["test_size"] = args.test_size
    config["val_size"] = args.val_size
    return config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.forecasting", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden sizes (default per model)")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--train-size", type=int, default=2000, help="movies per pool; a fresh pool each pass"
    )
    parser.add_argument("--test-size", type=int, default=200, help="held-out movies")
    parser.add_argument("--val-size", type=int, default=100, help="validation movies")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between validations")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's rate, cosine to 0")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("experiments/checkpoints"))
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Train one model as ``argv`` says; return its held-out per-frame MSE and the model's
    (``{}`` on every rank of a distributed run but the first, which alone scores and saves)."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ranks = Ranks(args.device)
    config = _config(args)
    name = f"{args.dataset}_{args.model}"
    splits = config["splits"]
    ckpt_path = args.out / f"{name}.pt"
    log = RunLog("experiments.forecasting", argv, enabled=ranks.is_main)
    log(f"config: {config}")
    log(f"processes: {ranks.world_size} on {ranks.device}")
    model = build_model(config)
    # Both models start at the mean frame: the head's bias is the logit of the mean pixel of
    # the training movies, so no steps go into learning that the background is black.
    mean = make_movies(config, splits["train"], 200, args.seed - 1).mean().item()
    with torch.no_grad():
        model.head.bias.fill_(torch.logit(torch.tensor(mean)).item())
    log(f"head bias: logit of the mean training pixel, {mean:.4f}")
    params = sum(p.numel() for p in model.parameters())
    log(f"model: {params:,} parameters")
    t_in = config["inputs"]
    steps_out = config["length"] - t_in
    objective = ranks.wrap(Objective(model, partial(_loss, config=config, bf16=args.bf16)))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    per_pool = max(1, args.train_size // args.batch_size)
    val = None
    if splits["val"] is not None and ranks.is_main:
        val = make_movies(config, splits["val"], args.val_size, DATASETS[args.dataset]["val_seed"])
    start = time.perf_counter()
    running = 0.0
    model.train()
    for step in tqdm(range(args.steps), desc=name, mininterval=2.0, disable=not ranks.is_main):
        if step % per_pool == 0:
            # A fresh pool of movies for every pass: the model never sees a movie twice. Every
            # rank draws the same pool and order, and trains on its slice of each batch.
            pool = make_movies(
                config, splits["train"], per_pool * args.batch_size, args.seed + step
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
        if val is not None and ((step + 1) % args.eval_every == 0 or step + 1 == args.steps):
            model.eval()
            score = frame_mse(_predict(model, config, val), val[:, t_in:]).mean().item()
            model.train()
            log(
                f"validation step {step + 1}  MSE {score:.5f}  ({time.perf_counter() - start:.0f} s)"
            )
    if not end_training(log, ranks, start=start, steps=args.steps):
        return {}

    # The scores below are of the saved weights (float16 unless --float32-weights).
    state = store_weights(model, float32=args.float32_weights)
    model.eval()
    test = make_movies(config, splits["test"], args.test_size, DATASETS[args.dataset]["test_seed"])
    prediction = _predict(model, config, test)  # (N, K, 1, H, W)
    mse = frame_mse(prediction, test[:, t_in:])
    base = frame_mse(persistence(test[:, :t_in], steps_out), test[:, t_in:])
    log("held-out MSE per horizon: " + " ".join(f"{v:.5f}" for v in mse.tolist()))
    log("persistence MSE:          " + " ".join(f"{v:.5f}" for v in base.tolist()))
    save_run(log, config, state, ckpt_path)
    return {"mse": mse, "persistence": base, "params": params}


if __name__ == "__main__":
    main()
