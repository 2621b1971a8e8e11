"""CEL readers: every variant of the same scan gives the same numbers; bad files fail clearly."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genemill.errors import CelFormatError
from genemill.formats.cel import CelFile, CelFormat, parse_cel, read_cel

DATA = Path(__file__).parents[2] / "data"
TEST3 = DATA / "affy-test3-formats"


def load(path: Path) -> CelFile:
    with path.open("rb") as fh:
        return read_cel(fh, name=str(path))


SAME_SCAN = [
    ("Test3-1-121502.v3-crlf.CEL", "Test3-1-121502.v3-lf.CEL"),
    ("Test3-1-121502.v3-crlf.CEL", "Test3-1-121502.calvin.CEL"),
    ("Test3-2-121502.v3-crlf.CEL", "Test3-2-121502.calvin.CEL"),
    ("test.v3.CEL", "test.v4.CEL"),
]


@pytest.mark.parametrize(("first", "second"), SAME_SCAN, ids=[f"{a}~{b}" for a, b in SAME_SCAN])
def test_formats_of_one_scan_agree(first: str, second: str) -> None:
    a, b = load(TEST3 / first), load(TEST3 / second)
    assert (a.rows, a.cols, a.chip_type) == (b.rows, b.cols, b.chip_type) == (126, 126, "Test3")
    # Text v3 keeps the decimals written; binary files store float32: identical after the cast.
    assert np.array_equal(a.intensities.astype(np.float32), b.intensities.astype(np.float32))
    assert a.stdev is not None and b.stdev is not None
    assert np.array_equal(a.stdev.astype(np.float32), b.stdev.astype(np.float32))
    assert np.array_equal(a.npixels, b.npixels)
    assert np.array_equal(np.sort(a.outliers), np.sort(b.outliers))
    assert np.array_equal(np.sort(a.masks), np.sort(b.masks))


HEADERS = [
    ("affy-test3-formats/test.v4.CEL", CelFormat.XDA_V4, "Test3", 126, "Percentile", "02/25/ 0 10:35:25"),
    (
        "affy-hg-focus/HG-Focus-1-121502.calvin.CEL.gz",
        CelFormat.CALVIN,
        "HG-Focus",
        448,
        "Percentile",
        "2002-05-15T11:07:10",
    ),
    ("affy-hu6800/T1_r1.CEL.gz", CelFormat.CALVIN, "Hu6800", 536, "Percentile", "2000-02-25T10:35:25"),
    (
        "affy-cel-without-cdf/CL2001032020AA.cel.gz",
        CelFormat.TEXT_V3,
        "HG_U95Av2",
        640,
        "Percentile",
        "03/20/01 16:13:24",
    ),
    (
        "affy-cel-without-cdf/C30057.CEL.gz",
        CelFormat.TEXT_V3,
        "HG_U95Av2",
        640,
        "Percentile",
        "03/18/03 11:38:54",
    ),
    (
        "affy-cel-without-cdf/SG2_u34a.CEL.gz",
        CelFormat.TEXT_V3,
        "RG_U34A",
        534,
        "Percentile",
        "10/15/02 17:21:28",
    ),
    (
        "affy-cel-without-cdf/97_Mouse430_2.CEL.gz",
        CelFormat.CALVIN,
        "Mouse430_2",
        1002,
        "Feature Extraction Cell Generation",
        "2010-02-04T11:19:15Z",
    ),
]


@pytest.mark.parametrize(
    ("relative", "fmt", "chip", "size", "algorithm", "scan_date"),
    HEADERS,
    ids=[h[0].split("/")[1] for h in HEADERS],
)
def test_headers_of_real_files(
    relative: str, fmt: CelFormat, chip: str, size: int, algorithm: str, scan_date: str
) -> None:
    cel = load(DATA / relative)
    assert (cel.format, cel.chip_type, cel.rows, cel.cols) == (fmt, chip, size, size)
    assert (cel.algorithm, cel.scan_date) == (algorithm, scan_date)
    assert cel.intensities.shape == (size * size,)
    assert np.isfinite(cel.intensities).all()
    assert cel.intensities.min() > 0


def test_calvin_parameters_are_decoded_by_type() -> None:
    cel = load(DATA / "affy-hu6800/T1_r1.CEL.gz")
    assert cel.header["affymetrix-array-type"] == "Hu6800"  # text/plain, UTF-16BE
    assert cel.header["affymetrix-cel-rows"] == "536"  # int32
    assert cel.header["affymetrix-algorithm-param-Percentile"] == "75"  # text/ascii
    assert cel.header["affymetrix-algorithm-param-GridULX"] == "239.0"  # float
    assert cel.outliers.size == 131


def test_biopython_v3_excerpt_matches_biopython() -> None:
    cel = load(DATA / "affy-biopython-examples/affy_v3_example.CEL")
    grid = cel.intensities.reshape(cel.rows, cel.cols)  # row = Y, column = X
    assert grid[0].tolist() == [234.0, 170.0, 22177.0, 164.0, 22104.0]  # later lines for a cell win
    assert grid[4].tolist() == [193.0, 20370.0, 174.0, 20605.0, 168.0]
    assert cel.stdev is not None
    assert cel.stdev.reshape(5, 5)[2].tolist() == [29.8, 88.7, 2976.5, 62.0, 2914.5]
    assert sorted(cel.masks.tolist()) == sorted([4 + 1 * 5, 4 + 2 * 5, 3 + 1 * 5])
    assert cel.chip_type == "Tgondii_SNP1"


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    plain = (TEST3 / "Test3-1-121502.v3-lf.CEL").read_bytes()
    disguised = tmp_path / "sample.CEL"
    disguised.write_bytes(gzip.compress(plain))
    assert np.array_equal(load(disguised).intensities, parse_cel(plain).intensities)


def _v3_with_bad_number() -> bytes:
    text = (TEST3 / "Test3-1-121502.v3-lf.CEL").read_bytes()
    return text.replace(b"190.0\t50.1", b"190.x\t50.1", 1)


def _v3_cut() -> bytes:
    lines = (TEST3 / "Test3-1-121502.v3-lf.CEL").read_bytes().split(b"\n")
    return b"\n".join(lines[:5000])


BAD_FILES = [
    ("empty", lambda: (TEST3 / "empty.cel").read_bytes(), r"empty file \(0 bytes\)"),
    (
        "png",
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(64),
        r"expected '\[CEL\]' \(v3\), byte 64 \(v4\) or 59 \(Calvin\) at offset 0, found 0x89",
    ),
    ("bcel", lambda: (TEST3 / "test.bcel.CEL").read_bytes(), r"unsupported CEL variant: APT compact 'BCEL'"),
    ("ccel", lambda: (TEST3 / "test.ccel.CEL").read_bytes(), r"unsupported CEL variant: APT compact 'CCEL'"),
    (
        "multichannel",
        lambda: (TEST3 / "multi-data.calvin.cel").read_bytes(),
        r"unsupported CEL variant: multi-channel Calvin",
    ),
    (
        "v4-truncated",
        lambda: (TEST3 / "test.v4.CEL").read_bytes()[:100_000],
        r"truncated file: expected at least 159\d+ bytes, found 100000",
    ),
    (
        "calvin-truncated",
        lambda: (TEST3 / "Test3-1-121502.calvin.CEL").read_bytes()[:50_000],
        r"truncated file: expected at least \d+ bytes, found 50000",
    ),
    ("v3-truncated", _v3_cut, r"truncated \[INTENSITY\] section: NumberCells=15876, found 4976 cell lines"),
    (
        "v3-cut-mid-line",
        lambda: (TEST3 / "Test3-1-121502.v3-lf.CEL").read_bytes()[:60_000],
        r"rows must hold 5 numbers each \(X\tY\tMEAN\tSTDV\tNPIXELS\); an incomplete row means truncation",
    ),
    ("v3-not-a-number", _v3_with_bad_number, r"\[INTENSITY\] holds a value that is not a number"),
    (
        "gzip-truncated",
        lambda: gzip.compress((TEST3 / "test.v3.CEL").read_bytes())[:2000],
        r"truncated or corrupt gzip stream",
    ),
    (
        "biopython-v4-nonconformant",
        lambda: (DATA / "affy-biopython-examples/affy_v4_example.CEL").read_bytes(),
        r"truncated file: expected at least \d+ bytes, found 1079",
    ),
]


@pytest.mark.parametrize(("make", "pattern"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_with_a_clear_message(make: object, pattern: str) -> None:
    data = make()  # type: ignore[operator]
    with pytest.raises(CelFormatError, match=pattern) as caught:
        read_cel(io.BytesIO(data), name="GSM1.CEL")
    assert str(caught.value).startswith("GSM1.CEL")
    assert caught.value.path == "GSM1.CEL"


R_SCRIPT = """
library(affxparser)
for (f in commandArgs(TRUE)) {
  x <- readCel(f, readIntensities = TRUE, readStdvs = FALSE, readPixels = FALSE)$intensities
  cat(sprintf("%.9g", x), sep = "\\n", file = paste0(basename(f), ".txt"))
}
"""


@pytest.mark.r
def test_intensities_equal_affxparser(tmp_path: Path) -> None:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    files = [TEST3 / "test.v4.CEL", TEST3 / "Test3-1-121502.calvin.CEL", TEST3 / "Test3-1-121502.v3-crlf.CEL"]
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), *map(str, files)], check=True, capture_output=True, cwd=tmp_path)
    for path in files:
        expected = np.loadtxt(tmp_path / f"{path.name}.txt")
        assert np.array_equal(load(path).intensities.astype(np.float32), expected.astype(np.float32)), (
            path.name
        )
