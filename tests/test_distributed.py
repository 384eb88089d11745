"""The training scripts under torchrun: 2 gloo processes train what 1 process trains."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import multiprocessing

from experiments import explainer, forecasting, nowcasting
from experiments.distributed import Ranks, backend_for

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _grid(tmp_path: Path) -> Path:
    # Coverage differs from tile to tile, so each rank's slice covers its own number of cells.
    rain = np.random.default_rng(0).gamma(0.5, 3.0, (30, 20, 18)).astype(np.float32)
    rain[:, :, :3] = np.nan
    path = tmp_path / "grid.npz"
    np.savez(path, rain=rain)
    return path


# Each script in a tiny configuration: its module, its arguments, the file it saves.
SCRIPTS = {
    "explainer": (
        explainer,
        "--variant k3_l2 --hidden 3 --steps 4 --batch-size 8 --pool 16 --val-size 20 --log-every 1",
        "explainer_k3_l2.pt",
    ),
    "forecasting": (
        forecasting,
        "--dataset mnist --model convlstm --hidden 3 2 --steps 3 --batch-size 4 "
        "--train-size 8 --test-size 3 --val-size 2 --log-every 1 --eval-every 2",
        "mnist_convlstm.pt",
    ),
    "nowcasting": (
        nowcasting,
        "--data {grid} --inputs 3 --outputs 2 --tile 8 --hidden 3 --steps 3 --batch-size 4 "
        "--eval-every 1 --name mine",
        "mine.pt",
    ),
}


def _losses(log: Path) -> list[float]:
    return [float(line.split()[3]) for line in log.read_text().splitlines() if " loss " in line]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_two_processes_train_the_parameters_of_one(name, tmp_path):
    module, arguments, saved = SCRIPTS[name]
    arguments = arguments.format(grid=_grid(tmp_path)).split()
    arguments += ["--threads", "1", "--float32-weights"]
    one, two = tmp_path / "one", tmp_path / "two"
    module.main([*arguments, "--out", str(one)])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [*TORCHRUN, "-m", module.__name__, *arguments, "--out", str(two)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Rank 0 alone logs and saves: one checkpoint and one log, in the one-process format.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    log = (two / saved).with_suffix(".log").read_text()
    assert (
        "processes: 2 on cpu" in log
        and "processes: 1 on cpu" in (one / saved).with_suffix(".log").read_text()
    )
    first = torch.load(one / saved, weights_only=True)
    second = torch.load(two / saved, weights_only=True)
    assert second["config"] == first["config"]
    torch.testing.assert_close(second["state_dict"], first["state_dict"], rtol=1e-4, atol=1e-5)
    # The logged loss is the mean over the ranks: the one-process loss of the whole batch.
    np.testing.assert_allclose(
        _losses((two / saved).with_suffix(".log")),
        _losses((one / saved).with_suffix(".log")),
        rtol=1e-4,
    )
    # What torchrun saved loads into the model a single process builds.
    model = module.build_model(second["config"])
    model.load_state_dict(second["state_dict"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_checks(rank: int, port: int, results) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )  # fmt: skip
    ranks = Ranks("cpu")
    batch = torch.arange(6.0)
    total = torch.tensor(10.0 * (rank + 1))  # rank 0 sums 10 over 1 cell, rank 1 20 over 3
    count = torch.tensor(1.0 + 2 * rank)
    results[rank] = (
        ranks.shard(batch).tolist(),
        ranks.mean(float(rank)),
        ranks.global_mean(total, count).item(),
    )
    ranks.close()


def test_each_rank_keeps_its_slice_and_the_ranks_agree_on_means():
    with multiprocessing.Manager() as manager:
        results = manager.dict()
        multiprocessing.spawn(_rank_checks, args=(_free_port(), results), nprocs=2)
        results = dict(results)
    assert results[0][0] == [0.0, 1.0, 2.0] and results[1][0] == [3.0, 4.0, 5.0]
    assert results[0][1] == results[1][1] == 0.5
    # DDP averages the two: (10 * 2 / 4 + 20 * 2 / 4) / 2 = 30 / 4, the whole batch's mean.
    assert (results[0][2] + results[1][2]) / 2 == 30 / 4


def test_one_process_needs_no_process_group():
    ranks = Ranks("cpu")
    assert (ranks.rank, ranks.world_size, ranks.is_main) == (0, 1, True)
    batch = torch.arange(5.0)
    assert torch.equal(ranks.shard(batch), batch)  # any size: nothing to split
    assert ranks.global_mean(torch.tensor(6.0), torch.tensor(4.0)).item() == 1.5
    assert not torch.distributed.is_initialized()


def test_backend_follows_the_device():
    assert backend_for(torch.device("cpu")) == "gloo"
    assert backend_for(torch.device("cuda", 1)) == "nccl"


def test_a_batch_that_does_not_split_evenly_is_refused():
    ranks = Ranks("cpu")
    ranks.world_size, ranks.rank = 3, 1  # as torchrun would set them, without a group
    with pytest.raises(SystemExit, match="split evenly over 3 processes, got 4"):
        ranks.shard(torch.zeros(4))
