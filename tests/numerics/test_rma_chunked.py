"""Chunked RMA equals the in-memory RMA on real HG-Focus arrays and on GENERATED matrices."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill import affy
from genemill.errors import InputError
from genemill.numerics.rma import rma
from genemill.numerics.rma_chunked import polish_blocks, rma_chunked

FOCUS = Path(__file__).resolve().parents[2] / "data" / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


def _loader(pm: np.ndarray, calls: list[tuple[int, int]]):
    def load(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return pm[:, start:stop].copy()

    return load


@pytest.fixture(scope="module")
def focus() -> tuple[np.ndarray, np.ndarray, list[str]]:
    layout = affy.read_cdf(FOCUS / "HG-Focus.CDF.gz")
    pm = np.column_stack([affy.read_cel(path).intensities[layout.pm_index] for path in CELS])
    return pm, np.asarray(layout.offsets), list(layout.probeset_ids)


def test_hg_focus_pair_equals_in_memory_rma_and_bioconductor(focus, tmp_path: Path) -> None:
    pm, offsets, ids = focus
    expected = rma(pm, offsets)
    scratch = np.memmap(tmp_path / "scratch.f64", dtype=np.float64, mode="w+", shape=pm.shape, order="F")
    calls: list[tuple[int, int]] = []
    got = rma_chunked(
        _loader(pm, calls), offsets, n_arrays=2, scratch=scratch, chunk_arrays=1, block_bytes=4096
    )
    assert calls == [(0, 1), (1, 2)]  # each array read once, one at a time
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    diff = float(np.nanmax(np.abs(got - expected)))
    assert diff <= 1e-10
    reference = pd.read_csv(FOCUS / "reference" / "HG-Focus_affy_rma_log2.tsv", sep="\t", index_col=0)
    table = pd.DataFrame(got, index=ids).loc[reference.index]
    r_diff = float(np.abs(table.to_numpy() - reference.to_numpy()).max())
    assert r_diff < 1e-4  # the reference table is printed with limited digits
    print(f"HG-Focus: chunked vs in-memory max |diff| = {diff:.1e}; vs affy::rma = {r_diff:.1e}")


def _generated(seed: int, n_arrays: int) -> tuple[np.ndarray, np.ndarray]:
    """GENERATED PM matrix: probe sets of 0-20 probes, lognormal intensities rounded to 0.1 (ties)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 21, size=400)
    sizes[:3] = [0, 1, 2]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    level = np.repeat(rng.lognormal(5.0, 1.5, size=sizes.size), sizes)
    pm = level[:, None] * rng.lognormal(0.0, 0.3, size=(offsets[-1], n_arrays)) + rng.normal(
        100, 20, size=(offsets[-1], n_arrays)
    )
    return np.round(np.abs(pm) + 1.0, 1), offsets


@pytest.mark.parametrize(
    ("seed", "n_arrays", "chunk_arrays", "block_bytes"),
    [(1, 7, 3, 2000), (2, 5, 1, 1), (3, 9, 9, 1 << 20), (4, 1, 4, 500)],
    ids=["chunks-of-3", "one-array-one-set", "one-chunk", "single-array"],
)
def test_generated_matrices_equal_in_memory_rma(seed, n_arrays, chunk_arrays, block_bytes) -> None:
    pm, offsets = _generated(seed, n_arrays)
    expected = rma(pm, offsets, workers=1)
    calls: list[tuple[int, int]] = []
    got = rma_chunked(
        _loader(pm, calls), offsets, n_arrays=n_arrays, chunk_arrays=chunk_arrays, block_bytes=block_bytes
    )
    assert max(stop - start for start, stop in calls) <= chunk_arrays
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert float(np.nanmax(np.abs(got - expected))) <= 1e-10


def test_polish_blocks_cover_every_probe_set_once_within_budget() -> None:
    offsets = np.array([0, 3, 3, 10, 11, 40, 42])
    blocks = polish_blocks(offsets, n_arrays=2, block_bytes=8 * 2 * 8)  # 8 rows per block
    assert blocks[0][0] == 0 and blocks[-1][1] == 6
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    for first, last in blocks:
        assert offsets[last] - offsets[first] <= 8 or last - first == 1


@pytest.mark.parametrize(
    ("load", "offsets", "kwargs", "message"),
    [
        (
            lambda a, b: np.ones((5, b - a)),
            [0, 2, 4],
            {"n_arrays": 2},
            r"load_pm\(0, 2\) returned shape \(5, 2\), expected \(4, 2\)",
        ),
        (lambda a, b: np.zeros((4, b - a)), [0, 2, 4], {"n_arrays": 1}, r"array 0, probe row 0 is 0\.0"),
        (lambda a, b: np.ones((4, b - a)), [1, 2, 4], {"n_arrays": 1}, r"offsets must rise from 0"),
        (
            lambda a, b: np.ones((4, b - a)),
            [0, 2, 4],
            {"n_arrays": 0},
            r"n_arrays must be at least 1, found 0",
        ),
        (
            lambda a, b: np.ones((4, b - a)),
            [0, 2, 4],
            {"n_arrays": 2, "scratch": np.zeros((4, 3))},
            r"scratch must be float64 of shape \(probes, arrays\) = \(4, 2\), found float64 \(4, 3\)",
        ),
    ],
    ids=["wrong-shape", "non-positive", "bad-offsets", "no-arrays", "bad-scratch"],
)
def test_errors_say_what_was_expected_and_found(load, offsets, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        rma_chunked(load, offsets, **kwargs)
