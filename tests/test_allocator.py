"""keep_freed_memory: glibc stops mapping big blocks, so freed tensors leave memory for reuse."""

import ctypes
import platform

import pytest
import torch

from convlstm_lib import keep_freed_memory
from convlstm_lib.allocator import _glibc

GLIBC = _glibc() is not None


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def mapped_blocks() -> int:
    """How many blocks glibc currently serves with their own mmap (``mallinfo2().hblks``)."""
    libc = _glibc()
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2().hblks


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_big_tensors_come_from_the_heap_once_enabled():
    big = 64 * 2**20 // 4  # 64 MiB of float32, above glibc's largest mmap threshold
    before = mapped_blocks()
    tensor = torch.empty(big)
    assert mapped_blocks() == before + 1  # glibc's default: its own mapping
    del tensor
    assert keep_freed_memory() is True
    before = mapped_blocks()
    tensor = torch.empty(big)
    assert mapped_blocks() == before  # from the heap, reusable after free
    del tensor


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_disabling_restores_mapped_blocks():
    keep_freed_memory()
    assert keep_freed_memory(False) is True
    before = mapped_blocks()
    tensor = torch.empty(64 * 2**20 // 4)
    assert mapped_blocks() == before + 1
    del tensor


@pytest.mark.skipif(GLIBC, reason="checks the non-glibc answer")
def test_does_nothing_off_glibc():
    assert platform.libc_ver()[0] != "glibc" or platform.system() != "Linux"
    assert keep_freed_memory() is False
