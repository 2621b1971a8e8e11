"""Quantile normalization equals preprocessCore (references from tests/scripts/affy_reference.R)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from genemill.errors import InputError
from genemill.numerics.quantile import quantile_normalize, quantile_normalize_to_target, quantile_target

REFERENCE = Path(__file__).parents[1] / "data" / "reference" / "affy"


def ref(name: str) -> np.ndarray:
    return np.genfromtxt(REFERENCE / name, delimiter="\t", missing_values="NA", filling_values=np.nan)


def assert_same(found: np.ndarray, expected: np.ndarray) -> None:
    assert found.shape == expected.shape
    assert np.array_equal(np.isnan(found), np.isnan(expected))
    assert np.nanmax(np.abs(found - expected)) <= 1e-10


def test_normalize_with_ties_equals_preprocesscore() -> None:
    assert_same(quantile_normalize(ref("quantile_x.tsv")), ref("quantile_x_normalized.tsv"))


def test_normalize_with_missing_values_equals_preprocesscore() -> None:
    assert_same(quantile_normalize(ref("quantile_y.tsv")), ref("quantile_y_normalized.tsv"))


def test_target_equals_determine_target() -> None:
    assert_same(quantile_target(ref("quantile_y.tsv")), ref("quantile_y_target.tsv"))
    assert_same(quantile_target(ref("quantile_x.tsv"), length=57), ref("quantile_x_target57.tsv"))


def test_use_target_of_other_length_equals_preprocesscore() -> None:
    found = quantile_normalize_to_target(ref("quantile_y.tsv"), ref("quantile_t57.tsv"))
    assert_same(found, ref("quantile_y_use_t57.tsv"))


def test_tied_pair_gets_mean_of_neighbouring_quantiles() -> None:
    matrix = np.array([[1.0, 5.0], [1.0, 6.0], [3.0, 7.0]])
    target = quantile_target(matrix)  # [3, 3.5, 5]
    assert target.tolist() == [3.0, 3.5, 5.0]
    assert quantile_normalize(matrix)[:, 0].tolist() == [3.25, 3.25, 5.0]


matrices = arrays(
    np.float64,
    st.tuples(st.integers(2, 30), st.integers(1, 5)),
    elements=st.floats(0, 1000, allow_nan=False).map(lambda v: round(v, 1)),
)


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_every_column_takes_the_target_distribution(matrix: np.ndarray) -> None:
    normalized = quantile_normalize(matrix)
    target = quantile_target(matrix)
    for j in range(matrix.shape[1]):
        column, original = normalized[:, j], matrix[:, j]
        order = np.argsort(original, kind="stable")
        assert np.all(np.diff(column[order]) >= -1e-9)  # ranks kept
        if np.unique(original).size == original.size:  # no ties: exactly the target
            assert np.allclose(np.sort(column), target, rtol=0, atol=1e-9)
    if all(np.unique(matrix[:, j]).size == matrix.shape[0] for j in range(matrix.shape[1])):
        assert np.allclose(quantile_normalize(normalized), normalized, atol=1e-9)  # idempotent


@pytest.mark.parametrize(
    "bad", [np.zeros(3), np.zeros((0, 2)), np.zeros((2, 2, 2))], ids=["1d", "empty", "3d"]
)
def test_shape_is_checked(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="expected a non-empty 2-D matrix"):
        quantile_normalize(bad)


def test_target_must_have_values() -> None:
    with pytest.raises(InputError, match="quantile target has no finite values"):
        quantile_normalize_to_target(np.ones((3, 2)), [np.nan])


def test_column_without_values_is_refused() -> None:
    with pytest.raises(InputError, match="column 1 has no finite values"):
        quantile_target(np.array([[1.0, np.nan], [2.0, np.nan]]))
