"""Ragged probe-set helpers shared by the MAS5 kernels (private).

A probe set is a contiguous run of rows described by ``offsets`` (length ``n_sets + 1``,
``offsets[0] == 0``, ``offsets[-1] == n_rows``, strictly increasing).
"""

from __future__ import annotations

from functools import cached_property

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


class Segments:
    """Checked probe-set boundaries and the index arrays derived from them, each made once.

    A per-sample job summarizes one array at a time on the same design: the row → set ids, the
    starts and sizes, and the row indices of the sets of each size are the same for every array.
    """

    def __init__(self, offsets: npt.ArrayLike, n_rows: int) -> None:
        self.offsets = check_offsets(offsets, n_rows)
        self.n_rows = n_rows

    @cached_property
    def ids(self) -> IntArray:
        """The probe-set number of every row."""
        return segment_ids(self.offsets)

    @cached_property
    def starts(self) -> IntArray:
        return self.offsets[:-1]

    @cached_property
    def sizes(self) -> IntArray:
        return np.diff(self.offsets)

    @cached_property
    def row_starts(self) -> IntArray:
        """The first row of each row's set (``np.repeat(starts, sizes)``)."""
        return np.repeat(self.starts, self.sizes)

    @cached_property
    def groups(self) -> list[tuple[IntArray, IntArray]]:
        """Per distinct set size: the sets of that size and their rows, ``(sets, size)``."""
        groups = []
        for size in np.unique(self.sizes):
            chosen = np.flatnonzero(self.sizes == size)
            groups.append((chosen, self.starts[chosen][:, None] + np.arange(size)))
        return groups


def as_segments(offsets: npt.ArrayLike | Segments, n_rows: int) -> Segments:
    """``offsets`` as :class:`Segments` of ``n_rows`` rows (checked; a Segments is reused as is)."""
    if isinstance(offsets, Segments):
        if offsets.n_rows != n_rows:
            msg = f"offsets: expected a design of {n_rows} rows (probe pairs), found {offsets.n_rows}"
            raise ValueError(msg)
        return offsets
    return Segments(offsets, n_rows)


def segment_median(values: FloatArray, offsets: IntArray | Segments) -> FloatArray:
    """Median of each probe set's rows, per column (R ``median``: mean of the two middle values).

    Probe sets of one size are stacked ``(sets, size, columns)`` and reduced with ``np.median``
    (a partition, not a sort): a chip has only a few distinct probe-set sizes.
    """
    segments = as_segments(offsets, len(values))
    median: FloatArray = np.empty((segments.sizes.size, values.shape[1]))
    for chosen, rows in segments.groups:
        median[chosen] = np.median(values[rows], axis=1)
    return median
