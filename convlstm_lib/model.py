"""A stack of ConvLSTM cells run over layers and time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .allocator import _memory_is_kept
from .cell import (
    ConvLSTMCell,
    _check_dtype,
    _check_input,
    _check_state,
    _kernel_pair,
    _lstm_update,
    _positive_int,
)

__all__ = ["ConvLSTM", "default_channels_last", "precomputes_input"]

_OWNER = "ConvLSTM"

_compiled_update = None


def _fused_update():
    """``_lstm_update`` compiled by ``torch.compile`` into one kernel, built on first use."""
    global _compiled_update
    if _compiled_update is None:
        _compiled_update = torch.compile(_lstm_update, dynamic=False)
    return _compiled_update


def default_channels_last(device: torch.device | str) -> bool:
    """The memory format :class:`ConvLSTM` picks when ``channels_last=None``.

    * CPU: NCHW. oneDNN's channels_last convolutions are faster on their own, but the gate
      math then runs on channel slices with strides, and over a whole training step the book's
      CPU (AMD EPYC, AVX-512 with bf16, 2 cores) measured channels_last slower than NCHW, in
      float32 and under bfloat16 autocast alike (``benchmarks/``, 7th chapter).
    * CUDA: channels_last under ``torch.autocast``, where tensor cores read NHWC (NVIDIA's
      advice, not measured by the book); NCHW in float32.
    * anything else: NCHW.

    Args:
        device: the device the input lives on.

    Returns:
        ``True`` for channels_last, ``False`` for NCHW.
    """
    device_type = torch.device(device).type
    if device_type == "cuda":
        return torch.is_autocast_enabled("cuda")
    return False


def precomputes_input(cell: ConvLSTMCell, device: torch.device | str) -> bool:
    r"""Whether :class:`ConvLSTM` with ``precompute_input=None`` batches a layer's input half.

    Batching the input half over time writes the gates of every step at once, a
    :math:`(B, T, 4 C_{hid}, H, W)` tensor, and stacks their gradients back together in the
    backward pass. On a CUDA device the caching allocator reuses that memory, and so does glibc
    after :func:`~convlstm_lib.keep_freed_memory`: batching then wins in every layer the book
    measured (``benchmarks/``, 7th chapter). With glibc's defaults every such tensor is mapped
    afresh from the kernel, one page fault per 4 KiB, which costs more than batching saves in a
    layer with fewer input channels than hidden ones (the post's first layer: 1 in, 64 hidden,
    whose input half is 1/65 of the work but whose gates are 295 MB of float32 for 100 movies).

    * CUDA, or glibc keeping freed memory: on.
    * otherwise: on when :math:`C_{in} \ge C_{hid}`, off below.

    Args:
        cell: the layer's cell.
        device: the device the input lives on.

    Returns:
        ``True`` to batch the input half, ``False`` to fold it into every step's convolution.
    """
    if torch.device(device).type == "cuda" or _memory_is_kept():
        return True
    return cell.input_dim >= cell.hidden_dim


def _layer_config(
    hidden_dims: int | Sequence[int],
    kernel_sizes: int | Sequence[int | tuple[int, int]],
    num_layers: int | None,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Expand ``hidden_dims`` and ``kernel_sizes`` to one entry per layer, checking they agree."""
    lengths = {}
    for name, value in (("hidden_dims", hidden_dims), ("kernel_sizes", kernel_sizes)):
        if isinstance(value, Sequence) and not isinstance(value, str):
            if len(value) == 0:
                raise ValueError(
                    f"{_OWNER}: expected {name} to have one entry per layer, got an empty sequence"
                )
            lengths[name] = len(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(
                f"{_OWNER}: expected {name} to be an int or a sequence with one entry per layer, "
                f"got {type(value).__name__}"
            )
    if num_layers is not None:
        num_layers = _positive_int(num_layers, "num_layers", _OWNER)
        lengths["num_layers"] = num_layers
    if not lengths:
        raise ValueError(
            f"{_OWNER}: num_layers is required when hidden_dims and kernel_sizes are both ints"
        )
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={n}" for name, n in lengths.items())
        hint = ""
        if "kernel_sizes" in lengths:
            hint = " (for one (kh, kw) kernel in every layer, pass [(kh, kw)] * num_layers)"
        raise ValueError(f"{_OWNER}: the number of layers disagrees: {described}{hint}")
    layers = next(iter(lengths.values()))
    dims = [hidden_dims] * layers if isinstance(hidden_dims, int) else list(hidden_dims)
    dims = [_positive_int(d, "hidden_dims", _OWNER) for d in dims]
    sizes = [kernel_sizes] * layers if isinstance(kernel_sizes, int) else list(kernel_sizes)
    sizes = [_kernel_pair(k, "kernel_sizes", _OWNER) for k in sizes]
    return dims, sizes


def _run_layer(
    cell: ConvLSTMCell,
    x: Tensor,
    state: tuple[Tensor, Tensor] | None,
    *,
    channels_last: bool,
    precompute_input: bool,
    fuse_gates: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one cell over a whole sequence with the fast options; inputs already validated.

    Args:
        cell: the layer's cell; its parameters are used as they are (slices, never copies).
        x: the layer's input of shape :math:`(B, T, C_{in}, H, W)`.
        state: the initial ``(h, c)``, each of shape :math:`(B, C_{hid}, H, W)`, or ``None``
            for zeros.
        channels_last, precompute_input, fuse_gates: see :class:`ConvLSTM`.

    Returns:
        ``(outputs, h, c)``: the hidden state at every step, of shape
        :math:`(B, T, C_{hid}, H, W)`, and the final ``h`` and ``c``, of shape
        :math:`(B, C_{hid}, H, W)`, all in the memory format the loop ran in.
    """
    batch, steps = x.shape[:2]
    frame_shape = (batch, cell.hidden_dim, *x.shape[-2:])
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    update = _fused_update() if fuse_gates else _lstm_update
    peepholes = (cell.peephole_i, cell.peephole_f, cell.peephole_o)
    weight, bias = cell.conv.weight, cell.conv.bias
    device_type = x.device.type
    frames = x.reshape(batch * steps, *x.shape[2:])  # (B T, C_in, H, W)
    frames = frames.contiguous(memory_format=fmt)

    # The convolution is linear in its input channels, so conv(cat[x, h], W) is
    # conv(x, W[:, :C_in]) + conv(h, W[:, C_in:]) (+ bias once).
    w_x = weight[:, : cell.input_dim]  # (4 C_hid, C_in, kh, kw)
    w_h = weight[:, cell.input_dim :]  # (4 C_hid, C_hid, kh, kw)
    if precompute_input:
        # The x half does not depend on h: it runs for every step in one call, and only the
        # h half stays in the loop.
        if torch.is_autocast_enabled(device_type):
            # Cast the recurrent half once per sequence rather than once per step.
            w_h = w_h.to(torch.get_autocast_dtype(device_type))
        x_gates = F.conv2d(frames, w_x, bias, padding="same")  # (B T, 4 C_hid, H, W)
        x_gates = x_gates.view(batch, steps, *x_gates.shape[1:])  # (B, T, 4 C_hid, H, W)
        # unbind, not x_gates[:, t]: its backward stacks T gradients instead of adding T
        # zero-padded copies of the whole tensor.
        per_step = x_gates.unbind(1)  # T x (B, 4 C_hid, H, W)
    else:
        per_step = frames.view(batch, steps, *frames.shape[1:]).unbind(1)  # T x (B, C_in, H, W)

    if state is None:
        h = None  # zeros: skip the recurrent convolution of the first step
        c = x.new_zeros(frame_shape).contiguous(memory_format=fmt)
    else:
        h = state[0].contiguous(memory_format=fmt)
        c = state[1].contiguous(memory_format=fmt)
    outputs = []
    for step in per_step:
        if precompute_input:
            if h is None:
                gates = step  # (B, 4 C_hid, H, W)
            else:
                gates = F.conv2d(h, w_h, padding="same").add_(step)  # (B, 4 C_hid, H, W)
        elif h is None:
            # A zero state contributes nothing: only the x half of the first step runs.
            gates = F.conv2d(step, w_x, bias, padding="same")  # (B, 4 C_hid, H, W)
        else:
            combined = torch.cat([step, h], dim=1)  # (B, C_in + C_hid, H, W)
            gates = F.conv2d(combined, weight, bias, padding="same")  # (B, 4 C_hid, H, W)
        if gates.dtype != c.dtype:
            # Under autocast: one cast, then the gate math runs in c's precision (float32),
            # cheaper than mixing dtypes in every elementwise op, and c does not drift.
            gates = gates.to(c.dtype)
        h, c = update(gates, c, *peepholes)  # each (B, C_hid, H, W)
        outputs.append(h)
    if channels_last:
        # Stack as (B, T, H, W, C) so (B, T) merge into a view for the next layer's reshape.
        stacked = torch.stack([o.permute(0, 2, 3, 1) for o in outputs], dim=1)  # (B, T, H, W, C)
        layer_output = stacked.permute(0, 1, 4, 2, 3)  # (B, T, C_hid, H, W), NHWC strides
    else:
        layer_output = torch.stack(outputs, dim=1)  # (B, T, C_hid, H, W)
    return layer_output, h, c


class ConvLSTM(nn.Module):
    r"""A multi-layer convolutional LSTM (Shi et al., 2015) applied to a sequence of frames.

    Each layer is a :class:`ConvLSTMCell`; layer :math:`l` reads the hidden states of layer
    :math:`l - 1` (layer 0 reads the input) and, at every step :math:`t`, computes

    .. math::
        \begin{array}{ll}
        i_t = \sigma(W_{xi} * x_t + W_{hi} * h_{t-1} + w_{ci} \circ c_{t-1} + b_i) \\
        f_t = \sigma(W_{xf} * x_t + W_{hf} * h_{t-1} + w_{cf} \circ c_{t-1} + b_f) \\
        g_t = \tanh(W_{xg} * x_t + W_{hg} * h_{t-1} + b_g) \\
        c_t = f_t \circ c_{t-1} + i_t \circ g_t \\
        o_t = \sigma(W_{xo} * x_t + W_{ho} * h_{t-1} + w_{co} \circ c_t + b_o) \\
        h_t = o_t \circ \tanh(c_t)
        \end{array}

    with :math:`*` a "same"-padded 2-D convolution and :math:`\circ` the Hadamard product; the
    peephole terms :math:`w_{c\cdot} \circ c` only with ``peephole=True``.

    Unlike :class:`torch.nn.LSTM`, which returns the last layer's outputs and every layer's final
    state, this returns every layer's outputs and every layer's final state. The invariants:

    * ``layer_outputs[l][:, -1]`` equals ``last_states[l][0]`` (the last output is the final
      hidden state);
    * running on ``x[:, :k]``, then on ``x[:, k:]`` from the returned ``last_states``, equals one
      run on ``x`` (the state carries everything a continuation needs);
    * the output at step :math:`t` does not depend on inputs after :math:`t` (causality).

    Args:
        input_dim: The number of channels :math:`C_{in}` of the input frames.
        hidden_dims: The hidden channels :math:`C_{hid}` of every layer: an int (the same for all)
            or a sequence with one entry per layer.
        kernel_sizes: The kernel size of every layer: an int (the same for all) or a sequence with
            one entry per layer, each an int or a ``(kh, kw)`` pair. Default: ``3``
        num_layers: The number of layers. Required when ``hidden_dims`` and ``kernel_sizes`` are
            both ints; must agree with their lengths otherwise. Default: ``None``
        bias: If ``False``, no layer's convolution has a bias. Default: ``True``
        batch_first: If ``True``, inputs and outputs are :math:`(B, T, C, H, W)`; if ``False``,
            :math:`(T, B, C, H, W)`. States are always batch first. Default: ``True``
        peephole: If ``True``, every cell has per-channel peephole weights (see
            :class:`ConvLSTMCell`). Default: ``False``
        channels_last: Run the time loop with every activation and state in the
            ``torch.channels_last`` memory format (NHWC), the one oneDNN and tensor cores
            compute in, so no step converts layouts. ``None`` picks by device with
            :func:`default_channels_last` (off on CPU, on under autocast on CUDA). Outputs and
            states come back in the default contiguous format either way. Default: ``None``
        precompute_input: Split each cell's convolution into its input half and its recurrent
            half (slices of the same ``conv.weight``; the model is unchanged) and run the input
            half for all :math:`T` steps in one call. ``None`` decides per layer and device
            with :func:`precomputes_input`. Equal to the plain step up to float rounding.
            Default: ``None``
        fuse_gates: Compile the gate math (:func:`torch.compile`) into one kernel per layer.
            The first call pays the compilation (tens of seconds on a small CPU) and every new
            input shape compiles again. Default: ``False``

    Whatever the switches, a zero initial state skips the recurrent half of the first step
    (it would multiply zeros). The three switches change speed, never the model: same
    parameters, same state dict, the same outputs up to float rounding. Float32 stays float32;
    for bfloat16 (or float16 on CUDA) convolutions run the model under :func:`torch.autocast`.
    The cell state :math:`c` then stays in the input's dtype (float32) while every convolution
    runs in the low precision, so long sequences do not drift; ``h`` and ``c`` come back in
    float32.

    Inputs: input, state
        * **input**: tensor of shape :math:`(B, T, C_{in}, H, W)` when ``batch_first=True``,
          :math:`(T, B, C_{in}, H, W)` otherwise.
        * **state**: a list with one pair ``(h_0, c_0)`` per layer, each of shape
          :math:`(B, C_{hid}^{(l)}, H, W)`, to continue from, or ``None`` for zeros.
          Default: ``None``

    Outputs: layer_outputs, last_states
        * **layer_outputs**: a list with one tensor per layer, the hidden state at every step,
          of shape :math:`(B, T, C_{hid}^{(l)}, H, W)` (time first when ``batch_first=False``).
        * **last_states**: a list with one pair ``(h_T, c_T)`` per layer, each of shape
          :math:`(B, C_{hid}^{(l)}, H, W)`.

    where :math:`B` is the batch size, :math:`T` the number of time steps, :math:`H, W` the frame
    height and width and :math:`C_{hid}^{(l)}` the hidden channels of layer :math:`l`.

    Attributes:
        cells: an :class:`~torch.nn.ModuleList` of :class:`ConvLSTMCell`, layer 0 first.

    Examples::

        >>> model = ConvLSTM(1, [64, 1], kernel_sizes=3)
        >>> x = torch.randn(8, 5, 1, 24, 24)
        >>> layer_outputs, last_states = model(x)
        >>> layer_outputs[-1].shape
        torch.Size([8, 5, 1, 24, 24])
        >>> h, c = last_states[0]
        >>> h.shape
        torch.Size([8, 64, 24, 24])
        >>> torch.equal(layer_outputs[-1][:, -1], last_states[-1][0])
        True
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: int | Sequence[int],
        kernel_sizes: int | Sequence[int | tuple[int, int]] = 3,
        *,
        num_layers: int | None = None,
        bias: bool = True,
        batch_first: bool = True,
        peephole: bool = False,
        channels_last: bool | None = None,
        precompute_input: bool | None = None,
        fuse_gates: bool = False,
    ) -> None:
        super().__init__()
        self.input_dim = _positive_int(input_dim, "input_dim", _OWNER)
        self.hidden_dims, self.kernel_sizes = _layer_config(hidden_dims, kernel_sizes, num_layers)
        self.num_layers = len(self.hidden_dims)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.peephole = bool(peephole)
        self.channels_last = None if channels_last is None else bool(channels_last)
        self.precompute_input = None if precompute_input is None else bool(precompute_input)
        self.fuse_gates = bool(fuse_gates)
        in_dims = [self.input_dim, *self.hidden_dims[:-1]]
        self.cells = nn.ModuleList(
            ConvLSTMCell(c_in, c_hid, k, bias=bias, peephole=peephole)
            for c_in, c_hid, k in zip(in_dims, self.hidden_dims, self.kernel_sizes, strict=True)
        )

    def reset_parameters(self) -> None:
        """Re-initialise every cell (see :meth:`ConvLSTMCell.reset_parameters`)."""
        for cell in self.cells:
            cell.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{self.input_dim}, {self.hidden_dims}, kernel_sizes={self.kernel_sizes}, "
            f"num_layers={self.num_layers}, bias={self.bias}, batch_first={self.batch_first}, "
            f"peephole={self.peephole}, channels_last={self.channels_last}, "
            f"precompute_input={self.precompute_input}, fuse_gates={self.fuse_gates}"
        )

    def forward(
        self, x: Tensor, state: Sequence[tuple[Tensor, Tensor]] | None = None
    ) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
        layout = "(B, T, C_in, H, W)" if self.batch_first else "(T, B, C_in, H, W)"
        _check_input(x, 5, layout, self.input_dim, _OWNER)
        _check_dtype(x, self.cells[0].conv.weight, _OWNER)
        if not self.batch_first:
            x = x.transpose(0, 1)  # (B, T, C_in, H, W)
        steps = x.shape[1]
        if steps == 0:
            raise ValueError(
                f"{_OWNER}: expected at least one time step, got an empty time dimension T=0"
            )
        if state is not None:
            if not isinstance(state, Sequence):
                raise TypeError(
                    f"{_OWNER}: expected state to be a list with one (h, c) per layer, "
                    f"got {type(state).__name__}"
                )
            if len(state) != self.num_layers:
                raise ValueError(
                    f"{_OWNER}: expected state to be a list with one (h, c) per layer "
                    f"({self.num_layers}), got {len(state)} entries"
                )

        channels_last = self.channels_last
        if channels_last is None:
            channels_last = default_channels_last(x.device)
        layer_input = x  # (B, T, C, H, W), C = C_in for layer 0, C_hid of the layer below after
        layer_outputs, last_states = [], []
        # Layers outside, time inside: each layer sees its whole input sequence at once, so the
        # loop keeps one layer's states alive at a time and hands a full sequence upwards.
        for layer, cell in enumerate(self.cells):
            layer_state = None
            if state is not None:
                shape = cell.state_shape(layer_input[:, 0])
                _check_state(state[layer], shape, _OWNER, f" of layer {layer}")
                layer_state = state[layer]
            layer_input, h, c = _run_layer(
                cell,
                layer_input,
                layer_state,
                channels_last=channels_last,
                precompute_input=(
                    precomputes_input(cell, x.device)
                    if self.precompute_input is None
                    else self.precompute_input
                ),
                fuse_gates=self.fuse_gates,
            )  # (B, T, C_hid, H, W), then h and c each (B, C_hid, H, W)
            layer_outputs.append(layer_input.contiguous())
            last_states.append((h.contiguous(), c.contiguous()))

        if not self.batch_first:
            layer_outputs = [out.transpose(0, 1) for out in layer_outputs]  # (T, B, C_hid, H, W)
        return layer_outputs, last_states
