"""CDF readers: ASCII and XDA agree, and the PM/MM pairs equal makecdfenv's CDF environments."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.errors import CdfFormatError
from genemill.formats.cdf import CdfLayout, load_cdf_cache, parse_cdf, read_cdf, save_cdf_cache

DATA = Path(__file__).parents[2] / "data"
REFERENCE = Path(__file__).parents[1] / "data" / "reference" / "affy"
TEST3 = DATA / "affy-test3-formats"
CDFS = {
    "test3-ascii": TEST3 / "Test3.ascii.CDF",
    "test3-xda": TEST3 / "Test3.xda.CDF",
    "hu6800": DATA / "affy-hu6800" / "Hu6800.CDF.gz",
    "hgfocus": DATA / "affy-hg-focus" / "HG-Focus.CDF.gz",
}


@pytest.fixture(scope="module")
def layouts() -> dict[str, CdfLayout]:
    found = {}
    for key, path in CDFS.items():
        with path.open("rb") as fh:
            found[key] = read_cdf(fh, name=str(path))
    return found


def env_text(layout: CdfLayout) -> str:
    """The CDF environment as tests/scripts/affy_reference.R writes it (ids in C order)."""
    ids = np.repeat(np.array(layout.probeset_ids, dtype=object), np.diff(layout.offsets))
    order = sorted(range(ids.size), key=lambda k: ids[k].encode())
    lines = ["id\tpm\tmm\n"]
    for k in order:
        mm = layout.mm_index[k]
        lines.append(f"{ids[k]}\t{layout.pm_index[k] + 1}\t{mm + 1 if mm >= 0 else 'NA'}\n")
    return "".join(lines)


def test_ascii_and_xda_give_the_same_layout(layouts: dict[str, CdfLayout]) -> None:
    ascii_, xda = layouts["test3-ascii"], layouts["test3-xda"]
    assert (
        (ascii_.rows, ascii_.cols, ascii_.n_qc_units)
        == (xda.rows, xda.cols, xda.n_qc_units)
        == (126, 126, 13)
    )
    assert ascii_.probeset_ids == xda.probeset_ids
    assert np.array_equal(ascii_.offsets, xda.offsets)
    assert np.array_equal(ascii_.pm_index, xda.pm_index)
    assert np.array_equal(ascii_.mm_index, xda.mm_index)
    assert (ascii_.chip_type, xda.chip_type) == ("Test3", "")  # XDA files carry no chip name


@pytest.mark.parametrize(
    ("key", "chip", "size", "sets", "pairs"),
    [("hu6800", "3101_a03", 536, 7129, 140_983), ("hgfocus", "HG-Focus", 448, 8793, 98_149)],
)
def test_real_cdf_sizes(
    layouts: dict[str, CdfLayout], key: str, chip: str, size: int, sets: int, pairs: int
) -> None:
    layout = layouts[key]
    assert (layout.chip_type, layout.rows, layout.cols) == (chip, size, size)
    assert len(layout.probeset_ids) == sets
    assert layout.pm_index.size == layout.mm_index.size == pairs
    assert (layout.mm_index >= 0).all()
    assert layout.probeset_of_probe.shape == (pairs,)
    assert len(set(layout.pm_index.tolist()) | set(layout.mm_index.tolist())) == 2 * pairs


def test_test3_equals_makecdfenv_environment(layouts: dict[str, CdfLayout]) -> None:
    expected = gzip.decompress((REFERENCE / "test3_cdfenv.tsv.gz").read_bytes()).decode()
    assert env_text(layouts["test3-ascii"]) == expected
    assert env_text(layouts["test3-xda"]) == expected


@pytest.mark.parametrize(("key", "name"), [("hu6800", "hu6800"), ("hgfocus", "hgfocus")])
def test_real_cdfs_equal_makecdfenv_environments(layouts: dict[str, CdfLayout], key: str, name: str) -> None:
    table = pd.read_csv(
        REFERENCE / "cdfenv_md5.tsv", sep="\t", header=None, index_col=0, names=["n", "rows", "md5"]
    )
    digest = hashlib.md5(env_text(layouts[key]).encode()).hexdigest()
    assert digest == table.loc[name, "md5"]


def test_cache_round_trip(layouts: dict[str, CdfLayout], tmp_path: Path) -> None:
    layout = layouts["hgfocus"]
    save_cdf_cache(layout, tmp_path / "x.npz")
    again = load_cdf_cache(tmp_path / "x.npz")
    assert (again.chip_type, again.rows, again.cols, again.n_qc_units) == ("HG-Focus", 448, 448, 10)
    assert again.probeset_ids == layout.probeset_ids
    for field in ("pm_index", "mm_index", "offsets"):
        assert np.array_equal(getattr(again, field), getattr(layout, field))


TINY = """[CDF]\r
Version=GC3.0\r
\r
[Chip]\r
Name=Tiny\r
Rows=4\r
Cols=4\r
NumberOfUnits=2\r
MaxUnit=2\r
NumQCUnits=0\r
\r
[Unit1]\r
Name=NONE\r
NumberBlocks=1\r
\r
[Unit1_Block1]\r
Name=mixed_case_at\r
BlockNumber=1\r
NumAtoms=2\r
NumCells=4\r
CellHeader=X\tY\tPROBE\tFEAT\tQUAL\tEXPOS\tPOS\tCBASE\tPBASE\tTBASE\tATOM\tINDEX\tCODONIND\tCODON\tREGIONTYPE\tREGION\r
Cell1=0\t1\tN\tcontrol\tmixed_case_at\t1\t13\tA\ta\tt\t1\t4\t-1\t-1\t99\t\r
Cell2=0\t0\tN\tcontrol\tmixed_case_at\t1\t13\tA\tt\tt\t1\t0\t-1\t-1\t99\t\r
Cell3=1\t1\tN\tcontrol\tmixed_case_at\t0\t13\tC\tG\tC\t0\t5\t-1\t-1\t99\t\r
Cell4=1\t0\tN\tcontrol\tmixed_case_at\t0\t13\tC\tC\tC\t0\t1\t-1\t-1\t99\t\r
\r
[Unit2]\r
Name=NONE\r
NumberBlocks=1\r
\r
[Unit2_Block1]\r
Name=pm_only_at\r
BlockNumber=1\r
NumAtoms=2\r
NumCells=2\r
CellHeader=X\tY\tPROBE\tFEAT\tQUAL\tEXPOS\tPOS\tCBASE\tPBASE\tTBASE\tATOM\tINDEX\tCODONIND\tCODON\tREGIONTYPE\tREGION\r
Cell1=3\t3\tN\tcontrol\tpm_only_at\t0\t13\tA\tT\tA\t1\t15\t-1\t-1\t99\t\r
Cell2=2\t3\tN\tcontrol\tpm_only_at\t0\t13\tA\tG\tC\t0\t14\t-1\t-1\t99\t\r
"""


def test_pm_rule_pairing_and_missing_mm() -> None:
    layout = parse_cdf(TINY.encode(), name="tiny.cdf")
    assert layout.probeset_ids == ("mixed_case_at", "pm_only_at")
    # PM = probe base complementary to target base, case-insensitive; pairs ordered by atom.
    assert layout.pm_index.tolist() == [5, 4, 14, 15]
    assert layout.mm_index.tolist() == [1, 0, -1, -1]
    assert layout.offsets.tolist() == [0, 2, 4]


def _truncated_xda() -> bytes:
    return (TEST3 / "Test3.xda.CDF").read_bytes()[:100_000]


def _unit_missing() -> bytes:
    return TINY.split("[Unit2]")[0].encode()


def _block_cut() -> bytes:
    return TINY.rsplit("Cell2=", 1)[0].encode()


BAD = [
    ("empty", lambda: b"", r"empty file \(0 bytes\)"),
    (
        "magic",
        lambda: b"PK\x03\x04" + bytes(20),
        r"expected '\[CDF\]' \(ASCII\) or int32 67 \(XDA\) at offset 0, found 0x50",
    ),
    ("xda-truncated", _truncated_xda, r"truncated file: expected at least \d+ bytes, found 100000"),
    ("unit-missing", _unit_missing, r"NumberOfUnits=2, found 1 units"),
    ("block-cut", _block_cut, r"\[Unit2_Block1\] NumCells=2, found 1 complete Cell lines"),
    (
        "bad-rows",
        lambda: TINY.replace("Rows=4", "Rows=four").encode(),
        r"\[Chip\] Rows= expected an integer, found 'four'",
    ),
    (
        "outside",
        lambda: TINY.replace("Cell1=3\t3", "Cell1=9\t3").encode(),
        r"cell X=9 Y=3 lies outside the 4x4 array",
    ),
]


@pytest.mark.parametrize(("make", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_cdfs_are_refused(make: object, pattern: str) -> None:
    with pytest.raises(CdfFormatError, match=pattern) as caught:
        read_cdf(io.BytesIO(make()), name="chip.cdf")  # type: ignore[operator]
    assert str(caught.value).startswith("chip.cdf")
