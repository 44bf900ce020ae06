"""Keeping a long video's resident memory flat: glibc's allocator told to give big buffers back.

A scene in flight holds a few buffers the size of its segment or narration (the encoder's
output, the blob written, the copy read back), and an hour's scenes are five times
as long as ten minutes'. glibc raises its mmap threshold to the largest block freed so far
(up to 32 MiB), so after the first long scene such buffers come from the heap, and a heap
keeps what it freed: resident memory grows with the scene length, and one arena per thread
multiplies it. Here, buffers of :data:`MMAP_THRESHOLD` or more are always mapped on their own
(unmapped when freed), arenas are capped at :data:`ARENA_MAX`, and :func:`release_free_memory`
hands the heaps' free pages back after each collected scene. Elsewhere than glibc, nothing is
done.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
import threading
from typing import Any

log = logging.getLogger("pagereel.memory")

#: mallopt's parameter numbers (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Blocks this big or bigger are mapped on their own: segments and PCM of long scenes, not 720p frames.
MMAP_THRESHOLD = 4 * 1024 * 1024
ARENA_MAX = 2


@functools.cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # musl and others: no glibc here
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


#: The videos of a batch start in threads together: the allocator is set by one of them, once.
_TUNING = threading.Lock()
_tuned: list[bool] = []


def tune_allocator() -> bool:
    """Set the mmap threshold and the arena cap of this process once; True when glibc took both.

    ``mallopt`` runs with the GIL released and changes settings every thread's allocations read:
    it is called once per process, under a lock, never by two threads at a time.
    """
    with _TUNING:
        if not _tuned:
            _tuned.append(_set_allocator())
        return _tuned[0]


def _set_allocator() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    took = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    if not took:
        log.debug("glibc refused the allocator settings; memory may grow with scene length")
    return took


def release_free_memory() -> bool:
    """Return the free pages of every heap to the system (``malloc_trim``); True when some were."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
