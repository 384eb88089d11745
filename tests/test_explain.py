"""InsideStep, inside_view, export_inside_step, reach_per_frame; NextFramePredictor's every-step
prediction: equal to the stack, the rule against measured footprints, ONNX parity, errors."""

import numpy as np
import pytest
import torch

from convlstm_lib import (
    ConvLSTM,
    ConvLSTMCell,
    InsideStep,
    NextFramePredictor,
    export_inside_step,
    inside_view,
    reach_per_frame,
)


def predictor(layers=2, hidden=4, k=3, *, readout="conv", peephole=False, seed=0):
    torch.manual_seed(seed)
    convlstm = ConvLSTM(1, [hidden] * layers, k, peephole=peephole)
    if peephole:  # a new peephole cell starts at zero; random ones test the terms
        with torch.no_grad():
            for cell in convlstm.cells:
                for name in ("peephole_i", "peephole_f", "peephole_o"):
                    getattr(cell, name).normal_()
    return NextFramePredictor(convlstm, readout=readout).eval()


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("peephole", [False, True])
def test_inside_view_equals_the_stack_and_the_cell_equations(layers, peephole):
    model = predictor(layers, peephole=peephole)
    movie = torch.rand(3, 5, 1, 10, 12)
    view = inside_view(model, movie)
    with torch.no_grad():
        outputs, last = model.convlstm(movie)
        every = model.predict_every_step(movie)
    assert view["i"].shape == (5, layers, 3, 4, 10, 12)
    assert view["prediction"].shape == (5, 3, 1, 10, 12)
    for layer in range(layers):
        torch.testing.assert_close(view["h"][:, layer], outputs[layer].transpose(0, 1))
        torch.testing.assert_close(view["c"][-1, layer], last[layer][1])
    torch.testing.assert_close(view["prediction"], every.transpose(0, 1))
    # The gates are the ones the states were made from.
    c_before = torch.cat([torch.zeros_like(view["c"][:1]), view["c"][:-1]])
    torch.testing.assert_close(view["c"], view["f"] * c_before + view["i"] * view["g"])
    torch.testing.assert_close(view["h"], view["o"] * torch.tanh(view["c"]))
    for gate in ("i", "f", "o"):
        assert ((view[gate] > 0) & (view[gate] < 1)).all()


@pytest.mark.parametrize("readout", ["conv", "hidden"])
def test_predict_every_step_is_causal_and_ends_in_forward(readout):
    model = predictor(1, hidden=1 if readout == "hidden" else 4, readout=readout)
    movie = torch.rand(2, 6, 1, 8, 8)
    with torch.no_grad():
        every = model.predict_every_step(movie)
        changed = movie.clone()
        changed[:, 4:] = torch.rand(2, 2, 1, 8, 8)
        other = model.predict_every_step(changed)
        torch.testing.assert_close(every[:, -1], model(movie))
    assert every.shape == (2, 6, 1, 8, 8)
    torch.testing.assert_close(every[:, :4], other[:, :4])  # frames 4, 5 cannot reach back
    assert not torch.allclose(every[:, 4:], other[:, 4:])


def test_inside_step_uses_the_predictors_parameters_and_mode():
    model = predictor(1)
    step = InsideStep(model)
    assert {id(p) for p in step.parameters()} == {id(p) for p in model.parameters()}
    assert repr(step).startswith("InsideStep(\n  num_layers=1, hidden_dim=4")


def test_inside_step_and_view_errors():
    with pytest.raises(TypeError, match="InsideStep: expected a NextFramePredictor, got ConvLSTM"):
        InsideStep(ConvLSTM(1, 4, 3))
    uneven = NextFramePredictor(ConvLSTM(1, [4, 2], 3), readout="conv")
    with pytest.raises(ValueError, match=r"InsideStep: expected every layer .* got \[4, 2\]"):
        InsideStep(uneven)
    with pytest.raises(ValueError, match=r"inside_view: expected frames of 5 dims .* got 4 dims"):
        inside_view(predictor(1), torch.rand(5, 1, 8, 8))


@pytest.mark.parametrize(
    ("k", "layers", "known", "inferred"),
    [(3, 1, 1, 1), (3, 2, 2, 1.5), (5, 1, 2, 2), (5, 2, 4, 3), (7, 1, 3, 3), (1, 3, 0, 0)],
)
def test_reach_per_frame_values(k, layers, known, inferred):
    assert reach_per_frame(k, layers, inferred=False) == known
    assert reach_per_frame(k, layers, inferred=True) == inferred


def _radius(diff, centre):
    rows, cols = torch.nonzero(diff > 0, as_tuple=True)
    return int(torch.maximum((rows - centre).abs(), (cols - centre).abs()).max())


@pytest.mark.parametrize(("k", "layers"), [(3, 1), (3, 2), (5, 1), (5, 2), (3, 3)])
def test_reach_per_frame_follows_from_measured_footprints(k, layers):
    # One lit pixel in frame 0: how far the last layer sees it at step 0 (frame t at step t)
    # and at step 1 (frame t - 1 at step t), in float64 on random weights, exactly.
    torch.manual_seed(0)
    size = 31
    cells = [ConvLSTMCell(1 if n == 0 else 3, 3, k).double() for n in range(layers)]
    lit = torch.zeros(2, 1, 1, size, size, dtype=torch.float64)
    lit[0, 0, 0, size // 2, size // 2] = 1.0
    runs = []
    for frames in (lit, torch.zeros_like(lit)):
        states, tops = [None] * layers, []
        with torch.no_grad():
            for frame in frames:
                x = frame
                for n, cell in enumerate(cells):
                    states[n] = cell(x, states[n])
                    x = states[n][0]
                tops.append(x)
        runs.append(tops)
    now, before = (_radius((a - b).abs().amax(1)[0], size // 2) for a, b in zip(*runs, strict=True))
    assert reach_per_frame(k, layers, inferred=False) == now
    assert reach_per_frame(k, layers, inferred=True) == min(now, before / 2)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 1), ValueError, "expected kernel_size to be positive, got 0"),
        ((3, 0), ValueError, "expected num_layers to be positive, got 0"),
        ((3.0, 1), TypeError, "expected kernel_size to be an int, got float"),
    ],
)
def test_reach_per_frame_errors(args, error, message):
    with pytest.raises(error, match=f"reach_per_frame: {message}"):
        reach_per_frame(*args, inferred=True)


def test_export_inside_step_runs_in_onnxruntime_as_in_torch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = predictor(2, hidden=3, k=3, peephole=True)
    path = export_inside_step(model, tmp_path / "step.onnx", height=9, width=7)
    assert path == tmp_path / "step.onnx" and sorted(p.name for p in tmp_path.iterdir()) == [
        "step.onnx"
    ]  # the weights are inside: one file
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "h", "c"]
    assert [o.name for o in session.get_outputs()] == [
        "i", "f", "g", "o", "h_next", "c_next", "prediction"
    ]  # fmt: skip
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.rand(1, 1, 9, 7, generator=generator)
        h = torch.randn(2, 1, 3, 9, 7, generator=generator)
        c = torch.randn(2, 1, 3, 9, 7, generator=generator)
        got = session.run(None, {"x": x.numpy(), "h": h.numpy(), "c": c.numpy()})
        with torch.no_grad():
            expected = InsideStep(model)(x, h, c)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == tuple(e.shape)
            assert np.abs(g - e.numpy()).max() <= 1e-5


def test_export_inside_step_errors(tmp_path):
    with pytest.raises(ValueError, match="export_inside_step: expected height to be positive"):
        export_inside_step(predictor(1), tmp_path / "x.onnx", height=0, width=4)
