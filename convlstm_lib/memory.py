"""How much memory autograd keeps for the backward pass: the bytes of the tensors it saves."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

__all__ = ["saved_tensor_bytes"]


def saved_tensor_bytes(fn: Callable[[], object], *, exclude: Iterable[Tensor] = ()) -> int:
    """The bytes of the tensors autograd saves for the backward pass while ``fn()`` runs.

    Counted with :func:`torch.autograd.graph.saved_tensors_hooks`: every tensor an operation
    saves for its backward passes through the hook, and each underlying storage counts once
    however many operations save it or views of it (every step's convolution saves the same
    weight; every step's slice of a batched tensor shares its storage). This is the memory a
    training step holds between its forward and backward pass beyond the model itself; the
    peak of the backward pass adds the gradients and, under activation checkpointing, one
    recomputed step at a time. It is exact and deterministic, unlike the peak resident memory
    of a process, which never goes down and counts whatever the allocator keeps.

    Under :func:`torch.utils.checkpoint.checkpoint` (``use_reentrant=False``) what the
    checkpointed function saves is recomputed rather than kept, and is not counted; the
    inputs it keeps are.

    Args:
        fn: Runs the forward pass (and the loss) with gradients recorded; its result is
            dropped, and with it the graph.
        exclude: Tensors not to count, typically ``model.parameters()``: they exist whether
            or not anything is saved. Default: ``()``

    Returns:
        The number of bytes.

    Examples::

        >>> a, b = torch.rand(1000, requires_grad=True), torch.rand(1000, requires_grad=True)
        >>> saved_tensor_bytes(lambda: a * b)  # a product saves both factors: 2 x 4000 bytes
        8000
        >>> saved_tensor_bytes(lambda: (a * a).exp())  # a once, and exp's result
        8000
        >>> saved_tensor_bytes(lambda: a * b, exclude=[a])
        4000
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    # Per storage, its size and the saved tensors on it: a part of the graph that ``fn``
    # drops before it returns frees what it saved, and only what is still alive counts.
    saved: dict[int, tuple[int, list[weakref.ref]]] = {}

    def pack(tensor: Tensor) -> Tensor:
        # A detached alias of the same storage: the tensor itself would tie a saved output
        # to its own graph in a cycle that never frees.
        alias = tensor.detach()
        storage = alias.untyped_storage()
        if storage.data_ptr() not in skip:
            size, refs = saved.setdefault(storage.data_ptr(), (storage.nbytes(), []))
            if size != storage.nbytes():  # a freed storage's address, reused
                saved[storage.data_ptr()] = size, refs = storage.nbytes(), []
            refs.append(weakref.ref(alias))
        return alias

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda alias: alias):
        result = fn()
    total = sum(size for size, refs in saved.values() if any(r() is not None for r in refs))
    del result
    return total
