"""RMA kernels equal Bioconductor (references from tests/scripts/affy_reference.R)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.errors import InputError
from genemill.formats.cdf import CdfLayout, read_cdf
from genemill.formats.cel import read_cel
from genemill.numerics import _polish
from genemill.numerics.rma import median_polish, rma, rma_background_correct

DATA = Path(__file__).parents[2] / "data"
REFERENCE = Path(__file__).parents[1] / "data" / "reference" / "affy"
HG_FOCUS = DATA / "affy-hg-focus"


@pytest.fixture(scope="module")
def hg_focus() -> tuple[CdfLayout, np.ndarray]:
    """HG-Focus layout and its raw PM matrix (probes x 2 arrays)."""
    with (HG_FOCUS / "HG-Focus.CDF.gz").open("rb") as fh:
        layout = read_cdf(fh)
    columns = []
    for k in (1, 2):
        with (HG_FOCUS / f"HG-Focus-{k}-121502.calvin.CEL.gz").open("rb") as fh:
            columns.append(read_cel(fh).intensities[layout.pm_index])
    return layout, np.column_stack(columns).astype(np.float64)


def test_rma_equals_affy_rma_at_full_precision(hg_focus: tuple[CdfLayout, np.ndarray]) -> None:
    layout, pm = hg_focus
    found = pd.DataFrame(rma(pm, layout.offsets), index=list(layout.probeset_ids))
    expected = pd.read_csv(REFERENCE / "hgfocus_rma.tsv.gz", sep="\t", index_col=0)
    assert np.abs(found.loc[expected.index].to_numpy() - expected.to_numpy()).max() < 1e-10


def test_background_equals_rma_background_correct(hg_focus: tuple[CdfLayout, np.ndarray]) -> None:
    layout, pm = hg_focus
    corrected = rma_background_correct(pm)
    expected = pd.read_csv(REFERENCE / "hgfocus_bg_subset.tsv.gz", sep="\t")
    row_of_cell = {cell: k for k, cell in enumerate(layout.pm_index.tolist())}
    rows = [row_of_cell[cell] for cell in expected["cell"]]
    assert np.abs(corrected[rows] / expected.iloc[:, 1:].to_numpy() - 1).max() < 1e-12


def test_threads_and_stack_sizes_do_not_change_results(
    hg_focus: tuple[CdfLayout, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, pm = hg_focus
    reference = rma(pm, layout.offsets, workers=2)
    monkeypatch.setattr(_polish, "CHUNK_ELEMENTS", 50)
    assert np.array_equal(rma(pm, layout.offsets, workers=1), reference)


@pytest.mark.parametrize("case", range(1, 7))
def test_median_polish_equals_stats_medpolish(case: int) -> None:
    probes = pd.read_csv(REFERENCE / f"medpolish_in_{case}.tsv", sep="\t")
    values = probes.filter(like="a").to_numpy()
    expected = pd.read_csv(REFERENCE / "medpolish_out.tsv", sep="\t").query("set == @case")["expression"]
    found = median_polish(values, [0, values.shape[0]])
    assert found.shape == (1, values.shape[1])
    assert np.abs(found[0] - expected.to_numpy()).max() < 1e-12


def test_median_polish_handles_many_sets_of_mixed_sizes() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 20, size=300)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    values = rng.normal(8, 2, size=(offsets[-1], 5))
    together = median_polish(values, offsets)
    one_by_one = np.vstack([median_polish(values[a:b], [0, b - a]) for a, b in itertools.pairwise(offsets)])
    assert np.array_equal(together, one_by_one)


def test_empty_probe_sets_give_nan() -> None:
    result = median_polish(np.ones((2, 3)), [0, 2, 2])
    assert np.isnan(result[1]).all()
    assert np.allclose(result[0], 1.0)


BAD = [
    ("negative", np.array([[1.0, 2.0], [-1.0, 3.0]]), [0, 2], "finite and positive"),
    ("nan", np.array([[1.0, 2.0], [np.nan, 3.0]]), [0, 2], "finite and positive"),
    ("one-probe", np.array([[1.0, 2.0]]), [0, 1], "at least 2 probes"),
    ("offsets-short", np.ones((3, 2)), [0, 2], "offsets must rise from 0 to the number of probes \\(3\\)"),
    ("offsets-decreasing", np.ones((3, 2)), [0, 2, 1, 3], "offsets must rise"),
]


@pytest.mark.parametrize(("pm", "offsets", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused(pm: np.ndarray, offsets: list[int], pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        rma(pm, offsets)


def test_float32_input_takes_the_compact_path_with_identical_results(
    hg_focus: tuple[CdfLayout, np.ndarray],
) -> None:
    layout, pm = hg_focus
    single = pm.astype(np.float32)  # the CEL values are float32, so nothing is lost
    assert np.array_equal(rma(single, layout.offsets), rma(pm, layout.offsets))


def test_float32_input_with_mostly_distinct_values_falls_back_to_float64() -> None:
    rng = np.random.default_rng(3)
    pm = rng.lognormal(6, 1, size=(400, 3)).astype(np.float32)  # ~all values distinct
    offsets = np.arange(0, 401, 8)
    assert np.array_equal(rma(pm, offsets), rma(pm.astype(np.float64), offsets))


def test_grid_codes_find_each_value_exactly_or_refuse() -> None:
    from genemill.numerics.rma import _grid_codes

    column = np.array([3.1, 0.5, 3.1, 65535.0, 12.3, 0.5], dtype=np.float32)  # a scanner's 0.1 grid
    values = np.unique(column).astype(np.float64)
    codes = _grid_codes(column, values)
    assert codes is not None and np.array_equal(values[codes], column)
    finer = np.array([1.01, 1.04, 1.01], dtype=np.float32)  # 1.01 and 1.04 share the key 10
    assert _grid_codes(finer, np.unique(finer).astype(np.float64)) is None
    assert _grid_codes(np.array([1.0, np.nan], np.float32), np.array([1.0, np.nan])) is None
    assert _grid_codes(np.array([-1.0], np.float32), np.array([-1.0])) is None


@pytest.mark.parametrize("step", [0.1, 1.0, 0.01, 0.25])
def test_float32_ranks_by_lookup_or_by_sorting_give_the_float64_result(step: float) -> None:
    """Coarse grids (0.1, 1, 0.25) take the lookup table, the 0.01 grid sorts again: all equal float64."""
    rng = np.random.default_rng(11)
    raw = np.clip(np.round(rng.lognormal(6, 1.5, size=(6000, 4)) / step) * step, 1, 65535)
    pm = raw.astype(np.float32)
    offsets = np.arange(0, 6001, 11).tolist() + ([6000] if 6000 % 11 else [])
    assert np.array_equal(rma(pm, offsets), rma(pm.astype(np.float64), offsets))
