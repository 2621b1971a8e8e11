"""GEO series matrix reader.

No real series matrix file is available offline, so the inputs are hand-written in GEO's series
matrix layout: tests/data/geo/GSE781-GPL96_series_matrix_excerpt.txt (its values copied from the
real GSE781 family SOFT file, see tests/data/geo/PROVENANCE.md) and the inline snippets below.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.errors import SeriesMatrixFormatError
from genemill.formats.series_matrix import read_series_matrix, read_series_matrix_path

EXCERPT = Path(__file__).parents[1] / "data" / "geo" / "GSE781-GPL96_series_matrix_excerpt.txt"


def test_excerpt_series_and_samples() -> None:
    meta = read_series_matrix_path(EXCERPT)
    assert (meta.source, meta.file_format) == ("GEO", "series-matrix")
    series = meta.series
    assert series.accession == "GSE781"
    assert series.title == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert series.sample_accessions == ["GSM11805", "GSM11814", "GSM11823"]  # one space-separated value
    assert series.platform_accessions == ["GPL96"]
    assert series.submission_date == "2003-10-24"
    assert series.contributors[0] == "Marc E Lenburg"
    assert series.submitter_institution == "Boston University School of Medicine"
    assert [p.accession for p in meta.platforms] == ["GPL96"]
    sample = meta.samples[1]
    assert (sample.accession, sample.title, sample.platform) == (
        "GSM11814",
        "C035 Renal Clear Cell Carcinoma U133A",
        "GPL96",
    )
    assert sample.organism == ["Homo sapiens"]
    assert len(sample.fields["Sample_description"]) == 7
    assert sample.fields["Sample_data_row_count"] == ["22283"]


def test_excerpt_matrix_becomes_per_sample_tables() -> None:
    meta = read_series_matrix_path(EXCERPT)
    tables = {s.accession: s.table for s in meta.samples}
    table = tables["GSM11814"]
    assert table is not None
    assert table.columns == ("ID_REF", "VALUE") and table.n_rows == 6
    assert table.text.split(b"\n")[2] == b"1053_at\t240.2"  # same value as the family SOFT file
    frame = table.to_frame(dtype=str).set_index("ID_REF")
    assert frame.loc["121_at", "VALUE"] == "5711.9"
    assert tables["GSM11805"] is not None
    assert tables["GSM11805"].text.startswith(b"AFFX-BioB-5_at\t953.9\n")


def test_gzip_and_crlf_give_the_same_result(tmp_path: Path) -> None:
    plain = EXCERPT.read_bytes()
    packed = tmp_path / "GSE781-GPL96_series_matrix.txt.gz"
    packed.write_bytes(gzip.compress(plain.replace(b"\n", b"\r\n")))
    assert read_series_matrix_path(packed) == read_series_matrix_path(EXCERPT)


# Hand-written in GEO's layout: quoted values, characteristics rows repeated, a blank line.
TWO_CHANNEL = b"""!Series_title\t"Toy series"
!Series_geo_accession\t"GSE1"
!Series_relation\t"SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRP000001"
!Series_relation\t"BioProject: https://www.ncbi.nlm.nih.gov/bioproject/PRJNA1"

!Sample_title\t"a"\t"b"
!Sample_geo_accession\t"GSM1"\t"GSM2"
!Sample_characteristics_ch1\t"tissue: liver"\t"tissue: kidney"
!Sample_characteristics_ch1\t"age: 3 weeks"\t""
!Sample_characteristics_ch2\t"reference"\t"reference"
!Sample_taxid_ch1\t"10090"\t"10090"
!Sample_platform_id\t"GPL1"\t"GPL1"
!series_matrix_table_begin
"ID_REF"\t"GSM1"\t"GSM2"
"p1"\t1.5\t2.5
"p2"\tnull\t"3"
!series_matrix_table_end
"""


def test_characteristics_relations_and_quotes() -> None:
    meta = read_series_matrix(io.BytesIO(TWO_CHANNEL))
    first, second = meta.samples
    assert first.characteristics == [
        ("tissue", "liver"),
        ("age", "3 weeks"),
        ("ch2:characteristics", "reference"),
    ]
    assert second.characteristics == [("tissue", "kidney"), ("ch2:characteristics", "reference")]
    assert second.fields["Sample_characteristics_ch1"] == ["tissue: kidney", ""]
    assert first.taxon_ids == [10090]
    assert meta.series.alternate_accessions == ["SRP000001", "PRJNA1"]
    assert second.table is not None and second.table.text == b"p1\t2.5\np2\t3\n"
    assert first.table is not None and first.table.text == b"p1\t1.5\np2\tnull\n"


def test_empty_matrix_rnaseq_style() -> None:
    data = b'!Series_geo_accession\t"GSE2"\n!Sample_geo_accession\t"GSM9"\n'
    data += b'!series_matrix_table_begin\n"ID_REF"\t"GSM9"\n!series_matrix_table_end\n'
    (sample,) = read_series_matrix(io.BytesIO(data)).samples
    assert sample.table is not None and (sample.table.n_rows, sample.table.text) == (0, b"")


BAD_INPUT = [
    ("empty", b"", r"<stream>: empty series matrix"),
    ("stray-text", b'!Series_geo_accession\t"GSE1"\nhello\n', r"line 2: expected a '!Series_"),
    (
        "no-accession-row",
        b'!Series_geo_accession\t"GSE1"\n!Sample_title\t"a"\n',
        r"no '!Sample_geo_accession' row",
    ),
    (
        "short-sample-row",
        b'!Sample_geo_accession\t"GSM1"\t"GSM2"\n!Sample_title\t"a"\n',
        r"line 2: '!Sample_title' has 1 values, expected one per sample \(2\)",
    ),
    (
        "no-table-end",
        b'!Sample_geo_accession\t"GSM1"\n!series_matrix_table_begin\n"ID_REF"\t"GSM1"\n"p"\t1\n',
        r"'!series_matrix_table_begin' at line 2 has no matching '!series_matrix_table_end'",
    ),
    (
        "ragged-row",
        b'!Sample_geo_accession\t"GSM1"\n!series_matrix_table_begin\n"ID_REF"\t"GSM1"\n"p"\t1\n"q"\n'
        b"!series_matrix_table_end\n",
        r"line 5: expected 2 tab-separated cells in the matrix, found 1",
    ),
    (
        "bad-header",
        b'!Sample_geo_accession\t"GSM1"\n!series_matrix_table_begin\n"ID"\t"GSM1"\n!series_matrix_table_end\n',
        r"line 3: expected the matrix header 'ID_REF'",
    ),
    (
        "unknown-column",
        b'!Sample_geo_accession\t"GSM1"\n!series_matrix_table_begin\n"ID_REF"\t"GSM7"\n!series_matrix_table_end\n',
        r"matrix columns \['GSM7'\] are not in '!Sample_geo_accession'",
    ),
]


@pytest.mark.parametrize(("data", "pattern"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(data: bytes, pattern: str) -> None:
    with pytest.raises(SeriesMatrixFormatError, match=pattern):
        read_series_matrix(io.BytesIO(data))


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "GSE781_series_matrix.txt.gz"
    path.write_bytes(gzip.compress(EXCERPT.read_bytes())[:-20])
    with pytest.raises(SeriesMatrixFormatError, match=r"GSE781_series_matrix\.txt\.gz: truncated gzip"):
        read_series_matrix_path(path)
