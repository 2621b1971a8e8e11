"""Tests for genemill.formats.gtf: tx2gene from GTF, two-column tables and GENCODE names."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.errors import FormatError
from genemill.formats.gtf import (
    read_tx2gene_gtf,
    read_tx2gene_table,
    strip_version,
    tx2gene_from_gencode_names,
)
from genemill.formats.salmon import read_salmon_quant

DATA = Path(__file__).parents[2] / "data"
KALLISTO_GTF = DATA / "rnaseq-kallisto-test" / "transcripts.gtf.gz"
REFINEBIO_T2G = DATA / "rnaseq-refinebio-SRP095529" / "genes_to_transcripts.txt.gz"

# GENCODE-style lines (versioned ids, unquoted level) written for these tests, not from a release.
GENCODE_LINES = (
    b"##description: test\n"
    b'chr1\tHAVANA\tgene\t11869\t14409\t.\t+\t.\tgene_id "ENSG00000223972.5"; gene_name "DDX11L1"; level 2;\n'
    b'chr1\tHAVANA\ttranscript\t11869\t14409\t.\t+\t.\tgene_id "ENSG00000223972.5"; '
    b'transcript_id "ENST00000456328.2"; gene_name "DDX11L1"; level 2;\n'
    b'chr1\tHAVANA\texon\t11869\t12227\t.\t+\t.\tgene_id "ENSG00000223972.5"; '
    b'transcript_id "ENST00000456328.2"; exon_number 1;\n'
    b'chrY\tHAVANA\ttranscript\t1\t9\t.\t+\t.\tgene_id "ENSG00000182378.14_PAR_Y"; '
    b'transcript_id "ENST00000381192.10_PAR_Y"; gene_name "PLCXD1";\n'
)


def test_real_ensembl_gtf_transcript_rows() -> None:
    with KALLISTO_GTF.open("rb") as fh:
        table = read_tx2gene_gtf(fh)
    assert list(table.columns) == ["transcript_id", "gene_id", "gene_name"]
    assert len(table) == 27  # 27 'transcript' rows in the file
    assert table["transcript_id"].is_unique
    first = table.iloc[0]
    assert (first["transcript_id"], first["gene_id"], first["gene_name"]) == (
        "ENST00000282507",
        "ENSG00000168671",
        "UGT3A2",
    )
    assert table["gene_id"].nunique() == 11  # 11 'gene' rows


def test_real_ensembl_gtf_append_versions() -> None:
    with KALLISTO_GTF.open("rb") as fh:
        table = read_tx2gene_gtf(fh, versions="append")
    assert table.iloc[0]["transcript_id"] == "ENST00000282507.7"
    assert table.iloc[0]["gene_id"] == "ENSG00000168671.9"


def test_exon_fallback_equals_transcript_rows() -> None:
    raw = gzip.decompress(KALLISTO_GTF.read_bytes())
    without_transcripts = b"".join(
        line for line in raw.splitlines(keepends=True) if b"\ttranscript\t" not in line
    )
    from_exons = read_tx2gene_gtf(io.BytesIO(without_transcripts))
    from_transcripts = read_tx2gene_gtf(io.BytesIO(raw))
    assert sorted(map(tuple, from_exons.to_numpy())) == sorted(map(tuple, from_transcripts.to_numpy()))


def test_gencode_versions_strip_and_keep() -> None:
    kept = read_tx2gene_gtf(io.BytesIO(GENCODE_LINES))
    assert list(kept["transcript_id"]) == ["ENST00000456328.2", "ENST00000381192.10_PAR_Y"]
    stripped = read_tx2gene_gtf(io.BytesIO(gzip.compress(GENCODE_LINES)), versions="strip")
    assert list(stripped["transcript_id"]) == ["ENST00000456328", "ENST00000381192_PAR_Y"]
    assert list(stripped["gene_id"]) == ["ENSG00000223972", "ENSG00000182378_PAR_Y"]
    appended = read_tx2gene_gtf(io.BytesIO(GENCODE_LINES), versions="append")
    assert list(appended["transcript_id"]) == list(kept["transcript_id"])  # already versioned


def test_text_handle_and_no_gene_name_column() -> None:
    text = 'c\ts\ttranscript\t1\t2\t.\t+\t.\tgene_id "G1"; transcript_id "T1";\n'
    table = read_tx2gene_gtf(io.StringIO(text))
    assert list(table.columns) == ["transcript_id", "gene_id"]


def test_strip_version() -> None:
    assert strip_version(["ENST1.2", "ENST2", "ENST3.10_PAR_Y", "name.with.dots.3"]) == [
        "ENST1",
        "ENST2",
        "ENST3_PAR_Y",
        "name.with.dots",
    ]


BAD_GTF = [
    (
        b'c\ts\ttranscript\t1\t2\t.\t+\tgene_id "G";\n',
        r"<stream>, line 1: expected 9 tab-separated columns, found 8",
    ),
    (b'c\ts\ttranscript\t1\t2\t.\t+\t.\tgene_id "G1";\n', r"line 1: attribute 'transcript_id' missing from"),
    (
        b'c\ts\ttranscript\t1\t2\t.\t+\t.\tgene_id "G1"; transcript_id "T1";\n'
        b'c\ts\ttranscript\t1\t2\t.\t+\t.\tgene_id "G2"; transcript_id "T1";\n',
        r"line 2: transcript 'T1' is assigned to gene 'G2' here and to 'G1' on an earlier line",
    ),
    (b'#!genome-build x\nc\ts\tgene\t1\t2\t.\t+\t.\tgene_id "G1";\n', r"no 'transcript' or 'exon' rows"),
]


@pytest.mark.parametrize(
    ("content", "pattern"), BAD_GTF, ids=["columns", "no-transcript-id", "two-genes", "no-rows"]
)
def test_bad_gtf(content: bytes, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        read_tx2gene_gtf(io.BytesIO(content))


def test_truncated_gzip_gtf() -> None:
    compressed = KALLISTO_GTF.read_bytes()
    with pytest.raises(FormatError, match="truncated gzip stream"):
        read_tx2gene_gtf(io.BytesIO(compressed[: len(compressed) // 2]))


def test_bad_versions_option() -> None:
    with pytest.raises(ValueError, match="versions must be"):
        read_tx2gene_gtf(io.BytesIO(GENCODE_LINES), versions="drop")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ tables


def test_real_refinebio_genes_to_transcripts() -> None:
    with REFINEBIO_T2G.open("rb") as fh:
        table = read_tx2gene_table(fh, order="gene_transcript")
    assert list(table.columns) == ["transcript_id", "gene_id"]
    assert table.iloc[0].tolist() == ["ENSDART00000171737", "ENSDARG00000102141"]
    assert table["transcript_id"].str.startswith("ENSDART").all()
    assert table["gene_id"].nunique() == 32195  # PROVENANCE.md: 32,195 genes


def test_swapped_column_order_is_rejected_with_advice() -> None:
    with REFINEBIO_T2G.open("rb") as fh, pytest.raises(FormatError) as info:
        read_tx2gene_table(fh)
    assert "pass order='gene_transcript'" in str(info.value)
    assert str(info.value).startswith(str(REFINEBIO_T2G))


def test_csv_with_tximport_header_detected() -> None:
    text = b"TXNAME,GENEID\nENST00000456328.2,ENSG00000223972.5\nENST00000450305.2,ENSG00000223972.5\n"
    table = read_tx2gene_table(io.BytesIO(text))
    assert table["transcript_id"].tolist() == ["ENST00000456328.2", "ENST00000450305.2"]
    assert table["gene_id"].tolist() == ["ENSG00000223972.5"] * 2


def test_explicit_header_and_extra_columns() -> None:
    text = b"a\tb\tc\nT1\tG1\tx\nT2\tG2\ty\n"
    table = read_tx2gene_table(io.BytesIO(text), header=True)
    assert table.to_numpy().tolist() == [["T1", "G1"], ["T2", "G2"]]
    no_header = read_tx2gene_table(io.BytesIO(text), header=False)
    assert len(no_header) == 3


BAD_TABLES = [
    (b"", r"line 1: empty transcript/gene table"),
    (b"T1\tG1\nT2\tG2\textra\n", r"line 2: expected 2 '\\t'-separated columns \(as on the first line\)"),
    (b"T1\tG1\nT2\t\n", r"line 2: expected two non-empty '\\t'-separated columns, found an empty cell"),
    (b"T1\n", r"line 1: expected two ','-separated columns \(transcript, gene\), found one"),
]


@pytest.mark.parametrize(
    ("content", "pattern"), BAD_TABLES, ids=["empty", "ragged", "empty-cell", "one-column"]
)
def test_bad_tables(content: bytes, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        read_tx2gene_table(io.BytesIO(content))


# ---------------------------------------------------------------------------------- GENCODE names


def test_gencode_names_from_real_quant() -> None:
    with (DATA / "rnaseq-pytximport-mouse-subset" / "Sample_1.sf").open("rb") as fh:
        names = read_salmon_quant(fh).names
    table = tx2gene_from_gencode_names(names)
    assert len(table) == 500
    assert table["transcript_id"].tolist() == list(names)
    assert table.iloc[0]["gene_id"] == "ENSMUSG00000083355.2"
    assert table.iloc[0]["gene_name"] == "Gm11581"


def test_gencode_names_rejects_plain_ids() -> None:
    with pytest.raises(FormatError, match=r"transcript name 2 \('ENST2'\) is not a GENCODE"):
        tx2gene_from_gencode_names(["T|G|a|b|c|d|1|x|", "ENST2"])
