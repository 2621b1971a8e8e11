"""Ragged probe-set helpers shared by the MAS5 kernels (private).

A probe set is a contiguous run of rows described by ``offsets`` (length ``n_sets + 1``,
``offsets[0] == 0``, ``offsets[-1] == n_rows``, strictly increasing).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def as_2d(values: npt.ArrayLike, name: str) -> FloatArray:
    """Return ``values`` as float64 ``(rows, arrays)``; a 1-D input becomes one column."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        msg = f"{name}: expected a 1-D or 2-D array (probes × arrays), found {array.ndim} dimensions"
        raise ValueError(msg)
    return array


def check_offsets(offsets: npt.ArrayLike, n_pairs: int) -> IntArray:
    """Return ``offsets`` as an index array after checking it describes ``n_pairs`` rows."""
    result = np.asarray(offsets, dtype=np.intp)
    if result.ndim != 1 or result.size < 2 or result[0] != 0 or result[-1] != n_pairs:
        msg = f"offsets: expected a 1-D array running from 0 to {n_pairs} (the number of probe pairs)"
        raise ValueError(msg)
    if np.any(np.diff(result) <= 0):
        msg = "offsets: expected strictly increasing values (every probe set needs at least one pair)"
        raise ValueError(msg)
    return result


def segment_ids(offsets: IntArray) -> IntArray:
    """Return the probe-set number of every row, ``(n_rows,)``."""
    return np.repeat(np.arange(offsets.size - 1), np.diff(offsets))


def segment_median(values: FloatArray, offsets: IntArray) -> FloatArray:
    """Median of each probe set's rows, per column (R ``median``: mean of the two middle values).

    Probe sets of one size are stacked ``(sets, size, columns)`` and reduced with ``np.median``
    (a partition, not a sort): a chip has only a few distinct probe-set sizes.
    """
    starts, sizes = offsets[:-1], np.diff(offsets)
    median: FloatArray = np.empty((sizes.size, values.shape[1]))
    for size in np.unique(sizes):
        chosen = np.flatnonzero(sizes == size)
        rows = starts[chosen][:, None] + np.arange(size)
        median[chosen] = np.median(values[rows], axis=1)
    return median
