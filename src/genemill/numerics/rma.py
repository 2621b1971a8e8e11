"""RMA (Robust Multi-array Average) expression exactly as Bioconductor ``affy::rma`` computes it.

Input is raw PM intensities, shape ``(probes, arrays)`` (linear scale), with the probes of each
probe set contiguous and delimited by ``offsets`` (shape ``(probe_sets + 1,)``, CSR style: probe
set ``k`` owns rows ``offsets[k]:offsets[k + 1]``). Output is log2 expression, shape
``(probe_sets, arrays)``. The three steps follow ``preprocessCore`` 1.60 (``rma_background4.c``,
``weightedkerneldensity.c``, ``qnorm.c``, ``medianpolish.c``), which ``affy::rma`` and
``affy::justRMA`` call:

1. **Background** (per array; ``rma.background.correct``). The mode ``mu`` of the PM values is the
   arg-max of a kernel density estimate: **Epanechnikov** kernel, bandwidth ``bw.nrd0``
   (``0.9 min(sd, IQR/1.34) n^-1/5``), 16384 grid points over ``[min - 7 bw, max + 7 bw]``,
   linear binning, FFT convolution, linearly interpolated onto ``[min - 3 bw, max + 3 bw]``. Then
   ``mu`` is re-estimated as the mode of the values below the first mode; ``sigma`` is
   ``sqrt(sum((x - mu)^2 for x < mu) / (n_below - 1)) * sqrt(2)``; ``alpha`` is the reciprocal of
   the mode of ``x - mu`` for ``x > mu``. Corrected values are ``a + sigma phi(a/sigma) / Phi(a/sigma)``
   with ``a = x - mu - alpha sigma^2``.
2. **Quantile normalization** across arrays (:mod:`genemill.numerics.quantile`, ties averaged).
3. **Median polish** of ``log2`` values per probe set (probes x arrays): at most 10 sweeps of
   row medians then column medians, stopping when ``|1 - old/new| < 0.01`` for the sum of absolute
   residuals; expression is ``overall + column effect``.

Speed and memory: each array's sorted values serve the density estimates (the values below /
above the mode are a prefix / suffix), the background correction (monotone, so order is kept) and
the quantile ranks, all computed once per distinct value; the matrix is processed in place in
two passes (target, then ranks). Float32 input (binary CELs) is kept at 4 bytes per probe: the
second pass replaces each value by the number of its distinct value, and median polish reads
log2 values through per-array tables. Median polish runs on ``(sets, probes, arrays)`` stacks of
probe sets of equal size (:mod:`genemill.numerics._polish`); arrays and stacks are spread over
threads (NumPy releases the GIL in sorting and arithmetic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from genemill.errors import InputError
from genemill.numerics import _polish
from genemill.numerics._rma_background import (
    adjust,
    argsort_single,
    argsort_values,
    parameters,
    runs,
)
from genemill.numerics.quantile import distribute_sorted

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["median_polish", "rma", "rma_background_correct"]

Params = tuple[float, float, float]


def rma(
    pm: ArrayLike, offsets: ArrayLike, *, workers: int = 2, overwrite_input: bool = False
) -> NDArray[np.float64]:
    """Return log2 RMA expression ``(probe_sets, arrays)`` from raw PM intensities ``(probes, arrays)``.

    Background correction, quantile normalization and median polish as ``affy::rma`` (defaults).
    A float32 ``pm`` (binary CELs) is processed at 4 bytes per value; float64 at 8. With
    ``overwrite_input`` a Fortran-ordered ``pm`` of either type is used as working memory.
    """
    single = isinstance(pm, np.ndarray) and pm.dtype == np.float32
    data = _working_copy(pm, dtype=np.float32 if single else np.float64, overwrite_input=overwrite_input)
    bounds = _check_offsets(offsets, data.shape[0])
    params, target, n_runs, distinct = _target(data, workers=workers, keep_values=single)
    if single and 2 * sum(n_runs) < min(data.size, 2**31):  # tables smaller than float64 storage
        table = _rank_in_place(data, params, target, n_runs=n_runs, distinct=distinct, workers=workers)
        codes = data.view(np.int32)
        return _polish.summarize(lambda rows: table[codes[rows]], bounds, data.shape[1], workers=workers)
    double: NDArray[np.float64] = data.astype(np.float64, order="F", copy=False)
    del data
    _normalize_in_place(double, params, target, workers=workers)
    np.log2(double, out=double)
    return _polish.summarize(lambda rows: double[rows], bounds, double.shape[1], workers=workers)


def rma_background_correct(pm: ArrayLike, *, workers: int = 2) -> NDArray[np.float64]:
    """Return RMA background-corrected intensities, same shape as ``pm`` ``(probes, arrays)``.

    Equals ``preprocessCore::rma.background.correct(pm)``.
    """
    data = _working_copy(pm, dtype=np.float64, overwrite_input=False)

    def correct(j: int) -> None:
        ordered = np.sort(data[:, j])
        data[:, j] = adjust(data[:, j], parameters(ordered, *runs(ordered)))

    _polish.map_threads(correct, range(data.shape[1]), workers)
    return data


def median_polish(log2_pm: ArrayLike, offsets: ArrayLike, *, workers: int = 2) -> NDArray[np.float64]:
    """Summarize each probe set by Tukey median polish: ``overall + array effect``, log2.

    ``log2_pm`` is ``(probes, arrays)`` already on the log2 scale; returns ``(probe_sets, arrays)``
    (NaN for a probe set without probes). Equals the ``rma`` summary of ``preprocessCore``
    (``subColSummarizeMedianpolishLog`` on the linear scale, or ``stats::medpolish`` defaults).
    """
    data = np.asarray(log2_pm, dtype=np.float64)
    if data.ndim != 2:
        msg = f"expected a 2-D matrix (probes x arrays), found shape {data.shape}"
        raise InputError(msg)
    bounds = _check_offsets(offsets, data.shape[0])
    return _polish.summarize(lambda rows: data[rows], bounds, data.shape[1], workers=workers)


# --------------------------------------------------------------------------- the two passes


def _target(
    data: NDArray[np.floating], *, workers: int, keep_values: bool = False
) -> tuple[list[Params], NDArray[np.float64], list[int], list[NDArray[np.float32]]]:
    """First pass: per-array background parameters, the quantile target and distinct-value counts.

    The corrected sorted columns are summed in column order, so the target does not depend on
    thread timing. With ``keep_values`` (float32 input) each array's distinct values are kept
    (as float32, exact) for the second pass.
    """
    n_arrays = data.shape[1]
    params: list[Params] = [(0.0, 0.0, 0.0)] * n_arrays
    n_runs = [0] * n_arrays
    distinct: list[NDArray[np.float32]] = [np.empty(0, np.float32)] * (n_arrays if keep_values else 0)

    def first_pass(j: int) -> NDArray[np.float64]:
        ordered = np.sort(data[:, j]).astype(np.float64, copy=False)
        values, counts = runs(ordered)
        params[j], n_runs[j] = parameters(ordered, values, counts), values.size
        if keep_values:
            distinct[j] = values.astype(np.float32)
        corrected = np.repeat(adjust(values, params[j]), counts)
        if np.any(corrected[1:] < corrected[:-1]):  # monotone, unless rounding broke it
            corrected.sort()
        return corrected

    total = np.zeros(data.shape[0])
    for column in _polish.imap_threads(first_pass, range(n_arrays), workers):
        total += column
    return params, total / float(n_arrays), n_runs, distinct


def _sorted_with_targets(
    index: NDArray[np.int64], ordered: NDArray[np.float64], params: Params, target: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.intp]]:
    """Return positions, normalized values (sorted order) and the distinct-value number of each."""
    values, counts = runs(ordered)
    corrected = np.repeat(adjust(values, params), counts)
    run_of = np.repeat(np.arange(values.size), counts)
    if np.any(corrected[1:] < corrected[:-1]):  # rounding broke monotonicity: sort again
        again = np.argsort(corrected, kind="stable")
        index, corrected, run_of = index[again], corrected[again], run_of[again]
    return index, distribute_sorted(corrected, target), run_of


def _normalize_in_place(
    data: NDArray[np.float64], params: list[Params], target: NDArray[np.float64], *, workers: int
) -> None:
    """Second pass (float64): write each value's background-corrected quantile back in place."""

    def second_pass(j: int) -> None:
        index, normalized, _ = _sorted_with_targets(*argsort_values(data[:, j]), params[j], target)
        column = data[:, j]
        column[index] = normalized

    _polish.map_threads(second_pass, range(data.shape[1]), workers)


def _rank_in_place(
    data: NDArray[np.float32],
    params: list[Params],
    target: NDArray[np.float64],
    *,
    n_runs: list[int],
    distinct: list[NDArray[np.float32]],
    workers: int,
) -> NDArray[np.float64]:
    """Second pass (float32): replace each value by the number of its distinct value.

    Numbers run on across arrays (array ``j`` owns ``n_runs[j]`` of them), so one log2 table,
    returned, serves the whole matrix: ``table[codes]`` is the normalized log2 matrix. Scanner
    intensities on a 0.1 grid find their distinct value through a lookup table
    (:func:`_grid_codes`, checked exactly); other arrays are sorted again.
    """
    codes = data.view(np.int32)
    bases = np.concatenate([[0], np.cumsum(n_runs)])
    table = np.empty(int(bases[-1]))

    def second_pass(j: int) -> None:
        if distinct and _second_pass_by_grid(j):
            return
        index, normalized, run_of = _sorted_with_targets(*argsort_single(data[:, j]), params[j], target)
        per_run = np.empty(n_runs[j])
        per_run[run_of] = normalized  # equal within a run
        table[bases[j] : bases[j + 1]] = np.log2(per_run)
        column = codes[:, j]
        column[index] = run_of + bases[j]

    def _second_pass_by_grid(j: int) -> bool:
        values = distinct[j].astype(np.float64)
        run_of = _grid_codes(data[:, j], values)
        if run_of is None:
            return False
        counts = np.bincount(run_of, minlength=values.size)
        corrected = np.repeat(adjust(values, params[j]), counts)
        if np.any(corrected[1:] < corrected[:-1]):  # rounding broke monotonicity: the sorting path
            return False
        normalized = distribute_sorted(corrected, target)
        table[bases[j] : bases[j + 1]] = np.log2(normalized[np.cumsum(counts) - 1])  # equal within a run
        codes[:, j] = run_of + bases[j]
        return True

    _polish.map_threads(second_pass, range(data.shape[1]), workers)
    return table


_GRID = 10.0  # scanners write intensities with one decimal (CEL text v3; v4/Calvin as float32)
_GRID_MAX_KEYS = 1 << 21


def _grid_codes(column: NDArray[np.float32], values: NDArray[np.float64]) -> NDArray[np.int32] | None:
    """The index in ``values`` (ascending distinct values of ``column``) of each value, or None.

    Keys ``rint(value * 10)`` index a lookup table; that is O(n) where a sort is O(n log n). Used
    only when the keys of the distinct values are distinct and in range, and the result is
    checked exactly (``values[codes] == column``), so any other grid falls back to sorting.
    """
    if values.size == 0 or not (values[0] >= 0 and values[-1] * _GRID < _GRID_MAX_KEYS):  # NaN: False
        return None
    keys = np.rint(values * _GRID).astype(np.int64)
    if keys.size > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        return None
    lookup = np.zeros(int(keys[-1]) + 1, dtype=np.int32)
    lookup[keys] = np.arange(values.size, dtype=np.int32)
    scaled = column.astype(np.float64)
    scaled *= _GRID
    np.rint(scaled, out=scaled)
    run_of = lookup[scaled.astype(np.int64)]
    if not np.array_equal(values[run_of], column):
        return None
    return run_of


# --------------------------------------------------------------------------- helpers


def _working_copy(pm: ArrayLike, *, dtype: type[np.floating], overwrite_input: bool) -> NDArray[Any]:
    if overwrite_input and isinstance(pm, np.ndarray) and pm.dtype == dtype and pm.flags.f_contiguous:
        data = pm
    else:
        data = np.array(pm, dtype=dtype, order="F")
    if data.ndim != 2 or data.shape[0] < 2 or data.shape[1] == 0:
        msg = f"expected PM intensities as (probes, arrays) with at least 2 probes, found shape {data.shape}"
        raise InputError(msg)
    if not np.isfinite(data).all() or (data <= 0).any():
        msg = "PM intensities must be finite and positive (RMA takes log2)"
        raise InputError(msg)
    return data


def _check_offsets(offsets: ArrayLike, n_probes: int) -> NDArray[np.int64]:
    bounds = np.asarray(offsets, dtype=np.int64)
    if (
        bounds.ndim != 1
        or bounds.size < 1
        or bounds[0] != 0
        or bounds[-1] != n_probes
        or np.any(np.diff(bounds) < 0)
    ):
        msg = f"offsets must rise from 0 to the number of probes ({n_probes}), found {bounds.tolist()[:5]}..."
        raise InputError(msg)
    return bounds
