"""The options readers reach for on their own grids: padding modes, dilation, forget bias, dropout.

Each is written once, in ConvLSTMCell; ConvLSTM and EncoderForecaster pass it to every cell.
"""

import os

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from convlstm_lib import ConvLSTM, ConvLSTMCell, EncoderForecaster

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def top_outputs(model, x):
    return model(x)[0][-1]  # (B, T, C_hid, H, W)


# Padding modes ------------------------------------------------------------------------------


@pytest.mark.parametrize("precompute_input", [False, True])
def test_longitude_wrapping_stack_commutes_with_a_roll_along_the_width(precompute_input):
    torch.manual_seed(0)
    model = ConvLSTM(2, [4, 3], [3, 5], padding_mode="circular_width", precompute_input=False)
    model.precompute_input = precompute_input
    x = torch.randn(2, 3, 2, 7, 9)
    for shift in (1, 4, 8):
        assert_close(top_outputs(model, x.roll(shift, -1)), top_outputs(model, x).roll(shift, -1))
    # The height is zero-padded: no wrap between the poles.
    assert not torch.allclose(top_outputs(model, x.roll(2, -2)), top_outputs(model, x).roll(2, -2))


def test_circular_wraps_both_axes_and_zeros_wraps_none():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 1, 6, 8)
    circular = ConvLSTM(1, [3], 3, padding_mode="circular")
    assert_close(top_outputs(circular, x.roll((2, 3), (-2, -1))),
                 top_outputs(circular, x).roll((2, 3), (-2, -1)))  # fmt: skip
    zeros = ConvLSTM(1, [3], 3)
    assert not torch.allclose(top_outputs(zeros, x.roll(3, -1)), top_outputs(zeros, x).roll(3, -1))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "circular_width"])
@pytest.mark.parametrize("state_kernel_size", [None, 1])
def test_every_padding_mode_gives_the_same_result_on_every_path(mode, state_kernel_size):
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 3, state_kernel_size=state_kernel_size, padding_mode=mode)
    x = torch.randn(2, 4, 2, 5, 6)
    runs = []
    for precompute_input in (False, True):
        model = ConvLSTM(2, [3], 3, padding_mode=mode, precompute_input=precompute_input)
        model.cells[0] = cell
        runs.append(top_outputs(model, x))
    assert_close(runs[0], runs[1])
    state = None
    for t in range(4):  # the cell's own step, a step at a time
        state = cell(x[:, t], state)
        assert_close(runs[0][:, t], state[0])
    zeros = ConvLSTMCell(2, 3, 3, state_kernel_size=state_kernel_size)
    zeros.load_state_dict(cell.state_dict())
    assert not torch.allclose(zeros(x[:, 0])[0], cell(x[:, 0])[0])  # the border differs


def test_padding_mode_reaches_the_convolutions():
    assert ConvLSTMCell(1, 2, padding_mode="replicate").conv.padding_mode == "replicate"
    split = ConvLSTMCell(1, 2, 3, state_kernel_size=1, padding_mode="circular")
    assert split.conv_x.padding_mode == split.conv_h.padding_mode == "circular"
    model = EncoderForecaster(1, [2, 2], input_kernel_sizes=3, state_kernel_sizes=3,
                              padding_mode="circular_width")  # fmt: skip
    assert all(
        cell.padding_mode == "circular_width" for cell in (*model.encoder, *model.forecaster)
    )


# Dilation -----------------------------------------------------------------------------------


def test_dilation_of_the_input_kernel_only_splits_the_cell():
    cell = ConvLSTMCell(1, 2, 3, dilation=2)
    assert cell.conv is None and cell.conv_x.dilation == (2, 2) and cell.conv_h.dilation == (1, 1)
    both = ConvLSTMCell(1, 2, 3, dilation=(2, 3), state_dilation=(2, 3))
    assert both.conv is not None and both.conv.dilation == (2, 3)
    count = sum(p.numel() for p in cell.parameters())
    assert count == sum(p.numel() for p in ConvLSTMCell(1, 2, 3).parameters())


@pytest.mark.parametrize(("dilation", "reach"), [(1, 1), (2, 2), (3, 3)])
def test_a_dilated_kernel_reaches_dilation_times_half_the_kernel(dilation, reach):
    # One step from a zero state: which input pixels change the centre's output?
    torch.manual_seed(0)
    cell = ConvLSTMCell(1, 2, 3, dilation=dilation).double()
    x = torch.zeros(1, 1, 11, 11, dtype=torch.float64, requires_grad=True)
    cell(x)[0][0, :, 5, 5].sum().backward()
    seen = (x.grad[0, 0] != 0).nonzero()
    assert (seen - 5).abs().max().item() == reach


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("the parity tests copy weights between torch tensors")
    return keras


def keras_weight(variable):
    return torch.as_tensor(variable.numpy() if hasattr(variable, "numpy") else variable.value)


@pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
def test_dilation_matches_keras_dilation_rate(keras, dilation):
    keras.utils.set_random_seed(0)
    steps, height, width, c_in, c_hid = 4, 9, 10, 2, 3
    layer = keras.layers.ConvLSTM2D(
        c_hid, 3, padding="same", dilation_rate=dilation, return_sequences=True
    )
    x = torch.rand(2, steps, c_in, height, width)
    expected = layer(keras.ops.convert_to_tensor(x.permute(0, 1, 3, 4, 2).numpy()))
    expected = torch.as_tensor(keras.ops.convert_to_numpy(expected)).permute(0, 1, 4, 2, 3)
    model = ConvLSTM(c_in, [c_hid], 3, dilation=dilation)
    cell = model.cells[0]
    # Keras keeps (kh, kw, C_in, 4 C_hid) kernels, gates in the order i, f, c, o: torch's.
    w_x = keras_weight(layer.cell.kernel).permute(3, 2, 0, 1)  # (4 C_hid, C_in, kh, kw)
    w_h = keras_weight(layer.cell.recurrent_kernel).permute(3, 2, 0, 1)  # (4 C_hid, C_hid, ...)
    with torch.no_grad():
        if cell.conv is not None:  # no dilation: one convolution over cat([x, h])
            cell.conv.weight.copy_(torch.cat([w_x, w_h], dim=1))
            cell.conv.bias.copy_(keras_weight(layer.cell.bias))
        else:  # Keras dilates the input kernel only: two convolutions
            cell.conv_x.weight.copy_(w_x)
            cell.conv_h.weight.copy_(w_h)
            cell.conv_x.bias.copy_(keras_weight(layer.cell.bias))
        got = top_outputs(model, x)
    difference = (got - expected).abs().max().item()
    assert difference < 1e-5, difference


def test_forget_bias_one_matches_keras_unit_forget_bias(keras):
    layer = keras.layers.ConvLSTM2D(3, 3, padding="same", unit_forget_bias=True)
    layer.build((None, 2, 5, 5, 2))
    keras_forget = keras_weight(layer.cell.bias)[3:6]
    model = ConvLSTM(2, [3], 3, forget_bias=1.0)
    assert torch.equal(model.cells[0].conv.bias[3:6].detach(), keras_forget)
    assert torch.equal(keras_forget, torch.ones(3))


# Forget bias --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_dim", "state_kernel_size"), [(2, None), (2, 1), (0, None)], ids=str
)
def test_forget_bias_is_set_in_every_layout_and_by_reset_parameters(input_dim, state_kernel_size):
    cell = ConvLSTMCell(input_dim, 4, 3, state_kernel_size=state_kernel_size, forget_bias=1.5)
    bias = cell._bias()
    assert torch.equal(bias[4:8].detach(), torch.full((4,), 1.5))
    assert bias[:4].abs().max() < 1 and bias[8:].abs().max() < 1  # the others as torch draws them
    with torch.no_grad():
        bias.zero_()
    cell.reset_parameters()
    assert torch.equal(cell._bias()[4:8].detach(), torch.full((4,), 1.5))
    assert torch.count_nonzero(cell._bias()[:4]) == 4


def test_forget_bias_opens_the_forget_gate():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 6, 6)
    plain, remembering = ConvLSTMCell(1, 4), ConvLSTMCell(1, 4, forget_bias=3.0)
    assert remembering.step(x).f.mean() > 0.9 > plain.step(x).f.mean()


# Dropout ------------------------------------------------------------------------------------


def dropout_pair(**options):
    torch.manual_seed(0)
    plain = ConvLSTM(2, [4, 3], 3)
    dropped = ConvLSTM(2, [4, 3], 3, **options)
    dropped.load_state_dict(plain.state_dict())
    return plain, dropped


@pytest.mark.parametrize("precompute_input", [False, True])
def test_eval_mode_equals_no_dropout_exactly(precompute_input):
    plain, dropped = dropout_pair(dropout=0.5, recurrent_dropout=0.3)
    dropped.precompute_input = plain.precompute_input = precompute_input
    x = torch.randn(2, 3, 2, 5, 5)
    dropped.eval()
    assert torch.equal(top_outputs(dropped, x), top_outputs(plain, x))
    dropped.train()
    assert not torch.allclose(top_outputs(dropped, x), top_outputs(plain, x))


def visible_cell(**options):
    """A 1x1 cell whose candidate reads the input alone: a dropped pixel stays dark for good."""
    cell = ConvLSTMCell(1, 1, 1, **options)
    with torch.no_grad():
        cell.conv.weight.zero_()
        cell.conv.bias.zero_()
        cell.conv.weight[2, 0] = 1.0  # g = tanh(x); i, f, o stay at sigmoid(0) = 1/2
    return cell


@pytest.mark.parametrize("precompute_input", [False, True])
def test_the_same_input_units_are_dropped_at_every_step(precompute_input):
    torch.manual_seed(0)
    model = ConvLSTM(1, [1], 1, dropout=0.5, precompute_input=precompute_input)
    model.cells[0] = visible_cell(dropout=0.5)
    outputs = top_outputs(model, torch.ones(4, 6, 1, 16, 16))  # (4, 6, 1, 16, 16)
    dark = outputs == 0  # dropped: x = 0, so c and h stay 0; kept: x = 2, h > 0
    assert torch.equal(dark, dark[:, :1].expand_as(dark))  # one mask for the whole sequence
    assert 0.4 < dark[:, 0].float().mean() < 0.6
    assert torch.all(outputs[~dark] > 0)


def test_a_fresh_sequence_draws_fresh_masks():
    torch.manual_seed(0)
    model = ConvLSTM(1, [1], 1, dropout=0.5)
    model.cells[0] = visible_cell(dropout=0.5)
    x = torch.ones(4, 2, 1, 16, 16)
    assert not torch.equal(top_outputs(model, x) == 0, top_outputs(model, x) == 0)


def test_recurrent_masks_are_drawn_once_and_used_at_every_step(monkeypatch):
    torch.manual_seed(0)
    model = ConvLSTM(2, [3], 3, recurrent_dropout=0.4, dropout=0.2)
    cell = model.cells[0]
    drawn = []
    draw = cell.dropout_masks

    def spy(state):
        drawn.append(draw(state))
        return drawn[-1]

    monkeypatch.setattr(cell, "dropout_masks", spy)
    x = torch.randn(2, 5, 2, 6, 6)
    outputs = top_outputs(model, x)
    assert len(drawn) == 1
    mask_x, mask_h = drawn[0]
    h, c = None, torch.zeros(2, 3, 6, 6)
    for t in range(5):  # the same two masks at every step, written out
        h, c = cell.update(cell.gates(x[:, t] * mask_x, None if h is None else h * mask_h), c)[:2]
        assert_close(outputs[:, t], h)


def test_masks_keep_the_mean_and_follow_the_seed():
    cell = ConvLSTMCell(8, 8, dropout=0.3, recurrent_dropout=0.6)
    state = torch.zeros(64, 8, 32, 32)
    torch.manual_seed(1)
    mask_x, mask_h = cell.dropout_masks(state)
    values = mask_x.unique()
    assert len(values) == 2 and values[0] == 0 and abs(values[1].item() - 1 / 0.7) < 1e-6
    assert abs(mask_x.mean().item() - 1) < 0.02 and abs(mask_h.mean().item() - 1) < 0.03
    assert abs((mask_h == 0).float().mean().item() - 0.6) < 0.01
    torch.manual_seed(1)
    again = cell.dropout_masks(state)
    assert torch.equal(again[0], mask_x) and torch.equal(again[1], mask_h)
    assert cell.eval().dropout_masks(state) == (None, None)
    assert ConvLSTMCell(8, 8).dropout_masks(state) == (None, None)


def test_forecaster_draws_its_masks_once_per_forward(monkeypatch):
    torch.manual_seed(0)
    model = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=3,
                              dropout=0.3, recurrent_dropout=0.3)  # fmt: skip
    calls = []
    for cell in (*model.encoder, *model.forecaster):
        draw = cell.dropout_masks
        monkeypatch.setattr(cell, "dropout_masks", lambda s, draw=draw: calls.append(1) or draw(s))
    x = torch.randn(2, 4, 2, 5, 5)
    torch.manual_seed(3)
    first = model(x, steps=6)
    assert len(calls) == 4  # two encoder and two forecaster layers, one draw each
    torch.manual_seed(3)
    assert torch.equal(model(x, steps=6), first)
    model.eval()
    plain = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=3)
    plain.load_state_dict(model.state_dict())
    assert torch.equal(model(x, steps=6), plain(x, steps=6))


# Validation and repr ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"padding_mode": "wrap"}, ValueError, r"expected padding_mode to be one of 'zeros', "),
        ({"dilation": 0}, ValueError, "expected dilation to be positive, got 0"),
        (
            {"dilation": (1, 2, 3)},
            ValueError,
            r"expected dilation to be an int or a \(dh, dw\) pair",
        ),
        ({"state_dilation": 1.5}, TypeError, "expected state_dilation to be an int, got float"),
        ({"dropout": 1.0}, ValueError, r"expected dropout in \[0, 1\), got 1.0"),
        (
            {"recurrent_dropout": -0.1},
            ValueError,
            r"expected recurrent_dropout in \[0, 1\), got -0.1",
        ),
        ({"dropout": "0.5"}, TypeError, "expected dropout to be a number, got str"),
        ({"forget_bias": True}, TypeError, "expected forget_bias to be a number, got bool"),
        ({"forget_bias": float("nan")}, ValueError, "expected forget_bias to be finite"),
        ({"forget_bias": 1.0, "bias": False}, ValueError, "expected bias=True for a forget_bias"),
    ],
)
@pytest.mark.parametrize("owner", ["ConvLSTMCell", "ConvLSTM", "EncoderForecaster"])
def test_bad_options(kwargs, error, message, owner):
    build = {
        "ConvLSTMCell": lambda **kw: ConvLSTMCell(2, 3, **kw),
        "ConvLSTM": lambda **kw: ConvLSTM(2, [3, 3], **kw),
        "EncoderForecaster": lambda **kw: EncoderForecaster(2, [3], **kw),
    }[owner]
    if owner == "EncoderForecaster" and "bias" in kwargs:
        kwargs = {"forget_bias": kwargs["forget_bias"]}  # it always has biases: the option is fine
        assert EncoderForecaster(2, [3], **kwargs).forecaster[0]._bias()[3:6].eq(1.0).all()
        return
    with pytest.raises(error, match=f"^{owner}: {message}"):
        build(**kwargs)


def test_options_show_in_repr_only_when_set():
    assert "padding_mode" not in repr(ConvLSTMCell(1, 2)) and "dropout" not in repr(ConvLSTM(1, 2))
    text = repr(
        ConvLSTMCell(1, 2, padding_mode="circular_width", dilation=2, forget_bias=1.0, dropout=0.1)
    )
    assert (
        "1, 2, kernel_size=(3, 3), padding_mode='circular_width', dilation=(2, 2), "
        "forget_bias=1.0, dropout=0.1, bias=True, peephole=False" in text
    )
    assert "precompute_input=None, recurrent_dropout=0.2" in repr(
        ConvLSTM(1, 2, recurrent_dropout=0.2)
    )
    assert "peephole=True, state_dilation=(2, 2)" in repr(EncoderForecaster(1, 2, state_dilation=2))


def test_defaults_build_the_same_model_as_before():
    # Every option at its default: the same parameters, drawn the same way from the same seed.
    torch.manual_seed(0)
    explicit = ConvLSTM(1, [4, 2], 3, padding_mode="zeros", dilation=1, state_dilation=1,
                        forget_bias=None, dropout=0.0, recurrent_dropout=0.0)  # fmt: skip
    torch.manual_seed(0)
    default = ConvLSTM(1, [4, 2], 3)
    for (name, a), (_, b) in zip(explicit.state_dict().items(), default.state_dict().items(),
                                 strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    assert all(isinstance(cell.conv, nn.Conv2d) for cell in default.cells)
    assert type(default.cells[0].conv) is nn.Conv2d  # not the width-wrapping subclass
