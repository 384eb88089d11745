"""Looking inside a trained next-frame model: one step with every gate and state, run over a
movie, exported to ONNX for the page that runs it in the browser, and the rule for how fast a
motion the model can follow."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from .cell import _positive_int
from .train import NextFramePredictor

__all__ = ["InsideStep", "export_inside_step", "inside_view", "reach_per_frame"]

#: The names of the exported graph's inputs and outputs, in order.
INPUT_NAMES = ("x", "h", "c")
OUTPUT_NAMES = ("i", "f", "g", "o", "h_next", "c_next", "prediction")


def reach_per_frame(kernel_size: int, num_layers: int, *, inferred: bool) -> float:
    r"""How many pixels per frame a motion may cover for a ConvLSTM stack to follow it.

    With :math:`r = \lfloor k / 2 \rfloor` and :math:`L` layers of undilated :math:`k \times k`
    kernels (and a :math:`1 \times 1` readout), frame :math:`t` reaches the last layer's state
    at step :math:`t` within :math:`L r` pixels, and frame :math:`t - 1` within
    :math:`(L + 1) r` (one more convolution, through a state). To light the pixel :math:`q`
    where an object moving :math:`v` pixels per frame arrives next, the model must see the
    object at :math:`q - v` in the last frame; if the motion is known in advance (the post's
    beams all move the same way), that is all it needs:

    .. math::
        v \le L r .

    If the model must infer the velocity, and the object shows it only at the point itself (a
    single lit pixel), it must also see that point a frame earlier, at :math:`q - 2 v`, so that
    :math:`2 v \le (L + 1) r` too (older frames only tighten this):

    .. math::
        v \le \min\left(L r, \tfrac{(L + 1) r}{2}\right) .

    A larger object can show its velocity through its other parts, nearer to :math:`q`, so for
    it only the first bound holds.

    Distances are Chebyshev (the larger of the down and right components), as a square kernel
    reaches.

    Args:
        kernel_size: The side :math:`k` of every layer's square kernel.
        num_layers: The number of layers :math:`L`.
        inferred: ``True`` for the bound on a point whose velocity the model must infer from
            the frames, ``False`` for the bound on any motion (known in advance, or read off a
            larger shape).

    Returns:
        The largest speed, in pixels per frame, that the model can follow.

    Examples::

        >>> reach_per_frame(3, 2, inferred=False), reach_per_frame(3, 2, inferred=True)
        (2.0, 1.5)
        >>> reach_per_frame(5, 1, inferred=True)
        2.0
    """
    owner = "reach_per_frame"
    k = _positive_int(kernel_size, "kernel_size", owner)
    layers = _positive_int(num_layers, "num_layers", owner)
    r = k // 2
    if not inferred:
        return float(layers * r)
    return float(min(layers * r, (layers + 1) * r / 2))


class InsideStep(nn.Module):
    r"""One step of a :class:`NextFramePredictor` that returns everything inside it.

    The step every layer of the predictor's :class:`ConvLSTM` takes, through the library's own
    :meth:`ConvLSTMCell.step` (layer :math:`l` reads the fresh hidden state of layer
    :math:`l - 1`), with the states of all layers stacked into one tensor each, and the
    predictor's readout of the last layer's new hidden state:

    .. math::
        \begin{array}{ll}
        (h_t^{(l)}, c_t^{(l)}, i_t^{(l)}, f_t^{(l)}, g_t^{(l)}, o_t^{(l)})
            = \text{cell}^{(l)}.\text{step}(h_t^{(l-1)}, (h_{t-1}^{(l)}, c_{t-1}^{(l)})),
            \quad h_t^{(-1)} = x_t \\
        \hat{x}_{t+1} = \text{readout}(h_t^{(L-1)})
        \end{array}

    It is what :func:`export_inside_step` exports to ONNX and what :func:`inside_view` runs over
    a movie. It runs the predictor in whatever mode the predictor is in (call ``eval()`` first
    for the trained model without dropout); the parameters are the predictor's, not copies.

    Args:
        predictor: The :class:`NextFramePredictor` to look inside; every layer must have the
            same hidden channels, so that the states stack.

    Inputs: x, h, c
        * **x**: tensor of shape :math:`(B, C_{in}, H, W)`, the frame at step :math:`t`.
        * **h**: tensor of shape :math:`(L, B, C_{hid}, H, W)`, every layer's hidden state
          :math:`h_{t-1}` (zeros before the first frame).
        * **c**: tensor of shape :math:`(L, B, C_{hid}, H, W)`, every layer's cell state
          :math:`c_{t-1}`.

    Outputs: i, f, g, o, h_next, c_next, prediction
        * **i, f, g, o**: tensors of shape :math:`(L, B, C_{hid}, H, W)`, every layer's input,
          forget and output gates and candidate.
        * **h_next, c_next**: tensors of shape :math:`(L, B, C_{hid}, H, W)`, the new states.
        * **prediction**: tensor of shape :math:`(B, C_{out}, H, W)`, the predicted next frame.

    where :math:`L` is the number of layers, :math:`B` the batch size, :math:`H, W` the frame
    height and width.

    Examples::

        >>> from convlstm_lib import ConvLSTM
        >>> predictor = NextFramePredictor(ConvLSTM(1, [8, 8], 3), readout="conv").eval()
        >>> step = InsideStep(predictor)
        >>> x = torch.rand(1, 1, 24, 24)
        >>> zeros = torch.zeros(2, 1, 8, 24, 24)
        >>> i, f, g, o, h, c, prediction = step(x, zeros, zeros)
        >>> i.shape, prediction.shape
        (torch.Size([2, 1, 8, 24, 24]), torch.Size([1, 1, 24, 24]))
        >>> torch.allclose(prediction, predictor(x[:, None]))
        True
    """

    def __init__(self, predictor: NextFramePredictor) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(predictor, NextFramePredictor):
            raise TypeError(
                f"{owner}: expected a NextFramePredictor, got {type(predictor).__name__}"
            )
        hidden = set(predictor.convlstm.hidden_dims)
        if len(hidden) != 1:
            raise ValueError(
                f"{owner}: expected every layer to have the same hidden channels, so that the "
                f"states stack, got {predictor.convlstm.hidden_dims}"
            )
        self.predictor = predictor
        self.num_layers = predictor.convlstm.num_layers
        self.hidden_dim = hidden.pop()

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, hidden_dim={self.hidden_dim}"

    def forward(
        self, x: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        layer_input = x  # (B, C_in, H, W), then each layer's new h
        steps = []
        for layer, cell in enumerate(self.predictor.convlstm.cells):
            step = cell.step(layer_input, (h[layer], c[layer]))  # each (B, C_hid, H, W)
            steps.append(step)
            layer_input = step.h
        i, f, g, o, h_next, c_next = (
            torch.stack([getattr(step, name) for step in steps])  # (L, B, C_hid, H, W)
            for name in ("i", "f", "g", "o", "h", "c")
        )
        return i, f, g, o, h_next, c_next, self.predictor.read_out(layer_input)


def inside_view(predictor: NextFramePredictor, frames: Tensor) -> dict[str, Tensor]:
    r"""Run :class:`InsideStep` over ``frames`` from zero states, keeping everything it returns.

    Args:
        predictor: The :class:`NextFramePredictor` to look inside (its ConvLSTM batch first).
        frames: tensor of shape :math:`(B, T, C_{in}, H, W)`.

    Returns:
        A dict with the keys of :class:`InsideStep`'s outputs, ``"i"``, ``"f"``, ``"g"``,
        ``"o"``, ``"h"`` and ``"c"`` (the states after each step) of shape
        :math:`(T, L, B, C_{hid}, H, W)`, and ``"prediction"`` of shape
        :math:`(T, B, C_{out}, H, W)`: after step :math:`t`, the prediction of frame
        :math:`t + 1`. Computed without gradients.

    Examples::

        >>> from convlstm_lib import ConvLSTM
        >>> predictor = NextFramePredictor(ConvLSTM(1, [8], 3), readout="conv").eval()
        >>> movie = torch.rand(2, 5, 1, 24, 24)
        >>> view = inside_view(predictor, movie)
        >>> view["c"].shape, view["prediction"].shape
        (torch.Size([5, 1, 2, 8, 24, 24]), torch.Size([5, 2, 1, 24, 24]))
        >>> torch.allclose(view["prediction"][-1], predictor(movie))
        True
    """
    step = InsideStep(predictor)
    if not isinstance(frames, Tensor) or frames.dim() != 5:
        got = f"{frames.dim()} dims" if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"inside_view: expected frames of 5 dims (B, T, C_in, H, W), got {got}")
    batch, _, _, height, width = frames.shape
    h = frames.new_zeros(step.num_layers, batch, step.hidden_dim, height, width)  # (L, B, C, H, W)
    c = torch.zeros_like(h)
    kept = {name: [] for name in ("i", "f", "g", "o", "h", "c", "prediction")}
    with torch.no_grad():
        for t in range(frames.shape[1]):
            i, f, g, o, h, c, prediction = step(frames[:, t], h, c)
            for name, value in zip(kept, (i, f, g, o, h, c, prediction), strict=True):
                kept[name].append(value)
    return {name: torch.stack(values) for name, values in kept.items()}  # (T, ...)


def export_inside_step(
    predictor: NextFramePredictor,
    path: str | os.PathLike,
    *,
    height: int,
    width: int,
) -> Path:
    r"""Export :class:`InsideStep` of ``predictor``, in eval mode, to one ONNX file.

    The graph comes from :func:`torch.onnx.export` with its default (``torch.export``-based)
    exporter, for a batch of one and fixed frame size, with the inputs named ``x``, ``h``,
    ``c`` and the outputs ``i``, ``f``, ``g``, ``o``, ``h_next``, ``c_next``, ``prediction``
    (shapes as in :class:`InsideStep`). The weights are stored inside the file, so a web page
    loads one file. The exporter's progress messages are kept off the output.

    Args:
        predictor: The :class:`NextFramePredictor` to export; it is left in eval mode.
        path: The ``.onnx`` file to write.
        height: The frame height :math:`H` the graph takes.
        width: The frame width :math:`W` the graph takes.

    Returns:
        The path written.
    """
    owner = "export_inside_step"
    height = _positive_int(height, "height", owner)
    width = _positive_int(width, "width", owner)
    step = InsideStep(predictor).eval()  # the predictor too: no dropout in the graph
    weight = next(predictor.parameters())
    x = weight.new_zeros(1, predictor.convlstm.input_dim, height, width)  # (1, C_in, H, W)
    h = weight.new_zeros(step.num_layers, 1, step.hidden_dim, height, width)  # (L, 1, C, H, W)
    path = Path(path)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(
            step,
            (x, h, h.clone()),
            path,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            external_data=False,
            verbose=False,
        )
    return path
