"""genemill.affy: CEL + CDF files in, the table affy::rma returns out."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill import affy
from genemill.errors import InputError, UnsupportedPlatformError

DATA = Path(__file__).parents[1] / "data"
REFERENCE = Path(__file__).parent / "data" / "reference" / "affy"
HG_FOCUS = DATA / "affy-hg-focus"
HU6800 = DATA / "affy-hu6800"
TEST3 = DATA / "affy-test3-formats"
HG_FOCUS_CELS = [HG_FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", HG_FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


def test_hg_focus_pair_equals_affy_rma() -> None:
    table = affy.rma(HG_FOCUS_CELS, cdf=HG_FOCUS / "HG-Focus.CDF.gz")
    expected = pd.read_csv(HG_FOCUS / "reference" / "HG-Focus_affy_rma_log2.tsv", sep="\t", index_col=0)
    assert list(table.columns) == ["HG-Focus-1-121502.calvin", "HG-Focus-2-121502.calvin"]
    assert table.index.name == "probe_set_id"
    assert list(table.index) == list(expected.index)  # affy's (ICU) order of probe-set ids
    assert np.abs(table.to_numpy() - expected.to_numpy()).max() <= 1e-5  # reference has 7 digits


def test_hu6800_single_array_equals_affy_rma() -> None:
    table = affy.rma([HU6800 / "T1_r1.CEL.gz"], cdf=HU6800 / "Hu6800.CDF.gz")
    expected = pd.read_csv(HU6800 / "reference" / "Hu6800_T1_r1_affy_rma_log2.tsv", sep="\t", index_col=0)
    assert list(table.index) == list(expected.index)
    assert list(table.columns) == ["T1_r1"]
    assert np.abs(table.to_numpy() - expected.to_numpy()).max() <= 1e-5


def test_text_cels_equal_justrma_on_the_same_files() -> None:
    cels = [TEST3 / "Test3-1-121502.v3-crlf.CEL", TEST3 / "Test3-2-121502.v3-crlf.CEL"]
    table = affy.rma(cels, cdf=TEST3 / "Test3.xda.CDF")
    expected = pd.read_csv(REFERENCE / "test3_v3_rma.tsv", sep="\t", index_col=0)
    assert np.abs(table.loc[expected.index].to_numpy() - expected.to_numpy()).max() < 1e-10


def test_cel_of_another_chip_names_both_files_and_sizes() -> None:
    cdf = HG_FOCUS / "HG-Focus.CDF.gz"
    message = (
        r"T1_r1\.CEL\.gz is chip type 'Hu6800' \(536x536 cells\) but CDF .*HG-Focus\.CDF\.gz "
        r"describes 'HG-Focus' \(448x448 cells\)"
    )
    with pytest.raises(UnsupportedPlatformError, match=message):
        affy.rma([HG_FOCUS_CELS[0], HU6800 / "T1_r1.CEL.gz"], cdf=cdf)


def test_same_size_but_other_chip_type_is_refused(tmp_path: Path) -> None:
    layout = affy.read_cdf(HG_FOCUS / "HG-Focus.CDF.gz")
    renamed = type(layout)(**{**layout.__dict__, "chip_type": "HG-U133A", "aliases": ()})
    with pytest.raises(UnsupportedPlatformError, match=r"chip type 'HG-Focus' \(448x448 cells\)"):
        affy.rma(HG_FOCUS_CELS, cdf=renamed)


def test_chip_type_comparison_ignores_case_and_punctuation() -> None:
    layout = affy.read_cdf(HU6800 / "Hu6800.CDF.gz")  # [Chip] Name=3101_a03, file stem Hu6800
    assert layout.aliases == ("Hu6800",)
    renamed = type(layout)(**{**layout.__dict__, "aliases": ("hu_6800",)})
    assert affy.rma([HU6800 / "T1_r1.CEL.gz"], cdf=renamed).shape == (7129, 1)


def test_cdf_cache_is_keyed_by_content(tmp_path: Path) -> None:
    copy = tmp_path / "Test3.CDF"
    shutil.copy(TEST3 / "Test3.ascii.CDF", copy)
    first = affy.read_cdf(copy, cache_dir=tmp_path / "cache")
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1
    copy.write_bytes(b"not read again")  # a different file gets a different key
    again = affy.read_cdf(TEST3 / "Test3.ascii.CDF", cache_dir=tmp_path / "cache")
    assert again.probeset_ids == first.probeset_ids
    assert np.array_equal(again.pm_index, first.pm_index)
    assert again.aliases == ("Test3", "Test3.ascii")


@pytest.mark.parametrize(
    ("path", "name"),
    [("a/GSM1.CEL.gz", "GSM1"), ("GSM2.cel", "GSM2"), ("x.calvin.CEL", "x.calvin"), ("GSM3.CEL.GZ", "GSM3")],
)
def test_sample_names(path: str, name: str) -> None:
    assert affy.sample_name(path) == name


def test_duplicate_sample_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="two CEL files share a sample name: 'T1_r1'"):
        affy.rma([HU6800 / "T1_r1.CEL.gz", tmp_path / "T1_r1.CEL"], cdf=HU6800 / "Hu6800.CDF.gz")


def test_read_cel_by_path() -> None:
    cel = affy.read_cel(TEST3 / "test.v4.CEL")
    assert (cel.chip_type, cel.rows, cel.cols, cel.path) == ("Test3", 126, 126, str(TEST3 / "test.v4.CEL"))
