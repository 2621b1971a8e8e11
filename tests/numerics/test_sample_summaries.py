"""Box statistics and the sample PCA behind the experiment page's plots."""

from __future__ import annotations

import numpy as np

from genemill.numerics.sample_summaries import box_stats, principal_components


def test_box_stats_uses_type7_quartiles_and_tukey_whiskers() -> None:
    column = np.array([*range(1, 11), 100.0, np.nan])
    # quartiles of 1..10,100 (type 7): 3.5, 6, 8.5; IQR 5 -> fences -4 and 16: 100 is an outlier.
    assert box_stats(column) == (1.0, 3.5, 6.0, 8.5, 10.0)
    assert box_stats(np.array([np.nan, np.inf])) is None


def test_principal_components_match_the_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(8.0, 1.0, size=(200, 6))
    values[:40, 3:] += 3.0  # a group effect so PC1 is well separated
    values[5, 2] = np.nan  # an incomplete gene is left out
    scores, fractions = principal_components(values, max_genes=1000)

    complete = np.delete(values, 5, axis=0)
    centred = (complete - complete.mean(axis=1, keepdims=True)).T
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(eigenvalues)[::-1][:2]
    expected = centred @ eigenvectors[:, order]
    for k in range(2):  # components are defined up to their sign
        sign = np.sign(expected[0, k]) * np.sign(scores[0, k])
        np.testing.assert_allclose(scores[:, k], sign * expected[:, k], atol=1e-9)
    np.testing.assert_allclose(fractions, eigenvalues[order] / eigenvalues.sum(), rtol=1e-9)


def test_principal_components_need_three_samples_and_ten_complete_genes() -> None:
    assert principal_components(np.ones((50, 2))) is None
    assert principal_components(np.full((9, 5), 1.0)) is None
