"""Train the post's recipe in float32 and under bfloat16 autocast, and compare the two runs.

The training chapter (``notebooks/05_training_and_predictions.ipynb``) runs the post's 100 epochs
under bfloat16 autocast and checks only the first epochs against float32, because a float32 run
takes minutes on 2 CPU cores. This script runs both in full, from the same seed, on the same
movies, and prints the final training losses, their relative difference and the time per epoch::

    python -m experiments.post_precision             # both runs, about 5 minutes on 2 cores
    python -m experiments.post_precision --epochs 5  # a quick check
    python -m experiments.post_precision --log experiments/checkpoints/post_precision.json

Like the chapter, it calls :func:`convlstm_lib.keep_freed_memory` first. With ``--log`` it also
writes both runs' losses epoch by epoch, their times and the processor they ran on, as JSON:
the committed log is the one the chapter cites. bfloat16 is only fast on a processor with
bfloat16 instructions (AVX-512 BF16 or AMX); elsewhere oneDNN emulates it, about 25 s an epoch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics

import torch

from convlstm_lib import ConvLSTM, NextFramePredictor, fit, keep_freed_memory, make_beam_movies

__all__ = ["main", "train_post_recipe"]


def train_post_recipe(
    epochs: int, autocast_dtype: torch.dtype | None
) -> tuple[list[float], list[float]]:
    """The post's model and recipe, as the chapter runs it: the training loss and the seconds
    of every epoch."""
    movies = make_beam_movies(100, split="train", seed=0)  # (100, 6, 1, 24, 24)
    x, y = movies[:, :-1], movies[:, -1]  # (100, 5, 1, 24, 24), (100, 1, 24, 24)
    torch.manual_seed(0)
    model = NextFramePredictor(ConvLSTM(1, [64, 1], 3), readout="hidden")
    name = "float32" if autocast_dtype is None else f"autocast {autocast_dtype}"
    history = fit(model, x, y, epochs=epochs, lr=1e-3, autocast_dtype=autocast_dtype, desc=name)
    return history.train_loss, history.epoch_seconds


def _processor() -> dict[str, object]:
    """The processor's name and whether it has bfloat16 instructions."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass  # not Linux: platform's answer is the best there is
    return {
        "cpu_model": name,
        "threads": torch.get_num_threads(),
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported(),
        "amx": torch.cpu._is_amx_tile_supported(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each run")
    parser.add_argument("--log", help="write both runs, epoch by epoch, to this JSON file")
    args = parser.parse_args(argv)
    keep_freed_memory()
    result = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", None)):
        losses, seconds = train_post_recipe(args.epochs, dtype)
        result[name] = {
            "final_loss": losses[-1],
            "median_s_per_epoch": statistics.median(seconds),
            "total_s": sum(seconds),
            "train_loss": losses,
            "epoch_seconds": seconds,
        }
    result["relative_difference"] = result["bf16"]["final_loss"] / result["fp32"]["final_loss"] - 1
    for name in ("bf16", "fp32"):
        run = result[name]
        print(
            f"{name}: final training loss {run['final_loss']:.6f}, "
            f"{run['median_s_per_epoch']:.2f} s/epoch (median), {run['total_s']:.1f} s in all"
        )
    print(f"bf16 against fp32, final loss: {result['relative_difference']:+.1%}")
    if args.log:
        result["machine"] = {
            **_processor(),
            "date": datetime.date.today().isoformat(),
            "torch": torch.__version__,
        }
        with open(args.log, "w", encoding="utf-8") as log:
            json.dump(result, log, indent=1)
            log.write("\n")
    return result


if __name__ == "__main__":
    main()
