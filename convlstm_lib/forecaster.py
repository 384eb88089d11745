"""The encoding-forecasting structure of Shi et al. (2015), and frames cut into patches."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from .cell import ConvLSTMCell, _check_dtype, _check_input, _positive_int
from .model import _cells, _per_layer_kernels, _run_layer, precomputes_input

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
    layer has no :math:`W_{x\cdot}` terms. Every layer is a :class:`ConvLSTMCell` (fused when its
    two kernels have the same size); the encoder runs through :class:`ConvLSTM`'s loop. With the paper's settings (16 channels from
    :math:`4 \times 4` patches) the parameter counts are exactly those of its Table 1.

    The output is the raw :math:`1 \times 1` convolution: apply :func:`torch.sigmoid` for
    frames in :math:`[0, 1]` (and train with
    :func:`~torch.nn.functional.binary_cross_entropy_with_logits`, the paper's cross-entropy).

    Args:
        input_dim: The channels :math:`C_{in}` of the input frames.
        hidden_dims: The hidden channels of every layer, one entry per layer, or an int for a
            single layer.
        input_kernel_sizes: The input-to-state kernel of every layer: an int or a
            ``(kh, kw)`` tuple (the same for all) or a list with one entry per layer, each an
            int or a ``(kh, kw)`` pair. Default: ``5``
        state_kernel_sizes: The state-to-state kernel of every layer, in the same forms.
            Default: ``5``
        output_dim: The channels :math:`C_{out}` of the predicted frames, or ``None`` for
            :math:`C_{in}`. Default: ``None``
        peephole: If ``True``, every cell has per-channel peepholes (see
            :class:`ConvLSTMCell`), starting at zero. On by default, as in the paper's model;
            :class:`ConvLSTM` leaves them off by default, like :class:`torch.nn.LSTM`.
            Default: ``True``
        checkpoint_steps: Activation checkpointing over time steps in both stacks, as in
            :class:`ConvLSTM`: in training, each step keeps only its inputs for the backward
            pass and runs again there. Less memory, the same losses and gradients.
            Default: ``False``
        padding_mode, dilation, state_dilation, forget_bias, dropout, recurrent_dropout: The
            options of every :class:`ConvLSTMCell` of both stacks, which documents them. Dropout
            masks are drawn once per call of ``forward``, for the encoder and the forecaster.
            Defaults: ``"zeros"``, ``1``, ``1``, ``None``, ``0.0``, ``0.0``

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
        input_kernel_sizes: int | tuple[int, int] | Sequence[int | tuple[int, int]] = 5,
        state_kernel_sizes: int | tuple[int, int] | Sequence[int | tuple[int, int]] = 5,
        output_dim: int | None = None,
        peephole: bool = True,
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
        self.input_kernel_sizes = _per_layer_kernels(
            input_kernel_sizes, self.num_layers, "input_kernel_sizes", _OWNER
        )
        self.state_kernel_sizes = _per_layer_kernels(
            state_kernel_sizes, self.num_layers, "state_kernel_sizes", _OWNER
        )
        self.output_dim = (
            self.input_dim
            if output_dim is None
            else _positive_int(output_dim, "output_dim", _OWNER)
        )
        self.peephole = bool(peephole)
        self.checkpoint_steps = bool(checkpoint_steps)
        encoder_in = [self.input_dim, *self.hidden_dims[:-1]]
        forecaster_in = [0, *self.hidden_dims[:-1]]  # the first forecaster layer reads nothing
        # Written once, in the cell: every layer of both stacks gets the same options.
        options = {
            "peephole": self.peephole,
            "padding_mode": padding_mode,
            "dilation": dilation,
            "state_dilation": state_dilation,
            "forget_bias": forget_bias,
            "dropout": dropout,
            "recurrent_dropout": recurrent_dropout,
        }
        kernels = (self.input_kernel_sizes, self.state_kernel_sizes)
        self.encoder = nn.ModuleList(
            _cells(ConvLSTMCell, encoder_in, self.hidden_dims, *kernels, owner=_OWNER, **options)
        )
        self.forecaster = nn.ModuleList(
            _cells(ConvLSTMCell, forecaster_in, self.hidden_dims, *kernels, owner=_OWNER, **options)
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
            f"{', checkpoint_steps=True' if self.checkpoint_steps else ''}"
            f"{self.encoder[0]._options_repr()}"
        )

    def forward(self, x: Tensor, steps: int) -> Tensor:
        _check_input(x, 5, "(B, T, C_in, H, W)", self.input_dim, _OWNER)
        _check_dtype(x, self.head.weight, _OWNER)
        steps = _positive_int(steps, "steps", _OWNER)
        if x.shape[1] == 0:
            raise ValueError(
                f"{_OWNER}: expected at least one input frame, got an empty time dimension T=0"
            )
        # The encoder is a stack like ConvLSTM: layers outside, time inside, through the same
        # loop (the input half of every frame in one call, where that pays).
        layer_input = x  # (B, T, C, H, W)
        recompute = self.checkpoint_steps and torch.is_grad_enabled()
        states = []
        for cell in self.encoder:
            layer_input, h, c = _run_layer(
                cell,
                layer_input,
                None,
                channels_last=False,
                # Under checkpointing the input half runs in the steps, as in ConvLSTM.
                precompute_input=not recompute and precomputes_input(cell, layer_input),
                checkpoint_steps=self.checkpoint_steps,
            )  # (B, T, C_hid, H, W), then h and c each (B, C_hid, H, W)
            states.append((h, c))
        # Variational dropout: each forecaster cell's masks hold for the whole forecast.
        masks = [
            cell.dropout_masks(c) for cell, (_, c) in zip(self.forecaster, states, strict=True)
        ]
        # Time outside, layers inside: the head needs every layer's state at each step.
        outputs = []
        for _ in range(steps):
            if recompute:
                # One forecast step keeps only the states it starts from for backward.
                states, frame = checkpoint(self._forecast_step, states, masks, use_reentrant=False)
            else:
                states, frame = self._forecast_step(states, masks)
            outputs.append(frame)  # (B, C_out, H, W)
        return torch.stack(outputs, dim=1)  # (B, K, C_out, H, W)

    def _forecast_step(
        self,
        states: list[tuple[Tensor, Tensor]],
        masks: list[tuple[Tensor | None, Tensor | None]],
    ) -> tuple[list[tuple[Tensor, Tensor]], Tensor]:
        """One step of the forecaster: every layer's new ``(h, c)``, and the head's frame."""
        layer_input = None  # the first forecaster layer reads nothing but its state
        new_states = []
        for cell, (h, c), (mask_x, mask_h) in zip(self.forecaster, states, masks, strict=True):
            if mask_x is not None:
                layer_input = layer_input * mask_x  # (B, C_in, H, W)
            if mask_h is not None:
                h = h * mask_h  # (B, C_hid, H, W)
            new_states.append(cell.update(cell.gates(layer_input, h), c)[:2])
            layer_input = new_states[-1][0]  # (B, C_hid, H, W)
        hidden = torch.cat([h for h, _ in new_states], dim=1)  # (B, sum of C_hid, H, W)
        return new_states, self.head(hidden)  # ..., (B, C_out, H, W)
