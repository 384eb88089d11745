"""experiments.forecasting, in a tiny configuration, so the training script's path stays tested."""

import subprocess
import sys
from pathlib import Path

import torch

from experiments.forecasting import build_model, forecast, main, sha256

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "3", "--batch-size", "2", "--train-size", "4", "--test-size", "3"]


def test_script_writes_a_loadable_checkpoint_and_its_log(tmp_path):
    command = [sys.executable, "-m", "experiments.forecasting", "--dataset", "digits"]
    command += ["--model", "convlstm", "--hidden", "3", "2", "--log-every", "1", *TINY]
    result = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    checkpoint, log = tmp_path / "digits_convlstm.pt", tmp_path / "digits_convlstm.log"
    text = log.read_text()
    assert text.splitlines()[0].startswith("$ python -m experiments.forecasting --dataset digits")
    assert "step 3/3" in text and "held-out MSE per horizon" in text
    assert f"sha256 {sha256(checkpoint)}" in text
    assert "digits_convlstm" in result.stderr  # the progress bar
    saved = torch.load(checkpoint, weights_only=True)
    model = build_model(saved["config"])
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    assert saved["config"]["model_kwargs"]["hidden_dims"] == [3, 2]
    movies = torch.rand(1, 20, 1, 32, 32)
    assert forecast(model, saved["config"], movies[:, :10], 10).shape == (1, 10, 1, 32, 32)


def test_fclstm_run_reports_scores_of_the_saved_weights(tmp_path):
    scores = main(["--dataset", "digits", "--model", "fclstm", "--hidden", "8", *TINY,
                   "--out", str(tmp_path)])  # fmt: skip
    assert scores["mse"].shape == scores["persistence"].shape == (10,)
    assert scores["params"] == sum(
        p.numel()
        for p in build_model(torch.load(tmp_path / "digits_fclstm.pt")["config"]).parameters()
    )


def test_post_precision_compares_the_two_precisions():
    from experiments.post_precision import main as precision_main

    result = precision_main(["--epochs", "1"])  # turns keep_freed_memory on; conftest undoes it
    for name in ("bf16", "fp32"):
        assert result[name]["final_loss"] > 0 and result[name]["total_s"] > 0
    # One update from the same seed: bfloat16 convolutions with a float32 state barely move it.
    assert abs(result["relative_difference"]) < 0.01
