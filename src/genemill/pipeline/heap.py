"""Keep NumPy's large temporaries on the C heap in processes that run jobs (glibc only).

A MAS5 or RMA job allocates and frees arrays of 5–15 MB many times. glibc serves blocks above its
mmap threshold (128 kB, raised on the fly only while no ``MALLOC_*_`` setting is given) with fresh
``mmap`` calls and returns the heap's top to the kernel above its trim threshold, so every such
temporary came back as new pages the kernel had to fault in and zero. Dask's nanny starts its
workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes the mmap threshold at 128 kB: a
per-sample MAS5 worker spent 0.34 s of every 0.57 s in the kernel. Dask runs tasks in threads, and
a thread's malloc arena is a chain of 64 MB sub-heaps that glibc unmaps as soon as one is free,
whatever the trim threshold, unless the top pad asks to keep that much: without it a job in a
thread still faulted 15,600 pages (45 ms of kernel time) per array, with it 130.

So: blocks up to 32 MB come from the heap, 64 MB of top pad keeps a thread's sub-heaps mapped,
and free memory at the top of a heap is given back only beyond 128 MB. Freed blocks are reused by
the next job; the process keeps about its peak job's working set.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["MMAP_THRESHOLD", "TOP_PAD", "TRIM_THRESHOLD", "keep_temporaries_on_heap"]

MMAP_THRESHOLD = 32 << 20
"""Blocks up to this size come from the heap (glibc's largest allowed value on 64-bit)."""
TRIM_THRESHOLD = 128 << 20
"""Free memory at the top of the heap kept for reuse before it is returned to the kernel."""
TOP_PAD = 64 << 20
"""Extra memory kept when a heap grows or shrinks: one whole sub-heap of a thread's arena."""
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # <malloc.h>

_tuned: bool | None = None
logger = logging.getLogger(__name__)


def keep_temporaries_on_heap() -> bool:
    """Set glibc's mmap threshold, trim threshold and top pad for this process (once).

    Returns False where the C library is not glibc (nothing is changed there).
    """
    global _tuned
    if _tuned is None:
        _tuned = (
            _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            and _mallopt(_M_TOP_PAD, TOP_PAD)
        )
        if not _tuned:
            logger.debug("glibc mallopt is not available: malloc thresholds left as they are")
    return _tuned


def _mallopt(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname; find_library would run ldconfig
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(option, value))
