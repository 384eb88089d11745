"""experiments.forecasting, in a tiny configuration, so the training script's path stays tested."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from experiments.forecasting import build_model, forecast, main, sha256

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--steps",
    "3",
    "--batch-size",
    "2",
    "--train-size",
    "4",
    "--test-size",
    "3",
    "--val-size",
    "2",
]


def test_script_writes_a_loadable_checkpoint_and_its_log(tmp_path):
    command = [sys.executable, "-m", "experiments.forecasting", "--dataset", "mnist"]
    command += [
        "--model",
        "convlstm",
        "--hidden",
        "3",
        "2",
        "--log-every",
        "1",
        "--eval-every",
        "2",
        *TINY,
    ]
    result = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    checkpoint, log = tmp_path / "mnist_convlstm.pt", tmp_path / "mnist_convlstm.log"
    text = log.read_text()
    assert text.splitlines()[0].startswith("$ python -m experiments.forecasting --dataset mnist")
    assert "step 3/3" in text and "held-out MSE per horizon" in text
    # The validation curve: after steps 2 and 3 (the last), on validation digits only.
    assert [line.split()[2] for line in text.splitlines() if line.startswith("validation")] == [
        "2",
        "3",
    ]
    assert f"sha256 {sha256(checkpoint)}" in text
    assert "mnist_convlstm" in result.stderr  # the progress bar
    saved = torch.load(checkpoint, weights_only=True)
    model = build_model(saved["config"])
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    assert saved["config"]["model_kwargs"]["hidden_dims"] == [3, 2]
    assert saved["config"]["splits"] == {"train": "train", "val": "val", "test": "test"}
    movies = torch.rand(1, 20, 1, 64, 64)
    assert forecast(model, saved["config"], movies[:, :10], 10).shape == (1, 10, 1, 64, 64)


def test_fclstm_run_reports_scores_of_the_saved_weights(tmp_path):
    scores = main(["--dataset", "beams", "--model", "fclstm", "--hidden", "8", *TINY,
                   "--out", str(tmp_path)])  # fmt: skip
    assert scores["mse"].shape == scores["persistence"].shape == (10,)
    assert scores["params"] == sum(
        p.numel()
        for p in build_model(torch.load(tmp_path / "beams_fclstm.pt")["config"]).parameters()
    )


def test_post_precision_compares_the_two_precisions(tmp_path):
    from experiments.post_precision import main as precision_main

    log = tmp_path / "post_precision.json"
    # turns keep_freed_memory on; conftest undoes it
    result = precision_main(["--epochs", "1", "--log", str(log)])
    for name in ("bf16", "fp32"):
        assert result[name]["final_loss"] > 0 and result[name]["total_s"] > 0
        assert result[name]["train_loss"] == [result[name]["final_loss"]]
        assert len(result[name]["epoch_seconds"]) == 1
    # One update from the same seed: bfloat16 convolutions with a float32 state barely move it.
    assert abs(result["relative_difference"]) < 0.01
    # The log holds the same runs, and says what they ran on.
    logged = json.loads(log.read_text())
    assert logged["bf16"] == result["bf16"] and logged["fp32"] == result["fp32"]
    assert set(logged["machine"]) == {"cpu_model", "threads", "avx512_bf16", "amx", "date", "torch"}


def test_beam_runs_train_on_the_training_lanes_and_test_on_the_others(tmp_path):
    main(
        ["--dataset", "beams", "--model", "fclstm", "--hidden", "4", *TINY, "--out", str(tmp_path)]
    )
    config = torch.load(tmp_path / "beams_fclstm.pt")["config"]
    assert config["splits"] == {"train": "train", "val": None, "test": "test"}
    assert "validation" not in (tmp_path / "beams_fclstm.log").read_text()


def test_post_ablation_arms_change_one_thing_each(tmp_path):
    from experiments.post_ablation import ARMS, POST, POST_FIT
    from experiments.post_ablation import main as ablation_main

    changed = {
        arm: [k for k, v in {**model, **fit}.items() if {**POST, **POST_FIT}[k] != v]
        for arm, (model, fit) in ARMS.items()
    }
    assert changed.pop("post") == [] and len(changed.pop("better")) > 2
    assert changed.pop("readout + bias") == ["hidden", "readout", "bias_init"]
    # hidden and readout change together: a conv head replaces the post's 1-channel last layer.
    assert all(len(keys) == 1 or keys == ["hidden", "readout"] for keys in changed.values())
    records = ablation_main(
        ["--arms", "width 8", "--seeds", "0", "--epochs", "2", "--out", str(tmp_path)]
    )
    assert (
        ablation_main(
            ["--arms", "width 8", "--seeds", "0", "--epochs", "2", "--out", str(tmp_path)]
        )
        == []
    )
    (record,) = records
    assert len(record["train_loss"]) == 2 and len(record["held_out_per_movie"]) == 156
    assert record["eval_epochs"] == [2]


def test_nowcasting_starts_as_persistence_and_trains_on_a_grid_of_your_own(tmp_path):
    import numpy as np

    from convlstm_lib import decode_rain, encode_rain, nowcast_rain
    from experiments import nowcasting

    rain = np.random.default_rng(0).gamma(0.5, 3.0, (30, 20, 18)).astype(np.float32)
    rain[:, :, :2] = np.nan  # outside coverage
    np.savez(tmp_path / "grid.npz", rain=rain)
    wet = np.isfinite(rain) & (rain >= 0.1)
    encoded = encode_rain(rain)  # (T, 2, H, W): scaled dBR, coverage
    assert encoded.shape == (30, 2, 20, 18) and (encoded[:, 1] == 0).sum() == 30 * 20 * 2
    back = decode_rain(encoded[:, 0])
    np.testing.assert_allclose(back[wet], rain[wet], rtol=1e-5)
    assert nowcasting.loss_weights(torch.tensor([0.0, 1.9, 2.0, 7.0, 50.0])).tolist() == [
        1,
        1,
        2,
        5,
        30,
    ]
    result = nowcasting.main(
        [
            "--data",
            str(tmp_path / "grid.npz"),
            "--inputs",
            "3",
            "--outputs",
            "2",
            "--tile",
            "8",
            "--hidden",
            "3",
            "--steps",
            "2",
            "--eval-every",
            "1",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
            "--name",
            "mine",
        ]
    )
    checkpoint = torch.load(result["checkpoint"], weights_only=True)
    config = checkpoint["config"]
    # The last fifth validates, a window after the last training window; there is no test.
    assert config["split"] == {
        "train": {"data": (0, 19)},
        "validation": {"data": (24, 30)},
        "test": {},
    }
    assert len(result["curve"]) == 3 and "sha256" in result["log"].read_text()
    # Untrained (head at zero), the model forecasts the last frame: Eulerian persistence.
    model = nowcasting.build_model(config)
    dry = np.nan_to_num(rain[None, :3, :, 2:])
    forecast = nowcast_rain(model, dry, 2, patch_size=config["patch_size"])
    expected = np.where(dry[:, -1:] < 0.1, 0, dry[:, -1:]).repeat(2, axis=1)
    np.testing.assert_allclose(forecast, expected, rtol=1e-5)


def test_explainer_script_trains_a_variant_the_chapter_can_load(tmp_path):
    from experiments.explainer import build_model as build_variant
    from experiments.explainer import main as explainer_main

    errors = explainer_main(
        ["--variant", "k3_l2", "--hidden", "2", "--steps", "3", "--batch-size", "2",
         "--pool", "4", "--val-size", "40", "--log-every", "1", "--out", str(tmp_path)]
    )  # fmt: skip
    checkpoint, log = tmp_path / "explainer_k3_l2.pt", tmp_path / "explainer_k3_l2.log"
    text = log.read_text()
    assert text.splitlines()[0] == (
        "$ python -m experiments.explainer --variant k3_l2 --hidden 2 --steps 3 --batch-size 2 "
        f"--pool 4 --val-size 40 --log-every 1 --out {tmp_path}"
    )
    assert "step 3/3" in text and f"sha256 {sha256(checkpoint)}" in text
    # Validation errors by speed, as the log records them, for the speeds the 40 movies have.
    logged = {
        int(line.split()[2].rstrip(":")): float(line.split()[4])
        for line in text.splitlines()
        if line.startswith("validation speed")
    }
    assert logged.keys() == errors.keys() and set(errors) <= {0, 1, 2, 3}
    for speed, error in errors.items():
        assert abs(logged[speed] - error) < 1e-4
    saved = torch.load(checkpoint, weights_only=True)
    model = build_variant(saved["config"])
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    assert model.convlstm.hidden_dims == [2, 2] and model.convlstm.kernel_sizes == [(3, 3)] * 2
    assert model.predict_every_step(torch.rand(1, 5, 1, 24, 24)).shape == (1, 5, 1, 24, 24)
