"""Helpers for submitter-processed tables: numbers, identifier column, value scale, log2.

Submitter tables (a GEO sample's ``ID_REF``/``VALUE`` table, a series matrix, an ArrayExpress data
matrix) come with unknown conventions. These functions make each guess explicit and countable:
``parse_numeric_column`` reports unparseable cells instead of zeroing them, ``detect_id_column``
finds the column holding platform probe ids (or says by how much it failed), ``detect_value_scale``
and ``to_log2`` put values on the log2 scale with counts of what could not be logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from genemill.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BadCell",
    "IdColumnMatch",
    "Log2Values",
    "NumericColumn",
    "ValueScale",
    "detect_id_column",
    "detect_value_scale",
    "parse_numeric_column",
    "to_log2",
]

NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})


class ValueScale(StrEnum):
    """The scale of a table of expression values."""

    LOG2 = "log2"
    LINEAR = "linear"


class BadCell(NamedTuple):
    """A cell that is neither a number nor a null token."""

    row_id: str
    text: str


@dataclass(frozen=True, eq=False)
class NumericColumn:
    """``values`` (n,) float64 with NaN for null and bad cells; ``bad_cells`` lists the bad ones;
    ``n_null`` counts null tokens (``""``, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, any case)."""

    values: np.ndarray
    bad_cells: tuple[BadCell, ...]
    n_null: int


def parse_numeric_column(
    values: Sequence[object] | np.ndarray | pd.Series, *, row_ids: Sequence[object] | None = None
) -> NumericColumn:
    """Parse a column of text cells as float64, reporting rather than zeroing what is not a number.

    Non-finite numbers (``inf``) and text such as ``"1,234"`` or ``"12.5a"`` are bad cells; they
    become NaN and are listed with their row id (``row_ids``, else the 0-based position).
    """
    cells = pd.Series(np.asarray(values, dtype=object))
    ids = np.arange(len(cells)).astype(str) if row_ids is None else np.asarray(row_ids).astype(str)
    if len(ids) != len(cells):
        msg = f"parse_numeric_column: {len(ids)} row ids for {len(cells)} values"
        raise InputError(msg)
    text = cells.where(cells.notna(), "").astype(str).str.strip()
    null = text.str.lower().isin(NULL_TOKENS).to_numpy()
    numbers = pd.to_numeric(text.where(~null, "nan"), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~null & ~np.isfinite(numbers)
    numbers[bad] = np.nan
    bad_cells = tuple(BadCell(row_id, raw) for row_id, raw in zip(ids[bad], text[bad], strict=True))
    return NumericColumn(values=numbers, bad_cells=bad_cells, n_null=int(null.sum()))


@dataclass(frozen=True)
class IdColumnMatch:
    """The column of a submitter table holding platform ids, and the share of rows it matches."""

    column: str
    overlap: float


def detect_id_column(
    table: pd.DataFrame,
    known_ids: Sequence[str] | np.ndarray | set[str],
    *,
    min_overlap: float = 0.5,
    sample: str = "table",
    platform: str = "platform ids",
) -> IdColumnMatch:
    """Pick the column of ``table`` whose values are platform probe ids for the most rows.

    Overlap = rows whose stripped value is in ``known_ids`` / all rows. Raises ``InputError`` naming
    the best column and its overlap when it is below ``min_overlap``.
    """
    if table.shape[0] == 0 or table.shape[1] == 0:
        msg = f"{sample}: empty table ({table.shape[0]} rows, {table.shape[1]} columns), no identifier column"
        raise InputError(msg)
    known = pd.Index(pd.unique(np.asarray(list(known_ids), dtype=object).astype(str)))
    overlaps = {
        str(name): float(table[name].astype(str).str.strip().isin(known).mean()) for name in table.columns
    }
    best = max(overlaps, key=lambda name: overlaps[name])
    if overlaps[best] < min_overlap:
        msg = (
            f"{sample}: best identifier overlap {overlaps[best]:.1%} (column {best} vs {platform}) "
            f"is below {min_overlap:.0%}"
        )
        raise InputError(msg)
    return IdColumnMatch(column=best, overlap=overlaps[best])


def detect_value_scale(values: np.ndarray | pd.DataFrame | pd.Series) -> ValueScale:
    """Say whether expression values are already log2 or still linear.

    Rule, on the quantiles q1, q25, q75, q99 of the finite values: *linear* when q99 > 100 (log2
    intensities stay below ~20), or q99 − q1 > 50 with q25 > 0 (a wide, positive range), or
    0 < q25 < 1 < q75 < 2 (linear ratios around 1); else *log2*. This is GEO2R's log test with its
    full range (max − min) narrowed to q99 − q1, so that neither one outlier (a log2 table with one
    stray ``1000``) nor refine.bio's ``max > 100`` can flip the call. Negative values alone decide
    nothing: log ratios are negative, and so are background-subtracted linear intensities (which
    ``to_log2`` then counts).
    """
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        msg = "detect_value_scale: no finite values to judge the scale from"
        raise InputError(msg)
    q1, q25, q75, q99 = np.quantile(finite, [0.01, 0.25, 0.75, 0.99])
    linear = q99 > 100 or (q99 - q1 > 50 and q25 > 0) or (0 < q25 < 1 < q75 < 2)
    return ValueScale.LINEAR if linear else ValueScale.LOG2


@dataclass(frozen=True, eq=False)
class Log2Values:
    """``values`` log2-transformed (input shape), with counts of the cells that had no logarithm."""

    values: np.ndarray
    n_zero: int
    n_negative: int
    n_missing: int  # NaN in the input


def to_log2(values: np.ndarray | pd.DataFrame, *, floor: float | None = None) -> Log2Values:
    """Return log2 of linear values; zeros and negatives become NaN, or ``floor`` when given.

    NaN is the default because a floor invents a value (and its choice changes downstream
    statistics); the counts let the caller record or reject the sample. ``floor`` must be > 0.
    """
    if floor is not None and not floor > 0:
        msg = f"to_log2: floor must be > 0, found {floor}"
        raise InputError(msg)
    linear = np.array(values, dtype=np.float64)
    missing = np.isnan(linear)
    zero, negative = linear == 0, linear < 0
    non_positive = zero | negative
    linear[non_positive] = np.nan if floor is None else floor
    with np.errstate(invalid="ignore"):
        logged = np.log2(linear)
    return Log2Values(
        values=logged,
        n_zero=int(zero.sum()),
        n_negative=int(negative.sum()),
        n_missing=int(missing.sum()),
    )
