"""Next-frame prediction: a ConvLSTM with a readout, and a small training loop every chapter shares."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import trange

from .cell import _positive_int
from .model import ConvLSTM

__all__ = ["FitHistory", "NextFramePredictor", "evaluate", "fit", "native_autocast_dtype"]

_READOUTS = ("hidden", "conv")


class NextFramePredictor(nn.Module):
    r"""Predict the frame after a sequence with a :class:`ConvLSTM` and a readout.

    The ConvLSTM reads the :math:`T` input frames; its last layer's final hidden state
    :math:`h_T^{(L)}` summarises them. The readout turns it into the predicted frame
    :math:`\hat{x}_{T+1}`:

    .. math::
        \begin{array}{ll}
        \hat{x}_{T+1} = h_T^{(L)} & \text{readout="hidden" (the post's)} \\
        \hat{x}_{T+1} = \sigma(W * h_T^{(L)} + b) & \text{readout="conv"}
        \end{array}

    with :math:`W` a :math:`1 \times 1` convolution and :math:`\sigma` the sigmoid. The hidden
    state is :math:`o_t \circ \tanh(c_t)`, so it lies in :math:`(-1, 1)` and a pixel of 1 is
    out of its reach; the convolution head mixes all the last layer's channels and the sigmoid
    maps them onto :math:`(0, 1)`, the range of the frames.

    Args:
        convlstm: The :class:`ConvLSTM` that reads the frames. With ``readout="hidden"`` its last
            layer must have ``out_channels`` hidden channels.
        readout: ``"hidden"`` for the last layer's final hidden state itself, ``"conv"`` for a
            :math:`1 \times 1` convolution over it followed by a sigmoid. Default: ``"hidden"``
        out_channels: The channels :math:`C_{out}` of the predicted frame, or ``None`` for the
            ConvLSTM's input channels :math:`C_{in}`. Default: ``None``

    Inputs: input
        * **input**: tensor of shape :math:`(B, T, C_{in}, H, W)`, or :math:`(T, B, C_{in}, H, W)`
          when the ConvLSTM has ``batch_first=False``.

    Outputs: prediction
        * **prediction**: tensor of shape :math:`(B, C_{out}, H, W)`.

    where :math:`B` is the batch size, :math:`T` the number of input frames and :math:`H, W` the
    frame height and width.

    Attributes:
        convlstm: the wrapped :class:`ConvLSTM`.
        head: the :math:`1 \times 1` :class:`~torch.nn.Conv2d` of ``readout="conv"``, else
            ``None``.

    Examples::

        >>> post = NextFramePredictor(ConvLSTM(1, [64, 1], 3))
        >>> better = NextFramePredictor(ConvLSTM(1, [32, 32], 3), readout="conv")
        >>> x = torch.rand(2, 5, 1, 24, 24)
        >>> post(x).shape, better(x).shape
        (torch.Size([2, 1, 24, 24]), torch.Size([2, 1, 24, 24]))
        >>> bool(((better(x) > 0) & (better(x) < 1)).all())
        True
        >>> every = better.predict_every_step(x)  # after each of the 5 frames
        >>> every.shape, torch.allclose(every[:, -1], better(x))
        (torch.Size([2, 5, 1, 24, 24]), True)
    """

    def __init__(
        self, convlstm: ConvLSTM, *, readout: str = "hidden", out_channels: int | None = None
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(convlstm, ConvLSTM):
            raise TypeError(
                f"{owner}: expected convlstm to be a ConvLSTM, got {type(convlstm).__name__}"
            )
        if readout not in _READOUTS:
            raise ValueError(f"{owner}: expected readout 'hidden' or 'conv', got {readout!r}")
        if out_channels is None:
            out_channels = convlstm.input_dim
        self.out_channels = _positive_int(out_channels, "out_channels", owner)
        self.readout = readout
        self.convlstm = convlstm
        last_hidden = convlstm.hidden_dims[-1]
        if readout == "hidden":
            if last_hidden != self.out_channels:
                raise ValueError(
                    f"{owner}: expected the last layer's hidden channels to equal out_channels="
                    f"{self.out_channels} with readout='hidden', got {last_hidden} "
                    f"(use readout='conv' to map them)"
                )
            self.register_module("head", None)
        else:
            self.head = nn.Conv2d(last_hidden, self.out_channels, kernel_size=1)

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}, out_channels={self.out_channels}"

    def read_out(self, h: Tensor) -> Tensor:
        """The predicted frame, of shape (B, C_out, H, W), from a last-layer hidden state h."""
        if self.head is None:
            return h
        return torch.sigmoid(self.head(h))  # (B, C_out, H, W)

    def predict_every_step(self, x: Tensor) -> Tensor:
        """The frame after every input frame: shaped like ``x``, with :math:`C_{out}` channels.

        The prediction after step :math:`t` reads only frames :math:`0..t`; the last one is what
        ``forward`` returns.
        """
        layer_outputs, _ = self.convlstm(x)
        h = layer_outputs[-1]  # (B, T, C_hid, H, W), or (T, B, ...) when not batch first
        frames = self.read_out(h.flatten(0, 1))  # (B * T, C_out, H, W)
        return frames.unflatten(0, h.shape[:2])  # (B, T, C_out, H, W)

    def forward(self, x: Tensor) -> Tensor:
        _, last_states = self.convlstm(x)
        return self.read_out(last_states[-1][0])  # from the last layer's final hidden state


@dataclass
class FitHistory:
    """What :func:`fit` measured, epoch by epoch.

    Attributes:
        train_loss: One entry per epoch: the mean loss of its batches, each computed before its
            update (for full-batch training, the loss the epoch's update starts from).
        eval_loss: The held-out loss after each evaluated epoch (empty without ``eval_data``).
        eval_epochs: The epochs, counted from 1, after which ``eval_loss`` was measured.
        epoch_seconds: The wall-clock seconds of every epoch, its evaluation included.
    """

    train_loss: list[float] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_epochs: list[int] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


def _check_pair(inputs: object, targets: object, owner: str, what: str) -> None:
    """Raise a clear error unless ``inputs`` and ``targets`` are tensors of the same length."""
    for name, tensor in (("inputs", inputs), ("targets", targets)):
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"{owner}: expected {what}{name} to be a Tensor, got {type(tensor).__name__}"
            )
        if tensor.dim() == 0 or tensor.shape[0] == 0:
            raise ValueError(
                f"{owner}: expected {what}{name} with at least one example along dim 0, "
                f"got shape {tuple(tensor.shape)}"
            )
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"{owner}: expected {what}inputs and targets with the same number of examples, "
            f"got {inputs.shape[0]} and {targets.shape[0]}"
        )


def _check_options(batch_size: object, autocast_dtype: object, owner: str) -> None:
    if batch_size is not None:
        _positive_int(batch_size, "batch_size", owner)
    if autocast_dtype is not None and not isinstance(autocast_dtype, torch.dtype):
        raise TypeError(
            f"{owner}: expected autocast_dtype to be a torch.dtype or None, "
            f"got {type(autocast_dtype).__name__}"
        )


def native_autocast_dtype(device: torch.device | str = "cpu") -> torch.dtype | None:
    """The low precision that ``device`` computes natively, for ``autocast_dtype``, or ``None``.

    * CPU: :attr:`torch.bfloat16` where the processor has bfloat16 instructions (AVX-512 BF16
      or AMX); ``None`` elsewhere, where oneDNN emulates bfloat16 and training gets slower, not
      faster: an epoch of the post's recipe took 25 s under bfloat16 autocast against 2.1 s in
      float32 on an AVX2 processor.
    * CUDA: :attr:`torch.bfloat16` where the GPU supports it, else :attr:`torch.float16`.
    * anything else: ``None``.

    Args:
        device: the device the model runs on. Default: ``"cpu"``

    Returns:
        A dtype for :func:`fit`'s and :func:`evaluate`'s ``autocast_dtype``, or ``None`` for
        full precision.

    Examples::

        >>> native_autocast_dtype("meta") is None
        True
    """
    device_type = torch.device(device).type
    if device_type == "cpu":
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return torch.bfloat16 if native else None
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def _autocast(device_type: str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``dtype``, or nothing for ``None`` (full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def evaluate(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.mse_loss,
    batch_size: int | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    r"""The loss of ``model`` on ``(inputs, targets)``, without gradients, in eval mode.

    Args:
        model: The module; called as ``model(inputs[batch])``. Its train/eval mode is restored.
        inputs: tensor of shape :math:`(N, *)`, the model's inputs along dim 0.
        targets: tensor of shape :math:`(N, *)`, the matching targets.
        loss_fn: A loss with mean reduction, called as ``loss_fn(prediction, target)``.
            Default: :func:`torch.nn.functional.mse_loss`
        batch_size: The examples per forward pass, or ``None`` for all at once. Default: ``None``
        autocast_dtype: Run the forward pass and loss under :func:`torch.autocast` in this dtype
            (e.g. ``torch.bfloat16``), or ``None`` for full precision. Default: ``None``

    Returns:
        The mean loss over the :math:`N` examples (batches weighted by their size), a float.

    Examples::

        >>> model = nn.Conv2d(1, 1, 3, padding=1)
        >>> x = torch.rand(10, 1, 8, 8)
        >>> loss = evaluate(model, x, x, batch_size=4)
        >>> abs(loss - F.mse_loss(model(x), x).item()) < 1e-6
        True
    """
    owner = "evaluate"
    _check_pair(inputs, targets, owner, "")
    _check_options(batch_size, autocast_dtype, owner)
    count = inputs.shape[0]
    step = count if batch_size is None else batch_size
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        with torch.no_grad(), _autocast(inputs.device.type, autocast_dtype):
            for start in range(0, count, step):
                x, y = inputs[start : start + step], targets[start : start + step]
                total += loss_fn(model(x), y).item() * x.shape[0]
    finally:
        model.train(was_training)
    return total / count


def fit(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.mse_loss,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    eval_data: tuple[Tensor, Tensor] | None = None,
    eval_every: int = 1,
    autocast_dtype: torch.dtype | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> FitHistory:
    r"""Train ``model`` to map ``inputs`` to ``targets``, epoch by epoch, with a progress bar.

    Every epoch visits the :math:`N` examples once, in ``batch_size`` batches (in a new random
    order each epoch, drawn from a generator seeded by ``seed``, so the global random state is
    left alone) or all at once, and for each batch: zero the gradients, compute
    ``loss_fn(model(x), y)``, back-propagate, step the optimizer (and the scheduler).

    Args:
        model: The module to train, called as ``model(inputs[batch])``; left in train mode.
        inputs: tensor of shape :math:`(N, *)`, the model's inputs along dim 0.
        targets: tensor of shape :math:`(N, *)`, the matching targets.
        loss_fn: A loss with mean reduction, called as ``loss_fn(prediction, target)``.
            Default: :func:`torch.nn.functional.mse_loss`
        epochs: The number of passes over the data. Default: ``100``
        lr: The learning rate of the default optimizer, :class:`~torch.optim.Adam`; unused when
            ``optimizer`` is given. Default: ``1e-3``
        batch_size: The examples per update, or ``None`` for full-batch training (one update per
            epoch, as in the post). Default: ``None``
        optimizer: The optimizer, or ``None`` for ``Adam(model.parameters(), lr)``.
            Default: ``None``
        scheduler: A learning-rate scheduler stepped after every optimizer step, or ``None``.
            Default: ``None``
        eval_data: A held-out pair ``(inputs, targets)`` scored with :func:`evaluate`, or
            ``None``. Default: ``None``
        eval_every: Score ``eval_data`` after every ``eval_every``-th epoch and the last one.
            Default: ``1``
        autocast_dtype: Run every forward pass and loss under :func:`torch.autocast` in this
            dtype (e.g. ``torch.bfloat16`` on a CPU with fast bfloat16 arithmetic), or ``None``
            for full precision; the parameters and the optimizer stay in their own dtype.
            Default: ``None``
        seed: The seed of the batch order. Default: ``0``
        progress: If ``True``, show a :mod:`tqdm.auto` progress bar with the latest losses.
            Default: ``True``
        desc: The progress bar's label. Default: ``"training"``

    Returns:
        A :class:`FitHistory` with the training loss of every epoch, the held-out losses and the
        seconds every epoch took.

    Examples::

        >>> _ = torch.manual_seed(0)
        >>> model = nn.Conv2d(1, 1, 3, padding=1)
        >>> x = torch.rand(16, 1, 8, 8)
        >>> history = fit(model, x, x, epochs=50, lr=1e-2, batch_size=4, progress=False)
        >>> history.train_loss[-1] < history.train_loss[0] / 10
        True
    """
    owner = "fit"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{owner}: expected model to be an nn.Module, got {type(model).__name__}")
    _check_pair(inputs, targets, owner, "")
    _check_options(batch_size, autocast_dtype, owner)
    epochs = _positive_int(epochs, "epochs", owner)
    eval_every = _positive_int(eval_every, "eval_every", owner)
    if not callable(loss_fn):
        raise TypeError(f"{owner}: expected loss_fn to be callable, got {type(loss_fn).__name__}")
    if eval_data is not None:
        if not (isinstance(eval_data, (tuple, list)) and len(eval_data) == 2):
            raise TypeError(
                f"{owner}: expected eval_data to be a pair (inputs, targets), "
                f"got {type(eval_data).__name__}"
            )
        _check_pair(eval_data[0], eval_data[1], owner, "eval_data ")
    if optimizer is None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
            raise ValueError(f"{owner}: expected lr to be a positive number, got {lr!r}")
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    count = inputs.shape[0]
    step = count if batch_size is None else batch_size
    generator = torch.Generator().manual_seed(seed)
    device_type = inputs.device.type
    history = FitHistory()
    model.train()
    bar = trange(epochs, desc=desc, disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        order = torch.randperm(count, generator=generator) if step < count else None
        total = 0.0
        for begin in range(0, count, step):
            if order is None:
                x, y = inputs, targets
            else:
                index = order[begin : begin + step].to(inputs.device)
                x, y = inputs[index], targets[index]
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device_type, autocast_dtype):
                loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * x.shape[0]
        history.train_loss.append(total / count)
        postfix = {"loss": f"{history.train_loss[-1]:.3g}"}
        if eval_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            held_out = evaluate(
                model,
                *eval_data,
                loss_fn=loss_fn,
                batch_size=batch_size,
                autocast_dtype=autocast_dtype,
            )
            history.eval_loss.append(held_out)
            history.eval_epochs.append(epoch + 1)
            postfix["held-out"] = f"{held_out:.3g}"
        history.epoch_seconds.append(time.perf_counter() - start)
        bar.set_postfix(postfix, refresh=False)
    return history
