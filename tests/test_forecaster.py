"""EncoderForecaster: the paper's parameter counts, the split cell, patches, baselines, scores."""

import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn
from torch.testing import assert_close

from convlstm_lib import (
    FCLSTM,
    ConvLSTM,
    ConvLSTMCell,
    EncoderForecaster,
    frame_mse,
    frame_ssim,
    from_patches,
    persistence,
    to_patches,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def count(module):
    return sum(p.numel() for p in module.parameters())


# Shi et al. (2015), Table 1: 16x16 inputs of 16 channels (4x4 patches of 64x64 frames).
@pytest.mark.parametrize(
    ("hidden", "k_in", "k_state", "expected"),
    [
        ([256], 5, 5, 13_524_496),  # ConvLSTM(5x5)-5x5-256
        ([128, 128], 5, 5, 10_042_896),  # ConvLSTM(5x5)-5x5-128-5x5-128
        ([128, 64, 64], 5, 5, 7_585_296),  # ConvLSTM(5x5)-5x5-128-5x5-64-5x5-64
        ([128, 128], 9, 1, 11_550_224),  # ConvLSTM(9x9)-1x1-128-1x1-128
        ([128, 64, 64], 9, 1, 8_830_480),  # ConvLSTM(9x9)-1x1-128-1x1-64-1x1-64
    ],
)
def test_parameter_counts_of_the_papers_table_1(hidden, k_in, k_state, expected):
    model = EncoderForecaster(
        16, hidden, input_kernel_sizes=k_in, state_kernel_sizes=k_state, peephole=True
    )
    assert count(model) == expected


def test_forecaster_first_layer_has_no_input_weights():
    model = EncoderForecaster(16, [8, 4], input_kernel_sizes=3, state_kernel_sizes=1)
    first, second = model.forecaster
    assert isinstance(first, ConvLSTMCell) and first.input_dim == 0
    assert first.conv_x is None and first.conv_h.bias is not None
    assert second.conv_x.in_channels == 8 and second.conv_h.bias is None
    assert model.encoder[0].conv_x.kernel_size == (3, 3)
    assert model.encoder[0].conv_h.kernel_size == (1, 1)
    assert model.head.in_channels == 8 + 4 and model.head.kernel_size == (1, 1)


def test_equal_kernels_make_fused_cells():
    model = EncoderForecaster(16, [8, 4], input_kernel_sizes=3, state_kernel_sizes=3)
    assert all(cell.conv is not None for cell in (*model.encoder, model.forecaster[1]))
    assert model.forecaster[0].conv is None  # no input: only the state convolution


def test_checkpoint_of_the_split_cells_loads():
    # Before one cell served every model, equal kernels too were kept as conv_x and conv_h.
    torch.manual_seed(0)
    model = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=3)
    old = {}
    for key, value in model.state_dict().items():
        prefix, _, name = key.rpartition("conv.")
        if not _ or not prefix.startswith(("encoder", "forecaster.1")):
            old[key] = value
            continue
        c_in = 2 if prefix.startswith("encoder.0") else 3
        if name == "weight":
            old[prefix + "conv_x.weight"] = value[:, :c_in]
            old[prefix + "conv_h.weight"] = value[:, c_in:]
        else:
            old[prefix + "conv_x.bias"] = value
    assert "encoder.0.conv_x.weight" in old and "encoder.0.conv.weight" not in old
    fresh = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=3)
    fresh.load_state_dict(old)
    x = torch.randn(1, 3, 2, 4, 4)
    assert_close(fresh(x, 2), model(x, 2), rtol=0, atol=0)


def test_a_tuple_is_one_kernel_for_every_layer():
    model = EncoderForecaster(2, [3, 3], input_kernel_sizes=(3, 5), state_kernel_sizes=1)
    assert model.input_kernel_sizes == [(3, 5), (3, 5)]


def test_peepholes_start_at_zero_and_can_be_off():
    model = EncoderForecaster(2, [3], input_kernel_sizes=3, state_kernel_sizes=3)
    assert all(torch.count_nonzero(p) == 0 for n, p in model.named_parameters() if "peephole" in n)
    plain = EncoderForecaster(2, [3], input_kernel_sizes=3, state_kernel_sizes=3, peephole=False)
    assert not any("peephole" in n for n, _ in plain.named_parameters())
    assert count(model) - count(plain) == 2 * 3 * 3


@pytest.mark.parametrize("hidden", [[4], [4, 3], [3, 5, 2]])
@pytest.mark.parametrize(("k_in", "k_state"), [(3, 3), (5, 1), ((3, 1), 2)])
@pytest.mark.parametrize("output_dim", [None, 2])
def test_shapes(hidden, k_in, k_state, output_dim):
    if isinstance(k_in, tuple):
        k_in = [k_in] * len(hidden)  # one (kh, kw) pair per layer
    model = EncoderForecaster(
        3, hidden, input_kernel_sizes=k_in, state_kernel_sizes=k_state, output_dim=output_dim
    )
    out = model(torch.randn(2, 4, 3, 6, 5), steps=3)
    assert out.shape == (2, 3, output_dim or 3, 6, 5)


def test_matches_convlstm_encoder_then_a_manual_forecast():
    torch.manual_seed(0)
    model = EncoderForecaster(3, [4, 5], input_kernel_sizes=3, state_kernel_sizes=3)
    encoder = ConvLSTM(3, [4, 5], kernel_sizes=3, peephole=True)
    with torch.no_grad():
        for mine, theirs in zip(model.encoder, encoder.cells, strict=True):
            c_in = mine.input_dim
            theirs.conv.weight.copy_(mine.conv.weight)
            theirs.conv.bias.copy_(mine.conv.bias)
            for name in ("peephole_i", "peephole_f", "peephole_o"):
                getattr(mine, name).normal_()
                getattr(theirs, name).copy_(getattr(mine, name))
            assert theirs.conv.in_channels == c_in + mine.hidden_dim
    x = torch.randn(2, 4, 3, 6, 6)
    _, states = encoder(x)
    expected = []
    for _ in range(3):
        layer_input = None
        for layer, cell in enumerate(model.forecaster):
            states[layer] = cell(layer_input, states[layer])
            layer_input = states[layer][0]
        expected.append(model.head(torch.cat([h for h, _ in states], dim=1)))
    assert_close(model(x, steps=3), torch.stack(expected, dim=1))


def test_longer_forecasts_extend_shorter_ones():
    torch.manual_seed(0)
    model = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=1)
    x = torch.randn(2, 5, 2, 4, 4)
    assert_close(model(x, steps=6)[:, :2], model(x, steps=2))


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = EncoderForecaster(2, [3, 3], input_kernel_sizes=3, state_kernel_sizes=3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.normal_()
    model(torch.randn(2, 3, 2, 5, 5), steps=2).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_follows_the_input_dtype():
    model = EncoderForecaster(1, [2], input_kernel_sizes=3, state_kernel_sizes=3).double()
    assert model(torch.randn(1, 2, 1, 4, 4, dtype=torch.float64), 2).dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hidden_dims": []}, ValueError, "expected hidden_dims to have one entry per layer"),
        ({"hidden_dims": [4, 0]}, ValueError, "expected hidden_dims to be positive, got 0"),
        (
            {"hidden_dims": [4, 4], "input_kernel_sizes": [3, 3, 3]},
            ValueError,
            r"the number of layers disagrees: 2 layers, input_kernel_sizes has 3 entries",
        ),
        (
            {"hidden_dims": [4], "state_kernel_sizes": 0},
            ValueError,
            "expected state_kernel_sizes to be positive, got 0",
        ),
        ({"hidden_dims": [4], "output_dim": 1.5}, TypeError, "expected output_dim to be an int"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=f"^EncoderForecaster: {match}"):
        EncoderForecaster(2, **kwargs)


def test_forward_errors():
    model = EncoderForecaster(2, [3], input_kernel_sizes=3, state_kernel_sizes=3)
    with pytest.raises(ValueError, match=r"expected input with 5 dims \(B, T, C_in, H, W\), got 4"):
        model(torch.randn(2, 2, 4, 4), steps=1)
    with pytest.raises(ValueError, match="expected input with C_in=2 channels"):
        model(torch.randn(1, 2, 3, 4, 4), steps=1)
    with pytest.raises(ValueError, match="expected steps to be positive, got 0"):
        model(torch.randn(1, 2, 2, 4, 4), steps=0)
    with pytest.raises(ValueError, match="expected at least one input frame"):
        model(torch.randn(1, 0, 2, 4, 4), steps=1)
    with pytest.raises(TypeError, match="expected input of the parameters' dtype"):
        model(torch.randn(1, 2, 2, 4, 4, dtype=torch.float64), steps=1)


def test_patches_round_trip_and_layout():
    frames = torch.arange(2 * 8 * 12, dtype=torch.float32).view(2, 1, 8, 12)
    patches = to_patches(frames, 4)
    assert patches.shape == (2, 16, 2, 3)
    # Channel i * p + j of grid cell (r, s) is pixel (4 r + i, 4 s + j).
    assert patches[1, 2 * 4 + 3, 1, 2] == frames[1, 0, 4 + 2, 8 + 3]
    assert torch.equal(from_patches(patches, 4), frames)
    movie = torch.rand(2, 3, 2, 8, 8)
    assert torch.equal(from_patches(to_patches(movie, 2), 2), movie)


def test_patch_errors():
    with pytest.raises(ValueError, match=r"^to_patches: expected H and W to be multiples of"):
        to_patches(torch.rand(1, 1, 6, 8), 4)
    with pytest.raises(ValueError, match=r"^from_patches: expected channels to be a multiple"):
        from_patches(torch.rand(1, 8, 2, 2), 4)
    with pytest.raises(ValueError, match=r"^to_patches: expected input with at least 3 dims"):
        to_patches(torch.rand(8, 8), 4)
    with pytest.raises(TypeError, match=r"^to_patches: expected patch_size to be an int"):
        to_patches(torch.rand(1, 8, 8), 2.0)


def test_persistence_repeats_the_last_frame():
    x = torch.rand(2, 4, 1, 5, 5)
    out = persistence(x, steps=3)
    assert out.shape == (2, 3, 1, 5, 5)
    for k in range(3):
        assert torch.equal(out[:, k], x[:, -1])
    out[0, 0, 0, 0, 0] = 7.0  # a copy, not a view of the input
    assert x[0, -1, 0, 0, 0] != 7.0
    with pytest.raises(ValueError, match=r"^persistence: expected input with 5 dims"):
        persistence(torch.rand(4, 1, 5, 5), steps=3)


def test_fclstm_shapes_count_and_prefix():
    torch.manual_seed(0)
    model = FCLSTM(2 * 3 * 4, 5, num_layers=2)
    x = torch.randn(3, 4, 2, 3, 4)
    out = model(x, steps=4)
    assert out.shape == (3, 4, 2, 3, 4)
    assert_close(out[:, :2], model(x, steps=2))
    lstm = 4 * 5 * (24 + 5 + 2) + 4 * 5 * (5 + 5 + 2)  # two nn.LSTM layers, two biases each
    forecaster = 4 * 5 * (1 + 5 + 2) + 4 * 5 * (5 + 5 + 2)
    assert count(model) == lstm + forecaster + (2 * 5 + 1) * 24


def test_fclstm_matches_lstm_cells_by_hand():
    torch.manual_seed(0)
    model = FCLSTM(6, 4)
    x = torch.randn(2, 3, 1, 2, 3)
    _, (h, c) = model.encoder(x.flatten(2))
    h, c = h[0], c[0]
    cell = nn.LSTMCell(1, 4)
    cell.load_state_dict({k[:-3]: v for k, v in model.forecaster.state_dict().items()})
    expected = []
    for _ in range(2):
        h, c = cell(torch.ones(2, 1), (h, c))
        expected.append(model.head(h).view(2, 1, 2, 3))
    assert_close(model(x, steps=2), torch.stack(expected, dim=1))


def test_fclstm_errors():
    model = FCLSTM(16, 4)
    with pytest.raises(ValueError, match=r"^FCLSTM: expected frames of C \* H \* W = 16 values"):
        model(torch.rand(1, 2, 1, 3, 3), steps=1)
    with pytest.raises(ValueError, match=r"^FCLSTM: expected steps to be positive"):
        model(torch.rand(1, 2, 1, 4, 4), steps=0)


def test_frame_mse_and_ssim():
    torch.manual_seed(0)
    truth = torch.rand(3, 2, 1, 16, 16)
    noisy = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1)
    assert_close(frame_mse(noisy, truth)[1], ((noisy[:, 1] - truth[:, 1]) ** 2).mean().double())
    ssim = frame_ssim(noisy, truth)
    by_hand = sum(
        structural_similarity(noisy[b, 0, 0].numpy(), truth[b, 0, 0].numpy(), data_range=1.0)
        for b in range(3)
    )
    assert_close(ssim[0], torch.tensor(by_hand / 3, dtype=torch.float64))
    assert (ssim < 1).all() and torch.equal(frame_ssim(truth, truth), torch.ones(2).double())
    with pytest.raises(ValueError, match=r"^frame_mse: expected prediction and target of one"):
        frame_mse(truth, truth[:, :1])
