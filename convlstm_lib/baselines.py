"""Baselines for many-frame forecasts (the last frame, a fully connected LSTM) and their scores."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .cell import _check_dtype, _positive_int

__all__ = ["FCLSTM", "frame_cross_entropy", "frame_mse", "frame_ssim", "persistence"]


def _check_movie(x: object, owner: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{owner}: expected input to be a Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: expected a floating-point input, got {x.dtype}")
    if x.dim() != 5:
        raise ValueError(f"{owner}: expected input with 5 dims (B, T, C, H, W), got {x.dim()}")
    if x.shape[1] == 0:
        raise ValueError(
            f"{owner}: expected at least one input frame, got an empty time dimension T=0"
        )


def _check_pair(prediction: object, target: object, owner: str) -> None:
    for name, x in (("prediction", prediction), ("target", target)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{owner}: expected {name} to be a Tensor, got {type(x).__name__}")
        if x.dim() != 5:
            raise ValueError(f"{owner}: expected {name} with 5 dims (B, K, C, H, W), got {x.dim()}")
    if prediction.shape != target.shape:
        raise ValueError(
            f"{owner}: expected prediction and target of one shape, "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )


def _check_reduction(reduction: object, owner: str) -> str:
    if reduction not in ("mean", "none"):
        raise ValueError(f"{owner}: expected reduction 'mean' or 'none', got {reduction!r}")
    return reduction


def _reduce(scores: Tensor, reduction: str) -> Tensor:
    """(B, K) scores of every movie and step, or their mean over movies, (K,)."""
    return scores if reduction == "none" else scores.mean(dim=0)


def frame_mse(prediction: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""The mean squared error of every forecast step, averaged over pixels (and movies).

    Multiply by :math:`C H W` for the error summed over a frame's pixels, as OpenSTL and many
    Moving MNIST tables report it.

    Args:
        prediction: tensor of shape :math:`(B, K, C, H, W)`.
        target: tensor of the same shape.
        reduction: ``"mean"`` averages over the movies, ``"none"`` keeps one score per movie
            (for intervals over movies). Default: ``"mean"``

    Returns:
        A float64 tensor of shape :math:`(K,)` (or :math:`(B, K)`): entry :math:`k` scores the
        frame :math:`k + 1` steps ahead.

    Examples::

        >>> truth = torch.zeros(3, 4, 1, 8, 8)
        >>> frame_mse(truth + 0.5, truth)
        tensor([0.2500, 0.2500, 0.2500, 0.2500], dtype=torch.float64)
        >>> frame_mse(truth + 0.5, truth, reduction="none").shape
        torch.Size([3, 4])
    """
    _check_pair(prediction, target, "frame_mse")
    reduction = _check_reduction(reduction, "frame_mse")
    error = (prediction.double() - target.double()) ** 2  # (B, K, C, H, W)
    return _reduce(error.flatten(2).mean(dim=2), reduction)  # (B, K) or (K,)


def frame_cross_entropy(prediction: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""The binary cross-entropy of every forecast step, summed over a frame's pixels.

    Summed over the :math:`K` steps as well, this is the per-sequence cross-entropy of Shi et
    al.'s Table 1. Computed by :func:`torch.nn.functional.binary_cross_entropy`, which clamps
    each log at :math:`-100`; a forecast that is exactly 0 or 1 where it is wrong (persistence)
    is charged that clamp, so the score is meant for probability forecasts.

    Args:
        prediction: probabilities in :math:`[0, 1]`, tensor of shape :math:`(B, K, C, H, W)`.
        target: values in :math:`[0, 1]`, tensor of the same shape.
        reduction: ``"mean"`` averages over the movies, ``"none"`` keeps one score per movie.
            Default: ``"mean"``

    Returns:
        A float64 tensor of shape :math:`(K,)` (or :math:`(B, K)`), in nats per frame.

    Examples::

        >>> truth = torch.zeros(2, 3, 1, 4, 4)
        >>> frame_cross_entropy(truth + 0.5, truth)  # 16 pixels of log 2
        tensor([11.0904, 11.0904, 11.0904], dtype=torch.float64)
    """
    from torch.nn import functional as F

    _check_pair(prediction, target, "frame_cross_entropy")
    reduction = _check_reduction(reduction, "frame_cross_entropy")
    loss = F.binary_cross_entropy(prediction.double(), target.double(), reduction="none")
    return _reduce(loss.flatten(2).sum(dim=2), reduction)  # (B, K) or (K,)


def frame_ssim(
    prediction: Tensor, target: Tensor, *, data_range: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""The structural similarity (SSIM) of every forecast step, averaged over movies.

    Computed frame by frame with :func:`skimage.metrics.structural_similarity` (a maintained
    implementation, its default uniform 7x7 window), channels as the last axis.

    Args:
        prediction: tensor of shape :math:`(B, K, C, H, W)`, :math:`H, W \geq 7`.
        target: tensor of the same shape.
        data_range: The range of the pixel values. Default: ``1.0``
        reduction: ``"mean"`` averages over the movies, ``"none"`` keeps one score per movie.
            Default: ``"mean"``

    Returns:
        A float64 tensor of shape :math:`(K,)` (or :math:`(B, K)`); 1 means identical frames.

    Examples::

        >>> truth = torch.rand(2, 3, 1, 16, 16)
        >>> frame_ssim(truth, truth)
        tensor([1., 1., 1.], dtype=torch.float64)
    """
    from skimage.metrics import structural_similarity

    _check_pair(prediction, target, "frame_ssim")
    reduction = _check_reduction(reduction, "frame_ssim")
    pred = prediction.detach().double().permute(0, 1, 3, 4, 2).cpu().numpy()  # (B, K, H, W, C)
    true = target.detach().double().permute(0, 1, 3, 4, 2).cpu().numpy()  # (B, K, H, W, C)
    scores = torch.zeros(pred.shape[0], pred.shape[1], dtype=torch.float64)
    for b in range(pred.shape[0]):
        for k in range(pred.shape[1]):
            scores[b, k] = structural_similarity(
                pred[b, k], true[b, k], data_range=data_range, channel_axis=-1
            )
    return _reduce(scores, reduction)  # (B, K) or (K,)


def persistence(x: Tensor, steps: int) -> Tensor:
    r"""Forecast by repeating the last input frame: the baseline every forecaster must beat.

    Args:
        x: tensor of shape :math:`(B, T, C, H, W)`, the frames seen so far.
        steps: The number :math:`K` of frames to predict.

    Returns:
        A tensor of shape :math:`(B, K, C, H, W)`, every frame a copy of ``x[:, -1]``.

    Examples::

        >>> x = torch.rand(2, 10, 1, 32, 32)
        >>> forecast = persistence(x, steps=5)
        >>> forecast.shape
        torch.Size([2, 5, 1, 32, 32])
        >>> torch.equal(forecast[:, 4], x[:, -1])
        True
    """
    _check_movie(x, "persistence")
    steps = _positive_int(steps, "steps", "persistence")
    return x[:, -1:].expand(-1, steps, -1, -1, -1).clone()  # (B, K, C, H, W)


class FCLSTM(nn.Module):
    r"""The paper's FC-LSTM: an encoder-forecaster of :class:`torch.nn.LSTM` on flattened frames.

    The same structure as :class:`EncoderForecaster` with every convolution replaced by a full
    matrix product: each frame is flattened to a vector of :math:`D = C H W` values, an encoder
    :class:`~torch.nn.LSTM` reads them, its final :math:`(h, c)` of every layer start a
    forecaster :class:`~torch.nn.LSTM` of the same shape, and a :class:`~torch.nn.Linear` layer
    over the concatenated hidden states of all forecaster layers gives each predicted frame. The
    forecaster has nothing to read; :class:`~torch.nn.LSTM` needs an input, so it reads a
    constant 1, whose weights act as one more bias. Every pixel is connected to every hidden
    unit: the model knows nothing of neighbourhoods, which is what Shi et al. (2015) set out to
    fix.

    Args:
        input_size: The number :math:`D = C H W` of values in one frame.
        hidden_size: The hidden units of every layer.
        num_layers: The number of layers of the encoder and of the forecaster. Default: ``1``

    Inputs: input, steps
        * **input**: tensor of shape :math:`(B, T, C, H, W)` with :math:`C H W = D`.
        * **steps**: the number :math:`K` of frames to predict, a positive int.

    Outputs: output
        * **output**: tensor of shape :math:`(B, K, C, H, W)`, the predicted frames (before any
          sigmoid).

    Attributes:
        encoder, forecaster: the two :class:`~torch.nn.LSTM` (``batch_first=True``).
        head: the :class:`~torch.nn.Linear` from ``num_layers * hidden_size`` to :math:`D`.

    Examples::

        >>> model = FCLSTM(32 * 32, 64)
        >>> model(torch.rand(2, 10, 1, 32, 32), steps=5).shape
        torch.Size([2, 5, 1, 32, 32])
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size", "FCLSTM")
        self.hidden_size = _positive_int(hidden_size, "hidden_size", "FCLSTM")
        self.num_layers = _positive_int(num_layers, "num_layers", "FCLSTM")
        self.encoder = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.forecaster = nn.LSTM(1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(num_layers * hidden_size, input_size)

    def reset_parameters(self) -> None:
        """Re-initialise both LSTMs and the head as torch does."""
        for module in (self.encoder, self.forecaster, self.head):
            module.reset_parameters()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"

    def forward(self, x: Tensor, steps: int) -> Tensor:
        _check_movie(x, "FCLSTM")
        _check_dtype(x, self.head.weight, "FCLSTM")
        steps = _positive_int(steps, "steps", "FCLSTM")
        batch, frames = x.shape[:2]
        if x[0, 0].numel() != self.input_size:
            raise ValueError(
                f"FCLSTM: expected frames of C * H * W = {self.input_size} values, "
                f"got {tuple(x.shape[2:])} = {x[0, 0].numel()}"
            )
        _, state = self.encoder(x.reshape(batch, frames, -1))  # h, c each (L, B, hidden)
        one = x.new_ones(batch, 1, 1)  # (B, 1, 1): the forecaster's constant input
        outputs = []
        for _ in range(steps):
            _, state = self.forecaster(one, state)
            hidden = state[0].transpose(0, 1).reshape(batch, -1)  # (B, L * hidden)
            outputs.append(self.head(hidden))  # (B, D)
        return torch.stack(outputs, dim=1).view(batch, steps, *x.shape[2:])  # (B, K, C, H, W)
