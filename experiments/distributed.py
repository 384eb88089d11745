"""One training step for one process or many: DistributedDataParallel under ``torchrun``.

Every training script in ``experiments/`` runs unchanged on one process::

    python -m experiments.explainer --variant k3_l1 --threads 1

and on several, one per core, GPU or machine, launched by PyTorch's ``torchrun``::

    torchrun --standalone --nproc_per_node=2 -m experiments.explainer --variant k3_l1 --threads 1
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \
        --rdzv_endpoint=HOST:29400 -m experiments.nowcasting --device cuda   # on each node

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in every process; :class:`Ranks`
reads them, joins the process group (gloo on the CPU, nccl on CUDA, one GPU per process) and
wraps the step in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages the
gradients over the processes in the backward pass. With none of them set it is one process and
changes nothing.

The data is split so that N processes compute what one process computes: every rank draws the
same global batch from the same seed and keeps its own contiguous slice (:meth:`Ranks.shard`),
so drawing the data repeats on every rank while the model's work divides. With losses that are
means over equal slices (or :meth:`Ranks.global_mean` for masked ones), the averaged gradient
is the one-process gradient of the whole batch, and after the same steps the parameters are
equal up to float rounding (``tests/test_distributed.py`` checks it with 2 processes). Only rank
0 logs, shows a progress bar, validates and writes the checkpoint, in the one-process format.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Objective", "Ranks", "add_arguments", "backend_for"]


def backend_for(device: torch.device) -> str:
    """The process group's backend for a device: nccl for CUDA, gloo for everything else."""
    return "nccl" if device.type == "cuda" else "gloo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every training script shares: where it trains and what it saves."""
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="cpu",
        help="where to train (auto: CUDA if there is one); under torchrun, one GPU per process",
    )
    parser.add_argument(
        "--float32-weights",
        action="store_true",
        help="save float32 weights (default float16, to keep the repository small)",
    )


class Objective(nn.Module):
    """A model and its training loss as one module, whose ``forward(batch)`` is the loss.

    :class:`~torch.nn.parallel.DistributedDataParallel` reduces gradients only for what runs
    through the ``forward`` of the module it wraps; a loss that calls another method of the
    model (``predict_every_step``) or a function around it (``residual_forecast``) runs here.
    """

    def __init__(self, model: nn.Module, loss: Callable[[nn.Module, Tensor], Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Tensor) -> Tensor:
        return self.loss(self.model, batch)


class Ranks:
    """This process's place among the training processes, from torchrun's environment.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available). On CUDA, process
            ``LOCAL_RANK`` of a machine takes its GPU of that number. Default: ``"cpu"``

    Attributes:
        rank, world_size, local_rank: from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
            (``0``, ``1``, ``0`` without torchrun).
        device: the :class:`torch.device` this process trains on.
        is_main: whether this is rank 0, the one that logs and saves.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_main = self.rank == 0
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            if not torch.cuda.is_available():
                raise SystemExit("--device cuda: torch sees no CUDA device here")
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device(device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend_for(self.device))

    def __repr__(self) -> str:
        return f"Ranks(rank={self.rank}, world_size={self.world_size}, device={self.device})"

    def wrap(self, objective: Objective) -> nn.Module:
        """The objective on this process's device, under DDP when there are several processes."""
        objective = objective.to(self.device)
        if self.world_size == 1:
            return objective
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(objective, device_ids=ids)

    def shard(self, batch: Tensor) -> Tensor:
        """This rank's contiguous slice of a global batch, on its device."""
        size, parts = len(batch), self.world_size
        if size % parts:
            raise SystemExit(
                f"--batch-size: the global batch must split evenly over {parts} processes, "
                f"got {size}"
            )
        share = size // parts
        return batch[self.rank * share : (self.rank + 1) * share].to(self.device)

    def global_mean(self, total: Tensor, count: Tensor) -> Tensor:
        """A loss ``total / count`` over the global batch, from this rank's ``total`` and ``count``.

        DDP averages gradients over the ranks; dividing this rank's sum by the global count
        and multiplying by the number of ranks makes that average the gradient of the whole
        batch's masked mean (the rank's own ``total / count`` would weight every rank alike,
        however many cells it covers).
        """
        if self.world_size == 1:
            return total / count
        count = count.detach().clone()
        dist.all_reduce(count)
        return total * self.world_size / count

    def mean(self, value: float) -> float:
        """The mean of a number (a step's loss) over the ranks, for the log."""
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.item() / self.world_size

    def close(self) -> None:
        """Leave the process group (when there is one)."""
        if dist.is_initialized():
            dist.destroy_process_group()
