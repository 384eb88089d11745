"""NextFramePredictor, fit, evaluate: readouts, shapes, learning on a tiny problem, errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from convlstm_lib import (
    ConvLSTM,
    FitHistory,
    NextFramePredictor,
    evaluate,
    fit,
    make_beam_movies,
    native_autocast_dtype,
)


def tiny_task(n=12, seed=0):
    movies = make_beam_movies(n, length=4, size=8, beam_length=3, translate=0.25, seed=seed)
    return movies[:, :-1], movies[:, -1]  # (N, 3, 1, 8, 8), (N, 1, 8, 8)


@pytest.mark.parametrize("batch_first", [True, False])
def test_hidden_readout_is_the_last_layers_final_hidden_state(batch_first):
    torch.manual_seed(0)
    convlstm = ConvLSTM(1, [4, 1], 3, batch_first=batch_first)
    model = NextFramePredictor(convlstm)
    x = torch.rand(2, 3, 1, 8, 8)
    if not batch_first:
        x = x.transpose(0, 1)
    _, last_states = convlstm(x)
    assert model.head is None
    assert_close(model(x), last_states[-1][0])
    assert model(x).shape == (2, 1, 8, 8)


def test_conv_readout_is_a_1x1_conv_and_sigmoid_over_the_hidden_state():
    torch.manual_seed(0)
    model = NextFramePredictor(ConvLSTM(1, [4, 5], 3), readout="conv", out_channels=2)
    x = torch.rand(3, 3, 1, 8, 8)
    h = model.convlstm(x)[1][-1][0]  # (3, 5, 8, 8)
    mixed = torch.einsum("oc,bchw->bohw", model.head.weight[:, :, 0, 0], h)  # (3, 2, 8, 8)
    expected = torch.sigmoid(mixed + model.head.bias[None, :, None, None])
    assert_close(model(x), expected)
    assert model(x).shape == (3, 2, 8, 8)
    assert "readout='conv', out_channels=2" in repr(model)


def test_predictor_errors():
    with pytest.raises(TypeError, match="NextFramePredictor: expected convlstm to be a ConvLSTM"):
        NextFramePredictor(nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="NextFramePredictor: expected readout 'hidden' or 'conv'"):
        NextFramePredictor(ConvLSTM(1, 1, num_layers=1), readout="linear")
    with pytest.raises(ValueError, match=r"hidden channels to equal out_channels=1 .* got 4"):
        NextFramePredictor(ConvLSTM(1, [4], 3))


@pytest.mark.parametrize("batch_size", [None, 5])
def test_fit_decreases_the_loss_and_records_every_epoch(batch_size):
    torch.manual_seed(0)
    x, y = tiny_task()
    held_x, held_y = tiny_task(6, seed=1)
    model = NextFramePredictor(ConvLSTM(1, [8], 3), readout="conv")
    initial = evaluate(model, held_x, held_y)
    history = fit(
        model,
        x,
        y,
        epochs=30,
        lr=1e-2,
        batch_size=batch_size,
        eval_data=(held_x, held_y),
        eval_every=7,
        progress=False,
    )
    assert isinstance(history, FitHistory)
    assert len(history.train_loss) == len(history.epoch_seconds) == 30
    assert history.eval_epochs == [7, 14, 21, 28, 30]
    assert len(history.eval_loss) == 5
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.eval_loss[-1] < 0.5 * initial
    assert_close(history.eval_loss[-1], evaluate(model, held_x, held_y), rtol=0, atol=1e-7)
    assert model.training


def test_full_batch_loss_is_the_loss_before_each_update():
    torch.manual_seed(0)
    x, y = tiny_task()
    model = NextFramePredictor(ConvLSTM(1, [1], 3))
    before = F.mse_loss(model(x), y).item()
    history = fit(model, x, y, epochs=2, progress=False)
    assert_close(history.train_loss[0], before)
    assert history.train_loss[1] != history.train_loss[0]


def test_fit_is_reproducible_and_leaves_the_global_random_state_alone():
    x, y = tiny_task()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = NextFramePredictor(ConvLSTM(1, [4], 3), readout="conv")
        history = fit(model, x, y, epochs=3, batch_size=4, seed=5, progress=False)
        runs.append((history.train_loss, torch.rand(3)))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_fit_under_bfloat16_autocast_keeps_float32_parameters():
    torch.manual_seed(0)
    x, y = tiny_task()
    model = NextFramePredictor(ConvLSTM(1, [8], 3), readout="conv")
    history = fit(model, x, y, epochs=10, lr=1e-2, autocast_dtype=torch.bfloat16, progress=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.train_loss[-1] < history.train_loss[0]
    float32 = evaluate(model, x, y)
    assert abs(evaluate(model, x, y, autocast_dtype=torch.bfloat16) - float32) < 0.1 * float32


def test_evaluate_restores_the_mode_and_weights_batches_by_size():
    model = nn.Conv2d(1, 1, 3, padding=1)
    x = torch.rand(10, 1, 8, 8)
    model.train()
    expected = F.mse_loss(model(x), x).item()
    assert_close(evaluate(model, x, x, batch_size=3), expected)
    assert model.training
    model.eval()
    evaluate(model, x, x)
    assert not model.training


def test_fit_accepts_an_optimizer_and_a_scheduler():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    x = torch.rand(8, 1, 6, 6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(
        model,
        x,
        x,
        epochs=3,
        batch_size=4,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=False,
    )
    assert scheduler.last_epoch == 6  # stepped after each of 2 batches x 3 epochs
    assert_close(optimizer.param_groups[0]["lr"], 0.1 * 0.5**6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "net"}, TypeError, "expected model to be an nn.Module, got str"),
        ({"inputs": [1.0]}, TypeError, "expected inputs to be a Tensor, got list"),
        ({"targets": torch.zeros(3, 1, 4, 4)}, ValueError, "same number of examples, got 4 and 3"),
        ({"inputs": torch.zeros(0, 1, 4, 4)}, ValueError, "at least one example along dim 0"),
        ({"epochs": 0}, ValueError, "expected epochs to be positive, got 0"),
        ({"lr": 0.0}, ValueError, "expected lr to be a positive number, got 0.0"),
        ({"batch_size": 0}, ValueError, "expected batch_size to be positive, got 0"),
        ({"batch_size": 2.5}, TypeError, "expected batch_size to be an int, got float"),
        ({"eval_every": 0}, ValueError, "expected eval_every to be positive, got 0"),
        ({"autocast_dtype": "bf16"}, TypeError, "expected autocast_dtype to be a torch.dtype"),
        ({"loss_fn": "mse"}, TypeError, "expected loss_fn to be callable, got str"),
        ({"eval_data": torch.zeros(4)}, TypeError, r"expected eval_data to be a pair \(inputs, "),
        (
            {"eval_data": (torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4))},
            ValueError,
            "expected eval_data inputs and targets with the same number of examples, got 2 and 3",
        ),
    ],
)
def test_fit_errors(kwargs, error, message):
    arguments = {
        "model": nn.Conv2d(1, 1, 1),
        "inputs": torch.zeros(4, 1, 4, 4),
        "targets": torch.zeros(4, 1, 4, 4),
        "epochs": 1,
        "progress": False,
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=f"fit: .*{message}"):
        fit(arguments.pop("model"), arguments.pop("inputs"), arguments.pop("targets"), **arguments)


def test_evaluate_errors():
    with pytest.raises(ValueError, match="evaluate: expected inputs and targets with the same"):
        evaluate(nn.Identity(), torch.zeros(2, 3), torch.zeros(3, 3))


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, torch.bfloat16), (False, True, torch.bfloat16), (False, False, None)],
)
def test_native_autocast_dtype_on_the_cpu(monkeypatch, avx512_bf16, amx, expected):
    # Emulated bfloat16 is slower than float32: only bfloat16 instructions make it pay.
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert native_autocast_dtype("cpu") is expected
    assert native_autocast_dtype(torch.device("cpu")) is expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_native_autocast_dtype_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert native_autocast_dtype("cuda") is expected
