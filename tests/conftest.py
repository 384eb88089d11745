"""What every test shares: glibc's allocator defaults before and after it."""

import pytest

from convlstm_lib import keep_freed_memory
from convlstm_lib.allocator import _memory_is_kept


@pytest.fixture(autouse=True)
def _glibc_allocator_defaults():
    """Undo :func:`keep_freed_memory` after a test that turned it on (it is process-wide, and
    it changes which path ``ConvLSTM(precompute_input=None)`` takes)."""
    yield
    if _memory_is_kept():
        keep_freed_memory(False)
