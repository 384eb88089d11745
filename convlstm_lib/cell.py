"""One ConvLSTM cell: a single step of Shi et al. (2015) on one layer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PADDING_MODES", "CellStep", "ConvLSTMCell"]


def _positive_int(value: object, name: str, owner: str) -> int:
    # bool is an int subclass; ConvLSTMCell(True, ...) is a mistake, not one channel.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{owner}: expected {name} to be positive, got {value}")
    return value


def _kernel_pair(
    kernel_size: int | Sequence[int], name: str, owner: str, pair: str = "(kh, kw)"
) -> tuple[int, int]:
    """Normalise an int or a pair (a kernel size, a dilation) to a validated pair."""
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str):
        if len(kernel_size) != 2:
            raise ValueError(
                f"{owner}: expected {name} to be an int or a {pair} pair, "
                f"got a sequence of length {len(kernel_size)}"
            )
        return (
            _positive_int(kernel_size[0], name, owner),
            _positive_int(kernel_size[1], name, owner),
        )
    size = _positive_int(kernel_size, name, owner)
    return (size, size)


def _real(value: object, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: expected {name} to be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: expected {name} to be finite, got {value}")
    return float(value)


def _fraction(value: object, name: str, owner: str) -> float:
    """A dropout probability: a number in [0, 1)."""
    value = _real(value, name, owner)
    if not 0 <= value < 1:
        raise ValueError(f"{owner}: expected {name} in [0, 1), got {value}")
    return value


# torch's padding modes, and a global grid's: the width (longitude) wraps, the height is zeros.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "circular_width")


class _WidthCircularConv2d(nn.Conv2d):
    """A "same" convolution whose width wraps around and whose height is zero-padded."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        left, right, top, bottom = self._reversed_padding_repeated_twice
        padded = F.pad(input, (left, right, 0, 0), mode="circular")  # (N, C, H, W + kw - 1)
        padded = F.pad(padded, (0, 0, top, bottom))  # (N, C, H + kh - 1, W + kw - 1)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


def _same_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: tuple[int, int],
    *,
    bias: bool,
    padding_mode: str,
    dilation: tuple[int, int],
) -> nn.Conv2d:
    """A "same" :class:`~torch.nn.Conv2d` with the cell's padding mode."""
    if padding_mode == "circular_width":
        return _WidthCircularConv2d(
            in_channels, out_channels, kernel_size, padding="same", dilation=dilation, bias=bias
        )
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        padding="same",
        padding_mode=padding_mode,
        dilation=dilation,
        bias=bias,
    )


def _dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor | None:
    """Inverted dropout: each element 0 with probability ``p``, else ``1 / (1 - p)``."""
    if p == 0:
        return None
    mask = like.new_empty(shape).bernoulli_(1 - p)
    return mask.div_(1 - p)


def _check_input(x: object, dims: int, layout: str, channels: int, owner: str) -> None:
    """Raise a clear error unless ``x`` is a floating-point tensor of ``dims`` dims."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected input to be a Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: expected a floating-point input, got {x.dtype}")
    if x.dim() != dims:
        raise ValueError(f"{owner}: expected input with {dims} dims {layout}, got {x.dim()}")
    if x.shape[-3] != channels:
        raise ValueError(
            f"{owner}: expected input with C_in={channels} channels (dim {dims - 3} of "
            f"{layout}), got {x.shape[-3]}"
        )
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(
            f"{owner}: expected non-empty frames, got H={x.shape[-2]}, W={x.shape[-1]}"
        )


def _check_dtype(x: Tensor, weight: Tensor, owner: str) -> None:
    """Raise a clear error unless the convolutions can take ``x`` with ``weight``."""
    if x.dtype == weight.dtype:
        return
    if torch.is_autocast_enabled(x.device.type):
        # Autocast casts float32 (and the other low precisions) to its dtype, never float64,
        # so a float64 tensor beside a float32 one would fail deep inside conv2d.
        if torch.float64 not in (x.dtype, weight.dtype):
            return
        raise TypeError(
            f"{owner}: expected input of the parameters' dtype {weight.dtype}, got {x.dtype} "
            "(autocast does not cast float64: convert the input or the module)"
        )
    raise TypeError(
        f"{owner}: expected input of the parameters' dtype {weight.dtype}, got {x.dtype} "
        f"(convert the module with .to({x.dtype}) or run under torch.autocast)"
    )


def _check_state(
    state: object,
    shape: tuple[int, ...],
    like: Tensor,
    owner: str,
    where: str = "",
) -> None:
    """Raise a clear error unless ``state`` is a pair ``(h, c)`` of tensors like ``like``.

    Each must have ``shape``, ``like``'s device and ``like``'s dtype: a state in another dtype
    would silently change the dtype of every later output, and one on another device would fail
    inside torch.
    """
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(
            f"{owner}: expected state{where} to be a pair (h, c), got {type(state).__name__}"
        )
    for name, tensor in zip(("h", "c"), state, strict=True):
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"{owner}: expected state {name}{where} to be a Tensor, got {type(tensor).__name__}"
            )
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{owner}: expected state {name}{where} of shape (B, C_hid, H, W) = {shape}, "
                f"got {tuple(tensor.shape)}"
            )
        if tensor.dtype != like.dtype:
            raise TypeError(
                f"{owner}: expected state {name}{where} of the input's dtype {like.dtype}, "
                f"got {tensor.dtype}"
            )
        if tensor.device != like.device:
            raise ValueError(
                f"{owner}: expected state {name}{where} on the input's device {like.device}, "
                f"got {tensor.device}"
            )


class CellStep(NamedTuple):
    r"""What one step of a :class:`ConvLSTMCell` computes: the new state and its four gates.

    Every field has shape :math:`(B, C_{hid}, H, W)`. The gates are the values the state update
    multiplies, after their nonlinearities: :math:`i, f, o` after the sigmoid, :math:`g` after
    the tanh.
    """

    h: Tensor
    c: Tensor
    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor


def _register_peepholes(module: nn.Module, hidden_dim: int, peephole: bool) -> None:
    """Register ``peephole_i``, ``peephole_f`` and ``peephole_o`` on ``module``.

    Each is a per-channel weight of shape :math:`(C_{hid}, 1, 1)` when ``peephole`` is true
    (zeroed by ``reset_parameters``), else ``None``, so the names exist either way.
    """
    for name in ("peephole_i", "peephole_f", "peephole_o"):
        weight = nn.Parameter(torch.empty(hidden_dim, 1, 1)) if peephole else None
        module.register_parameter(name, weight)


class ConvLSTMCell(nn.Module):
    r"""One step of a convolutional LSTM (Shi et al., 2015) over a batch of feature maps.

    For an input frame :math:`x_t` and the previous state :math:`(h_{t-1}, c_{t-1})` the cell
    computes

    .. math::
        \begin{array}{ll}
        i_t = \sigma(W_{xi} * x_t + W_{hi} * h_{t-1} + w_{ci} \circ c_{t-1} + b_i) \\
        f_t = \sigma(W_{xf} * x_t + W_{hf} * h_{t-1} + w_{cf} \circ c_{t-1} + b_f) \\
        g_t = \tanh(W_{xg} * x_t + W_{hg} * h_{t-1} + b_g) \\
        c_t = f_t \circ c_{t-1} + i_t \circ g_t \\
        o_t = \sigma(W_{xo} * x_t + W_{ho} * h_{t-1} + w_{co} \circ c_t + b_o) \\
        h_t = o_t \circ \tanh(c_t)
        \end{array}

    where :math:`*` is a 2-D convolution with "same" padding, :math:`\circ` the Hadamard
    product and :math:`\sigma` the sigmoid. :math:`i_t, f_t, o_t` are the input, forget and
    output gates and :math:`g_t` the candidate, as in :class:`torch.nn.LSTM`. The peephole
    terms :math:`w_{c\cdot} \circ c` are present only with ``peephole=True``.

    When the input-to-state kernels :math:`W_{x\cdot}` and the state-to-state kernels
    :math:`W_{h\cdot}` have the same size (the default), all eight convolutions are one
    :class:`~torch.nn.Conv2d`, ``conv``, applied to ``torch.cat([x, h], dim=1)``; its
    ``4 * hidden_dim`` output channels are the gates in torch's order i, f, g, o. With
    different sizes (``state_kernel_size``), or without an input (``input_dim=0``, the first
    layer of a forecaster, which reads nothing but its own state), the cell has two
    convolutions instead, ``conv_x`` (with the bias) and ``conv_h``, whose outputs add up. The
    two layouts compute the same function, and a checkpoint of the split layout loads into
    the fused one.

    :class:`ConvLSTM` and :class:`EncoderForecaster` run every step through the methods
    :meth:`input_gates`, :meth:`state_gates`, :meth:`gates` and :meth:`update`, so a subclass
    that overrides one, or a parametrization of a convolution's weight, is what they run.

    Args:
        input_dim: The number of channels :math:`C_{in}` of the input frames, or ``0`` for a
            cell without input.
        hidden_dim: The number of channels :math:`C_{hid}` of the hidden and cell states.
        kernel_size: Size of the input-to-state kernel (of every kernel when
            ``state_kernel_size`` is ``None``), an int or a ``(kh, kw)`` pair. Odd or even
            sizes both keep the frame size (``padding="same"``). Default: ``3``
        state_kernel_size: Size of the state-to-state kernel, or ``None`` for ``kernel_size``.
            Default: ``None``
        bias: If ``False``, the gates have no bias. Default: ``True``
        peephole: If ``True``, the input and forget gates also see :math:`c_{t-1}` and the output
            gate sees :math:`c_t`, each through one learned weight per channel, of shape
            ``(hidden_dim, 1, 1)``. The paper's weights cover every pixel; one per channel keeps
            the cell free of any frame size (it stays convolutional) and starts at zero, so a new
            peephole cell computes what a plain one does. Default: ``False``
        padding_mode: How the convolutions pad the border of a frame: ``"zeros"`` (the paper's,
            and :class:`~torch.nn.Conv2d`'s default), torch's ``"reflect"``, ``"replicate"`` and
            ``"circular"`` (both axes wrap around, a torus), or ``"circular_width"`` for a
            global latitude-longitude grid: the width (longitude) wraps around, the height
            (latitude) is zero-padded. Default: ``"zeros"``
        dilation: The dilation of the input-to-state kernel, an int or a ``(dh, dw)`` pair, as
            Keras's ``dilation_rate``. A kernel of size :math:`k` dilated by :math:`d` reads
            :math:`d \lfloor k / 2 \rfloor` pixels either side of its centre (with gaps), so a
            shape can move that far between two frames and still be seen. Default: ``1``
        state_dilation: The dilation of the state-to-state kernel, which Keras never dilates:
            the state moves up to :math:`d \lfloor k / 2 \rfloor` pixels per step. Default: ``1``
        forget_bias: The forget gate's initial bias, set by :meth:`reset_parameters`; ``1.0``
            is Keras's ``unit_forget_bias=True``, a cell that starts out remembering. ``None``
            keeps :class:`~torch.nn.Conv2d`'s uniform initialisation. Default: ``None``
        dropout: The probability of dropping each element of the input, in :math:`[0, 1)`:
            variational dropout (Gal and Ghahramani, 2016), one mask per sequence reused at
            every step (see :meth:`dropout_masks`), scaled by :math:`1 / (1 - p)`, in training
            mode only. Default: ``0.0``
        recurrent_dropout: The same for the previous hidden state :math:`h`. Keras draws one
            mask per gate and path; with one convolution for all four gates, one mask per path
            (on :math:`x` and on :math:`h`, before they meet) is the natural choice. It is still
            variational dropout, Gal and Ghahramani's "tied" form: what makes it variational is
            that a unit's mask stays the same at every step of a sequence. Default: ``0.0``

    Inputs: input, state
        * **input**: tensor of shape :math:`(B, C_{in}, H, W)`, or ``None`` for a cell
          without input.
        * **state**: a pair ``(h_0, c_0)``, each of shape :math:`(B, C_{hid}, H, W)` and of the
          input's dtype and device, or ``None`` for zeros (a cell without input needs a state).
          Default: ``None``

    Outputs: (h_1, c_1)
        * **h_1**: tensor of shape :math:`(B, C_{hid}, H, W)`, the new hidden state.
        * **c_1**: tensor of shape :math:`(B, C_{hid}, H, W)`, the new cell state.

    where :math:`B` is the batch size and :math:`H, W` the frame height and width.
    :meth:`step` returns the gates too.

    Attributes:
        conv: the :class:`~torch.nn.Conv2d` from :math:`C_{in} + C_{hid}` to :math:`4 C_{hid}`
            channels that computes every gate, or ``None`` in the split layout.
        conv_x: the input-to-state :class:`~torch.nn.Conv2d` in the split layout (``None``
            without input, or in the fused layout).
        conv_h: the state-to-state :class:`~torch.nn.Conv2d` in the split layout, else ``None``.
        peephole_i, peephole_f, peephole_o: the per-channel peephole weights, of shape
            ``(hidden_dim, 1, 1)``, when ``peephole=True``.

    Examples::

        >>> cell = ConvLSTMCell(3, 16, kernel_size=3)
        >>> x = torch.randn(4, 3, 32, 32)
        >>> h, c = cell(x)
        >>> h, c = cell(x, (h, c))
        >>> h.shape
        torch.Size([4, 16, 32, 32])
        >>> step = cell.step(x, (h, c))  # the gates too
        >>> bool(step.f.min() >= 0 and step.f.max() <= 1)
        True
        >>> split = ConvLSTMCell(16, 128, 9, state_kernel_size=1)  # the paper's 9x9, 1x1
        >>> split.conv is None, split.conv_x.kernel_size, split.conv_h.kernel_size
        (True, (9, 9), (1, 1))
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        kernel_size: int | tuple[int, int] = 3,
        *,
        state_kernel_size: int | tuple[int, int] | None = None,
        bias: bool = True,
        peephole: bool = False,
        padding_mode: str = "zeros",
        dilation: int | tuple[int, int] = 1,
        state_dilation: int | tuple[int, int] = 1,
        forget_bias: float | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if isinstance(input_dim, int) and not isinstance(input_dim, bool) and input_dim == 0:
            self.input_dim = 0
        else:
            self.input_dim = _positive_int(input_dim, "input_dim", owner)
        self.hidden_dim = _positive_int(hidden_dim, "hidden_dim", owner)
        self.kernel_size = _kernel_pair(kernel_size, "kernel_size", owner)
        self.state_kernel_size = (
            self.kernel_size
            if state_kernel_size is None
            else _kernel_pair(state_kernel_size, "state_kernel_size", owner)
        )
        self.bias = bool(bias)
        self.peephole = bool(peephole)
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"{owner}: expected padding_mode to be one of {', '.join(map(repr, PADDING_MODES))}"
                f", got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self.dilation = _kernel_pair(dilation, "dilation", owner, pair="(dh, dw)")
        self.state_dilation = _kernel_pair(state_dilation, "state_dilation", owner, "(dh, dw)")
        if forget_bias is not None:
            forget_bias = _real(forget_bias, "forget_bias", owner)
            if not self.bias:
                raise ValueError(f"{owner}: expected bias=True for a forget_bias, got bias=False")
        self.forget_bias = forget_bias
        self.dropout = _fraction(dropout, "dropout", owner)
        self.recurrent_dropout = _fraction(recurrent_dropout, "recurrent_dropout", owner)

        def conv(
            in_channels: int, size: tuple[int, int], dilation: tuple[int, int], bias: bool
        ) -> nn.Conv2d:
            return _same_conv(
                in_channels,
                4 * self.hidden_dim,
                size,
                bias=bias,
                padding_mode=padding_mode,
                dilation=dilation,
            )

        same = (self.kernel_size, self.dilation) == (self.state_kernel_size, self.state_dilation)
        if self.input_dim and same:
            self.conv = conv(
                self.input_dim + self.hidden_dim, self.kernel_size, self.dilation, self.bias
            )
            self.conv_x = self.conv_h = None
        else:
            self.conv = None
            self.conv_x = None
            if self.input_dim:
                self.conv_x = conv(self.input_dim, self.kernel_size, self.dilation, self.bias)
            # One bias per gate channel: on the input convolution when there is one, else here.
            self.conv_h = conv(
                self.hidden_dim,
                self.state_kernel_size,
                self.state_dilation,
                self.bias and not self.input_dim,
            )
        _register_peepholes(self, self.hidden_dim, self.peephole)
        self.register_load_state_dict_pre_hook(_load_split_into_fused)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the convolutions as :class:`~torch.nn.Conv2d` does; zero the peepholes.

        With a ``forget_bias``, the forget gate's biases are then set to it.
        """
        for conv in (self.conv, self.conv_x, self.conv_h):
            if conv is not None:
                conv.reset_parameters()
        for weight in (self.peephole_i, self.peephole_f, self.peephole_o):
            if weight is not None:
                nn.init.zeros_(weight)
        if self.forget_bias is not None:
            with torch.no_grad():
                self._bias()[self.hidden_dim : 2 * self.hidden_dim].fill_(self.forget_bias)

    def extra_repr(self) -> str:
        state_kernel = ""
        if self.state_kernel_size != self.kernel_size:
            state_kernel = f", state_kernel_size={self.state_kernel_size}"
        return (
            f"{self.input_dim}, {self.hidden_dim}, kernel_size={self.kernel_size}{state_kernel}"
            f"{self._options_repr()}, bias={self.bias}, peephole={self.peephole}"
        )

    def _options_repr(self) -> str:
        """The options that differ from their defaults, as torch's modules show them."""
        optional = {
            "padding_mode": (self.padding_mode, "zeros"),
            "dilation": (self.dilation, (1, 1)),
            "state_dilation": (self.state_dilation, (1, 1)),
            "forget_bias": (self.forget_bias, None),
            "dropout": (self.dropout, 0.0),
            "recurrent_dropout": (self.recurrent_dropout, 0.0),
        }
        return "".join(
            f", {name}={value!r}" for name, (value, default) in optional.items() if value != default
        )

    def _bias(self) -> Tensor:
        """The gates' bias, wherever the layout keeps it: ``(4 C_hid,)`` in torch's order."""
        if self.conv is not None:
            return self.conv.bias
        return (self.conv_x if self.conv_x is not None else self.conv_h).bias

    def _weight(self) -> Tensor:
        """A weight of the cell's convolutions, for its dtype and device."""
        return (self.conv if self.conv is not None else self.conv_h).weight

    def state_shape(self, x: Tensor) -> tuple[int, int, int, int]:
        """The shape :math:`(B, C_{hid}, H, W)` of ``h`` and ``c`` for an input like ``x``."""
        return (x.shape[0], self.hidden_dim, x.shape[-2], x.shape[-1])

    def init_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for a batch like ``x``, on its device and in its dtype.

        Args:
            x: an input of shape :math:`(B, C_{in}, H, W)` (only its shape, device and dtype are used).

        Returns:
            A pair of zero tensors, each of shape :math:`(B, C_{hid}, H, W)`.
        """
        zeros = x.new_zeros(self.state_shape(x))
        return zeros, zeros

    def dropout_masks(self, state: Tensor) -> tuple[Tensor | None, Tensor | None]:
        r"""Variational dropout masks for one sequence: one for the input, one for ``h``.

        Each element is 0 with probability ``dropout`` (``recurrent_dropout`` for ``h``), else
        :math:`1 / (1 - p)`, so activations keep their mean; a mask is ``None`` where its
        probability is 0, and both are ``None`` in eval mode. A caller draws them once, when a
        sequence starts, and multiplies every step's input and previous hidden state by them
        (:class:`ConvLSTM` and :class:`EncoderForecaster` do), which is what makes the dropout
        variational: the same units are dropped at every step.

        Args:
            state: a state tensor of the sequence, of shape :math:`(B, C_{hid}, H, W)`, for the
                batch and frame size, dtype and device.

        Returns:
            ``(mask_x, mask_h)``, of shapes :math:`(B, C_{in}, H, W)` and
            :math:`(B, C_{hid}, H, W)`, or ``None`` each.
        """
        if not self.training:
            return None, None
        batch, _, height, width = state.shape
        mask_x = None
        if self.input_dim:
            mask_x = _dropout_mask((batch, self.input_dim, height, width), self.dropout, state)
        return mask_x, _dropout_mask(tuple(state.shape), self.recurrent_dropout, state)

    def input_gates(self, x: Tensor) -> Tensor:
        r"""The input-to-state part of the gates' pre-activations, the bias included.

        It does not depend on the state, so :class:`ConvLSTM` runs it for the frames of every
        time step in one call. Unchecked: the stack validates its input once.

        Args:
            x: tensor of shape :math:`(N, C_{in}, H, W)`, any number :math:`N` of frames.

        Returns:
            A tensor of shape :math:`(N, 4 C_{hid}, H, W)`, the gates in the order i, f, g, o.
        """
        if self.conv is None:
            return self.conv_x(x)
        # The convolution is linear in its input channels, so conv(cat[x, h]) is the x slice's
        # convolution plus the h slice's. _conv_forward is what conv calls: its padding mode,
        # dilation and any parametrization of the weight hold for the slices too.
        weight = self.conv.weight[:, : self.input_dim]  # (4 C_hid, C_in, kh, kw)
        return self.conv._conv_forward(x, weight, self.conv.bias)

    def state_gates(self, h: Tensor) -> Tensor:
        r"""The state-to-state part of the gates' pre-activations (the bias only without input).

        Args:
            h: the hidden state, of shape :math:`(B, C_{hid}, H, W)`.

        Returns:
            A tensor of shape :math:`(B, 4 C_{hid}, H, W)`.
        """
        if self.conv is None:
            return self.conv_h(h)
        weight = self.conv.weight[:, self.input_dim :]  # (4 C_hid, C_hid, kh, kw)
        return self.conv._conv_forward(h, weight, None)

    def gates(self, x: Tensor | None, h: Tensor | None) -> Tensor:
        r"""The gates' pre-activations of one step: both parts, unchecked.

        Args:
            x: the input, of shape :math:`(B, C_{in}, H, W)`, or ``None`` without input.
            h: the hidden state, of shape :math:`(B, C_{hid}, H, W)`, or ``None`` for zeros,
                which contribute nothing: only the input part runs.

        Returns:
            A tensor of shape :math:`(B, 4 C_{hid}, H, W)`, the gates in the order i, f, g, o.
        """
        if h is None:
            return self.input_gates(x)
        if x is None:
            return self.state_gates(h)
        if self.conv is not None:
            combined = torch.cat([x, h], dim=1)  # (B, C_in + C_hid, H, W)
            return self.conv(combined)  # (B, 4 C_hid, H, W)
        return self.conv_x(x) + self.conv_h(h)  # (B, 4 C_hid, H, W)

    def update(self, gates: Tensor, c: Tensor) -> CellStep:
        r"""The LSTM state update from the gates' pre-activations, unchecked.

        Args:
            gates: the pre-activations, of shape :math:`(B, 4 C_{hid}, H, W)`, in the order
                i, f, g, o.
            c: the previous cell state, of shape :math:`(B, C_{hid}, H, W)`.

        Returns:
            A :class:`CellStep`: the new ``h`` and ``c`` and the four gates.
        """
        if gates.dtype != c.dtype:
            # Under autocast: one cast, then the gate math runs in c's precision (float32),
            # cheaper than mixing dtypes in every elementwise op, and c does not drift.
            gates = gates.to(c.dtype)
        # torch.nn.LSTM's order, so a 1x1 ConvLSTM takes nn.LSTMCell's weights unchanged.
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, C_hid, H, W)
        if self.peephole_i is not None:
            i = i + self.peephole_i * c
            f = f + self.peephole_f * c
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        c_next = f * c + i * g
        if self.peephole_o is not None:
            # The output gate peeks at the new cell state, not the old one (Shi et al., eq. 3).
            o = o + self.peephole_o * c_next
        o = torch.sigmoid(o)
        h_next = o * torch.tanh(c_next)
        return CellStep(h_next, c_next, i, f, g, o)

    def step(self, x: Tensor | None, state: tuple[Tensor, Tensor] | None = None) -> CellStep:
        r"""One checked step that returns the gates too: what ``forward`` runs.

        Args:
            x: tensor of shape :math:`(B, C_{in}, H, W)`, or ``None`` for a cell without input.
            state: a pair ``(h, c)``, each of shape :math:`(B, C_{hid}, H, W)`, or ``None`` for
                zeros. Default: ``None``

        Returns:
            A :class:`CellStep` ``(h, c, i, f, g, o)``, each of shape :math:`(B, C_{hid}, H, W)`.
        """
        owner = type(self).__name__
        if not self.input_dim:
            if x is not None:
                raise ValueError(
                    f"{owner}: expected input None for a cell without input, got {type(x).__name__}"
                )
            if state is None:
                raise ValueError(
                    f"{owner}: a cell without input needs a state (h, c) for its batch and "
                    "frame size, got None"
                )
            h = state[0] if isinstance(state, (tuple, list)) and len(state) == 2 else None
            shape = ()
            if isinstance(h, Tensor) and h.dim() == 4:
                shape = (h.shape[0], self.hidden_dim, *h.shape[-2:])
            _check_state(state, shape, self._weight(), owner)
            h, c = state
            mask_h = self.dropout_masks(c)[1]
            return self.update(self.gates(None, h if mask_h is None else h * mask_h), c)
        _check_input(x, 4, "(B, C_in, H, W)", self.input_dim, owner)
        _check_dtype(x, self._weight(), owner)
        if state is None:
            h, c = None, x.new_zeros(self.state_shape(x))
        else:
            _check_state(state, self.state_shape(x), x, owner)
            h, c = state
        # One step is a sequence of one: fresh masks at every call. For masks that hold over
        # a loop of your own, multiply by dropout_masks() and call gates() and update().
        mask_x, mask_h = self.dropout_masks(c)
        if mask_x is not None:
            x = x * mask_x
        if mask_h is not None and h is not None:
            h = h * mask_h
        # A zero h contributes nothing: then only the input part of the gates runs.
        return self.update(self.gates(x, h), c)

    def forward(
        self, x: Tensor | None, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        step = self.step(x, state)
        return step.h, step.c


def _load_split_into_fused(
    module: ConvLSTMCell, state_dict: dict, prefix: str, *args: object
) -> None:
    """Load a split-layout checkpoint (``conv_x`` and ``conv_h``) into a fused cell.

    Before one cell served every model, the forecaster's cells always had two convolutions;
    a fused cell's ``conv.weight`` is their weights side by side, input channels first.
    """
    if module.conv is None or prefix + "conv_h.weight" not in state_dict:
        return
    weights = [state_dict.pop(prefix + "conv_x.weight"), state_dict.pop(prefix + "conv_h.weight")]
    state_dict[prefix + "conv.weight"] = torch.cat(
        weights, dim=1
    )  # (4 C_hid, C_in + C_hid, kh, kw)
    if prefix + "conv_x.bias" in state_dict:
        state_dict[prefix + "conv.bias"] = state_dict.pop(prefix + "conv_x.bias")
