"""Bounded-memory RMA: :func:`genemill.numerics.rma.rma`'s numbers with arrays read a chunk at a time.

``affy::rma`` (and :func:`~genemill.numerics.rma.rma`) hold every array's PM intensities in memory
at once: ``probes x arrays x 8`` bytes, 0.97 GB for 200 HG-U133 Plus 2.0 arrays before working
copies. Here the arrays are read through ``load_pm(start, stop)`` in chunks of ``chunk_arrays``
and the intermediate values live in ``scratch``, a ``(probes, arrays)`` float64 matrix the caller
provides (an ``np.memmap`` on disk keeps it out of RAM; Fortran order keeps each array's column
contiguous). Steps, each equal to the in-memory version:

1. **Background** per array (``preprocessCore::rma.background.correct``), chunk by chunk; the
   corrected column goes to ``scratch`` and its sorted copy is added to a running long-double sum,
   column after column in array order -- the same sum ``preprocessCore``'s
   ``normalize.quantiles.determine.target`` forms (and :mod:`genemill.numerics.quantile`).
2. **Quantile target** = that sum / number of arrays: the mean of the sorted columns.
3. **Normalization** per chunk: each corrected column is sorted again and mapped onto the target
   with ties averaged (:func:`genemill.numerics.quantile.distribute_sorted`), then ``log2``; the
   result replaces the column in ``scratch``. Re-sorting reproduces the sorted values exactly, and
   tied values get the same target value whatever order they come in.
4. **Median polish** (:func:`genemill.numerics.rma.median_polish`) per block of consecutive probe
   sets whose rows fit in ``block_bytes``, reading just those rows of ``scratch``.

Peak memory besides ``scratch`` and the ``(probe_sets, arrays)`` result: about
``4 x probes x chunk_arrays x 8`` bytes in steps 1-3 (chunk, corrected copy, sort order, sorted
column), ``probes x 24`` bytes for the running sum and target, and a few times ``block_bytes``
in step 4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from genemill.errors import InputError
from genemill.numerics.quantile import distribute_sorted
from genemill.numerics.rma import median_polish, rma_background_correct

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "accumulate_sorted",
    "normalize_to_target",
    "polish_blocks",
    "rma_chunked",
]

_BLOCK_BYTES = 64 << 20


def rma_chunked(
    load_pm: Callable[[int, int], ArrayLike],
    offsets: ArrayLike,
    *,
    n_arrays: int,
    scratch: NDArray[np.float64] | None = None,
    chunk_arrays: int = 8,
    block_bytes: int = _BLOCK_BYTES,
    workers: int = 1,
) -> NDArray[np.float64]:
    """Return log2 RMA expression ``(probe_sets, arrays)``, reading PM intensities chunk by chunk.

    Parameters
    ----------
    load_pm
        ``load_pm(start, stop)`` returns raw PM intensities ``(probes, stop - start)`` of arrays
        ``start..stop-1`` (linear scale, probes of each probe set contiguous).
    offsets
        CSR probe-set bounds, shape ``(probe_sets + 1,)``, as for :func:`~genemill.numerics.rma.rma`.
    n_arrays
        Number of arrays.
    scratch
        Working matrix ``(probes, n_arrays)`` float64 (e.g. an ``np.memmap``); overwritten.
        ``None`` allocates one in memory.
    chunk_arrays
        Arrays read and corrected at a time.
    block_bytes
        Size of the ``scratch`` rows read at a time for median polish.
    workers
        Threads for median polish.
    """
    bounds = _check_offsets(offsets)
    n_probes = int(bounds[-1])
    work = _check_scratch(scratch, n_probes, n_arrays)
    chunks = [(a, min(a + max(1, chunk_arrays), n_arrays)) for a in range(0, n_arrays, max(1, chunk_arrays))]
    total = np.zeros(n_probes, dtype=np.longdouble)
    for start, stop in chunks:
        pm = _check_pm(load_pm(start, stop), n_probes, start, stop)
        corrected = rma_background_correct(pm, workers=1)
        accumulate_sorted(total, corrected)
        work[:, start:stop] = corrected
        del pm, corrected
    target = total.astype(np.float64) / float(n_arrays)
    del total
    for start, stop in chunks:
        work[:, start:stop] = normalize_to_target(np.asarray(work[:, start:stop]), target)
    result = np.full((bounds.size - 1, n_arrays), np.nan)
    for first, last in polish_blocks(bounds, n_arrays=n_arrays, block_bytes=block_bytes):
        rows = np.asarray(work[bounds[first] : bounds[last], :])
        result[first:last] = median_polish(rows, bounds[first : last + 1] - bounds[first], workers=workers)
    return result


def accumulate_sorted(total: NDArray[np.longdouble], corrected: ArrayLike) -> None:
    """Add each column of ``corrected`` ``(probes, k)``, sorted ascending, to ``total`` ``(probes,)``.

    Columns are added one after another in order, so calling this on consecutive chunks gives the
    same long-double sum as one call on all arrays.
    """
    data = np.asarray(corrected, dtype=np.float64)
    for j in range(data.shape[1]):
        total += np.sort(data[:, j])


def normalize_to_target(corrected: ArrayLike, target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Map each column of ``corrected`` ``(probes, k)`` onto ``target`` ``(probes,)``; return log2 values."""
    data = np.asarray(corrected, dtype=np.float64)
    out = np.empty(data.shape, dtype=np.float64, order="F")
    for j in range(data.shape[1]):
        order = np.argsort(data[:, j], kind="stable")
        out[order, j] = distribute_sorted(data[order, j], target)
    np.log2(out, out=out)
    return out


def polish_blocks(
    offsets: ArrayLike, *, n_arrays: int, block_bytes: int = _BLOCK_BYTES
) -> list[tuple[int, int]]:
    """Cut probe sets into runs ``[first, last)`` whose rows x arrays x 8 bytes fit ``block_bytes``.

    A probe set bigger than the budget gets a block of its own.
    """
    bounds = np.asarray(offsets, dtype=np.int64)
    max_rows = max(1, block_bytes // (8 * max(1, n_arrays)))
    blocks, first = [], 0
    n_sets = bounds.size - 1
    while first < n_sets:
        limit = bounds[first] + max_rows
        last = int(np.searchsorted(bounds, limit, side="right")) - 1
        last = min(max(last, first + 1), n_sets)
        blocks.append((first, last))
        first = last
    return blocks


def _check_offsets(offsets: ArrayLike) -> NDArray[np.int64]:
    bounds = np.asarray(offsets, dtype=np.int64)
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or np.any(np.diff(bounds) < 0):
        msg = f"offsets must rise from 0 (CSR probe-set bounds), found {bounds.tolist()[:5]}..."
        raise InputError(msg)
    if bounds[-1] < 2:
        msg = f"RMA needs at least 2 probes, offsets end at {int(bounds[-1])}"
        raise InputError(msg)
    return bounds


def _check_scratch(scratch: NDArray[np.float64] | None, n_probes: int, n_arrays: int) -> NDArray[np.float64]:
    if n_arrays < 1:
        msg = f"n_arrays must be at least 1, found {n_arrays}"
        raise InputError(msg)
    if scratch is None:
        return np.empty((n_probes, n_arrays), dtype=np.float64, order="F")
    if scratch.shape != (n_probes, n_arrays) or scratch.dtype != np.float64:
        msg = (
            f"scratch must be float64 of shape (probes, arrays) = {(n_probes, n_arrays)}, "
            f"found {scratch.dtype} {scratch.shape}"
        )
        raise InputError(msg)
    return scratch


def _check_pm(pm: ArrayLike, n_probes: int, start: int, stop: int) -> NDArray[np.float64]:
    data = np.asarray(pm, dtype=np.float64)
    if data.shape != (n_probes, stop - start):
        msg = f"load_pm({start}, {stop}) returned shape {data.shape}, expected {(n_probes, stop - start)}"
        raise InputError(msg)
    bad = ~(np.isfinite(data) & (data > 0))
    if bad.any():
        probe, column = np.argwhere(bad)[0]
        msg = (
            f"PM intensities must be finite and positive (RMA takes log2): array {start + int(column)}, "
            f"probe row {int(probe)} is {float(data[probe, column])!r}"
        )
        raise InputError(msg)
    return data
