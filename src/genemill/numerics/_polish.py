"""Median polish machinery for :mod:`genemill.numerics.rma` (``preprocessCore`` ``medianpolish.c``).

Probe sets of equal size are stacked into ``(sets, probes, arrays)`` arrays of about
``CHUNK_ELEMENTS`` residuals and polished together; converged sets leave the stack. Stacks are
spread over threads (NumPy releases the GIL in sorting and arithmetic). A ``load`` callback turns
a ``(sets, probes)`` matrix of probe rows into the stack's log2 values.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from numpy.typing import NDArray

_T = TypeVar("_T")
_R = TypeVar("_R")
MAX_ITER = 10
EPS = 0.01
CHUNK_ELEMENTS = 1 << 21  # residuals per stack (16 MiB of float64)


def summarize(
    load: Callable[[NDArray[np.int64]], NDArray[np.float64]],
    bounds: NDArray[np.int64],
    n_arrays: int,
    *,
    workers: int,
) -> NDArray[np.float64]:
    """Median-polish every probe set; returns ``(probe_sets, arrays)`` (NaN for empty sets)."""
    result = np.full((bounds.size - 1, n_arrays), np.nan)

    def run(job: tuple[int, NDArray[np.int64]]) -> None:
        size, members = job
        result[members] = polish_stack(load(bounds[members][:, None] + np.arange(size)))

    map_threads(run, polish_jobs(bounds, n_arrays), workers)
    return result


def polish_jobs(bounds: NDArray[np.int64], n_arrays: int) -> list[tuple[int, NDArray[np.int64]]]:
    """Group probe sets by size and cut each group into stacks of about ``CHUNK_ELEMENTS``."""
    sizes = np.diff(bounds)
    jobs: list[tuple[int, NDArray[np.int64]]] = []
    for size in np.unique(sizes[sizes > 0]):
        members = np.flatnonzero(sizes == size)
        per_chunk = max(1, CHUNK_ELEMENTS // int(size * max(n_arrays, 1)))
        jobs.extend((int(size), members[k : k + per_chunk]) for k in range(0, members.size, per_chunk))
    return jobs


def polish_stack(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median polish of a ``(sets, probes, arrays)`` stack; returns ``(sets, arrays)``.

    Sets leave the stack once converged (the stack is compacted when a quarter or more of its
    live sets are done; until then finished sets ride along, masked out).
    """
    sets, probes, arrays = z.shape
    r, c, t = np.zeros((sets, probes)), np.zeros((sets, arrays)), np.zeros(sets)
    out = np.empty((sets, arrays))
    active, live, oldsum = np.arange(sets), np.ones(sets, dtype=bool), np.zeros(sets)
    scratch = np.empty_like(z)
    for sweep in range(1, MAX_ITER + 1):
        rdelta = median(z, axis=2, scratch=scratch)
        z -= rdelta[:, :, None]
        r += rdelta
        delta = median(c, axis=1)
        c -= delta[:, None]
        t += delta
        cdelta = median(z, axis=1, scratch=scratch)
        z -= cdelta[:, None, :]
        c += cdelta
        delta = median(r, axis=1)
        r -= delta[:, None]
        t += delta
        newsum = np.abs(z, out=scratch).reshape(active.size, -1).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            done = live & ((newsum == 0.0) | (np.abs(1.0 - oldsum / newsum) < EPS) | (sweep == MAX_ITER))
        out[active[done]] = t[done, None] + c[done]
        live &= ~done
        if not live.any():
            break
        if 4 * (live.size - np.count_nonzero(live)) >= live.size:
            z, r, c, t, active, newsum = z[live], r[live], c[live], t[live], active[live], newsum[live]
            scratch, live = np.empty_like(z), np.ones(active.size, dtype=bool)
        oldsum = newsum
    return out


def median(
    values: NDArray[np.float64], *, axis: int, scratch: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Median along ``axis``; for even counts ``(lower + upper) / 2`` as preprocessCore.

    ``scratch`` (same shape as ``values``) is working memory, so that no large temporary is
    allocated (and page-faulted in) on every call.
    """
    n = values.shape[axis]
    half = (n + 1) // 2
    if scratch is None:
        work = values.copy()
    else:
        work = scratch
        np.copyto(work, values)
    if axis == values.ndim - 1 and n > 16:
        work.sort(axis=axis)  # vectorised sort beats selection on long rows
    else:
        work.partition([half - 1, half] if n % 2 == 0 else [half - 1], axis=axis)
    lower: NDArray[np.float64] = np.take(work, half - 1, axis=axis)
    if n % 2:
        return lower
    upper: NDArray[np.float64] = np.take(work, half, axis=axis)
    return (lower + upper) / 2.0


def imap_threads(function: Callable[[_T], _R], items: Iterable[_T], workers: int) -> Iterator[_R]:
    """Yield ``function(item)`` in the order of ``items``, computed on ``workers`` threads."""
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(function, items)


def map_threads(function: Callable[[_T], None], items: Iterable[_T], workers: int) -> None:
    """Run ``function`` over ``items`` on ``workers`` threads (in-line for one worker)."""
    if workers <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(function, items):
            pass
