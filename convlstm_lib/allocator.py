"""Keep freed memory in the process: cheap big allocations for CPU training on Linux."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["keep_freed_memory"]

# mallopt parameters and glibc's documented defaults (malloc.h, mallopt(3)).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
# Trim only when 2 GiB (the largest C int) are free at the top of the heap.
_KEEP_TRIM_THRESHOLD = 2**31 - 1

_kept = False  # whether keep_freed_memory() is in force, for ConvLSTM's precompute_input rule


def _memory_is_kept() -> bool:
    """Whether :func:`keep_freed_memory` is in force in this process."""
    return _kept


def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (where ``mallopt`` means what we use it for), else ``None``."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def keep_freed_memory(enabled: bool = True) -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    PyTorch's CPU tensors come from ``malloc``. glibc serves every block above its mmap
    threshold (32 MiB at most) with a fresh ``mmap`` and unmaps it again on ``free``, so a
    training step that allocates the same big activations every time pays the kernel to map
    and zero every page of them every time: a page fault per 4 KiB. The post's first layer
    writes gates of :math:`100 \\times 256 \\times 24 \\times 24` float32 values (59 MB) per
    step, which makes that the price of every elementwise operation on them.

    With ``enabled=True`` this calls ``mallopt`` so that glibc takes no block from ``mmap``
    (``M_MMAP_MAX = 0``) and never trims the free top of its heap (``M_TRIM_THRESHOLD``): from
    the second step on, the memory of the previous step is reused. The price is that the
    process keeps its peak memory instead of shrinking back. ``enabled=False`` restores
    glibc's default values for later allocations. While it is in force, :class:`ConvLSTM`'s
    ``precompute_input=None`` batches the input half of every layer (see
    :func:`~convlstm_lib.precomputes_input`).

    The setting is process-wide, like :func:`torch.set_num_threads`, so the library never
    calls it by itself. It does nothing off glibc (macOS, Windows, musl-based Linux), where
    preloading jemalloc or tcmalloc (``LD_PRELOAD``) plays the same role.

    Args:
        enabled: keep freed memory (``True``) or restore glibc's defaults (``False``).
            Default: ``True``

    Returns:
        ``True`` if glibc accepted the setting, ``False`` where it does not apply.

    Examples::

        >>> from convlstm_lib import keep_freed_memory
        >>> took_effect = keep_freed_memory()  # True on glibc Linux
        >>> _ = keep_freed_memory(False)  # back to glibc's defaults
    """
    global _kept
    libc = _glibc()
    if libc is None:
        return False
    mmap_max = 0 if enabled else _DEFAULT_MMAP_MAX
    trim = _KEEP_TRIM_THRESHOLD if enabled else _DEFAULT_TRIM_THRESHOLD
    # mallopt returns 1 on success and 0 on error.
    accepted = bool(libc.mallopt(_M_MMAP_MAX, mmap_max))
    accepted = bool(libc.mallopt(_M_TRIM_THRESHOLD, trim)) and accepted
    _kept = enabled and accepted
    return accepted
