"""Matrix arithmetic of dataset building: quantile normalization to a target, KS check, gene scaling.

All functions take genes × samples arrays (rows = genes, columns = samples; float32, Fortran order
in the builder), NaN = not measured, and work one column (or block of rows) at a time, so a
20,000 × 1,000 matrix never needs a float64 copy.

``quantile_normalize_columns`` gives exactly what ``genemill.numerics.quantile.quantile_normalize_to_target``
(= ``preprocessCore::normalize.quantiles.use.target``) gives, fast: a column's normalized values
depend only on its tie-averaged ranks, so the values of ranks 1…m and of the m - 1 half ranks are
computed once per observed count ``m`` (by the numerics function itself, on synthetic columns; see
``_RankTable``) and looked up through the column's float32 argsort and tie groups. One deliberate
difference: a column with a single observed value gets the target's maximum, which is what
preprocessCore 1.60.2 returns on x86-64 (the numerics module gives the minimum).

``determine_target`` is ``numerics.quantile.quantile_target``
(= ``preprocessCore::normalize.quantiles.determine.target``) computed one column at a time.

The KS check follows refine.bio's smasher: after normalization, for up to 100 random pairs of columns
(fixed seed, so rebuilding gives the same answer) compare the above-median values of the two columns
with ``scipy.stats.ks_2samp`` (exact p-value up to 1,000 values per side, asymptotic above, where
scipy's exact method gives up anyway); a statistic above 0.001 or a p-value below 0.8 is a warning,
never an error. ``scale_rows`` is refine.bio's row-wise scaling (scikit-learn scalers fitted per gene over the
samples, which ignore NaN and use a scale of 1 when a gene is constant).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from genemill.numerics.quantile import quantile_normalize_to_target, quantile_target

__all__ = [
    "KsResult",
    "ScaleMethod",
    "determine_target",
    "ks_check",
    "quantile_normalize_columns",
    "scale_rows",
]

FloatArray = npt.NDArray[np.floating[Any]]
KS_MAX_STATISTIC = 0.001
KS_MIN_PVALUE = 0.8
_EXACT_UP_TO = 1000


class _RankTable:
    """Normalized values by rank for columns with ``m`` observed values, computed once per ``m``.

    ``integer[k - 1]`` is the value of rank ``k`` and ``half[k - 1]`` the value of a tie group with
    average rank ``k + 0.5`` — taken from ``numerics.quantile.quantile_normalize_to_target`` applied
    to synthetic columns 0, 1, 2, … (integer ranks) and 0, 0, 1, 1, … / 0, 1, 1, 2, 2, … (every
    half rank), padded with NaN to the matrix's row count so that the same branch is taken.
    """

    def __init__(self, target: npt.NDArray[np.float64], rows: int) -> None:
        self.target = target
        self.rows = rows
        self._cache: dict[int, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = {}

    def _normalized(self, synthetic: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        column = np.full((self.rows, 1), np.nan)
        column[: synthetic.size, 0] = synthetic
        return quantile_normalize_to_target(column, self.target)[: synthetic.size, 0]

    def tables(self, observed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        if observed not in self._cache:
            if observed == 1:
                integer, half = self.target[-1:], np.empty(0)
            else:
                positions = np.arange(observed)
                integer = self._normalized(positions.astype(np.float64))
                pairs_odd = self._normalized((positions // 2).astype(np.float64))
                pairs_even = self._normalized(((positions + 1) // 2).astype(np.float64))
                half = np.where(positions[:-1] % 2 == 0, pairs_odd[:-1], pairs_even[:-1])
            self._cache[observed] = (integer.astype(np.float32), half.astype(np.float32))
        return self._cache[observed]


def _column_values(ordered: npt.NDArray[np.float32], table: _RankTable) -> npt.NDArray[np.float32]:
    """Normalized values of an ascending column (no NaN), ties given their average rank's value."""
    integer, half = table.tables(ordered.size)
    change = ordered[1:] != ordered[:-1]
    if change.all():
        return integer
    starts = np.flatnonzero(np.concatenate([[True], change]))
    ends = np.append(starts[1:], ordered.size) - 1
    twice_rank = np.repeat(starts + ends + 2, ends - starts + 1)
    index = twice_rank // 2 - 1
    values: npt.NDArray[np.float32] = np.where(
        twice_rank % 2 == 0, integer[index], half[np.minimum(index, half.size - 1)]
    )
    return values


def quantile_normalize_columns(
    matrix: FloatArray, target: FloatArray, *, out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """Normalize each column of ``matrix`` (genes × samples) to the distribution ``target``.

    ``target``: values in any order (NaN dropped). Returns float32, NaN where ``matrix`` is NaN;
    ``out`` (float32, same shape; may be ``matrix`` itself) receives the result in place.
    """
    reference = np.sort(np.asarray(target, dtype=np.float64).ravel())
    reference = reference[~np.isnan(reference)]
    if reference.size == 0:
        msg = "quantile normalization target has no values"
        raise ValueError(msg)
    rows = matrix.shape[0]
    if out is None:
        out = np.empty(matrix.shape, dtype=np.float32, order="F")
    table = _RankTable(reference, rows)
    for j in range(matrix.shape[1]):
        column = np.asarray(matrix[:, j], dtype=np.float32)
        missing = np.isnan(column)
        if missing.any():
            observed = np.flatnonzero(~missing)
            order = observed[np.argsort(column[observed])]
        else:
            order = np.argsort(column)
        if order.size < rows:
            out[:, j] = np.nan
        if order.size:
            out[order, j] = _column_values(column[order], table)
    return out


def determine_target(matrix: FloatArray) -> npt.NDArray[np.float64]:
    """Mean of the sorted columns of ``matrix`` (genes × samples, no empty column); length = rows.

    Bit-identical to ``numerics.quantile.quantile_target(matrix)`` (the same extended-precision sum
    in the same order) but one column at a time, without a float64 copy of the matrix.
    """
    rows, cols = matrix.shape
    total = np.zeros(rows, dtype=np.longdouble)
    for j in range(cols):
        column = np.asarray(matrix[:, j], dtype=np.float64)
        if np.isnan(column).any():
            total += quantile_target(column[:, None])  # one column: exactly its interpolated values
        else:
            total += np.sort(column)
    return total.astype(np.float64) / float(cols)


@dataclass(frozen=True)
class KsResult:
    """refine.bio's post-normalization KS check: worst pair's statistic and p-value."""

    statistic: float | None
    pvalue: float | None
    n_pairs: int
    warning: bool


def ks_check(matrix: FloatArray, *, max_pairs: int = 100, seed: int = 0) -> KsResult:
    """Two-sample KS tests on above-median values of random column pairs of ``matrix``."""
    from scipy import stats  # imported here: loading scipy.stats costs ~75 MB of resident memory

    cols = matrix.shape[1]
    if cols < 2:
        return KsResult(statistic=None, pvalue=None, n_pairs=0, warning=False)
    rng = np.random.default_rng(seed)
    worst_stat, worst_p, n_pairs = 0.0, 1.0, 0
    for _ in range(max_pairs):
        left, right = rng.choice(cols, size=2, replace=False)
        a, b = _upper_half(matrix[:, left]), _upper_half(matrix[:, right])
        if a.size == 0 or b.size == 0:
            continue
        method = "asymp" if max(a.size, b.size) > _EXACT_UP_TO else "exact"
        result = stats.ks_2samp(a, b, method=method)
        worst_stat = max(worst_stat, float(result.statistic))
        worst_p = min(worst_p, float(result.pvalue))
        n_pairs += 1
    if n_pairs == 0:
        return KsResult(statistic=None, pvalue=None, n_pairs=0, warning=False)
    warn = worst_stat > KS_MAX_STATISTIC or worst_p < KS_MIN_PVALUE
    return KsResult(statistic=worst_stat, pvalue=worst_p, n_pairs=n_pairs, warning=warn)


def _upper_half(column: FloatArray) -> FloatArray:
    values = np.asarray(column, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return values
    return values[values > np.median(values)]


class ScaleMethod(enum.StrEnum):
    """Row-wise scalers (scikit-learn names in brackets)."""

    MINMAX = "MINMAX"  # MinMaxScaler, feature range [0, 1]
    ZSCORE = "ZSCORE"  # StandardScaler, population standard deviation
    ROBUST = "ROBUST"  # RobustScaler, median and interquartile range (25th-75th percentile)


def scale_rows(
    matrix: FloatArray,
    method: ScaleMethod,
    *,
    out: npt.NDArray[np.float32] | None = None,
    block: int = 4096,
) -> npt.NDArray[np.float32]:
    """Scale every row (gene) of ``matrix`` across its columns, ignoring NaN; all-NaN rows stay NaN.

    ``out`` (float32, same shape; may be ``matrix`` itself) receives the result in place.
    """
    if out is None:
        out = np.empty(matrix.shape, dtype=np.float32, order="F")
    for start in range(0, matrix.shape[0], block):
        rows = np.asarray(matrix[start : start + block], dtype=np.float64)
        out[start : start + block] = _scale_block(rows, method)
    return out


def _scale_block(rows: FloatArray, method: ScaleMethod) -> FloatArray:
    result = np.full_like(rows, np.nan)
    present = ~np.all(np.isnan(rows), axis=1)
    values = rows[present]
    if method == ScaleMethod.MINMAX:
        center = np.nanmin(values, axis=1, keepdims=True)
        spread = np.nanmax(values, axis=1, keepdims=True) - center
    elif method == ScaleMethod.ZSCORE:
        center = np.nanmean(values, axis=1, keepdims=True)
        spread = np.nanstd(values, axis=1, keepdims=True)
    else:
        center = np.nanmedian(values, axis=1, keepdims=True)
        q75, q25 = np.nanpercentile(values, [75, 25], axis=1, keepdims=True)
        spread = q75 - q25
    spread[spread == 0.0] = 1.0
    result[present] = (values - center) / spread
    return result
