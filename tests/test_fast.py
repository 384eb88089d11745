"""The fast paths of ConvLSTM: same outputs and gradients as the plain path, same model."""

import functools
import os

import pytest
import torch
from torch.testing import assert_close

from convlstm_lib import ConvLSTM, default_channels_last, keep_freed_memory, precomputes_input

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

CONFIGS = [
    # (hidden_dims, kernel_sizes, num_layers, steps, frame size)
    ([4, 1], 3, None, 4, (6, 5)),  # the post's shape of stack, small
    ([3, 4, 2], [3, (1, 5), 2], None, 3, (5, 7)),  # odd, asymmetric and even kernels
    (5, 1, 1, 2, (3, 3)),  # 1x1 kernels
    ([2, 3], 3, None, 1, (4, 4)),  # one step: only the first, state-free step runs
]
FAST_OPTIONS = [
    {"channels_last": False, "precompute_input": True},
    {"channels_last": True, "precompute_input": False},
    {"channels_last": True, "precompute_input": True},
    {"channels_last": False, "precompute_input": None},  # the per-layer rule
]
PLAIN = {"channels_last": False, "precompute_input": False}


def make_pair(options, *, hidden_dims, kernel_sizes, num_layers, batch_first, peephole, seed=0):
    """A plain model and a fast one with the same parameters (loaded through the state dict)."""
    torch.manual_seed(seed)
    kwargs = {"num_layers": num_layers, "batch_first": batch_first, "peephole": peephole}
    plain = ConvLSTM(2, hidden_dims, kernel_sizes, **kwargs, **PLAIN)
    if peephole:
        with torch.no_grad():
            for name, p in plain.named_parameters():
                if "peephole" in name:
                    p.normal_()
    fast = ConvLSTM(2, hidden_dims, kernel_sizes, **kwargs, **options)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


def run(model, x, state=None):
    """Outputs, final states and the gradients of a loss that reaches every one of them."""
    model.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    layer_outputs, last_states = model(x, state)
    weights = torch.Generator().manual_seed(7)
    loss = 0
    for out, (h, c) in zip(layer_outputs, last_states, strict=True):
        loss = loss + (out.float() * torch.randn(out.shape, generator=weights)).sum()
        loss = loss + h.float().pow(2).sum() + c.float().sum()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return layer_outputs, last_states, x.grad, grads


def assert_runs_close(got, want, **tolerances):
    for a, b in zip(got[0], want[0], strict=True):
        assert_close(a.float(), b, **tolerances)
    for (h, c), (h_ref, c_ref) in zip(got[1], want[1], strict=True):
        assert_close(h.float(), h_ref, **tolerances)
        assert_close(c.float(), c_ref, **tolerances)
    assert_close(got[2], want[2], **tolerances)
    assert got[3].keys() == want[3].keys()
    for name in want[3]:
        assert_close(got[3][name], want[3][name], **tolerances, msg=name)


def make_input(batch_first, steps, size, seed=1):
    x = torch.randn(2, steps, 2, *size, generator=torch.Generator().manual_seed(seed))
    return x if batch_first else x.transpose(0, 1).contiguous()


@pytest.mark.parametrize("options", FAST_OPTIONS, ids=str)
@pytest.mark.parametrize(("hidden_dims", "kernel_sizes", "num_layers", "steps", "size"), CONFIGS)
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("peephole", [False, True])
def test_fast_options_match_the_plain_path_in_float32(
    options, hidden_dims, kernel_sizes, num_layers, steps, size, batch_first, peephole
):
    plain, fast = make_pair(
        options,
        hidden_dims=hidden_dims,
        kernel_sizes=kernel_sizes,
        num_layers=num_layers,
        batch_first=batch_first,
        peephole=peephole,
    )
    x = make_input(batch_first, steps, size)
    # Splitting the convolution changes only the order of the additions: float32 rounding.
    assert_runs_close(run(fast, x), run(plain, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", FAST_OPTIONS, ids=str)
@pytest.mark.parametrize("peephole", [False, True])
def test_fast_options_match_from_a_given_state(options, peephole):
    plain, fast = make_pair(
        options,
        hidden_dims=[3, 2],
        kernel_sizes=3,
        num_layers=None,
        batch_first=True,
        peephole=peephole,
    )
    x = make_input(True, 3, (5, 5))
    gen = torch.Generator().manual_seed(3)
    state = [
        (torch.randn(2, c, 5, 5, generator=gen), torch.randn(2, c, 5, 5, generator=gen))
        for c in (3, 2)
    ]
    assert_runs_close(run(fast, x, state), run(plain, x, state), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", [*FAST_OPTIONS, {}], ids=lambda o: str(o or "defaults"))
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("peephole", [False, True])
def test_autocast_bfloat16_stays_close_to_float32(options, batch_first, peephole):
    plain, fast = make_pair(
        options,
        hidden_dims=[4, 1],
        kernel_sizes=3,
        num_layers=None,
        batch_first=batch_first,
        peephole=peephole,
    )
    x = make_input(batch_first, 4, (6, 6))
    want = run(plain, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = run(fast, x)
    # The states stay float32 under autocast: only the convolutions run in bfloat16.
    for h, c in got[1]:
        assert h.dtype == c.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa (relative error 2**-8 per rounding); a few roundings
    # through 4 steps and 2 layers stay within a few percent.
    assert_runs_close(got, want, rtol=5e-2, atol=5e-2)


# bfloat16 keeps 8 significant bits: one rounding is off by at most 2**-8 of the value.
BF16_ROUNDING = 2**-8
LONG = 500  # steps


@functools.cache
def long_memory_run():
    """A cell that remembers, run over LONG steps: the model, its input and its float32 c.

    With the forget gate's bias at 10, f > 0.9999 and c adds up its input over the whole
    sequence; with the candidate's bias at 1, every step adds about sigmoid(0) * tanh(1) ~ 0.4,
    so c ends in the hundreds, where bfloat16's numbers are 1 apart (from 2**7 to 2**8).
    """
    torch.manual_seed(0)
    model = ConvLSTM(1, [2], 3, forget_bias=10.0)
    with torch.no_grad():
        model.cells[0].conv.bias[4:6] = 1.0  # g's bias: channels 2 C_hid to 3 C_hid
    x = torch.rand(1, LONG, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        c = model(x)[1][0][1]
    assert c.min() > 2**7  # the premise: c has summed hundreds of steps
    return model, x, c


def test_cell_state_does_not_drift_under_autocast_over_a_long_sequence():
    model, x, want = long_memory_run()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x)[1][0][1]
    assert got.dtype == torch.float32
    # c is a sum of LONG increments, each from gates whose bfloat16 convolution rounded its
    # inputs, weights and output once each; kept in float32, the sum is as exact as its terms:
    # within 4 roundings of c, however long the sequence. A bfloat16 c misses this bound at
    # least tenfold (the next test).
    assert_close(got, want, rtol=4 * BF16_ROUNDING, atol=0)


def test_a_cell_state_kept_in_bfloat16_would_drift():
    """The same cell with c rounded to bfloat16 after every step: the drift the library avoids."""
    model, x, want = long_memory_run()
    cell = model.cells[0]
    h = torch.zeros(1, 2, 3, 3)
    c = torch.zeros(1, 2, 3, 3, dtype=torch.bfloat16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for t in range(LONG):
            i, f, g, o = cell.gates(x[:, t], h).float().chunk(4, dim=1)  # each (1, 2, 3, 3)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = (f * c + i * g).to(torch.bfloat16)
            h = o * torch.tanh(c.float())
    # Once c passes 2**7, increments under 0.5 round away and c stalls: its error grows with
    # the sequence, far past the 4 roundings the library's float32 c stays within.
    error = (c.float() - want).abs().max() / want.abs().max()
    assert error > 10 * 4 * BF16_ROUNDING


@pytest.mark.parametrize("channels_last", [None, False, True])
def test_outputs_and_states_come_back_contiguous(channels_last):
    model = ConvLSTM(2, [4, 3], 3, channels_last=channels_last)
    layer_outputs, last_states = model(make_input(True, 3, (5, 6)))
    for out, (h, c) in zip(layer_outputs, last_states, strict=True):
        assert out.is_contiguous() and h.is_contiguous() and c.is_contiguous()
        assert torch.equal(out[:, -1], h)


def test_accepts_channels_last_states():
    plain, fast = make_pair(
        {"channels_last": True},
        hidden_dims=[3],
        kernel_sizes=3,
        num_layers=None,
        batch_first=True,
        peephole=False,
    )
    x = make_input(True, 2, (4, 4))
    h = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    c = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    for a, b in zip(fast(x, [(h, c)])[0], plain(x, [(h, c)])[0], strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_switches_keep_the_model_and_show_in_repr():
    plain = ConvLSTM(1, [4, 2], 3, peephole=True, **PLAIN)
    fast = ConvLSTM(1, [4, 2], 3, peephole=True, channels_last=True, precompute_input=True)
    assert plain.state_dict().keys() == fast.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert value.shape == fast.state_dict()[key].shape
    text = repr(fast)
    assert "channels_last=True, precompute_input=True" in text
    assert "channels_last=None, precompute_input=None" in repr(ConvLSTM(1, 4, 3, num_layers=1))


def beam_input(batch, **kwargs):
    """A layer input of the post's shape: 5 frames of 24 x 24, one channel."""
    return torch.empty(batch, 5, 1, 24, 24, **kwargs)


def test_precompute_input_rule():
    model = ConvLSTM(1, [64, 1, 1], 3)  # C_in < C_hid, then C_in > C_hid, then C_in == C_hid
    assert model.precompute_input is None
    # The post's 100 movies: 59 MB of float32 gates per step, above glibc's 32 MiB.
    x = beam_input(100)
    assert [precomputes_input(cell, x) for cell in model.cells] == [False, True, True]
    # Ten movies, or bfloat16 gates under autocast: within 32 MiB, reused by glibc.
    assert precomputes_input(model.cells[0], beam_input(10))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert precomputes_input(model.cells[0], beam_input(100))
    assert not precomputes_input(model.cells[0], beam_input(60, dtype=torch.float64))


def test_precompute_input_rule_ignores_the_allocator_setting():
    # It used to change with keep_freed_memory(), so one call changed every later model.
    model = ConvLSTM(1, [64, 1], 3)
    x = beam_input(100)
    before = [precomputes_input(cell, x) for cell in model.cells]
    was = keep_freed_memory()
    try:
        assert [precomputes_input(cell, x) for cell in model.cells] == before
    finally:
        keep_freed_memory(was)


def test_precompute_input_rule_on_cuda_batches_every_layer():
    class FakeCuda:
        type = "cuda"

    class FakeInput:
        device = FakeCuda()
        dtype = torch.float32
        shape = (100, 5, 1, 24, 24)

    model = ConvLSTM(1, [64, 1], 3)
    assert all(precomputes_input(cell, FakeInput()) for cell in model.cells)


def test_precompute_input_rule_is_what_forward_runs(monkeypatch):
    import convlstm_lib.model as model_module

    seen = []
    run_layer = model_module._run_layer

    def spy(cell, x, state, **options):
        seen.append(options["precompute_input"])
        return run_layer(cell, x, state, **options)

    monkeypatch.setattr(model_module, "_run_layer", spy)
    # One step's gates of the first layer (4 x 8 channels of 4x4 floats) are 2 KiB.
    monkeypatch.setattr(model_module, "_MMAP_THRESHOLD_MAX", 1024)
    x = torch.randn(1, 2, 1, 4, 4)
    ConvLSTM(1, [8, 1], 3)(x)
    ConvLSTM(1, [8, 1], 3, precompute_input=True)(x)
    ConvLSTM(1, [8, 1], 3, precompute_input=False)(x)
    assert seen == [False, True, True, True, False, False]


def test_default_channels_last_rule():
    assert default_channels_last("cpu") is False
    assert default_channels_last(torch.device("meta")) is False
    assert default_channels_last("cuda") is False  # no autocast active


@pytest.mark.skipif(
    not os.environ.get("CONVLSTM_TEST_COMPILE"),
    reason="torch.compile takes 20-80 s on 2 CPU cores; set CONVLSTM_TEST_COMPILE=1 to run",
)
def test_torch_compile_of_the_model_matches_the_plain_path():
    # fuse_gates is retired: torch.compile(model) compiles the whole step, per module.
    plain, fast = make_pair(
        {}, hidden_dims=[3, 2], kernel_sizes=3, num_layers=None, batch_first=True, peephole=True
    )
    x = make_input(True, 3, (5, 5))
    assert_runs_close(run(torch.compile(fast), x), run(plain, x), rtol=1e-5, atol=1e-5)
