"""Keep NumPy's large temporaries on the C heap in processes that run jobs (glibc only).

A MAS5 or RMA job allocates and frees arrays of 5–15 MB many times. glibc serves blocks above its
mmap threshold (128 kB, raised on the fly only while no ``MALLOC_*_`` setting is given) with fresh
``mmap`` calls and returns the heap's top to the kernel above its trim threshold, so every such
temporary came back as new pages the kernel had to fault in and zero. Dask's nanny starts its
workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes the mmap threshold at 128 kB: a
per-sample MAS5 worker spent 0.34 s of every 0.57 s in the kernel. With blocks up to 32 MB on the
heap and 64 MB of free heap kept, the same loop faults 750 pages instead of 63,000.

Memory is not lost: freed heap blocks are reused by the next job, and more than 64 MB free at the
top of the heap is still given back.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_temporaries_on_heap"]

MMAP_THRESHOLD = 32 << 20
"""Blocks up to this size come from the heap (glibc's largest allowed value on 64-bit)."""
TRIM_THRESHOLD = 64 << 20
"""Free memory at the top of the heap kept for reuse before it is returned to the kernel."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>

_tuned: bool | None = None
logger = logging.getLogger(__name__)


def keep_temporaries_on_heap() -> bool:
    """Set glibc's mmap and trim thresholds for this process (once); False where not glibc."""
    global _tuned
    if _tuned is None:
        _tuned = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
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
