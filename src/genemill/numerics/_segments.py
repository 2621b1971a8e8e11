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
    """Median of each probe set's rows, per column (R ``median``: mean of the two middle values)."""
    first = np.argsort(values, axis=0, kind="stable")
    order = np.take_along_axis(first, np.argsort(segment_ids(offsets)[first], axis=0, kind="stable"), 0)
    ordered = np.take_along_axis(values, order, 0)
    starts, sizes = offsets[:-1], np.diff(offsets)
    median: FloatArray = (ordered[starts + (sizes - 1) // 2] + ordered[starts + sizes // 2]) / 2.0
    return median
