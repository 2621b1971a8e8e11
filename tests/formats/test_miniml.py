"""GEO MINiML reader.

No real MINiML file is available offline: tests/data/geo/GSE781_family_excerpt.xml and
GSM11805-tbl-1.txt are hand-written in the MINiML 0.5 schema's layout with content copied from
the real GSE781 family SOFT file (tests/data/geo/PROVENANCE.md); the inline snippets below are
hand-written too (characteristics modelled on GEO's ``<Characteristics tag="…">`` layout).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.errors import MinimlFormatError
from genemill.formats.miniml import read_miniml, read_miniml_path

EXCERPT = Path(__file__).parents[1] / "data" / "geo" / "GSE781_family_excerpt.xml"
NS = 'xmlns="http://www.ncbi.nlm.nih.gov/geo/info/MINiML"'


def test_excerpt_series() -> None:
    meta = read_miniml_path(EXCERPT)
    series = meta.series
    assert (meta.source, meta.file_format) == ("GEO", "miniml")
    assert (series.accession, series.title) == (
        "GSE781",
        "Normal and Renal Cell Carcinoma Kidney Tissue, Human",
    )
    assert series.description.startswith("Each total RNA sample is hybridized")
    assert series.pubmed_ids == ["14641932"]
    assert series.contributors == ["Marc E Lenburg", "Louis S Liou"]  # Contributor-Ref, by position
    assert series.submitter_institution == "Boston University School of Medicine"  # via Contact-Ref
    assert (series.submission_date, series.last_update_date) == ("2003-10-24", "2005-05-29")
    assert series.sample_accessions == ["GSM11805", "GSM11814"]
    assert series.platform_accessions == ["GPL96"]
    assert series.supplementary_files == [
        "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/series/GSE781/GSE781_RAW.tar"
    ]


def test_excerpt_platform_with_missing_external_table() -> None:
    (platform,) = read_miniml_path(EXCERPT).platforms
    assert (platform.accession, platform.title) == ("GPL96", "[HG-U133A] Affymetrix Human Genome U133A Array")
    assert (platform.technology, platform.manufacturer, platform.organism) == (
        "in situ oligonucleotide",
        "Affymetrix",
        ["Homo sapiens"],
    )
    assert platform.table is None  # GPL96-tbl-1.txt is not shipped: the reference is kept instead
    assert platform.fields["Data-Table/External-Data"] == ["GPL96-tbl-1.txt"]
    assert platform.fields["Data-Table/External-Data@rows"] == ["22283"]
    assert platform.fields["Data-Table/Column"] == ["ID", "GB_ACC", "Gene Symbol"]
    assert platform.fields["Organism@taxid"] == ["9606"]


def test_excerpt_samples_external_and_internal_tables() -> None:
    external, internal = read_miniml_path(EXCERPT).samples
    assert (external.accession, external.title) == ("GSM11805", "N035 Normal Human Kidney U133A")
    assert (external.platform, external.organism, external.taxon_ids) == ("GPL96", ["Homo sapiens"], [9606])
    assert external.supplementary_files == [
        "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/samples/GSM11nnn/GSM11805/GSM11805.CEL.gz"
    ]
    assert external.fields["Channel1/Source"] == [
        "Trizol isolation of total RNA from normal tissue adjacent to Renal Cell Carcinoma"
    ]
    assert external.fields["Status/Release-Date"] == ["2003-11-25"]
    assert external.table is not None
    assert external.table.columns == ("ID_REF", "VALUE", "ABS_CALL")
    assert external.table.descriptions["VALUE"] == "MAS 5.0 Statistical Algorithm (mean scaled to 500)"
    assert external.table.n_rows == 6 and external.table.text.startswith(b"AFFX-BioB-5_at\t953.9\tP\n")
    assert internal.table is not None and internal.table.n_rows == 6
    assert internal.table.text.splitlines()[-1] == b"AFFX-BioDn-5_at\t1277.6\tP"
    assert internal.table.to_frame().loc[1, "VALUE"] == "951.6"


def test_without_external_dir_the_table_is_left_out() -> None:
    meta = read_miniml(io.BytesIO(EXCERPT.read_bytes()))
    assert meta.samples[0].table is None
    assert meta.samples[0].fields["Data-Table/External-Data"] == ["GSM11805-tbl-1.txt"]
    assert meta.samples[1].table is not None  # internal data needs no directory


def test_gzip_is_detected() -> None:
    packed = gzip.compress(EXCERPT.read_bytes())
    assert read_miniml(io.BytesIO(packed)) == read_miniml(io.BytesIO(EXCERPT.read_bytes()))


CHANNELS = f"""<?xml version="1.0" encoding="UTF-8"?>
<MINiML {NS} version="0.5.0">
  <Sample iid="GSM5173965">
    <Title>mRNA-Control-rep1</Title>
    <Channel-Count>2</Channel-Count>
    <Channel position="1">
      <Source>zebrafish whole embryos</Source>
      <Organism taxid="7955">Danio rerio</Organism>
      <Characteristics tag="strain">
5D
      </Characteristics>
      <Characteristics tag="developmental stage">48 h post fertilization</Characteristics>
      <Characteristics>untagged note</Characteristics>
    </Channel>
    <Channel position="2">
      <Organism taxid="7955">Danio rerio</Organism>
      <Characteristics tag="strain">AB</Characteristics>
    </Channel>
    <Platform-Ref ref="GPL14875" />
    <Supplementary-Data type="unknown">
NONE
    </Supplementary-Data>
    <Relation type="SRA" target="https://www.ncbi.nlm.nih.gov/sra?term=SRX10356586" />
  </Sample>
</MINiML>
""".encode()


def test_characteristics_channels_and_relations() -> None:
    meta = read_miniml(io.BytesIO(CHANNELS))
    (sample,) = meta.samples
    assert sample.characteristics == [
        ("strain", "5D"),
        ("developmental stage", "48 h post fertilization"),
        ("characteristics", "untagged note"),
        ("ch2:strain", "AB"),
    ]
    assert (sample.organism, sample.taxon_ids) == (["Danio rerio"], [7955])
    assert sample.supplementary_files == []  # "NONE"
    assert sample.fields["Channel1/Characteristics[strain]"] == ["5D"]
    assert sample.fields["Relation@target"] == ["https://www.ncbi.nlm.nih.gov/sra?term=SRX10356586"]
    assert (meta.series.accession, meta.series.sample_accessions) == ("", ["GSM5173965"])
    assert meta.series.platform_accessions == ["GPL14875"]


def test_series_relations_become_alternate_accessions() -> None:
    xml = f"""<MINiML {NS}><Series iid="GSE169013"><Title>t</Title>
      <Relation type="BioProject" target="https://www.ncbi.nlm.nih.gov/bioproject/PRJNA714931" />
      <Relation type="SRA" target="https://www.ncbi.nlm.nih.gov/sra?term=SRP310924" />
      <Relation type="SuperSeries of" target="GSE1" /></Series></MINiML>"""
    series = read_miniml(io.BytesIO(xml.encode())).series
    assert series.alternate_accessions == ["PRJNA714931", "SRP310924"]


BAD_INPUT = [
    ("empty", b"", r"<stream>, line 1: not well-formed MINiML XML"),
    ("wrong-root", b"<Foo/>", r"line 1: expected the root element 'MINiML', found 'Foo'"),
    (
        "unclosed",
        f'<MINiML {NS}>\n<Sample iid="GSM1">\n<Title>x</Title>\n</MINiML>'.encode(),
        r"line 4: not well-formed MINiML XML \(mismatched tag",
    ),
    (
        "table-without-data",
        f'<MINiML {NS}><Sample iid="GSM1"><Data-Table><Column position="1"><Name>ID_REF</Name>'
        "</Column></Data-Table></Sample></MINiML>".encode(),
        r"GSM1: Data-Table has neither Internal-Data nor External-Data",
    ),
]


@pytest.mark.parametrize(("data", "pattern"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(data: bytes, pattern: str) -> None:
    with pytest.raises(MinimlFormatError, match=pattern):
        read_miniml(io.BytesIO(data))


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "GSE781_family.xml.gz"
    path.write_bytes(gzip.compress(EXCERPT.read_bytes())[:-30])
    with pytest.raises(MinimlFormatError, match=r"GSE781_family\.xml\.gz: truncated gzip stream"):
        read_miniml_path(path)
