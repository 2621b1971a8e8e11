"""Per-sample summaries for plots: Tukey box statistics and a sample PCA.

Pure NumPy on a genes x samples float array on a log2 scale (NaN = gene not measured in that
sample), so the web layer only draws.

* Box statistics: 25th / 50th / 75th percentiles (NumPy's default linear interpolation, R's type 7)
  and whiskers at the most extreme values within 1.5 IQR of the box (Tukey).
* PCA: genes measured in every sample, the ``max_genes`` most variable of them, centred per gene;
  principal components from the SVD of the samples x genes matrix (no scaling), as
  ``prcomp(t(x))`` in R.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["MIN_PCA_GENES", "MIN_PCA_SAMPLES", "box_stats", "principal_components"]

MIN_PCA_SAMPLES = 3
MIN_PCA_GENES = 10


def box_stats(column: NDArray[np.float64]) -> tuple[float, float, float, float, float] | None:
    """(low whisker, q1, median, q3, high whisker) of the finite values, or None if there are none."""
    data = column[np.isfinite(column)]
    if data.size == 0:
        return None
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    iqr = q3 - q1
    low = float(data[data >= q1 - 1.5 * iqr].min())
    high = float(data[data <= q3 + 1.5 * iqr].max())
    return low, float(q1), float(median), float(q3), high


def principal_components(
    values: NDArray[np.float64], *, max_genes: int = 1000
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Sample scores on PC1 and PC2 (samples x 2) and their variance fractions, or None if too little data."""
    complete = values[np.all(np.isfinite(values), axis=1)]
    if complete.shape[0] < MIN_PCA_GENES or complete.shape[1] < MIN_PCA_SAMPLES:
        return None
    variances = complete.var(axis=1)
    keep = np.argsort(variances)[::-1][:max_genes]
    centred = (complete[keep] - complete[keep].mean(axis=1, keepdims=True)).T
    u, s, _vt = np.linalg.svd(centred, full_matrices=False)
    scores = u[:, :2] * s[:2]
    total = float((s**2).sum()) or 1.0
    return scores, (s[:2] ** 2) / total
