"""ConvLSTM: configuration, shapes, the documented invariants, nn.LSTM equivalence, errors."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from convlstm_lib import ConvLSTM, ConvLSTMCell

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

CONFIGS = [
    # (hidden_dims, kernel_sizes, num_layers)
    (4, 3, 1),
    ([5], 1, None),
    ([4, 1], 3, None),
    ([3, 4, 2], [3, (1, 5), 2], None),
    (3, [3, 5], None),
    (2, 3, 3),
]


def make_input(batch_first, b=2, t=4, c=2, h=6, w=5, seed=0):
    x = torch.randn(b, t, c, h, w, generator=torch.Generator().manual_seed(seed))
    return x if batch_first else x.transpose(0, 1).contiguous()


def time_slice(x, batch_first, sl):
    return x[:, sl] if batch_first else x[sl]


def manual_stack(model, x):
    """An independent loop over the cells, time outside and layers inside (batch first)."""
    states = [None] * model.num_layers
    per_layer = [[] for _ in model.cells]
    for t in range(x.shape[1]):
        inp = x[:, t]
        for layer, cell in enumerate(model.cells):
            states[layer] = cell(inp, states[layer])
            inp = states[layer][0]
            per_layer[layer].append(inp)
    return [torch.stack(outs, dim=1) for outs in per_layer], states


@pytest.mark.parametrize(("hidden_dims", "kernel_sizes", "num_layers"), CONFIGS)
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("peephole", [False, True])
def test_shapes_and_manual_loop_equivalence(
    hidden_dims, kernel_sizes, num_layers, batch_first, peephole
):
    torch.manual_seed(0)
    model = ConvLSTM(
        2,
        hidden_dims,
        kernel_sizes,
        num_layers=num_layers,
        batch_first=batch_first,
        peephole=peephole,
    )
    if peephole:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "peephole" in name:
                    p.normal_()
    x = make_input(batch_first)
    layer_outputs, last_states = model(x)
    assert len(layer_outputs) == len(last_states) == model.num_layers == len(model.cells)
    for layer, (out, (h, c)) in enumerate(zip(layer_outputs, last_states, strict=True)):
        hid = model.hidden_dims[layer]
        assert out.shape == ((2, 4, hid, 6, 5) if batch_first else (4, 2, hid, 6, 5))
        assert h.shape == c.shape == (2, hid, 6, 5)

    x_bf = x if batch_first else x.transpose(0, 1)
    ref_outputs, ref_states = manual_stack(model, x_bf)
    for out, ref in zip(layer_outputs, ref_outputs, strict=True):
        assert_close(out if batch_first else out.transpose(0, 1), ref)
    for (h, c), (h_ref, c_ref) in zip(last_states, ref_states, strict=True):
        assert_close(h, h_ref)
        assert_close(c, c_ref)


@pytest.mark.parametrize("batch_first", [True, False])
def test_last_output_is_final_hidden_state(batch_first):
    model = ConvLSTM(2, [3, 4], 3, batch_first=batch_first)
    layer_outputs, last_states = model(make_input(batch_first))
    for out, (h, _) in zip(layer_outputs, last_states, strict=True):
        last = out[:, -1] if batch_first else out[-1]
        assert torch.equal(last, h)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("split", [1, 2, 3])
def test_streaming_equals_one_run(batch_first, split):
    torch.manual_seed(1)
    model = ConvLSTM(2, [3, 2], [3, 5], batch_first=batch_first, peephole=True)
    x = make_input(batch_first, t=4)
    full_outputs, full_states = model(x)
    first_outputs, mid_states = model(time_slice(x, batch_first, slice(None, split)))
    second_outputs, end_states = model(time_slice(x, batch_first, slice(split, None)), mid_states)
    dim = 1 if batch_first else 0
    for full, a, b in zip(full_outputs, first_outputs, second_outputs, strict=True):
        assert_close(torch.cat([a, b], dim=dim), full)
    for (h, c), (h_ref, c_ref) in zip(end_states, full_states, strict=True):
        assert_close(h, h_ref)
        assert_close(c, c_ref)


@pytest.mark.parametrize("batch_first", [True, False])
def test_output_at_t_ignores_later_inputs(batch_first):
    torch.manual_seed(2)
    model = ConvLSTM(2, [3, 2], 3, batch_first=batch_first)
    x = make_input(batch_first, t=5)
    changed = x.clone()
    time_slice(changed, batch_first, slice(3, None)).add_(
        torch.randn_like(time_slice(x, batch_first, slice(3, None)))
    )
    out, _ = model(x)
    out_changed, _ = model(changed)
    for a, b in zip(out, out_changed, strict=True):
        assert torch.equal(
            time_slice(a, batch_first, slice(None, 3)), time_slice(b, batch_first, slice(None, 3))
        )
        assert not torch.allclose(
            time_slice(a, batch_first, slice(3, None)), time_slice(b, batch_first, slice(3, None))
        )


def test_gradient_of_an_early_output_is_zero_for_later_inputs():
    model = ConvLSTM(2, [3, 2], 3)
    x = make_input(True, t=4).requires_grad_()
    out, _ = model(x)
    out[-1][:, 1].sum().backward()
    assert x.grad[:, :2].abs().sum() > 0
    assert not x.grad[:, 2:].any()


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [True, False])
def test_1x1_stack_equals_nn_lstm(num_layers, batch_first):
    torch.manual_seed(3)
    lstm = nn.LSTM(3, 5, num_layers=num_layers, batch_first=batch_first)
    model = ConvLSTM(3, 5, 1, num_layers=num_layers, batch_first=batch_first)
    with torch.no_grad():
        for layer, cell in enumerate(model.cells):
            c_in = cell.input_dim
            cell.conv.weight[:, :c_in, 0, 0] = getattr(lstm, f"weight_ih_l{layer}")
            cell.conv.weight[:, c_in:, 0, 0] = getattr(lstm, f"weight_hh_l{layer}")
            cell.conv.bias.copy_(
                getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            )
    seq = torch.randn(2, 4, 3) if batch_first else torch.randn(4, 2, 3)
    output, (h_n, c_n) = lstm(seq)
    layer_outputs, last_states = model(seq[..., None, None])
    assert_close(layer_outputs[-1][..., 0, 0], output)
    for layer, (h, c) in enumerate(last_states):
        assert_close(h[..., 0, 0], h_n[layer])
        assert_close(c[..., 0, 0], c_n[layer])


def test_gradients_reach_input_and_every_parameter():
    torch.manual_seed(4)
    model = ConvLSTM(2, [3, 2], [3, 1], peephole=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.normal_()
    x = make_input(True).requires_grad_()
    layer_outputs, _ = model(x)
    layer_outputs[-1].pow(2).mean().backward()
    assert x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    model = ConvLSTM(2, [3, 2], 3).to(dtype)
    layer_outputs, last_states = model(make_input(True).to(dtype))
    assert layer_outputs[-1].dtype == last_states[0][1].dtype == dtype


def test_configuration_is_expanded_per_layer():
    model = ConvLSTM(1, [64, 1], 3)
    assert model.hidden_dims == [64, 1]
    assert model.kernel_sizes == [(3, 3), (3, 3)]
    assert isinstance(model.cells, nn.ModuleList)
    assert all(isinstance(cell, ConvLSTMCell) for cell in model.cells)
    assert [(c.input_dim, c.hidden_dim) for c in model.cells] == [(1, 64), (64, 1)]
    assert ConvLSTM(1, 8, 5, num_layers=3).hidden_dims == [8, 8, 8]
    assert ConvLSTM(1, [4, 4], [(3, 5), 1], num_layers=2).kernel_sizes == [(3, 5), (1, 1)]
    text = repr(model)
    assert (
        "1, [64, 1], kernel_sizes=[(3, 3), (3, 3)], num_layers=2, bias=True, batch_first=True, peephole=False"
        in text
    )


def test_reset_parameters_redraws_every_cell():
    model = ConvLSTM(1, [4, 2], 3)
    before = [cell.conv.weight.clone() for cell in model.cells]
    model.reset_parameters()
    for old, cell in zip(before, model.cells, strict=True):
        assert not torch.equal(old, cell.conv.weight)


def test_state_dict_keys():
    model = ConvLSTM(1, [4, 2], 3, peephole=True)
    assert sorted(model.state_dict()) == sorted(
        f"cells.{layer}.{name}"
        for layer in (0, 1)
        for name in ("conv.weight", "conv.bias", "peephole_i", "peephole_f", "peephole_o")
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            (1, [8, 8], [3, 3, 3]),
            {},
            ValueError,
            r"ConvLSTM: the number of layers disagrees: hidden_dims=2, kernel_sizes=3",
        ),
        ((1, [8, 8], 3), {"num_layers": 3}, ValueError, r"disagrees: hidden_dims=2, num_layers=3"),
        (
            (1, 8, [(3, 5)]),
            {"num_layers": 2},
            ValueError,
            r"kernel_sizes=1, num_layers=2 \(one \(kh, kw\) tuple is one kernel for every layer\)",
        ),
        (
            (1, 8, "3"),
            {},
            TypeError,
            r"expected kernel_sizes to be an int, a \(kh, kw\) tuple or a list with one entry",
        ),
        (
            (1, [], 3),
            {},
            ValueError,
            "expected hidden_dims to have one entry per layer, got an empty sequence",
        ),
        ((1, [8, 0], 3), {}, ValueError, "expected hidden_dims to be positive, got 0"),
        ((1, 8, 3), {"num_layers": 0}, ValueError, "expected num_layers to be positive, got 0"),
        (
            (0, 8, 3),
            {"num_layers": 1},
            ValueError,
            "ConvLSTM: expected input_dim to be positive, got 0",
        ),
        (
            (1, 8.0, 3),
            {"num_layers": 1},
            TypeError,
            "expected hidden_dims to be an int or a sequence with one entry per layer, got float",
        ),
        ((1, [8, 8], [3, -1]), {}, ValueError, "expected kernel_sizes to be positive, got -1"),
    ],
)
def test_bad_construction(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        ConvLSTM(*args, **kwargs)


@pytest.mark.parametrize(
    ("batch_first", "x", "message"),
    [
        (
            True,
            torch.randn(2, 1, 6, 6),
            r"ConvLSTM: expected input with 5 dims \(B, T, C_in, H, W\), got 4",
        ),
        (
            False,
            torch.randn(2, 1, 6, 6),
            r"ConvLSTM: expected input with 5 dims \(T, B, C_in, H, W\), got 4",
        ),
        (
            True,
            torch.randn(2, 3, 2, 6, 6),
            r"expected input with C_in=1 channels \(dim 2 of \(B, T, C_in, H, W\)\), got 2",
        ),
        (
            True,
            torch.randn(2, 0, 1, 6, 6),
            "expected at least one time step, got an empty time dimension T=0",
        ),
        (
            False,
            torch.randn(0, 2, 1, 6, 6),
            "expected at least one time step, got an empty time dimension T=0",
        ),
    ],
)
def test_bad_input(batch_first, x, message):
    model = ConvLSTM(1, [4, 2], 3, batch_first=batch_first)
    with pytest.raises(ValueError, match=message):
        model(x)


def test_bad_input_type():
    with pytest.raises(
        TypeError, match=r"ConvLSTM: expected a floating-point input, got torch\.uint8"
    ):
        ConvLSTM(1, 4, 3, num_layers=1)(torch.zeros(1, 2, 1, 4, 4, dtype=torch.uint8))


def test_bad_state():
    model = ConvLSTM(1, [4, 2], 3)
    x = torch.randn(2, 3, 1, 6, 6)
    _, states = model(x)
    with pytest.raises(
        ValueError,
        match=r"expected state to be a list with one \(h, c\) per layer \(2\), got 1 entries",
    ):
        model(x, states[:1])
    with pytest.raises(
        ValueError,
        match=r"expected state h of layer 1 of shape \(B, C_hid, H, W\) = \(2, 2, 6, 6\), got \(2, 4, 6, 6\)",
    ):
        model(x, [states[0], states[0]])
    with pytest.raises(
        ValueError,
        match=r"expected state c of layer 0 of shape \(B, C_hid, H, W\) = \(2, 4, 6, 6\), got \(2, 4, 5, 5\)",
    ):
        model(x, [(states[0][0], states[0][1][..., :5, :5]), states[1]])
    with pytest.raises(
        TypeError, match=r"expected state of layer 0 to be a pair \(h, c\), got Tensor"
    ):
        model(x, [states[0][0], states[1]])
    with pytest.raises(
        TypeError, match=r"expected state to be a list with one \(h, c\) per layer, got Tensor"
    ):
        model(x, states[0][0])


def test_a_tuple_is_one_kernel_for_every_layer_as_in_the_cell():
    # ConvLSTM(1, 16, (3, 5)) used to build two layers, 3x3 and 5x5.
    model = ConvLSTM(1, 16, (3, 5))
    assert model.num_layers == 1 and model.kernel_sizes == [(3, 5)]
    assert model.cells[0].conv.kernel_size == ConvLSTMCell(1, 16, (3, 5)).conv.kernel_size
    assert ConvLSTM(1, [16, 8], (3, 5)).kernel_sizes == [(3, 5), (3, 5)]
    assert ConvLSTM(1, [16, 8], [3, 5]).kernel_sizes == [(3, 3), (5, 5)]


def test_one_layer_by_default_like_nn_lstm():
    # ConvLSTM(1, 16) used to demand num_layers, while EncoderForecaster(1, 16) built one layer.
    assert ConvLSTM(1, 16).num_layers == nn.LSTM(1, 16).num_layers == 1
    assert ConvLSTM(1, 16).hidden_dims == [16]


def test_outputs_are_contiguous_when_time_comes_first():
    model = ConvLSTM(1, [4, 2], 3, batch_first=False)
    layer_outputs, _ = model(torch.randn(3, 2, 1, 5, 5))  # (T, B, C_in, H, W)
    assert all(out.is_contiguous() and out.shape[:2] == (3, 2) for out in layer_outputs)


def test_float64_stack_runs_under_autocast():
    # The stack used to cast its recurrent weight to bfloat16 whatever its dtype.
    model = ConvLSTM(4, [2]).double()
    x = torch.randn(1, 3, 4, 5, 5, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, _ = model(x)
    assert outputs[0].dtype == torch.float64
    assert_close(outputs[0], model(x)[0][0])


def test_state_dtype_and_device_are_checked_per_layer():
    model = ConvLSTM(1, [4, 2], 3)
    x = torch.randn(2, 3, 1, 6, 6)
    _, states = model(x)
    bad = [states[0], (states[1][0].bfloat16(), states[1][1])]
    with pytest.raises(TypeError, match=r"state h of layer 1 of the input's dtype torch.float32"):
        model(x, bad)
    meta = [states[0], tuple(t.to("meta") for t in states[1])]
    with pytest.raises(ValueError, match=r"state h of layer 1 on the input's device cpu, got meta"):
        model(x, meta)


class ClampedCell(ConvLSTMCell):
    """A subclass that changes the update: the stack must run it, not a copy of the math."""

    def update(self, gates, c):
        step = super().update(gates, c)
        return step._replace(c=step.c.clamp(-0.1, 0.1))


@pytest.mark.parametrize("precompute_input", [False, True])
def test_the_stack_runs_the_cells_methods(precompute_input):
    torch.manual_seed(0)
    model = ConvLSTM(2, [3, 2], 3, precompute_input=precompute_input)
    plain = model.cells[0]
    model.cells[0] = ClampedCell(2, 3, 3)
    model.cells[0].load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, 2, 5, 5)
    outputs, states = model(x)
    assert states[0][1].abs().max() <= 0.1
    state = None
    for t in range(4):
        state = model.cells[0](x[:, t], state)
        assert_close(outputs[0][:, t], state[0])


@pytest.mark.parametrize("precompute_input", [False, True])
def test_a_parametrized_weight_is_what_the_stack_uses(precompute_input):
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    model = ConvLSTM(2, [3], 3, precompute_input=precompute_input)
    weight_norm(model.cells[0].conv)
    with torch.no_grad():
        model.cells[0].conv.parametrizations.weight.original0.mul_(0.5)
    x = torch.randn(2, 3, 2, 4, 4)
    outputs, _ = model(x)
    state = None
    for t in range(3):
        state = model.cells[0](x[:, t], state)
        assert_close(outputs[0][:, t], state[0])


def test_padding_mode_of_the_cells_conv_holds_in_every_path():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 1, 5, 5)
    runs = []
    for precompute_input in (False, True):
        torch.manual_seed(0)
        model = ConvLSTM(1, [3], 3, precompute_input=precompute_input)
        model.cells[0].conv.padding_mode = "circular"
        runs.append(model(x)[0][0])
    assert_close(runs[0], runs[1])
    torch.manual_seed(0)
    zeros = ConvLSTM(1, [3], 3)(x)[0][0]
    assert not torch.allclose(runs[0], zeros)
