"""Fewer C heaps for the process: `use_few_malloc_arenas`.

glibc gives threads their own heap ("arena") when they contend for one, up to
eight per core. `buurtbeeld up` runs a dozen threads (event loops, the event
store's, intake's, workers) that each allocate message buffers and batches:
every arena then keeps its own free memory, and the process stays much
larger than what it uses. Two arenas hold the same with less left over.
Python's own small objects do not come from these heaps; only larger blocks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import suppress

# glibc's mallopt parameter for the most arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def use_few_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Limit glibc to `arenas` heaps; before threads start. False where that is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    return False
