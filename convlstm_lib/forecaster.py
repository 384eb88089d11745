"""The encoding-forecasting structure of Shi et al. (2015), and frames cut into patches."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .cell import (
    _check_dtype,
    _check_input,
    _kernel_pair,
    _lstm_update,
    _positive_int,
    _register_peepholes,
    _zero_peepholes,
)

__all__ = ["EncoderForecaster", "from_patches", "to_patches"]

_OWNER = "EncoderForecaster"


def _check_patches(x: object, patch_size: int, owner: str) -> int:
    """Validate a patch size and a tensor of at least 3 dims (..., C, H, W); return the size."""
    patch_size = _positive_int(patch_size, "patch_size", owner)
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected input to be a Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(
            f"{owner}: expected input with at least 3 dims (..., C, H, W), got {x.dim()}"
        )
    return patch_size


def to_patches(frames: Tensor, patch_size: int = 4) -> Tensor:
    r"""Cut every frame into non-overlapping ``patch_size`` x ``patch_size`` patches.

    Each patch becomes a vector of channels, as in Shi et al. (2015), who turn a
    :math:`64 \times 64` frame into a :math:`16 \times 16` grid of 16-channel patches. It is
    :func:`torch.nn.functional.pixel_unshuffle`, with the shapes checked; :func:`from_patches`
    undoes it exactly.

    Args:
        frames: tensor of shape :math:`(*, C, H, W)`, :math:`H` and :math:`W` multiples of
            ``patch_size``.
        patch_size: The side :math:`p` of a square patch. Default: ``4``

    Returns:
        A tensor of shape :math:`(*, C p^2, H / p, W / p)`; channel :math:`c p^2 + i p + j` holds
        pixel :math:`(i, j)` of each patch of channel :math:`c`.

    Examples::

        >>> movie = torch.rand(2, 10, 1, 64, 64)
        >>> to_patches(movie).shape
        torch.Size([2, 10, 16, 16, 16])
        >>> torch.equal(from_patches(to_patches(movie)), movie)
        True
    """
    p = _check_patches(frames, patch_size, "to_patches")
    height, width = frames.shape[-2:]
    if height % p or width % p:
        raise ValueError(
            f"to_patches: expected H and W to be multiples of patch_size={p}, "
            f"got H={height}, W={width}"
        )
    return F.pixel_unshuffle(frames, p)  # (*, C * p * p, H / p, W / p)


def from_patches(patches: Tensor, patch_size: int = 4) -> Tensor:
    r"""Put patches back into frames: the inverse of :func:`to_patches`.

    Args:
        patches: tensor of shape :math:`(*, C p^2, H / p, W / p)`.
        patch_size: The side :math:`p` of a square patch. Default: ``4``

    Returns:
        A tensor of shape :math:`(*, C, H, W)`.

    Examples::

        >>> from_patches(torch.rand(2, 10, 16, 16, 16)).shape
        torch.Size([2, 10, 1, 64, 64])
    """
    p = _check_patches(patches, patch_size, "from_patches")
    if patches.shape[-3] % (p * p):
        raise ValueError(
            f"from_patches: expected channels to be a multiple of patch_size**2={p * p}, "
            f"got {patches.shape[-3]}"
        )
    return F.pixel_shuffle(patches, p)  # (*, C, H, W)


class _SplitConvLSTMCell(nn.Module):
    r"""A ConvLSTM cell with its own kernel for the input and for the state, or with no input.

    ``conv_x`` (input-to-state, with the bias) and ``conv_h`` (state-to-state, no bias) add up to
    the gates' pre-activations, so with equal kernel sizes this computes what
    :class:`ConvLSTMCell` computes with ``conv.weight`` split at channel ``input_dim``. With
    ``input_dim=0`` there is no ``conv_x`` and the bias moves to ``conv_h``: the first layer of a
    forecaster, which reads nothing but its own state. The gate math is
    :func:`~convlstm_lib.cell._lstm_update`, shared with every other cell.

    Args:
        input_dim: The input channels :math:`C_{in}`, or ``0`` for a cell without input.
        hidden_dim: The hidden channels :math:`C_{hid}`.
        input_kernel_size: The kernel of ``conv_x``, an int or a ``(kh, kw)`` pair.
        state_kernel_size: The kernel of ``conv_h``, an int or a ``(kh, kw)`` pair.
        peephole: If ``True``, per-channel peepholes, starting at zero. Default: ``True``
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        input_kernel_size: int | tuple[int, int],
        state_kernel_size: int | tuple[int, int],
        *,
        peephole: bool = True,
        owner: str = _OWNER,
    ) -> None:
        super().__init__()
        if input_dim != 0:
            _positive_int(input_dim, "input_dim", owner)
        self.input_dim = input_dim
        self.hidden_dim = _positive_int(hidden_dim, "hidden_dim", owner)
        self.input_kernel_size = _kernel_pair(input_kernel_size, "input_kernel_size", owner)
        self.state_kernel_size = _kernel_pair(state_kernel_size, "state_kernel_size", owner)
        self.peephole = bool(peephole)
        gates = 4 * hidden_dim
        if input_dim:
            self.conv_x = nn.Conv2d(input_dim, gates, self.input_kernel_size, padding="same")
        else:
            self.register_module("conv_x", None)
        # One bias per gate channel: on the input convolution when there is one, else here.
        self.conv_h = nn.Conv2d(
            hidden_dim, gates, self.state_kernel_size, padding="same", bias=not input_dim
        )
        _register_peepholes(self, hidden_dim, self.peephole)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the convolutions as :class:`~torch.nn.Conv2d` does; zero the peepholes."""
        if self.conv_x is not None:
            self.conv_x.reset_parameters()
        self.conv_h.reset_parameters()
        _zero_peepholes(self)

    def extra_repr(self) -> str:
        return (
            f"{self.input_dim}, {self.hidden_dim}, input_kernel_size={self.input_kernel_size}, "
            f"state_kernel_size={self.state_kernel_size}, peephole={self.peephole}"
        )

    def _step(self, x: Tensor | None, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One unchecked step; ``x`` of shape (B, C_in, H, W), or ``None`` without input."""
        gates = self.conv_h(h)  # (B, 4 * C_hid, H, W)
        if self.conv_x is not None:
            gates = gates + self.conv_x(x)  # (B, 4 * C_hid, H, W)
        return _lstm_update(gates, c, self.peephole_i, self.peephole_f, self.peephole_o)


def _per_layer(value: object, layers: int, name: str) -> list[tuple[int, int]]:
    """Expand a kernel size (an int for all, or one entry per layer) to one pair per layer."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != layers:
            raise ValueError(
                f"{_OWNER}: expected {name} to be an int or one entry per layer ({layers}), "
                f"got a sequence of length {len(value)} (for one (kh, kw) kernel in every "
                f"layer, pass [(kh, kw)] * {layers})"
            )
        return [_kernel_pair(v, name, _OWNER) for v in value]
    return [_kernel_pair(value, name, _OWNER)] * layers


class EncoderForecaster(nn.Module):
    r"""The encoding-forecasting network of Shi et al. (2015): read frames, then predict frames.

    An encoder stack of ConvLSTM layers reads the :math:`T` input frames. Its final
    :math:`(h, c)` of every layer become the initial state of a forecaster stack of the same
    shape, which runs for as many steps as asked. The forecaster's first layer receives no
    input (its gates see only its own state); every other layer reads the hidden state of the
    layer below. At every forecast step a :math:`1 \times 1` convolution over the concatenated
    hidden states of all forecaster layers gives the frame. Every layer computes

    .. math::
        \begin{array}{ll}
        i_t = \sigma(W_{xi} * x_t + W_{hi} * h_{t-1} + w_{ci} \circ c_{t-1} + b_i) \\
        f_t = \sigma(W_{xf} * x_t + W_{hf} * h_{t-1} + w_{cf} \circ c_{t-1} + b_f) \\
        g_t = \tanh(W_{xg} * x_t + W_{hg} * h_{t-1} + b_g) \\
        c_t = f_t \circ c_{t-1} + i_t \circ g_t \\
        o_t = \sigma(W_{xo} * x_t + W_{ho} * h_{t-1} + w_{co} \circ c_t + b_o) \\
        h_t = o_t \circ \tanh(c_t)
        \end{array}

    where the input-to-state kernels :math:`W_{x\cdot}` and the state-to-state kernels
    :math:`W_{h\cdot}` may differ in size (the paper's "ConvLSTM(9x9)-1x1-128-1x1-128" is
    input-to-state 9x9, state-to-state 1x1, hidden 128 and 128), and the forecaster's first
    layer has no :math:`W_{x\cdot}` terms. With the paper's settings (16 channels from
    :math:`4 \times 4` patches) the parameter counts are exactly those of its Table 1.

    The output is the raw :math:`1 \times 1` convolution: apply :func:`torch.sigmoid` for
    frames in :math:`[0, 1]` (and train with
    :func:`~torch.nn.functional.binary_cross_entropy_with_logits`, the paper's cross-entropy).

    Args:
        input_dim: The channels :math:`C_{in}` of the input frames.
        hidden_dims: The hidden channels of every layer, one entry per layer, or an int for a
            single layer.
        input_kernel_sizes: The input-to-state kernel of every layer: an int (the same for
            all) or a sequence with one entry per layer, each an int or a ``(kh, kw)`` pair.
            Default: ``5``
        state_kernel_sizes: The state-to-state kernel of every layer, in the same forms.
            Default: ``5``
        output_dim: The channels :math:`C_{out}` of the predicted frames, or ``None`` for
            :math:`C_{in}`. Default: ``None``
        peephole: If ``True``, every cell has per-channel peepholes (see
            :class:`ConvLSTMCell`), starting at zero. Default: ``True``

    Inputs: input, steps
        * **input**: tensor of shape :math:`(B, T, C_{in}, H, W)`, the frames to read.
        * **steps**: the number :math:`K` of frames to predict, a positive int.

    Outputs: output
        * **output**: tensor of shape :math:`(B, K, C_{out}, H, W)`, the predicted frames
          (before any sigmoid).

    where :math:`B` is the batch size, :math:`T` the number of input frames and :math:`H, W`
    the frame height and width (of the patch grid, when frames are cut into patches).

    Attributes:
        encoder: a :class:`~torch.nn.ModuleList` of the encoder's cells, layer 0 first.
        forecaster: a :class:`~torch.nn.ModuleList` of the forecaster's cells, layer 0 first.
        head: the :math:`1 \times 1` :class:`~torch.nn.Conv2d` from
            :math:`\sum_l C_{hid}^{(l)}` to :math:`C_{out}` channels.

    Examples::

        >>> model = EncoderForecaster(16, [256], input_kernel_sizes=5, state_kernel_sizes=5)
        >>> sum(p.numel() for p in model.parameters())  # Table 1: ConvLSTM(5x5)-5x5-256
        13524496
        >>> small = EncoderForecaster(16, [8, 8], input_kernel_sizes=3, state_kernel_sizes=3)
        >>> frames = torch.rand(2, 10, 1, 32, 32)
        >>> future = small(to_patches(frames), steps=10)  # (2, 10, 16, 8, 8)
        >>> from_patches(torch.sigmoid(future)).shape
        torch.Size([2, 10, 1, 32, 32])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: int | Sequence[int],
        *,
        input_kernel_sizes: int | Sequence[int | tuple[int, int]] = 5,
        state_kernel_sizes: int | Sequence[int | tuple[int, int]] = 5,
        output_dim: int | None = None,
        peephole: bool = True,
    ) -> None:
        super().__init__()
        self.input_dim = _positive_int(input_dim, "input_dim", _OWNER)
        if isinstance(hidden_dims, Sequence) and not isinstance(hidden_dims, str):
            if len(hidden_dims) == 0:
                raise ValueError(
                    f"{_OWNER}: expected hidden_dims to have one entry per layer, "
                    "got an empty sequence"
                )
            dims = list(hidden_dims)
        else:
            dims = [hidden_dims]
        self.hidden_dims = [_positive_int(d, "hidden_dims", _OWNER) for d in dims]
        self.num_layers = len(self.hidden_dims)
        self.input_kernel_sizes = _per_layer(
            input_kernel_sizes, self.num_layers, "input_kernel_sizes"
        )
        self.state_kernel_sizes = _per_layer(
            state_kernel_sizes, self.num_layers, "state_kernel_sizes"
        )
        self.output_dim = (
            self.input_dim
            if output_dim is None
            else _positive_int(output_dim, "output_dim", _OWNER)
        )
        self.peephole = bool(peephole)
        kernels = list(zip(self.input_kernel_sizes, self.state_kernel_sizes, strict=True))
        encoder_in = [self.input_dim, *self.hidden_dims[:-1]]
        forecaster_in = [0, *self.hidden_dims[:-1]]  # the first forecaster layer reads nothing
        self.encoder = nn.ModuleList(
            _SplitConvLSTMCell(c_in, c_hid, k_in, k_state, peephole=peephole)
            for c_in, c_hid, (k_in, k_state) in zip(
                encoder_in, self.hidden_dims, kernels, strict=True
            )
        )
        self.forecaster = nn.ModuleList(
            _SplitConvLSTMCell(c_in, c_hid, k_in, k_state, peephole=peephole)
            for c_in, c_hid, (k_in, k_state) in zip(
                forecaster_in, self.hidden_dims, kernels, strict=True
            )
        )
        self.head = nn.Conv2d(sum(self.hidden_dims), self.output_dim, kernel_size=1)

    def reset_parameters(self) -> None:
        """Re-initialise every cell and the head."""
        for cell in (*self.encoder, *self.forecaster):
            cell.reset_parameters()
        self.head.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{self.input_dim}, {self.hidden_dims}, "
            f"input_kernel_sizes={self.input_kernel_sizes}, "
            f"state_kernel_sizes={self.state_kernel_sizes}, output_dim={self.output_dim}, "
            f"peephole={self.peephole}"
        )

    def forward(self, x: Tensor, steps: int) -> Tensor:
        _check_input(x, 5, "(B, T, C_in, H, W)", self.input_dim, _OWNER)
        _check_dtype(x, self.head.weight, _OWNER)
        steps = _positive_int(steps, "steps", _OWNER)
        if x.shape[1] == 0:
            raise ValueError(
                f"{_OWNER}: expected at least one input frame, got an empty time dimension T=0"
            )
        batch, frames, _, height, width = x.shape
        states = [
            (x.new_zeros(batch, c_hid, height, width), x.new_zeros(batch, c_hid, height, width))
            for c_hid in self.hidden_dims
        ]
        # Time outside, layers inside: the forecaster needs every layer's state at each step.
        for t in range(frames):
            layer_input = x[:, t]  # (B, C_in, H, W)
            for layer, cell in enumerate(self.encoder):
                states[layer] = cell._step(layer_input, *states[layer])
                layer_input = states[layer][0]  # (B, C_hid, H, W)
        outputs = []
        for _ in range(steps):
            layer_input = None
            for layer, cell in enumerate(self.forecaster):
                states[layer] = cell._step(layer_input, *states[layer])
                layer_input = states[layer][0]  # (B, C_hid, H, W)
            hidden = torch.cat([h for h, _ in states], dim=1)  # (B, sum of C_hid, H, W)
            outputs.append(self.head(hidden))  # (B, C_out, H, W)
        return torch.stack(outputs, dim=1)  # (B, K, C_out, H, W)
