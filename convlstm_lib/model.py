"""A stack of ConvLSTM cells run over layers and time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .cell import (
    ConvLSTMCell,
    _check_dtype,
    _check_input,
    _check_state,
    _kernel_pair,
    _positive_int,
)

__all__ = ["ConvLSTM", "default_channels_last", "precomputes_input"]

_OWNER = "ConvLSTM"

# glibc serves a block above its mmap threshold, which adapts up to this, with a fresh mmap:
# one page fault per 4 KiB, every time it is allocated (mallopt(3), DEFAULT_MMAP_THRESHOLD_MAX).
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def default_channels_last(device: torch.device | str) -> bool:
    """The memory format :class:`ConvLSTM` picks when ``channels_last=None``.

    * CPU: NCHW. oneDNN's channels_last convolutions are faster on their own, but the gate
      math then runs on channel slices with strides, and over a whole training step the book's
      CPU (AMD EPYC, AVX-512 with bf16, 2 cores) measured channels_last slower than NCHW, in
      float32 and under bfloat16 autocast alike (``benchmarks/``, chapter *Making it fast*).
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


def precomputes_input(cell: ConvLSTMCell, x: Tensor) -> bool:
    r"""Whether :class:`ConvLSTM` with ``precompute_input=None`` batches a layer's input half.

    Batching the input half over time writes the gates of every step at once, a
    :math:`(B, T, 4 C_{hid}, H, W)` tensor, and stacks their gradients back together in the
    backward pass. On a CUDA device the caching allocator reuses that memory: batching wins in
    every layer. On the CPU, glibc reuses freed blocks up to 32 MiB, but maps every larger one
    afresh from the kernel, one page fault per 4 KiB, every time (unless
    :func:`~convlstm_lib.keep_freed_memory` is on); then batching costs more than it saves in a
    layer with fewer input channels than hidden ones (the post's first layer: 1 in, 64 hidden,
    whose input half is 1/65 of the work but whose gates are 59 MB of float32 per step for 100
    movies). The rule reads only the device and the shapes, never a process-wide setting, so a
    model computes the same whatever else the process did:

    * CUDA: on.
    * CPU: on when :math:`C_{in} \ge C_{hid}`, or when one step's gates take at most 32 MiB
      (in the dtype the convolutions run in, bfloat16 under autocast); off otherwise.

    Args:
        cell: the layer's cell.
        x: the layer's input, of shape :math:`(B, T, C_{in}, H, W)` (only its shape, device
            and dtype are read).

    Returns:
        ``True`` to batch the input half, ``False`` to fold it into every step's convolution.
    """
    if x.device.type == "cuda" or cell.input_dim >= cell.hidden_dim:
        return True
    dtype, device_type = x.dtype, x.device.type
    autocast = torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(
        device_type
    )
    if autocast and dtype == torch.float32:
        dtype = torch.get_autocast_dtype(device_type)
    batch, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    step_bytes = batch * 4 * cell.hidden_dim * height * width * dtype.itemsize
    return step_bytes <= _MMAP_THRESHOLD_MAX


def _is_kernel_pair(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _per_layer_kernels(
    value: int | tuple[int, int] | Sequence[int | tuple[int, int]],
    layers: int | None,
    name: str,
    owner: str,
) -> list[tuple[int, int]] | None:
    """Expand a kernel size to one ``(kh, kw)`` per layer.

    An int or a tuple of two ints is one kernel for every layer, as for a single cell; per-layer
    kernels come as a list (or another sequence). Returns ``None`` for "one kernel for all" when
    ``layers`` is not known yet.
    """
    if isinstance(value, int) or _is_kernel_pair(value):
        pair = _kernel_pair(value, name, owner)
        return None if layers is None else [pair] * layers
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(
            f"{owner}: expected {name} to be an int, a (kh, kw) tuple or a list with one entry "
            f"per layer, got {type(value).__name__}"
        )
    if len(value) == 0:
        raise ValueError(f"{owner}: expected {name} to have one entry per layer, got an empty list")
    if layers is not None and len(value) != layers:
        raise ValueError(
            f"{owner}: the number of layers disagrees: {layers} layers, {name} has "
            f"{len(value)} entries (one (kh, kw) tuple is one kernel for every layer)"
        )
    return [_kernel_pair(v, name, owner) for v in value]


def _layer_config(
    hidden_dims: int | Sequence[int],
    kernel_sizes: int | tuple[int, int] | Sequence[int | tuple[int, int]],
    num_layers: int | None,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Expand ``hidden_dims`` and ``kernel_sizes`` to one entry per layer, checking they agree."""
    lengths = {}
    if isinstance(hidden_dims, Sequence) and not isinstance(hidden_dims, str):
        if len(hidden_dims) == 0:
            raise ValueError(
                f"{_OWNER}: expected hidden_dims to have one entry per layer, got an empty sequence"
            )
        lengths["hidden_dims"] = len(hidden_dims)
    elif not isinstance(hidden_dims, int) or isinstance(hidden_dims, bool):
        raise TypeError(
            f"{_OWNER}: expected hidden_dims to be an int or a sequence with one entry per layer, "
            f"got {type(hidden_dims).__name__}"
        )
    per_layer = _per_layer_kernels(kernel_sizes, None, "kernel_sizes", _OWNER)
    if per_layer is not None:
        lengths["kernel_sizes"] = len(per_layer)
    if num_layers is not None:
        lengths["num_layers"] = _positive_int(num_layers, "num_layers", _OWNER)
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={n}" for name, n in lengths.items())
        hint = ""
        if "kernel_sizes" in lengths:
            hint = " (one (kh, kw) tuple is one kernel for every layer)"
        raise ValueError(f"{_OWNER}: the number of layers disagrees: {described}{hint}")
    # Like torch.nn.LSTM, one layer unless something says otherwise.
    layers = next(iter(lengths.values()), 1)
    dims = [hidden_dims] * layers if isinstance(hidden_dims, int) else list(hidden_dims)
    dims = [_positive_int(d, "hidden_dims", _OWNER) for d in dims]
    sizes = _per_layer_kernels(kernel_sizes, layers, "kernel_sizes", _OWNER)
    return dims, sizes


def _cells(
    cell_class: type[ConvLSTMCell],
    in_dims: Sequence[int],
    hidden_dims: Sequence[int],
    kernel_sizes: Sequence[tuple[int, int]],
    state_kernel_sizes: Sequence[tuple[int, int]] | None,
    *,
    owner: str,
    **options: object,
) -> list[ConvLSTMCell]:
    """One cell per layer, the stack's options passed through; errors carry ``owner``'s name."""
    if state_kernel_sizes is None:
        state_kernel_sizes = kernel_sizes
    cells = []
    for c_in, c_hid, k, k_state in zip(
        in_dims, hidden_dims, kernel_sizes, state_kernel_sizes, strict=True
    ):
        try:
            cells.append(cell_class(c_in, c_hid, k, state_kernel_size=k_state, **options))
        except (TypeError, ValueError) as err:
            # The cell validates every option; the message names the class the user called.
            raise type(err)(str(err).replace(f"{cell_class.__name__}:", f"{owner}:", 1)) from None
    return cells


def _step(
    cell: ConvLSTMCell, step: Tensor, h: Tensor | None, c: Tensor, precompute_input: bool
) -> tuple[Tensor, Tensor]:
    """One time step of :func:`_run_layer`: ``step`` is the frame, or its precomputed gates."""
    if not precompute_input:
        gates = cell.gates(step, h)  # (B, 4 C_hid, H, W)
    elif h is None:
        gates = step
    else:
        gates = cell.state_gates(h).add_(step)  # (B, 4 C_hid, H, W)
    h, c = cell.update(gates, c)[:2]  # each (B, C_hid, H, W)
    return h, c


def _run_layer(
    cell: ConvLSTMCell,
    x: Tensor,
    state: tuple[Tensor, Tensor] | None,
    *,
    channels_last: bool,
    precompute_input: bool,
    checkpoint_steps: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run one cell over a whole sequence through its methods; inputs already validated.

    Args:
        cell: the layer's cell.
        x: the layer's input of shape :math:`(B, T, C_{in}, H, W)`.
        state: the initial ``(h, c)``, each of shape :math:`(B, C_{hid}, H, W)`, or ``None``
            for zeros.
        channels_last, precompute_input, checkpoint_steps: see :class:`ConvLSTM`.

    Returns:
        ``(outputs, h, c)``: the hidden state at every step, of shape
        :math:`(B, T, C_{hid}, H, W)`, and the final ``h`` and ``c``, of shape
        :math:`(B, C_{hid}, H, W)`, all in the memory format the loop ran in.
    """
    batch, steps = x.shape[:2]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if state is None:
        h = None  # zeros: the first step skips the recurrent half, which would multiply zeros
        c = x.new_zeros(batch, cell.hidden_dim, *x.shape[-2:]).contiguous(memory_format=fmt)
    else:
        h = state[0].contiguous(memory_format=fmt)
        c = state[1].contiguous(memory_format=fmt)
    # Drawn once per sequence (variational dropout); None in eval mode or without dropout.
    mask_x, mask_h = cell.dropout_masks(c)
    if mask_x is not None:
        x = x * mask_x.unsqueeze(1)  # (B, T, C_in, H, W): the same mask at every step
    frames = x.reshape(batch * steps, *x.shape[2:])  # (B T, C_in, H, W)
    frames = frames.contiguous(memory_format=fmt)
    if precompute_input:
        # The input half does not depend on h: it runs for every step in one call, and only
        # the recurrent half stays in the loop.
        x_gates = cell.input_gates(frames)  # (B T, 4 C_hid, H, W)
        x_gates = x_gates.view(batch, steps, *x_gates.shape[1:])  # (B, T, 4 C_hid, H, W)
        # unbind, not x_gates[:, t]: its backward stacks T gradients instead of adding T
        # zero-padded copies of the whole tensor.
        per_step = x_gates.unbind(1)  # T x (B, 4 C_hid, H, W)
    else:
        per_step = frames.view(batch, steps, *frames.shape[1:]).unbind(1)  # T x (B, C_in, H, W)

    # Recomputing a step in the backward pass only pays when there is a backward pass.
    recompute = checkpoint_steps and torch.is_grad_enabled()
    outputs = []
    for step in per_step:
        # Variational dropout: the same units of h are dropped at every step of the sequence.
        h_in = h if mask_h is None or h is None else h * mask_h  # (B, C_hid, H, W)
        if recompute:
            # Keeps only the step's inputs for backward and runs the step again there.
            h, c = checkpoint(_step, cell, step, h_in, c, precompute_input, use_reentrant=False)
        else:
            h, c = _step(cell, step, h_in, c, precompute_input)  # each (B, C_hid, H, W)
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
        kernel_sizes: The kernel size of every layer: an int or a ``(kh, kw)`` tuple (one kernel
            for every layer, as for a single cell), or a list with one entry per layer, each an
            int or a ``(kh, kw)`` pair. Default: ``3``
        num_layers: The number of layers. Must agree with the lengths of ``hidden_dims`` and
            ``kernel_sizes`` when they are lists; ``None`` takes it from them, or builds one
            layer, as :class:`torch.nn.LSTM` does. Default: ``None``
        bias: If ``False``, no layer's convolution has a bias. Default: ``True``
        batch_first: If ``True``, inputs and outputs are :math:`(B, T, C, H, W)`; if ``False``,
            :math:`(T, B, C, H, W)`. States are always batch first. Default: ``True``
        peephole: If ``True``, every cell has per-channel peephole weights (see
            :class:`ConvLSTMCell`). Off by default, like :class:`torch.nn.LSTM`, which has none;
            :class:`EncoderForecaster` turns them on by default, as the paper's model has them.
            Default: ``False``
        channels_last: Run the time loop with every activation and state in the
            ``torch.channels_last`` memory format (NHWC), the one oneDNN and tensor cores
            compute in, so no step converts layouts. ``None`` picks by device with
            :func:`default_channels_last` (off on CPU, on under autocast on CUDA). Outputs and
            states come back in the default contiguous format either way. Default: ``None``
        precompute_input: Run each cell's input half (:meth:`ConvLSTMCell.input_gates`) for all
            :math:`T` steps in one call, and only the recurrent half
            (:meth:`ConvLSTMCell.state_gates`) in the loop; else every step runs
            :meth:`ConvLSTMCell.gates`. ``None`` decides per layer with
            :func:`precomputes_input`, from the device and the shapes. Equal to the plain step
            up to float rounding. Default: ``None``
        checkpoint_steps: Activation checkpointing over time steps
            (:func:`torch.utils.checkpoint.checkpoint`): in training, keep only every step's
            inputs (the frame or its precomputed gates, :math:`h` and :math:`c`) for the
            backward pass instead of every gate, and run each step again there. Less memory,
            about one more forward pass of time; the same losses and gradients. Only where
            gradients are recorded; inference is unchanged. With ``precompute_input=None``
            it folds every layer's input half into its steps, since a batched input half,
            :math:`(B, T, 4 C_{hid}, H, W)`, would stay alive for backward. Default: ``False``
        padding_mode, dilation, state_dilation, forget_bias, dropout, recurrent_dropout: The
            options of every layer's :class:`ConvLSTMCell`, which documents them: how frames
            are padded (``"circular_width"`` for a global grid that wraps in longitude), the
            dilation of the input and state kernels, the forget gate's initial bias, and
            variational dropout on each layer's input and hidden state, with masks drawn once
            per call of ``forward`` and reused at every time step. Unlike
            :class:`torch.nn.LSTM`'s ``dropout``, which drops the outputs between layers, these
            are Keras's ``ConvLSTM2D`` options. Defaults: ``"zeros"``, ``1``, ``1``, ``None``,
            ``0.0``, ``0.0``

    Whatever the switches, a zero initial state skips the recurrent half of the first step
    (it would multiply zeros). The three switches change speed or memory, never the model: same
    parameters, same state dict, the same outputs up to float rounding. Float32 stays float32;
    for bfloat16 (or float16 on CUDA) convolutions run the model under :func:`torch.autocast`.
    The cell state :math:`c` then stays in the input's dtype (float32) while every convolution
    runs in the low precision, so long sequences do not drift; ``h`` and ``c`` come back in
    float32. To fuse the gate math into fewer kernels, compile the whole model:
    ``torch.compile(model)``.

    Every step runs through the cells' methods (:meth:`ConvLSTMCell.gates`,
    :meth:`~ConvLSTMCell.input_gates`, :meth:`~ConvLSTMCell.state_gates`,
    :meth:`~ConvLSTMCell.update`): replace a cell in ``cells`` by a subclass, or parametrize a
    convolution's weight, and the stack runs that.

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
        >>> ConvLSTM(1, 16, (3, 5)).kernel_sizes  # a tuple is one kernel: one 3x5 layer
        [(3, 5)]
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: int | Sequence[int],
        kernel_sizes: int | tuple[int, int] | Sequence[int | tuple[int, int]] = 3,
        *,
        num_layers: int | None = None,
        bias: bool = True,
        batch_first: bool = True,
        peephole: bool = False,
        channels_last: bool | None = None,
        precompute_input: bool | None = None,
        checkpoint_steps: bool = False,
        padding_mode: str = "zeros",
        dilation: int | tuple[int, int] = 1,
        state_dilation: int | tuple[int, int] = 1,
        forget_bias: float | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
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
        self.checkpoint_steps = bool(checkpoint_steps)
        in_dims = [self.input_dim, *self.hidden_dims[:-1]]
        # Written once, in the cell; every layer gets the same (validated there, named ours).
        options = {
            "padding_mode": padding_mode,
            "dilation": dilation,
            "state_dilation": state_dilation,
            "forget_bias": forget_bias,
            "dropout": dropout,
            "recurrent_dropout": recurrent_dropout,
        }
        self.cells = nn.ModuleList(
            _cells(
                ConvLSTMCell,
                in_dims,
                self.hidden_dims,
                self.kernel_sizes,
                None,
                owner=_OWNER,
                bias=bias,
                peephole=peephole,
                **options,
            )
        )
        first = self.cells[0]
        self.padding_mode, self.forget_bias = first.padding_mode, first.forget_bias
        self.dilation, self.state_dilation = first.dilation, first.state_dilation
        self.dropout, self.recurrent_dropout = first.dropout, first.recurrent_dropout

    def reset_parameters(self) -> None:
        """Re-initialise every cell (see :meth:`ConvLSTMCell.reset_parameters`)."""
        for cell in self.cells:
            cell.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{self.input_dim}, {self.hidden_dims}, kernel_sizes={self.kernel_sizes}, "
            f"num_layers={self.num_layers}, bias={self.bias}, batch_first={self.batch_first}, "
            f"peephole={self.peephole}, channels_last={self.channels_last}, "
            f"precompute_input={self.precompute_input}"
            f"{', checkpoint_steps=True' if self.checkpoint_steps else ''}"
            f"{self.cells[0]._options_repr()}"
        )

    def forward(
        self, x: Tensor, state: Sequence[tuple[Tensor, Tensor]] | None = None
    ) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
        layout = "(B, T, C_in, H, W)" if self.batch_first else "(T, B, C_in, H, W)"
        _check_input(x, 5, layout, self.input_dim, _OWNER)
        _check_dtype(x, self.cells[0]._weight(), _OWNER)
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
        recompute = self.checkpoint_steps and torch.is_grad_enabled()
        layer_input = x  # (B, T, C, H, W), C = C_in for layer 0, C_hid of the layer below after
        layer_outputs, last_states = [], []
        # Layers outside, time inside: each layer sees its whole input sequence at once, so the
        # loop keeps one layer's states alive at a time and hands a full sequence upwards.
        for layer, cell in enumerate(self.cells):
            layer_state = None
            if state is not None:
                shape = cell.state_shape(layer_input[:, 0])
                _check_state(state[layer], shape, x, _OWNER, f" of layer {layer}")
                layer_state = state[layer]
            precompute = self.precompute_input
            if precompute is None:
                # Batched input gates, (B, T, 4 C_hid, H, W), would stay alive for backward:
                # the memory that checkpointing steps is there to save.
                precompute = not recompute and precomputes_input(cell, layer_input)
            layer_input, h, c = _run_layer(
                cell,
                layer_input,
                layer_state,
                channels_last=channels_last,
                precompute_input=precompute,
                checkpoint_steps=self.checkpoint_steps,
            )  # (B, T, C_hid, H, W), then h and c each (B, C_hid, H, W)
            output = layer_input if self.batch_first else layer_input.transpose(0, 1)
            layer_outputs.append(output.contiguous())  # (B, T, ...) or (T, B, C_hid, H, W)
            last_states.append((h.contiguous(), c.contiguous()))
        return layer_outputs, last_states
