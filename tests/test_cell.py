"""ConvLSTMCell: the equations, the nn.LSTMCell equivalence, peepholes, errors, gradients."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from convlstm_lib import CellStep, ConvLSTMCell

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def reference_step(cell, x, h, c):
    """The cell's equations written out gate by gate, with the weights sliced per gate."""
    k = cell.hidden_dim
    weight, bias = cell.conv.weight, cell.conv.bias
    pad = cell.conv._reversed_padding_repeated_twice
    xh = nn.functional.pad(torch.cat([x, h], dim=1), pad)

    def pre(gate):
        b = None if bias is None else bias[gate * k : (gate + 1) * k]
        return nn.functional.conv2d(xh, weight[gate * k : (gate + 1) * k], b)

    peep = cell.peephole
    i = torch.sigmoid(pre(0) + (cell.peephole_i * c if peep else 0))
    f = torch.sigmoid(pre(1) + (cell.peephole_f * c if peep else 0))
    g = torch.tanh(pre(2))
    c_new = f * c + i * g
    o = torch.sigmoid(pre(3) + (cell.peephole_o * c_new if peep else 0))
    return o * torch.tanh(c_new), c_new


def randomise_peepholes(cell):
    with torch.no_grad():
        for weight in (cell.peephole_i, cell.peephole_f, cell.peephole_o):
            weight.normal_()


@pytest.mark.parametrize("kernel_size", [1, 3, 5, (3, 1), 2, (2, 4)])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_written_out_equations(kernel_size, peephole, bias):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, kernel_size, bias=bias, peephole=peephole)
    if peephole:
        randomise_peepholes(cell)
    x, h, c = torch.randn(2, 3, 7, 6), torch.randn(2, 4, 7, 6), torch.randn(2, 4, 7, 6)
    h_new, c_new = cell(x, (h, c))
    h_ref, c_ref = reference_step(cell, x, h, c)
    assert h_new.shape == c_new.shape == (2, 4, 7, 6)
    assert_close(h_new, h_ref)
    assert_close(c_new, c_ref)


def test_conv_layout_is_the_documented_one():
    cell = ConvLSTMCell(3, 5, (3, 5), bias=False)
    assert isinstance(cell.conv, nn.Conv2d)
    assert cell.conv.in_channels == 3 + 5
    assert cell.conv.out_channels == 4 * 5
    assert cell.conv.kernel_size == (3, 5)
    assert cell.conv.padding == "same"
    assert cell.conv.bias is None


@pytest.mark.parametrize("bias", [False, True])
def test_1x1_cell_equals_nn_lstmcell(bias):
    torch.manual_seed(1)
    lstm = nn.LSTMCell(3, 5, bias=bias)
    cell = ConvLSTMCell(3, 5, kernel_size=1, bias=bias)
    with torch.no_grad():
        cell.conv.weight[:, :3, 0, 0] = lstm.weight_ih
        cell.conv.weight[:, 3:, 0, 0] = lstm.weight_hh
        if bias:
            cell.conv.bias.copy_(lstm.bias_ih + lstm.bias_hh)
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    for _ in range(3):  # several steps, so the state path is compared too
        h_ref, c_ref = lstm(x, (h, c))
        h_cell, c_cell = cell(x[:, :, None, None], (h[:, :, None, None], c[:, :, None, None]))
        assert_close(h_cell[:, :, 0, 0], h_ref)
        assert_close(c_cell[:, :, 0, 0], c_ref)
        h, c = h_ref, c_ref


def test_none_state_means_zeros():
    torch.manual_seed(2)
    cell = ConvLSTMCell(2, 3, peephole=True)
    randomise_peepholes(cell)
    x = torch.randn(2, 2, 5, 5)
    zeros = torch.zeros(2, 3, 5, 5)
    for got, want in zip(cell(x), cell(x, (zeros, zeros)), strict=True):
        assert_close(got, want)


def test_new_peephole_cell_computes_what_a_plain_one_does():
    torch.manual_seed(3)
    plain = ConvLSTMCell(2, 3)
    peep = ConvLSTMCell(2, 3, peephole=True)
    peep.conv.load_state_dict(plain.conv.state_dict())
    x, h, c = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    for got, want in zip(peep(x, (h, c)), plain(x, (h, c)), strict=True):
        assert_close(got, want)


def test_peepholes_are_per_channel_and_change_the_output():
    torch.manual_seed(4)
    cell = ConvLSTMCell(2, 3, peephole=True)
    names = {name for name, _ in cell.named_parameters()}
    assert names == {"conv.weight", "conv.bias", "peephole_i", "peephole_f", "peephole_o"}
    for weight in (cell.peephole_i, cell.peephole_f, cell.peephole_o):
        assert weight.shape == (3, 1, 1)
    x, h, c = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    before = cell(x, (h, c))[0]
    randomise_peepholes(cell)
    assert not torch.allclose(cell(x, (h, c))[0], before)
    # The same cell runs on any frame size: nothing in it is tied to H, W.
    assert cell(torch.randn(1, 2, 9, 13))[0].shape == (1, 3, 9, 13)


def test_no_peephole_parameters_without_peephole():
    cell = ConvLSTMCell(2, 3)
    assert cell.peephole_i is None
    assert {name for name, _ in cell.named_parameters()} == {"conv.weight", "conv.bias"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes_and_zero_state_follow_the_input(dtype):
    cell = ConvLSTMCell(2, 3).to(dtype)
    x = torch.randn(2, 2, 4, 4, dtype=dtype)
    h, c = cell(x)
    assert h.dtype == c.dtype == dtype
    h0, c0 = cell.init_state(x)
    assert h0.dtype == dtype and h0.device == x.device and h0.shape == (2, 3, 4, 4)
    assert not h0.any() and not c0.any()


def test_runs_under_cpu_autocast():
    cell = ConvLSTMCell(2, 3)
    x = torch.randn(2, 2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h, _ = cell(x)
    assert h.shape == (2, 3, 4, 4)
    assert_close(h.float(), cell(x)[0], atol=3e-2, rtol=3e-2)


def test_gradients_reach_input_state_and_every_parameter():
    torch.manual_seed(5)
    cell = ConvLSTMCell(2, 3, peephole=True)
    randomise_peepholes(cell)
    x = torch.randn(2, 2, 5, 5, requires_grad=True)
    h0 = torch.randn(2, 3, 5, 5, requires_grad=True)
    c0 = torch.randn(2, 3, 5, 5, requires_grad=True)
    h, c = cell(x, (h0, c0))
    (h.sum() + c.sum()).backward()
    for name, tensor in [("x", x), ("h0", h0), ("c0", c0), *cell.named_parameters()]:
        assert tensor.grad is not None, name
        assert tensor.grad.abs().sum() > 0, name


@pytest.mark.parametrize("peephole", [False, True])
def test_gradcheck_float64(peephole):
    torch.manual_seed(6)
    cell = ConvLSTMCell(2, 2, kernel_size=3, peephole=peephole).double()
    if peephole:
        randomise_peepholes(cell)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(cell.parameters())

    def step(x, h, c, *weights):
        mapping = dict(zip((name for name, _ in cell.named_parameters()), weights, strict=True))
        return torch.func.functional_call(cell, mapping, (x, (h, c)))

    assert torch.autograd.gradcheck(step, (x, h, c, *params))


def test_reset_parameters_redraws_and_zeroes_peepholes():
    cell = ConvLSTMCell(2, 3, peephole=True)
    randomise_peepholes(cell)
    before = cell.conv.weight.clone()
    cell.reset_parameters()
    assert not torch.equal(before, cell.conv.weight)
    bound = 1 / (5 * 9) ** 0.5  # Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert cell.conv.weight.abs().max() <= bound
    assert not cell.peephole_i.any() and not cell.peephole_o.any()


def test_extra_repr():
    text = repr(ConvLSTMCell(1, 64, (3, 5), peephole=True))
    assert "ConvLSTMCell(\n  1, 64, kernel_size=(3, 5), bias=True, peephole=True" in text


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((-1, 4), {}, ValueError, "ConvLSTMCell: expected input_dim to be positive, got -1"),
        (
            (3, 4),
            {"state_kernel_size": (1, 2, 3)},
            ValueError,
            r"expected state_kernel_size to be an int or a \(kh, kw\) pair",
        ),
        ((3, -1), {}, ValueError, "ConvLSTMCell: expected hidden_dim to be positive, got -1"),
        ((3.0, 4), {}, TypeError, "ConvLSTMCell: expected input_dim to be an int, got float"),
        ((3, 4, 0), {}, ValueError, "ConvLSTMCell: expected kernel_size to be positive, got 0"),
        (
            (3, 4, (3, 3, 3)),
            {},
            ValueError,
            r"expected kernel_size to be an int or a \(kh, kw\) pair, got a sequence of length 3",
        ),
        ((True, 4), {}, TypeError, "expected input_dim to be an int, got bool"),
    ],
)
def test_bad_construction(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        ConvLSTMCell(*args, **kwargs)


@pytest.mark.parametrize(
    ("x", "state", "error", "message"),
    [
        (
            torch.randn(3, 8, 8),
            None,
            ValueError,
            r"ConvLSTMCell: expected input with 4 dims \(B, C_in, H, W\), got 3",
        ),
        (
            torch.randn(1, 2, 3, 8, 8),
            None,
            ValueError,
            r"expected input with 4 dims \(B, C_in, H, W\), got 5",
        ),
        (
            torch.randn(2, 5, 8, 8),
            None,
            ValueError,
            r"expected input with C_in=3 channels \(dim 1 of \(B, C_in, H, W\)\), got 5",
        ),
        (
            torch.zeros(2, 3, 8, 8, dtype=torch.long),
            None,
            TypeError,
            "expected a floating-point input, got torch.int64",
        ),
        ([[1.0]], None, TypeError, "expected input to be a Tensor, got list"),
        (torch.randn(2, 3, 0, 8), None, ValueError, "expected non-empty frames, got H=0, W=8"),
        (
            torch.randn(2, 3, 8, 8, dtype=torch.float64),
            None,
            TypeError,
            r"expected input of the parameters' dtype torch.float32, got torch.float64",
        ),
        (
            torch.randn(2, 3, 8, 8),
            torch.zeros(2, 4, 8, 8),
            TypeError,
            r"expected state to be a pair \(h, c\), got Tensor",
        ),
        (
            torch.randn(2, 3, 8, 8),
            (torch.zeros(2, 4, 8, 8), None),
            TypeError,
            "expected state c to be a Tensor, got NoneType",
        ),
        (
            torch.randn(2, 3, 8, 8),
            (torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 7, 8)),
            ValueError,
            r"expected state c of shape \(B, C_hid, H, W\) = \(2, 4, 8, 8\), got \(2, 4, 7, 8\)",
        ),
        (
            torch.randn(2, 3, 8, 8),
            (torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8)),
            ValueError,
            r"expected state h of shape \(B, C_hid, H, W\) = \(2, 4, 8, 8\), got \(1, 4, 8, 8\)",
        ),
    ],
)
def test_bad_input(x, state, error, message):
    cell = ConvLSTMCell(3, 4)
    with pytest.raises(error, match=message):
        cell(x, state)


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        (
            (torch.zeros(2, 4, 8, 8, dtype=torch.bfloat16),) * 2,
            TypeError,
            r"expected state h of the input's dtype torch.float32, got torch.bfloat16",
        ),
        (
            (torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 8, dtype=torch.bool)),
            TypeError,
            r"expected state c of the input's dtype torch.float32, got torch.bool",
        ),
        (
            (torch.zeros(2, 4, 8, 8, dtype=torch.int64),) * 2,
            TypeError,
            r"expected state h of the input's dtype torch.float32, got torch.int64",
        ),
        (
            (torch.zeros(2, 4, 8, 8, device="meta"),) * 2,
            ValueError,
            r"expected state h on the input's device cpu, got meta",
        ),
    ],
)
def test_state_of_another_dtype_or_device_is_refused(state, error, message):
    # A bfloat16 state used to turn a float32 cell's outputs bfloat16; a bool one passed.
    with pytest.raises(error, match=message):
        ConvLSTMCell(3, 4)(torch.randn(2, 3, 8, 8), state)


def test_float64_under_autocast_is_refused_clearly():
    cell = ConvLSTMCell(3, 4)
    with (
        torch.autocast("cpu", dtype=torch.bfloat16),
        pytest.raises(TypeError, match=r"dtype torch.float32, got torch.float64 \(autocast"),
    ):
        cell(torch.randn(1, 3, 4, 4, dtype=torch.float64))


def test_float64_cell_runs_under_autocast_in_float64():
    # Autocast never casts float64, so a float64 cell computes in float64 under it.
    cell = ConvLSTMCell(3, 4).double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h, c = cell(x, cell.init_state(x))
    assert h.dtype == c.dtype == torch.float64
    assert_close((h, c), cell(x, cell.init_state(x)))


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("state_kernel_size", [None, 1])
def test_step_returns_the_gates_forward_uses(peephole, state_kernel_size):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, 3, state_kernel_size=state_kernel_size, peephole=peephole)
    if peephole:
        randomise_peepholes(cell)
    x, h, c = torch.randn(2, 3, 5, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    step = cell.step(x, (h, c))
    assert isinstance(step, CellStep)
    assert_close((step.h, step.c), cell(x, (h, c)), rtol=0, atol=0)
    # The gates are the ones the update multiplies.
    assert_close(step.c, step.f * c + step.i * step.g)
    assert_close(step.h, step.o * torch.tanh(step.c))
    i, f, g, o = cell.gates(x, h).chunk(4, dim=1)
    if peephole:
        i, f = i + cell.peephole_i * c, f + cell.peephole_f * c
        o = o + cell.peephole_o * step.c
    assert_close(step.i, torch.sigmoid(i))
    assert_close(step.f, torch.sigmoid(f))
    assert_close(step.g, torch.tanh(g))
    assert_close(step.o, torch.sigmoid(o))


@pytest.mark.parametrize(("kernel_size", "state_kernel_size"), [(3, 1), (5, 3), ((1, 3), 2)])
def test_split_kernels_match_written_out_equations(kernel_size, state_kernel_size):
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 4, kernel_size, state_kernel_size=state_kernel_size, peephole=True)
    randomise_peepholes(cell)
    assert cell.conv is None
    assert cell.conv_x.kernel_size == cell.kernel_size and cell.conv_x.bias is not None
    assert cell.conv_h.kernel_size == cell.state_kernel_size and cell.conv_h.bias is None
    x, h, c = torch.randn(2, 3, 7, 6), torch.randn(2, 4, 7, 6), torch.randn(2, 4, 7, 6)
    gates = cell.conv_x(x) + cell.conv_h(h)
    i, f, g, o = gates.chunk(4, dim=1)
    i = torch.sigmoid(i + cell.peephole_i * c)
    f = torch.sigmoid(f + cell.peephole_f * c)
    c_ref = f * c + i * torch.tanh(g)
    h_ref = torch.sigmoid(o + cell.peephole_o * c_ref) * torch.tanh(c_ref)
    assert_close(cell(x, (h, c)), (h_ref, c_ref))


def test_split_layout_checkpoint_loads_into_the_fused_cell():
    # The forecaster's cells used to keep conv_x and conv_h even for equal kernels.
    torch.manual_seed(0)
    fused = ConvLSTMCell(3, 4, 3, peephole=True)
    old = {
        "conv_x.weight": torch.randn(16, 3, 3, 3),
        "conv_x.bias": torch.randn(16),
        "conv_h.weight": torch.randn(16, 4, 3, 3),
        **{name: torch.randn(4, 1, 1) for name in ("peephole_i", "peephole_f", "peephole_o")},
    }
    fused.load_state_dict(old)
    assert torch.equal(fused.conv.weight[:, :3], old["conv_x.weight"])
    assert torch.equal(fused.conv.weight[:, 3:], old["conv_h.weight"])
    assert torch.equal(fused.conv.bias, old["conv_x.bias"])
    x, h = torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5)
    conv = nn.functional.conv2d
    expected = conv(x, old["conv_x.weight"], old["conv_x.bias"], padding="same")
    expected = expected + conv(h, old["conv_h.weight"], padding="same")
    assert_close(fused.gates(x, h), expected)


def test_cell_without_input_reads_only_its_state():
    torch.manual_seed(0)
    cell = ConvLSTMCell(0, 4, 3)
    assert cell.conv is None and cell.conv_x is None and cell.conv_h.bias is not None
    h, c = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    i, f, g, o = cell.conv_h(h).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    assert_close(cell(None, (h, c)), (torch.sigmoid(o) * torch.tanh(c_new), c_new))
    with pytest.raises(ValueError, match="a cell without input needs a state"):
        cell(None)
    with pytest.raises(ValueError, match="expected input None for a cell without input"):
        cell(torch.randn(1, 1, 5, 5), (h, c))
    with pytest.raises(ValueError, match=r"expected state c of shape .* = \(1, 4, 5, 5\)"):
        cell(None, (h, c[..., :4]))


def test_repr_names_a_different_state_kernel():
    assert "kernel_size=(3, 3), bias" in repr(ConvLSTMCell(1, 2, 3))
    assert "kernel_size=(9, 9), state_kernel_size=(1, 1), bias" in repr(
        ConvLSTMCell(1, 2, 9, state_kernel_size=1)
    )
