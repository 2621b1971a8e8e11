"""Quantile normalization exactly as Bioconductor ``preprocessCore`` computes it.

Matrices are ``(rows, columns)`` with one column per array / sample; values in any unit (RMA uses
background-corrected linear intensities).

* Target (``normalize.quantiles.determine.target``): sort each column; the target is the mean over
  columns of the sorted values (summed in extended precision, then divided by the column count,
  as the threaded C code does). A column with missing values (NaN) contributes its observed
  quantiles interpolated onto ``rows`` points: position ``1 + (n_obs - 1) * i / (rows - 1)`` in the
  sorted observed values, linear between neighbours (R's ``quantile`` type 7).
* Distribution (``normalize.quantiles`` / ``normalize.quantiles.use.target``): rank each column
  with ties averaged (R's ``rank``); a value of rank ``r`` gets ``target[r - 1]`` (1-based), and a
  tied group whose average rank ends in .5 gets the mean of the two neighbouring target values.
  Columns with missing values, or a target of another length, map rank ``r`` to the target
  quantile at ``(r - 1) / (n_obs - 1)``, interpolated as above; NaN stays NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from genemill.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "distribute_sorted",
    "quantile_normalize",
    "quantile_normalize_to_target",
    "quantile_target",
]

_EPS4 = 4 * np.finfo(np.float64).eps


def quantile_target(matrix: ArrayLike, *, length: int | None = None) -> NDArray[np.float64]:
    """Return the quantile-normalization target (sorted, shape ``(length or rows,)``).

    Equals ``preprocessCore::normalize.quantiles.determine.target(matrix, target.length)``.
    """
    data = _as_matrix(matrix)
    rows, cols = data.shape
    total = np.zeros(rows, dtype=np.longdouble)
    for j in range(cols):
        column = data[:, j]
        observed = np.sort(column[~np.isnan(column)])
        if observed.size == 0:
            msg = f"column {j} has no finite values; quantiles are undefined"
            raise InputError(msg)
        total += observed if observed.size == rows else _interpolate(observed, rows)
    target = (total.astype(np.float64)) / float(cols)
    if length is None or length == rows:
        return target
    if length <= 0:
        msg = f"target length must be positive, found {length}"
        raise InputError(msg)
    return _interpolate(target, length)


def quantile_normalize(matrix: ArrayLike) -> NDArray[np.float64]:
    """Quantile-normalize the columns of ``matrix``; returns a new float64 array of the same shape.

    Equals ``preprocessCore::normalize.quantiles(matrix)`` (to within 1e-12 relative).
    """
    data = _as_matrix(matrix)
    return quantile_normalize_to_target(data, quantile_target(data))


def quantile_normalize_to_target(matrix: ArrayLike, target: ArrayLike) -> NDArray[np.float64]:
    """Map every column of ``matrix`` onto the distribution ``target`` (any length, NaN ignored).

    Equals ``preprocessCore::normalize.quantiles.use.target(matrix, target)``.
    """
    data = _as_matrix(matrix)
    sorted_target = np.sort(np.asarray(target, dtype=np.float64).ravel())
    sorted_target = sorted_target[~np.isnan(sorted_target)]
    if sorted_target.size == 0:
        msg = "quantile target has no finite values"
        raise InputError(msg)
    result = np.full(data.shape, np.nan)
    for j in range(data.shape[1]):
        column = data[:, j]
        observed = np.flatnonzero(~np.isnan(column))
        order = observed[np.argsort(column[observed], kind="stable")]
        values = column[order]
        if values.size == data.shape[0] == sorted_target.size:
            result[order, j] = distribute_sorted(values, sorted_target)
        else:
            result[order, j] = _distribute_by_percentile(values, sorted_target)
    return result


def distribute_sorted(sorted_values: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return the target values for an ascending column of the same length, ties averaged.

    ``sorted_values`` and ``target`` have shape ``(rows,)``; the result is in the same (sorted)
    order. A tie group spanning sorted positions ``i..j`` (0-based) has average rank
    ``(i + j + 2) / 2``; preprocessCore gives it ``target[(i + j) / 2]`` when that is whole, else
    the mean of ``target[(i + j - 1) / 2]`` and the next value.
    """
    n = sorted_values.size
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_group[1:])
    if new_group.all():
        return target.copy()
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n) - 1
    middle = starts + ends
    low = middle // 2
    odd = (middle % 2).astype(bool)
    group_values = target[low].copy()
    group_values[odd] = 0.5 * (target[low[odd]] + target[low[odd] + 1])
    return np.repeat(group_values, ends - starts + 1)


def _distribute_by_percentile(
    sorted_values: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Map sorted observed values to target quantiles by their tie-averaged rank."""
    n = sorted_values.size
    if n == 0:
        return sorted_values.copy()
    ranks = _average_ranks(sorted_values)
    percentile = (ranks - 1.0) / float(n - 1) if n > 1 else np.zeros(n)
    return _quantile_at(target, 1.0 + (target.size - 1.0) * percentile)


def _average_ranks(sorted_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks of an ascending vector with ties averaged (R's ``rank``)."""
    n = sorted_values.size
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n) - 1
    return np.repeat((starts + ends + 2) / 2.0, ends - starts + 1)


def _interpolate(sorted_values: NDArray[np.float64], length: int) -> NDArray[np.float64]:
    """Quantiles of ``sorted_values`` at ``length`` evenly spaced probabilities (type 7)."""
    if length == 1:
        return sorted_values[:1].astype(np.float64)
    percentile = np.arange(length, dtype=np.float64) / float(length - 1)
    return _quantile_at(sorted_values, 1.0 + (sorted_values.size - 1.0) * percentile)


def _quantile_at(sorted_values: NDArray[np.float64], position: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linear interpolation at 1-based positions, with preprocessCore's 4-epsilon snapping."""
    floor = np.floor(position + _EPS4)
    fraction = position - floor
    fraction[np.abs(fraction) <= _EPS4] = 0.0
    index = np.clip(floor.astype(np.int64), 1, sorted_values.size)
    lower = sorted_values[index - 1]
    upper = sorted_values[np.minimum(index, sorted_values.size - 1)]
    return np.where(fraction == 0.0, lower, (1.0 - fraction) * lower + fraction * upper)


def _as_matrix(matrix: ArrayLike) -> NDArray[np.float64]:
    data = np.asarray(matrix, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        msg = f"expected a non-empty 2-D matrix (rows x arrays), found shape {data.shape}"
        raise InputError(msg)
    return data
