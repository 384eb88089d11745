"""One ConvLSTM cell: a single step of Shi et al. (2015) on one layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ConvLSTMCell"]


def _positive_int(value: object, name: str, owner: str) -> int:
    # bool is an int subclass; ConvLSTMCell(True, ...) is a mistake, not one channel.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: expected {name} to be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{owner}: expected {name} to be positive, got {value}")
    return value


def _kernel_pair(kernel_size: int | Sequence[int], name: str, owner: str) -> tuple[int, int]:
    """Normalise an int or (kh, kw) kernel size to a validated pair."""
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str):
        if len(kernel_size) != 2:
            raise ValueError(
                f"{owner}: expected {name} to be an int or a (kh, kw) pair, "
                f"got a sequence of length {len(kernel_size)}"
            )
        return (
            _positive_int(kernel_size[0], name, owner),
            _positive_int(kernel_size[1], name, owner),
        )
    size = _positive_int(kernel_size, name, owner)
    return (size, size)


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
    # Under autocast the convolution casts for us; elsewhere a mismatch would surface as a
    # conv error from deep inside torch.
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{owner}: expected input of the parameters' dtype {weight.dtype}, got {x.dtype} "
            f"(convert the module with .to({x.dtype}) or run under torch.autocast)"
        )


def _check_state(state: object, shape: tuple[int, ...], owner: str, where: str = "") -> None:
    """Raise a clear error unless ``state`` is a pair ``(h, c)`` of tensors of ``shape``."""
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


def _lstm_update(
    gates: Tensor,
    c: Tensor,
    peephole_i: Tensor | None = None,
    peephole_f: Tensor | None = None,
    peephole_o: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The LSTM state update from the gates' pre-activations, shared by every cell.

    Args:
        gates: the pre-activations of shape :math:`(B, 4 C_{hid}, H, W)`, in the order i, f, g, o.
        c: the previous cell state of shape :math:`(B, C_{hid}, H, W)`.
        peephole_i, peephole_f, peephole_o: per-channel peephole weights of shape
            :math:`(C_{hid}, 1, 1)`, or ``None`` for none.

    Returns:
        The new ``(h, c)``, each of shape :math:`(B, C_{hid}, H, W)`.
    """
    # torch.nn.LSTM's order, so a 1x1 ConvLSTM takes nn.LSTMCell's weights unchanged.
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, C_hid, H, W)
    if peephole_i is not None:
        i = i + peephole_i * c
        f = f + peephole_f * c
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if peephole_o is not None:
        # The output gate peeks at the new cell state, not the old one (Shi et al., eq. 3).
        o = o + peephole_o * c_next
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return h_next, c_next


def _register_peepholes(module: nn.Module, hidden_dim: int, peephole: bool) -> None:
    """Register ``peephole_i``, ``peephole_f`` and ``peephole_o`` on ``module``.

    Each is a per-channel weight of shape :math:`(C_{hid}, 1, 1)` when ``peephole`` is true
    (left uninitialised: see :func:`_zero_peepholes`), else ``None``, so the names exist either way.
    """
    for name in ("peephole_i", "peephole_f", "peephole_o"):
        weight = nn.Parameter(torch.empty(hidden_dim, 1, 1)) if peephole else None
        module.register_parameter(name, weight)


def _zero_peepholes(module: nn.Module) -> None:
    """Zero ``module``'s peephole weights, if it has any: a new cell computes a plain LSTM step."""
    for weight in (module.peephole_i, module.peephole_f, module.peephole_o):
        if weight is not None:
            nn.init.zeros_(weight)


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
    output gates and :math:`g_t` the candidate, as in :class:`torch.nn.LSTM`. All eight
    convolutions are one :class:`~torch.nn.Conv2d`, ``conv``, applied to
    ``torch.cat([x, h], dim=1)``; its ``4 * hidden_dim`` output channels are the gates in
    torch's order i, f, g, o. The peephole terms :math:`w_{c\cdot} \circ c` are present only
    with ``peephole=True``.

    Args:
        input_dim: The number of channels :math:`C_{in}` of the input frames.
        hidden_dim: The number of channels :math:`C_{hid}` of the hidden and cell states.
        kernel_size: Size of the convolution kernel, an int or a ``(kh, kw)`` pair. Odd or even
            sizes both keep the frame size (``padding="same"``). Default: ``3``
        bias: If ``False``, the convolution has no bias. Default: ``True``
        peephole: If ``True``, the input and forget gates also see :math:`c_{t-1}` and the output
            gate sees :math:`c_t`, each through one learned weight per channel, of shape
            ``(hidden_dim, 1, 1)``. The paper's weights cover every pixel; one per channel keeps
            the cell free of any frame size (it stays convolutional) and starts at zero, so a new
            peephole cell computes what a plain one does. Default: ``False``

    Inputs: input, state
        * **input**: tensor of shape :math:`(B, C_{in}, H, W)`.
        * **state**: a pair ``(h_0, c_0)``, each of shape :math:`(B, C_{hid}, H, W)`, or
          ``None`` for zeros of the input's device and dtype. Default: ``None``

    Outputs: (h_1, c_1)
        * **h_1**: tensor of shape :math:`(B, C_{hid}, H, W)`, the new hidden state.
        * **c_1**: tensor of shape :math:`(B, C_{hid}, H, W)`, the new cell state.

    where :math:`B` is the batch size and :math:`H, W` the frame height and width.

    Attributes:
        conv: the :class:`~torch.nn.Conv2d` from :math:`C_{in} + C_{hid}` to :math:`4 C_{hid}`
            channels that computes every gate.
        peephole_i, peephole_f, peephole_o: the per-channel peephole weights, of shape
            ``(hidden_dim, 1, 1)``, when ``peephole=True``.

    Examples::

        >>> cell = ConvLSTMCell(3, 16, kernel_size=3)
        >>> x = torch.randn(4, 3, 32, 32)
        >>> h, c = cell(x)
        >>> h, c = cell(x, (h, c))
        >>> h.shape
        torch.Size([4, 16, 32, 32])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        kernel_size: int | tuple[int, int] = 3,
        *,
        bias: bool = True,
        peephole: bool = False,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_dim = _positive_int(input_dim, "input_dim", owner)
        self.hidden_dim = _positive_int(hidden_dim, "hidden_dim", owner)
        self.kernel_size = _kernel_pair(kernel_size, "kernel_size", owner)
        self.bias = bool(bias)
        self.peephole = bool(peephole)
        self.conv = nn.Conv2d(
            input_dim + hidden_dim, 4 * hidden_dim, self.kernel_size, padding="same", bias=bias
        )
        _register_peepholes(self, hidden_dim, self.peephole)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the convolution as :class:`~torch.nn.Conv2d` does; zero the peepholes."""
        self.conv.reset_parameters()
        _zero_peepholes(self)

    def extra_repr(self) -> str:
        return (
            f"{self.input_dim}, {self.hidden_dim}, kernel_size={self.kernel_size}, "
            f"bias={self.bias}, peephole={self.peephole}"
        )

    def init_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for a batch like ``x``, on its device and in its dtype.

        Args:
            x: an input of shape :math:`(B, C_{in}, H, W)` (only its shape, device and dtype are used).

        Returns:
            A pair of zero tensors, each of shape :math:`(B, C_{hid}, H, W)`.
        """
        zeros = x.new_zeros(x.shape[0], self.hidden_dim, x.shape[-2], x.shape[-1])
        return zeros, zeros

    def state_shape(self, x: Tensor) -> tuple[int, int, int, int]:
        """The shape :math:`(B, C_{hid}, H, W)` of ``h`` and ``c`` for an input like ``x``."""
        return (x.shape[0], self.hidden_dim, x.shape[-2], x.shape[-1])

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        owner = type(self).__name__
        _check_input(x, 4, "(B, C_in, H, W)", self.input_dim, owner)
        _check_dtype(x, self.conv.weight, owner)
        if state is None:
            state = self.init_state(x)
        else:
            _check_state(state, self.state_shape(x), owner)
        return self._step(x, state[0], state[1])

    def _step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One unchecked step, for loops that validated their inputs once (see ``ConvLSTM``).

        Args:
            x: the input of shape :math:`(B, C_{in}, H, W)`.
            h: the hidden state of shape :math:`(B, C_{hid}, H, W)`.
            c: the cell state of shape :math:`(B, C_{hid}, H, W)`.

        Returns:
            The new ``(h, c)``, each of shape :math:`(B, C_{hid}, H, W)`.
        """
        combined = torch.cat([x, h], dim=1)  # (B, C_in + C_hid, H, W)
        gates = self.conv(combined)  # (B, 4 * C_hid, H, W)
        return _lstm_update(gates, c, self.peephole_i, self.peephole_f, self.peephole_o)
