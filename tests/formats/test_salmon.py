"""Tests for genemill.formats.salmon: quant.sf / abundance.tsv / isoforms.results and Salmon JSON."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genemill.errors import SalmonFormatError
from genemill.formats.salmon import (
    _HEADERS,
    _parse_arrow,
    _parse_body,
    _parse_small,
    read_kallisto_abundance,
    read_quant,
    read_rsem_isoforms,
    read_salmon_cmd_info,
    read_salmon_lib_format_counts,
    read_salmon_meta_info,
    read_salmon_quant,
)

ROOT = Path(__file__).parents[2]
DATA = ROOT / "data"
REFINEBIO = DATA / "rnaseq-refinebio-SRP095529"
GEUVADIS = DATA / "rnaseq-tximportdata-geuvadis"
MOUSE = DATA / "rnaseq-pytximport-mouse-subset"
SALMON_110 = ROOT / "tests" / "data" / "salmon" / "salmon-1.10.1-example"

HEADER = b"Name\tLength\tEffectiveLength\tTPM\tNumReads\n"
ROWS = b"tx1\t100\t80.5\t10.0\t3\ntx2\t200\t180\t20.5\t7.25\n"


def test_reads_real_refinebio_quant_sf_gz() -> None:
    with (REFINEBIO / "SRR5125621.quant.sf.gz").open("rb") as fh:
        quant = read_salmon_quant(fh)
    assert len(quant) == 59071
    assert quant.source_format == "salmon"
    assert quant.names[0] == "ENSDART00000000004"
    # First data line: ENSDART00000000004 2476 2204.018 1.402480 47.849763
    assert quant.length[0] == 2476.0
    assert quant.effective_length[0] == 2204.018
    assert quant.tpm[0] == 1.402480
    assert quant.num_reads[0] == 47.849763
    assert quant.tpm.sum() == pytest.approx(1e6, rel=1e-9)
    assert quant.names.dtype == object
    assert all(arr.dtype == np.float64 for arr in (quant.length, quant.tpm, quant.num_reads))


def test_reads_real_gencode_names_plain_file() -> None:
    with (MOUSE / "Sample_1.sf").open("rb") as fh:
        quant = read_salmon_quant(fh)
    assert len(quant) == 500
    assert quant.names[0].startswith("ENSMUST00000122024.2|ENSMUSG00000083355.2|")
    assert quant.names[0].endswith("|processed_pseudogene|")


def test_row_count_matches_meta_info_for_salmon_0_8_and_1_10() -> None:
    for quant_path, meta_path in [
        (GEUVADIS / "ERR188021" / "quant.sf.gz", GEUVADIS / "ERR188021" / "aux_info" / "meta_info.json"),
        (SALMON_110 / "quant.sf", SALMON_110 / "aux_info" / "meta_info.json"),
    ]:
        with quant_path.open("rb") as fh:
            quant = read_salmon_quant(fh)
        with meta_path.open("rb") as fh:
            meta = read_salmon_meta_info(fh)
        assert meta.num_targets == len(quant)


def test_gzip_detected_by_magic_not_name() -> None:
    quant = read_salmon_quant(io.BytesIO(gzip.compress(HEADER + ROWS)))
    assert list(quant.names) == ["tx1", "tx2"]
    np.testing.assert_array_equal(quant.num_reads, [3.0, 7.25])


def test_text_handle_and_crlf_line_endings() -> None:
    text = (HEADER + ROWS).decode().replace("\n", "\r\n")
    quant = read_salmon_quant(io.StringIO(text))
    np.testing.assert_array_equal(quant.effective_length, [80.5, 180.0])


def test_kallisto_abundance_hand_written_fixture() -> None:
    # Hand-written (not real kallisto output): the abundance.tsv layout of kallisto 0.4x.
    text = b"target_id\tlength\teff_length\test_counts\ttpm\nENST1\t1500\t1321.5\t12\t4.5e+02\nENST2\t90\t1\t0\t0\n"
    quant = read_kallisto_abundance(io.BytesIO(text))
    assert quant.source_format == "kallisto"
    np.testing.assert_array_equal(quant.num_reads, [12.0, 0.0])
    np.testing.assert_array_equal(quant.tpm, [450.0, 0.0])
    np.testing.assert_array_equal(quant.effective_length, [1321.5, 1.0])


def test_rsem_isoforms_hand_written_fixture() -> None:
    # Hand-written (not real RSEM output): the isoforms.results layout of RSEM 1.3.
    text = (
        b"transcript_id\tgene_id\tlength\teffective_length\texpected_count\tTPM\tFPKM\tIsoPct\n"
        b"T1\tG1\t1000\t850.00\t100.00\t12.5\t10.1\t100.00\n"
        b"T2\tG2\t40\t0.00\t0.00\t0.00\t0.00\t0.00\n"
    )
    quant = read_rsem_isoforms(io.BytesIO(text))
    assert quant.source_format == "rsem"
    assert quant.gene_ids is not None
    assert list(quant.gene_ids) == ["G1", "G2"]
    np.testing.assert_array_equal(quant.effective_length, [850.0, 0.0])
    np.testing.assert_array_equal(quant.num_reads, [100.0, 0.0])


def test_unknown_source_format() -> None:
    with pytest.raises(ValueError, match="source_format must be one of"):
        read_quant(io.BytesIO(HEADER + ROWS), source_format="stringtie")  # type: ignore[arg-type]


BAD_QUANT = [
    (b"", r"line 1: expected header 'Name\\tLength\\tEffectiveLength\\tTPM\\tNumReads', found ''"),
    (b"Name\tLength\tTPM\n" + ROWS, r"line 1: expected header .*found 'Name\\tLength\\tTPM'"),
    (b"target_id\tlength\teff_length\test_counts\ttpm\n" + ROWS, r"line 1: expected header 'Name"),
    (HEADER, r"line 2: truncated file: a header but no transcript rows"),
    (HEADER + b"tx1\t100\t80.5\tabc\t3\n", r"line 2: column 4 \(TPM\): expected a number, found 'abc'"),
    (
        HEADER + ROWS + b"tx3\t100\t80.5\t1\tNA\n",
        r"line 4: column 5 \(NumReads\): expected a number, found 'NA'",
    ),
    (HEADER + b"tx1\t1e3x\t80.5\t1\t1\n", r"line 2: column 2 \(Length\): expected a number, found '1e3x'"),
    (
        HEADER + b"tx1\t100\t80.5\t-1\t3\n",
        r"line 2: column 4 \(TPM\): expected a finite non-negative number, found -1\.0",
    ),
    (
        HEADER + b"tx1\t100\tnan\t1\t3\n",
        r"line 2: column 3 \(EffectiveLength\): expected a finite non-negative",
    ),
    (HEADER + b"tx1\t100\t80.5\t1\n" + ROWS, r"line 2: expected 5 tab-separated columns, found 4$"),
    (
        HEADER + ROWS + b"tx3\t100",
        r"line 4: expected 5 tab-separated columns, found 2 \(the file appears truncated\)",
    ),
    (HEADER + b"tx1\t100\t80.5\t1\t3\n\n" + ROWS, r"line 3: expected 5 tab-separated columns, found 1"),
    (
        HEADER + ROWS + b"tx1\t5\t5\t5\t5\n",
        r"line 4: duplicate transcript name 'tx1' \(first on line 2; 1 duplicate",
    ),
    (HEADER + b"\t100\t80.5\t1\t3\n", r"line 2: column 1 \(Name\): empty transcript name"),
]


@pytest.mark.parametrize(
    ("content", "pattern"),
    BAD_QUANT,
    ids=[
        "empty",
        "wrong-header",
        "kallisto-header",
        "header-only",
        "non-numeric",
        "NA",
        "bad-number",
        "negative",
        "nan",
        "short-row",
        "truncated-last-line",
        "blank-line",
        "duplicate",
        "empty-name",
    ],
)
def test_bad_quant_sf(content: bytes, pattern: str) -> None:
    with pytest.raises(SalmonFormatError, match=pattern):
        read_salmon_quant(io.BytesIO(content))


def test_error_names_the_file_and_carries_fields(tmp_path: Path) -> None:
    path = tmp_path / "quant.sf"
    path.write_bytes(HEADER + b"tx1\t100\t80.5\tabc\t3\n")
    with path.open("rb") as fh, pytest.raises(SalmonFormatError) as info:
        read_salmon_quant(fh)
    assert str(info.value).startswith(f"{path}, line 2: column 4 (TPM)")
    assert info.value.path == str(path)
    assert info.value.line == 2


def test_truncated_gzip_stream() -> None:
    compressed = gzip.compress(HEADER + ROWS * 50)
    with pytest.raises(SalmonFormatError, match=r"truncated gzip stream"):
        read_salmon_quant(io.BytesIO(compressed[:-20]))


def test_corrupt_gzip_stream() -> None:
    compressed = bytearray(gzip.compress(HEADER + ROWS * 50))
    compressed[20:30] = b"\xff" * 10
    with pytest.raises(SalmonFormatError, match=r"corrupt gzip stream"):
        read_salmon_quant(io.BytesIO(bytes(compressed)))


_floats = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_floats, _floats, _floats, _floats), min_size=1, max_size=30))
def test_round_trips_every_double(rows: list[tuple[float, float, float, float]]) -> None:
    body = "".join(f"t{i}\t{a!r}\t{b!r}\t{c!r}\t{d!r}\n" for i, (a, b, c, d) in enumerate(rows))
    quant = read_salmon_quant(io.BytesIO(HEADER + body.encode()))  # split in Python: small
    expected = np.array(rows, dtype=np.float64).reshape(-1, 4)
    np.testing.assert_array_equal(quant.length, expected[:, 0])
    np.testing.assert_array_equal(quant.num_reads, expected[:, 3])
    small, arrow = _both_ways(HEADER + body.encode(), "salmon")
    for name in ("Length", "EffectiveLength", "TPM", "NumReads"):
        np.testing.assert_array_equal(small[name], arrow[name])


def _both_ways(data: bytes, source_format: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The rows of a quantification table as split in Python and as read by Arrow."""
    header = _HEADERS[source_format]
    start = data.index(b"\n") + 1
    small = _parse_small(data[start:], header)
    assert small is not None, "expected plain rows"
    arrow = _parse_arrow(data, start, header, None)
    return small, {name: arrow.column(name).to_numpy(zero_copy_only=False) for name in header}


def _real_rows(path: Path, rows: int) -> bytes:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return b"".join(data.splitlines(keepends=True)[: rows + 1])


@pytest.mark.parametrize(
    ("path", "rows"),
    [
        (REFINEBIO / "SRR5125621.quant.sf.gz", 400),  # Salmon 0.8 output, real numbers
        (GEUVADIS / "ERR188021" / "quant.sf.gz", 400),
        (MOUSE / "Sample_1.sf", 300),  # GENCODE names with bars
        (SALMON_110 / "quant.sf", 100),  # Salmon 1.10.1
    ],
)
def test_small_tables_split_in_python_equal_arrows_reading(path: Path, rows: int) -> None:
    """The Python split that small tables take gives Arrow's strings and doubles, bit for bit."""
    data = _real_rows(path, rows)
    assert len(data) <= 1 << 16  # small enough to take the Python path in read_quant
    small, arrow = _both_ways(data, "salmon")
    assert list(small) == list(arrow)
    assert small["Name"].dtype == object and small["Name"].tolist() == arrow["Name"].tolist()
    for name in ("Length", "EffectiveLength", "TPM", "NumReads"):
        assert small[name].dtype == np.float64
        np.testing.assert_array_equal(small[name], arrow[name])


def test_small_kallisto_and_rsem_tables_equal_arrows_reading() -> None:
    kallisto = b"target_id\tlength\teff_length\test_counts\ttpm\nENST1\t1500\t1321.5\t12\t4.5e+02\n"
    rsem = b"transcript_id\tgene_id\tlength\teffective_length\texpected_count\tTPM\tFPKM\tIsoPct\nT1\tG1\t1000\t850.00\t1E-05\t12.5\t10.1\t100.00\n"
    for data, source_format in ((kallisto, "kallisto"), (rsem, "rsem")):
        small, arrow = _both_ways(data, source_format)
        for name in small:
            assert small[name].tolist() == arrow[name].tolist()


@pytest.mark.parametrize(
    "rows",
    [
        b"tx1\t100\t80.5\t1\t+3\n",  # a plus sign
        b"tx1\t100\t80.\t1\t3\n",  # no digit after the point
        b"tx1\t100\t.5\t1\t3\n",
        b"tx1\t100\t80.5\t1\tnan\n",
        b"tx1\t100\t80.5\t1\t3\r\n",
        b"tx1\t100\t80.5\t1\t3\n\n",  # a blank last line
        b"tx\xff\t100\t80.5\t1\t3\n",  # not UTF-8
        b"tx1\t100\t80.5\t1\n",
    ],
)
def test_unusual_rows_are_left_to_arrow(rows: bytes) -> None:
    """Anything but plain rows goes to Arrow, which decides (value or error) as it always did."""
    header = _HEADERS["salmon"]
    assert _parse_small(rows, header) is None
    data = HEADER + rows
    try:
        arrow = _parse_arrow(data, len(HEADER), header, None)
    except SalmonFormatError as exc:
        with pytest.raises(SalmonFormatError, match=re.escape(str(exc))):
            _parse_body(data, len(HEADER), header, None)
        return
    parsed = _parse_body(data, len(HEADER), header, None)
    for name in header:
        np.testing.assert_array_equal(parsed[name], arrow.column(name).to_numpy(zero_copy_only=False))


# ------------------------------------------------------------------------------------------ JSON


def test_meta_info_salmon_0_8_2_real() -> None:
    with (GEUVADIS / "ERR188021" / "aux_info" / "meta_info.json").open("rb") as fh:
        meta = read_salmon_meta_info(fh)
    assert meta.salmon_version == "0.8.2"
    assert meta.library_types == ("IU",)
    assert meta.num_targets == 200401
    assert meta.num_processed == 32507828
    assert meta.num_mapped == 28694462
    assert meta.percent_mapped == pytest.approx(88.26939160623097)
    assert meta.num_bootstraps == 0
    assert meta.raw["gc_bias_correct"] is True


def test_meta_info_salmon_1_10_1() -> None:
    with (SALMON_110 / "aux_info" / "meta_info.json").open("rb") as fh:
        meta = read_salmon_meta_info(fh)
    assert meta.salmon_version == "1.10.1"
    assert meta.num_targets == 15
    assert meta.num_decoy_targets == 0
    assert meta.percent_mapped == 100.0


def test_lib_format_counts_real() -> None:
    with (GEUVADIS / "ERR188021" / "lib_format_counts.json").open("rb") as fh:
        counts = read_salmon_lib_format_counts(fh)
    assert counts.expected_format == "IU"
    assert counts.num_assigned_fragments == 28694462
    assert counts.format_counts["ISF"] == 54116573
    assert set(counts.format_counts) == {
        "MSF",
        "OSF",
        "ISF",
        "MSR",
        "OSR",
        "ISR",
        "SF",
        "SR",
        "MU",
        "OU",
        "IU",
        "U",
    }


def test_cmd_info_real_old_and_new() -> None:
    with (GEUVADIS / "ERR188021" / "cmd_info.json").open("rb") as fh:
        old = read_salmon_cmd_info(fh)
    assert old.lib_type == "IU"
    assert old.mates1 == ("fastq/ERR188021_1.fastq",)
    assert old.aux_dir == "aux_info"
    with (SALMON_110 / "cmd_info.json").open("rb") as fh:
        new = read_salmon_cmd_info(fh)
    assert new.salmon_version == "1.10.1"
    assert new.lib_type == "A"
    assert new.mates2[0].endswith("reads_2.fastq.gz")


def test_cmd_info_list_valued_reads_and_default_aux_dir() -> None:
    cmd = read_salmon_cmd_info(io.BytesIO(b'{"unmatedReads": ["a.fq", "b.fq"], "index": "idx"}'))
    assert cmd.unmated_reads == ("a.fq", "b.fq")
    assert cmd.aux_dir == "aux_info"
    assert cmd.salmon_version is None


BAD_JSON = [
    (
        read_salmon_meta_info,
        b'{\n  "salmon_version": \n}',
        r"line 3: invalid JSON: Expecting value \(column 1\)",
    ),
    (read_salmon_meta_info, b"[1, 2]", r"expected a JSON object at the top level, found list"),
    (
        read_salmon_meta_info,
        b'{"num_processed": "many"}',
        r"field 'num_processed': expected int, found 'many'",
    ),
    (read_salmon_meta_info, b'{"library_types": [1]}', r"field 'library_types': expected a string or a list"),
    (read_salmon_lib_format_counts, b'{"ISF": 1.5}', r"field 'ISF': expected int, found 1\.5"),
    (read_salmon_cmd_info, b'{"libType": true}', r"field 'libType': expected str, found True"),
]


@pytest.mark.parametrize(
    ("reader", "content", "pattern"),
    BAD_JSON,
    ids=["syntax", "not-object", "wrong-int", "wrong-list", "float-count", "bool"],
)
def test_bad_json(reader: object, content: bytes, pattern: str) -> None:
    with pytest.raises(SalmonFormatError, match=pattern):
        reader(io.BytesIO(content))  # type: ignore[operator]
