"""MAS5 kernels against Bioconductor affy (committed references) and Affymetrix's own CHP output.

References: ``tests/data/reference/mas5/`` (written by ``tests/scripts/mas5_reference.R`` with affy
1.76) and ``data/affy-*/reference/`` (see the PROVENANCE.md there). The edge-case pairs in
``detection_edge_pairs.tsv`` are generated, not measured.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genemill.errors import UnsupportedPlatformError
from genemill.formats.cdf import CdfLayout, read_cdf
from genemill.formats.cel import read_cel
from genemill.numerics.mas5 import (
    Mas5Result,
    detection_calls,
    detection_p_values,
    mas5,
    mas5_background,
    mas5_detection,
    mas5_plan,
    mas5_signal,
    scale_to_target,
    tukey_biweight,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "data" / "reference" / "mas5"
DATA = REPO / "data"

# chip -> (data folder, CDF, CELs, prefix of the files in data/<folder>/reference/)
CHIPS = {
    "HG-Focus": (
        "affy-hg-focus",
        "HG-Focus.CDF.gz",
        ["HG-Focus-1-121502.calvin.CEL.gz", "HG-Focus-2-121502.calvin.CEL.gz"],
        "HG-Focus",
    ),
    "Hu6800": ("affy-hu6800", "Hu6800.CDF.gz", ["T1_r1.CEL.gz"], "Hu6800_T1_r1"),
}


def _offsets(ids: np.ndarray) -> np.ndarray:
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.concatenate([[0], change, [len(ids)]])


# ------------------------------------------------------------------------------ small exact checks


def test_tukey_biweight_equals_affy() -> None:
    # R: affy::tukey.biweight(c(1, 2, 3, 4, 100)) and of log2(c(120.5, ...)), printed with 17 digits.
    values = np.concatenate(
        [[1, 2, 3, 4, 100], np.log2([120.5, 80, 300, 45.25, 1000, 77, 64, 512, 99, 101, 250])]
    )
    result = tukey_biweight(values[:, None], [0, 5, 16])
    np.testing.assert_allclose(result[:, 0], [2.6023402883336444, 6.7135041219705158], rtol=1e-15)


def test_scale_to_target_uses_r_trimmed_mean() -> None:
    signal = np.array([5.0, 3, 9, 1, 7, 100, 2])[:, None]
    # R: mean(c(5, 3, 9, 1, 7, 100, 2), trim = 0.2) == 5.2 (one value dropped at each end)
    np.testing.assert_allclose(scale_to_target(signal, target=5.2, trim=0.2), signal, rtol=1e-15)


def test_one_dimensional_input_gives_one_dimensional_output() -> None:
    rng = np.random.default_rng(1)
    pm = rng.uniform(100, 1000, 40)
    mm = pm * rng.uniform(0.3, 1.3, 40)
    offsets = np.arange(0, 41, 10)
    assert mas5_signal(pm, mm, offsets).shape == (4,)
    np.testing.assert_array_equal(
        mas5_signal(pm, mm, offsets), mas5_signal(pm[:, None], mm[:, None], offsets)[:, 0]
    )
    assert detection_p_values(pm, mm, offsets).shape == (4,)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 100))
def test_scaled_signal_ignores_overall_brightness(seed: int, factor: float) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, size=30)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pm = np.exp(rng.normal(6, 1.5, (offsets[-1], 2)))
    mm = pm * np.exp(rng.normal(-0.3, 0.6, pm.shape))
    base = mas5_signal(pm, mm, offsets)
    assert np.all(base > 0)
    # Scaling PM and MM scales every IM and every PM - IM alike (the 2^-20 floor is never reached here).
    np.testing.assert_allclose(mas5_signal(pm * factor, mm * factor, offsets), base, rtol=1e-9)


def test_detection_calls_thresholds() -> None:
    p = np.array([0.0, 0.0399, 0.04, 0.0599, 0.06, 1.0, np.nan])
    assert detection_calls(p).tolist() == ["P", "P", "M", "M", "A", "A", "A"]
    assert detection_calls(p, alpha1=0.04, alpha2=0.065).tolist()[4] == "M"


def test_detection_without_usable_pairs_is_nan() -> None:
    # (203, 197) gives (PM - MM) / (PM + MM) == tau exactly, so every pair is dropped (affy crashes here).
    result = mas5_detection(np.array([203.0, 406, 812]), np.array([197.0, 394, 788]), [0, 3])
    assert np.isnan(result.p_values[0])
    assert result.calls[0] == "A"


@pytest.mark.parametrize(
    ("offsets", "message"),
    [([0, 3], "running from 0 to 4"), ([0, 2, 2, 4], "strictly increasing"), ([[0, 4]], "1-D array")],
    ids=["short", "empty-set", "2-D"],
)
def test_bad_offsets_are_refused(offsets: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mas5_signal(np.ones(4), np.ones(4), offsets)


def test_background_refuses_non_square_grid_and_tiny_zones() -> None:
    values = np.ones(16)
    x, y = np.arange(16) % 4, np.arange(16) // 4
    with pytest.raises(ValueError, match="square number of zones"):
        mas5_background(values, x, y, n_cols=4, n_rows=4, grid_dim=15)
    with pytest.raises(ValueError, match=r"zone 1 of 16 has 1 PM/MM cells; at least 100"):
        mas5_background(values, x, y, n_cols=4, n_rows=4)


# ------------------------------------------------------------- detection corner cases vs affy's C code


def test_detection_p_values_equal_affy_c_on_corner_cases() -> None:
    """Ties (same and mixed sign, n ≤ 17 and Shell-sorted n > 17), zero differences, saturation."""
    pairs = pd.read_csv(REFERENCE / "detection_edge_pairs.tsv", sep="\t")
    expected = pd.read_csv(REFERENCE / "detection_edge_pvalues.tsv", sep="\t", index_col=0)
    ids = pairs["probe_set_id"].to_numpy()
    offsets = _offsets(ids)
    p = detection_p_values(pairs["pm"].to_numpy(), pairs["mm"].to_numpy(), offsets)
    reference = expected.loc[ids[offsets[:-1]], "detection_pvalue"].to_numpy()
    np.testing.assert_allclose(p, reference, rtol=0, atol=1e-15)
    assert any(name.startswith("mixed_ties_n69") for name in ids)


@pytest.mark.r
def test_detection_p_values_equal_affy_c_on_random_ties(tmp_path: Path) -> None:
    """Live oracle: random sets rich in ties, run through affy's compiled ``DetectionPValue``."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    rng = np.random.default_rng(20021593)
    sizes = rng.integers(1, 41, size=300)
    ids = np.repeat([f"set{k:04d}" for k in range(sizes.size)], sizes)
    # Few distinct (PM, MM) values, mirrored around tau, so |R - tau| ties often and with both signs.
    pm = rng.choice([150.0, 256.0, 203.0, 300.0, 512.0, 46500.0], size=ids.size)
    mm = np.where(
        pm == 150.0, 250.0, np.where(pm == 256.0, 144.0, rng.choice([197.0, 150.0, 47000.0], ids.size))
    )
    offsets = _offsets(ids)
    all_dropped = np.add.reduceat((pm - mm) / (pm + mm) == 0.015, offsets[:-1]) == np.diff(offsets)
    mm[offsets[:-1][all_dropped]] = 150.0  # affy's C code crashes on a set without a usable pair
    table = tmp_path / "pairs.tsv"
    pd.DataFrame({"id": ids, "pm": pm, "mm": mm}).to_csv(table, sep="\t", index=False)
    script = (
        "suppressMessages(library(affy)); a <- commandArgs(TRUE); d <- read.delim(a[1]);"
        "u <- unique(d$id); p <- .C('DetectionPValue', as.double(d$pm), as.double(d$mm),"
        "as.character(d$id), nrow(d), 0.015, 46000, dpval = double(length(u)), length(u),"
        "PACKAGE = 'affy')$dpval; write(formatC(p, digits = 17, format = 'g'), a[2], ncolumns = 1)"
    )
    try:
        subprocess.run(
            ["Rscript", "-e", script, str(table), str(tmp_path / "p.txt")], check=True, capture_output=True
        )
    except subprocess.CalledProcessError as error:
        pytest.skip(f"R with affy is not usable: {error.stderr.decode()[-300:]}")
    reference = np.loadtxt(tmp_path / "p.txt")
    np.testing.assert_allclose(detection_p_values(pm, mm, offsets), reference, rtol=0, atol=1e-15)


# ------------------------------------------------------------------ real arrays, genemill's own parsers


def _chip_files(name: str) -> tuple[CdfLayout, list[np.ndarray]]:
    """A bundled chip's CDF layout and the intensities of each of its CEL files."""
    folder, cdf_name, cel_names, _ = CHIPS[name]
    with (DATA / folder / cdf_name).open("rb") as fh:
        layout = read_cdf(fh)
    intensities = []
    for cel_name in cel_names:
        with (DATA / folder / cel_name).open("rb") as fh:
            intensities.append(read_cel(fh).intensities)
    return layout, intensities


@pytest.fixture(scope="module", params=sorted(CHIPS))
def chip(request: pytest.FixtureRequest) -> tuple[str, list[str], Mas5Result]:
    """(chip name, probe-set ids in CDF order, MAS5 result) from the bundled CEL and CDF files."""
    layout, intensities = _chip_files(request.param)
    result = mas5(
        np.column_stack(intensities),
        layout.pm_index,
        layout.mm_index,
        offsets=layout.offsets,
        n_cols=layout.cols,
        n_rows=layout.rows,
    )
    return request.param, list(layout.probeset_ids), result


def _reference(name: str, suffix: str) -> pd.DataFrame:
    folder, _, _, prefix = CHIPS[name]
    return pd.read_csv(DATA / folder / "reference" / f"{prefix}_{suffix}.tsv", sep="\t", index_col=0)


def test_mas5_equals_affy_to_full_precision(chip: tuple[str, list[str], Mas5Result]) -> None:
    name, ids, result = chip
    prefix = CHIPS[name][3]
    full = pd.read_csv(REFERENCE / f"{prefix}_affy_mas5_full.tsv.gz", sep="\t", index_col=0)
    assert sorted(full.index) == sorted(ids)
    signal = full.filter(like=":signal").loc[ids].to_numpy()
    p_values = full.filter(like=":detection_pvalue").loc[ids].to_numpy()
    # Measured: 2.4e-14 (HG-Focus) and 1.6e-14 (Hu6800) relative; p-values 5e-16 absolute.
    np.testing.assert_allclose(result.signal, signal, rtol=1e-12)
    np.testing.assert_allclose(result.p_values, p_values, rtol=0, atol=1e-14)


def test_mas5_equals_bundled_affy_references(chip: tuple[str, list[str], Mas5Result]) -> None:
    name, ids, result = chip
    signal = _reference(name, "affy_mas5_signal").loc[ids].to_numpy()
    relative = np.abs(result.signal / signal - 1)
    assert np.median(relative) < 1e-7  # the bundled tables have 7 significant digits
    assert relative.max() < 6e-7
    calls = _reference(name, "affy_mas5_calls").loc[ids].to_numpy()
    assert np.array_equal(result.calls, calls)


def test_mas5_matches_affymetrix_chp(chip: tuple[str, list[str], Mas5Result]) -> None:
    """Affymetrix's own MAS5 (GCOS XDA CHP): same signal up to rounding, affy's p-values."""
    name, ids, result = chip
    chp = _reference(name, "affymetrix_chp_mas5")
    assert list(chp.index) == ids  # the CHP tables are in CDF unit order, like CdfLayout
    for j, column in enumerate(chp.filter(like=":signal").columns):
        r = np.corrcoef(np.log2(result.signal[:, j]), np.log2(chp[column]))[0, 1]
        assert r >= 0.99999  # measured 0.9999999 (Hu6800), 0.9999989 / 0.9999982 (HG-Focus)
    if name == "Hu6800":  # 20 pairs per set: GCOS uses the normal approximation too, alpha2 = 0.065
        p_chp = chp.iloc[:, 1].to_numpy()
        assert np.median(np.abs(result.p_values[:, 0] - p_chp)) < 1e-6
        calls = detection_calls(result.p_values, alpha1=0.04, alpha2=0.065)[:, 0]
        assert np.array_equal(calls, chp.iloc[:, 2].to_numpy())


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_a_plan_reused_across_arrays_gives_the_same_numbers(name: str) -> None:
    """A per-sample job reuses one plan per CDF: each array alone with it equals the joint run."""
    layout, arrays = _chip_files(name)
    design = {"offsets": layout.offsets, "n_cols": layout.cols, "n_rows": layout.rows}
    plan = mas5_plan(layout.pm_index, layout.mm_index, **design)
    for values in arrays:
        alone = mas5(values, layout.pm_index, layout.mm_index, **design)
        planned = mas5(values, layout.pm_index, layout.mm_index, plan=plan, **design)
        assert np.array_equal(planned.signal, alone.signal)
        assert np.array_equal(planned.p_values, alone.p_values, equal_nan=True)
    with pytest.raises(ValueError, match="another array design"):
        mas5(arrays[0], layout.pm_index, layout.mm_index, plan=plan._replace(n_cols=1), **design)


def test_mas5_refuses_pm_only_designs() -> None:
    with pytest.raises(UnsupportedPlatformError, match="1 of 2 probes have none"):
        mas5(np.ones(4), [0, 1], [2, -1], offsets=[0, 2], n_cols=2, n_rows=2)


def test_affy_mas5_table_equals_affy_row_for_row() -> None:
    from genemill import affy

    folder = DATA / "affy-hg-focus"
    cels = [folder / name for name in CHIPS["HG-Focus"][2]]
    table = affy.mas5(cels, cdf=folder / "HG-Focus.CDF.gz")
    reference = _reference("HG-Focus", "affy_mas5_signal")
    assert list(table.index) == list(reference.index)  # affy's (ICU-collated) probe-set order
    assert list(table.columns) == ["HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin"]
    assert np.abs(table.to_numpy() / reference.to_numpy() - 1).max() < 6e-7
