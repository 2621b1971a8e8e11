"""RMA for single arrays against a stored reference (the frozen-RMA idea, McCall et al. 2010).

Experiment-wide RMA (:mod:`genemill.numerics.rma`) normalizes arrays together, so adding one array
changes every value. Here a reference is fitted once from a set of arrays of one platform and
new arrays are processed one at a time against it:

* **Fit** (:func:`fit_rma_reference`), from raw PM intensities ``(probes, arrays)``: RMA background
  correction per array; the quantile target (mean of the sorted corrected columns, as
  ``preprocessCore``); quantile normalization to it; ``log2``; Tukey median polish per probe set
  exactly as :func:`genemill.numerics.rma.median_polish` (at most 10 sweeps, ``eps`` 0.01). The
  reference keeps the target ``(probes,)`` and each probe's row effect ``(probes,)`` at convergence.
* **Apply** (:func:`rma_with_reference`), to raw PM ``(probes, arrays)``, each array on its own:
  background correction; quantile normalization onto the stored target (ties averaged as
  ``preprocessCore``); ``log2``; each probe set's value is the median over its probes of
  ``log2 pm - probe effect`` (log2). No other array influences the result.

On the arrays the reference was fitted from, this reproduces experiment-wide RMA up to rounding:
the target is the same, and after median polish's final column sweep each array's residuals have
median zero within each probe set, so ``median_i(y_ij - row_i) = overall + column_j`` (exact for
an odd probe count, within one rounding of the mean of the two middle residuals for an even one).
For any other array the two methods differ: RMA would move the target and re-fit the effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from genemill.errors import InputError
from genemill.numerics import _polish
from genemill.numerics.quantile import distribute_sorted, quantile_target
from genemill.numerics.rma import rma_background_correct

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["RmaReferenceModel", "fit_rma_reference", "rma_with_reference"]


@dataclass(frozen=True, eq=False)
class RmaReferenceModel:
    """What single-array RMA needs from the reference arrays, all float64.

    ``target``: ``(probes,)`` ascending quantile target (background-corrected linear intensities);
    ``probe_effects``: ``(probes,)`` median-polish row effects (log2), probes in PM order;
    ``offsets``: ``(probe_sets + 1,)`` probe-set bounds the effects belong to.
    """

    target: NDArray[np.float64]
    probe_effects: NDArray[np.float64]
    offsets: NDArray[np.int64]


def fit_rma_reference(pm: ArrayLike, offsets: ArrayLike, *, workers: int = 2) -> RmaReferenceModel:
    """Fit the quantile target and median-polish probe effects from raw PM ``(probes, arrays)``."""
    corrected = rma_background_correct(pm, workers=workers)
    bounds = _bounds(offsets, corrected.shape[0])
    target = quantile_target(corrected)
    log2_pm = np.log2(_normalize_columns(corrected, target, workers=workers), out=corrected)
    effects = np.zeros(corrected.shape[0])

    def run(job: tuple[int, NDArray[np.int64]]) -> None:
        size, members = job
        rows = bounds[members][:, None] + np.arange(size)
        effects[rows] = _row_effects(log2_pm[rows])

    _polish.map_threads(run, _polish.polish_jobs(bounds, log2_pm.shape[1]), workers)
    return RmaReferenceModel(target=target, probe_effects=effects, offsets=bounds)


def rma_with_reference(pm: ArrayLike, model: RmaReferenceModel, *, workers: int = 2) -> NDArray[np.float64]:
    """Return log2 expression ``(probe_sets, arrays)``, each array processed alone against ``model``.

    ``pm`` is raw PM intensities ``(probes, arrays)`` in the probe order the model was fitted on;
    probe sets without probes are NaN.
    """
    corrected = rma_background_correct(pm, workers=workers)
    if corrected.shape[0] != model.target.size:
        msg = (
            f"the arrays have {corrected.shape[0]} PM probes but the RMA reference has "
            f"{model.target.size}: the reference belongs to another platform"
        )
        raise InputError(msg)
    residual = np.log2(_normalize_columns(corrected, model.target, workers=workers), out=corrected)
    residual -= model.probe_effects[:, None]
    bounds = model.offsets
    result = np.full((bounds.size - 1, residual.shape[1]), np.nan)

    def run(job: tuple[int, NDArray[np.int64]]) -> None:
        size, members = job
        rows = bounds[members][:, None] + np.arange(size)
        result[members] = _polish.median(residual[rows], axis=1)

    _polish.map_threads(run, _polish.polish_jobs(bounds, residual.shape[1]), workers)
    return result


def _normalize_columns(
    data: NDArray[np.float64], target: NDArray[np.float64], *, workers: int
) -> NDArray[np.float64]:
    """Map every column onto ``target`` (same length), ties averaged, in place; returns ``data``."""

    def normalize(j: int) -> None:
        column = data[:, j]
        order = np.argsort(column, kind="stable")
        column[order] = distribute_sorted(column[order], target)

    _polish.map_threads(normalize, range(data.shape[1]), workers)
    return data


def _row_effects(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median polish of a ``(sets, probes, arrays)`` stack; returns the row effects ``(sets, probes)``.

    The sweeps are those of :func:`genemill.numerics._polish.polish_stack`, operation for
    operation, so the fit matches experiment-wide RMA; each set's row effects are kept from the
    sweep at which it converged.
    """
    sets, probes, arrays = z.shape
    z = z.copy()
    r, c, t = np.zeros((sets, probes)), np.zeros((sets, arrays)), np.zeros(sets)
    out = np.empty((sets, probes))
    live, oldsum = np.ones(sets, dtype=bool), np.zeros(sets)
    scratch = np.empty_like(z)
    for sweep in range(1, _polish.MAX_ITER + 1):
        rdelta = _polish.median(z, axis=2, scratch=scratch)
        z -= rdelta[:, :, None]
        r += rdelta
        delta = _polish.median(c, axis=1)
        c -= delta[:, None]
        t += delta
        cdelta = _polish.median(z, axis=1, scratch=scratch)
        z -= cdelta[:, None, :]
        c += cdelta
        delta = _polish.median(r, axis=1)
        r -= delta[:, None]
        t += delta
        newsum = np.abs(z, out=scratch).reshape(sets, -1).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            done = live & ((newsum == 0.0) | (np.abs(1.0 - oldsum / newsum) < _polish.EPS))
        done |= live & (sweep == _polish.MAX_ITER)
        out[done] = r[done]
        live &= ~done
        if not live.any():
            break
        oldsum = newsum
    return out


def _bounds(offsets: ArrayLike, n_probes: int) -> NDArray[np.int64]:
    bounds = np.asarray(offsets, dtype=np.int64)
    if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != n_probes:
        msg = f"offsets must rise from 0 to the number of probes ({n_probes}), found {bounds.tolist()[:5]}..."
        raise InputError(msg)
    if np.any(np.diff(bounds) < 0):
        msg = "offsets must not decrease"
        raise InputError(msg)
    return bounds
