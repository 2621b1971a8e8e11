"""GEO SOFT reader: real GEO files (see data/geo-soft/PROVENANCE.md) and malformed inline input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from genemill.errors import SoftFormatError
from genemill.formats import stream
from genemill.formats.records import ExperimentMetadata
from genemill.formats.soft import iter_soft_entities, read_soft, read_soft_path, unique_columns

GEO = Path(__file__).parents[2] / "data" / "geo-soft"
GSE781 = GEO / "geoquery-extdata" / "GSE781_family.soft.gz"


@pytest.fixture(scope="module")
def gse781() -> ExperimentMetadata:
    return read_soft_path(GSE781)


def _block(accession: str) -> list[str]:
    """The lines of one ^SAMPLE block, read independently of the parser (plain gzip + str)."""
    text = gzip.decompress(GSE781.read_bytes()).decode("utf-8")
    start = text.index(f"^SAMPLE = {accession}\n")
    return text[start : text.index("\n^", start)].split("\n")


def _value(table_text: bytes, probe: bytes) -> bytes:
    row = next(r for r in table_text.split(b"\n") if r.startswith(probe + b"\t"))
    return row.split(b"\t")[1]


# --- GSE781 family file -------------------------------------------------------------------


def test_gse781_series(gse781: ExperimentMetadata) -> None:
    series = gse781.series
    assert (gse781.source, gse781.file_format) == ("GEO", "soft")
    assert series.accession == "GSE781"
    assert series.title == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert series.description.startswith("Each total RNA sample is hybridized to two different arrays")
    assert series.pubmed_ids == ["14641932"]
    assert series.submitter_institution == "Boston University School of Medicine"
    assert series.contributors[:2] == ["Marc E Lenburg", "Louis S Liou"]
    assert (series.submission_date, series.last_update_date) == ("2003-10-24", "2005-05-29")
    assert len(series.sample_accessions) == 34
    assert series.sample_accessions[:2] == ["GSM11805", "GSM11810"]
    assert series.platform_accessions == ["GPL96", "GPL97"]
    assert series.supplementary_files == [
        "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/series/GSE781/GSE781_RAW.tar"
    ]
    assert series.fields["Database_name"] == ["Gene Expression Omnibus (GEO)"]
    assert len(series.fields["Series_summary"]) == 11  # blank summary lines are kept as ""


def test_gse781_platforms(gse781: ExperimentMetadata) -> None:
    gpl96, gpl97 = gse781.platforms
    assert (gpl96.accession, gpl97.accession) == ("GPL96", "GPL97")
    assert gpl96.title == "[HG-U133A] Affymetrix Human Genome U133A Array"
    assert (gpl96.technology, gpl96.manufacturer, gpl96.organism) == (
        "in situ oligonucleotide",
        "Affymetrix",
        ["Homo sapiens"],
    )
    assert gpl96.table is not None and gpl97.table is not None
    assert (gpl96.table.n_rows, gpl97.table.n_rows) == (22283, 22645)
    assert gpl96.table.columns[:3] == ("ID", "GB_ACC", "SPOT_ID")
    assert gpl96.table.descriptions["ENTREZ_GENE_ID"].startswith("Entrez Gene Database UID")
    frame = gpl96.table.to_frame().set_index("ID")
    assert frame.loc["1007_s_at", "Gene Symbol"] == "DDR1"
    assert frame.loc["1007_s_at", "ENTREZ_GENE_ID"] == "780"
    assert len(frame) == 22283


def test_gse781_samples(gse781: ExperimentMetadata) -> None:
    assert len(gse781.samples) == 34
    sample = next(s for s in gse781.samples if s.accession == "GSM11814")
    assert sample.title == "C035 Renal Clear Cell Carcinoma U133A"
    assert (sample.platform, sample.organism) == ("GPL96", ["Homo sapiens"])
    assert sample.characteristics == []  # GSE781 (2003) has no !Sample_characteristics lines
    assert sample.supplementary_files == [
        "ftp://ftp.ncbi.nih.gov/pub/geo/DATA/supplementary/samples/GSM11nnn/GSM11814/GSM11814.CEL.gz"
    ]
    assert sample.table is not None
    assert sample.table.columns == ("ID_REF", "VALUE", "ABS_CALL")
    assert sample.table.n_rows == 22283
    # values read with zcat | grep from the file: "1053_at	240.2	P", "121_at	5711.9	P"
    assert _value(sample.table.text, b"1053_at") == b"240.2"
    assert _value(sample.table.text, b"121_at") == b"5711.9"
    assert sample.table.descriptions["VALUE"] == "MAS 5.0 Statistical Algorithm (mean scaled to 500)"
    for each in gse781.samples:  # every declared row count is met
        assert each.table is not None
        assert str(each.table.n_rows) == each.fields["Sample_data_row_count"][0]


def test_gse781_sample_keeps_every_raw_key_and_the_exact_table(gse781: ExperimentMetadata) -> None:
    lines = _block("GSM11805")
    attributes = [line[1:].partition(" = ") for line in lines if line.startswith("!Sample_")]
    expected: dict[str, list[str]] = {}
    for key, _, value in attributes:
        expected.setdefault(key, []).append(value.strip())
    sample = gse781.samples[0]
    assert sample.accession == "GSM11805"
    assert sample.fields == expected
    assert len(sample.fields["Sample_description"]) == 7
    rows = lines[lines.index("!sample_table_begin") + 2 : lines.index("!sample_table_end")]
    assert sample.table is not None
    assert sample.table.text == ("\n".join(rows) + "\n").encode()


def test_gse781_table_parses_to_numbers(gse781: ExperimentMetadata) -> None:
    sample = next(s for s in gse781.samples if s.accession == "GSM11810")
    assert sample.table is not None
    frame = sample.table.to_frame().set_index("ID_REF")
    assert frame.loc["200000_s_at", "VALUE"] == "2756.8"  # GDS507 holds the same: 2756.800
    assert frame["VALUE"].astype(float).notna().all()


# --- other real SOFT files -------------------------------------------------------------------


def test_gds507_maps_to_a_series_with_subsets() -> None:
    meta = read_soft_path(GEO / "geoquery-extdata" / "GDS507.soft.gz")
    series = meta.series
    assert meta.file_format == "soft-gds"
    assert (series.accession, series.title) == ("GDS507", "Renal clear cell carcinoma (HG-U133B)")
    assert series.alternate_accessions == ["GSE781"]
    assert (series.platform_accessions, series.pubmed_ids) == (["GPL97"], ["14641932"])
    assert series.fields["dataset_value_type"] == ["count"]
    assert len(series.fields["subset_id"]) == 12
    assert series.fields["GDS507_1:subset_description"] == ["RCC"]
    assert len(meta.samples) == 17
    rcc = next(s for s in meta.samples if s.accession == "GSM11815")
    assert rcc.characteristics == [("disease state", "RCC"), ("individual", "035")]
    assert rcc.title == "C035 Renal Clear Cell Carcinoma U133B"
    normal = next(s for s in meta.samples if s.accession == "GSM11810")
    assert normal.table is not None and normal.table.columns == ("ID_REF", "VALUE")
    assert normal.table.n_rows == 22645
    assert _value(normal.table.text, b"200000_s_at") == b"2756.800"
    (platform,) = meta.platforms
    assert platform.accession == "GPL97" and platform.table is not None
    assert _value(platform.table.text, b"200000_s_at") == b"PRPF8"


def test_annotation_file_repeated_columns_get_suffixes() -> None:
    meta = read_soft_path(GEO / "geoquery-extdata" / "GPL97.annot.gz")
    (platform,) = meta.platforms
    assert meta.file_format == "soft-annot"
    assert platform.accession == "GPL97"
    assert platform.title == "Affymetrix GeneChip Human Genome U133 Array Set HG-U133B"
    assert platform.table is not None and platform.table.n_rows == 22645
    assert platform.table.columns[-6:] == (
        "GO:Function",
        "GO:Process",
        "GO:Component",
        "GO:Function.1",
        "GO:Process.1",
        "GO:Component.1",
    )
    assert platform.table.descriptions["GO:Function.1"] == "Gene Ontology Function identifier"
    assert platform.table.to_frame().shape == (22645, 21)


def test_single_sample_crlf_file_matches_the_family_table(gse781: ExperimentMetadata) -> None:
    meta = read_soft_path(GEO / "geoquery-extdata" / "GSM11805.txt.gz")
    (sample,) = meta.samples
    assert (meta.series.accession, meta.series.sample_accessions) == ("", ["GSM11805"])
    assert sample.table is not None and b"\r" not in sample.table.text
    assert sample.table == gse781.samples[0].table


def test_sequencing_family_without_tables() -> None:
    meta = read_soft_path(GEO / "geoparse-tests" / "GSE105845_family.soft")
    assert meta.series.accession == "GSE105845"
    assert meta.series.sample_accessions == ["GSM2828511", "GSM2828512"]
    assert meta.series.fields["Series_sample_taxid"] == ["10090"]
    assert meta.series.fields["Series_summary"][1] == ""  # "!Series_summary =" with nothing after
    (platform,) = meta.platforms
    assert (platform.accession, platform.technology, platform.table) == (
        "GPL13112",
        "high-throughput sequencing",
        None,
    )


def test_two_channel_characteristics_and_latin1() -> None:
    meta = read_soft_path(GEO / "geoparse-tests" / "soft_ex_family.txt")
    sample = meta.samples[0]
    assert sample.accession == "Control Embyronic Stem Cell Replicate 1"
    assert sample.characteristics == [
        ("Cell line", "ES-D3 (CRL-1934)"),
        ("Passages", "4"),
        ("Cell type", "embryonic stem cells derived from blastocysts"),
        ("Strain", "129Sv"),
        ("ch2:Strain", "C57BL/6"),
        ("ch2:Age", "E17.5 d"),
        ("ch2:Tissue", "whole embryo"),
    ]
    assert sample.supplementary_files == ["file1.gpr"]
    latin1 = read_soft_path(GEO / "biopython-tests" / "soft_ex_family.txt")  # 0xb5 bytes, CRLF
    assert latin1.samples[0].characteristics[0] == ("characteristics", "ES-D3 cell line (CRL-1934)")
    protocol = latin1.platforms[0].fields["Platform_manufacture_protocol"][1]
    assert "rearray 5 µL into" in protocol
    assert latin1.platforms[0].table is not None and latin1.platforms[0].table.n_rows == 20


def test_legacy_record_without_table_markers() -> None:
    meta = read_soft_path(GEO / "biopython-tests" / "GSM645.txt")
    (sample,) = meta.samples
    assert (sample.accession, sample.title, sample.organism) == (
        "GSM645",
        "Large Pre-BII cells 8b",
        ["Mus musculus"],
    )
    assert sample.table is not None
    assert sample.table.columns[:2] == ("ID_REF", "Experiment Name")
    assert sample.table.n_rows == 20
    assert sample.table.descriptions["ID_REF"] == "Affymetrix Probe Set Identifier"


def test_bare_carriage_returns_in_values() -> None:
    meta = read_soft_path(GEO / "geoparse-tests" / "GSM32878.txt")  # has a "\r\r\n" line
    (sample,) = meta.samples
    assert sample.fields["Sample_description"][1] == ""
    assert sample.table is not None and sample.table.n_rows == 2


def test_platform_table_closed_by_the_wrong_marker_is_an_error() -> None:
    # GEOparse's test file cuts GPL20814's table and closes it with '!sample_table_end'.
    with pytest.raises(
        SoftFormatError, match=r"GPL20814_family\.soft: '!platform_table_begin' at line 37 has no"
    ):
        read_soft_path(GEO / "geoparse-tests" / "GPL20814_family.soft")


# --- gzip, streaming and chunk boundaries ------------------------------------------------------


def test_gzip_is_detected_by_content_and_members_may_repeat() -> None:
    plain = (GEO / "geoparse-tests" / "soft_ex_family.txt").read_bytes()
    expected = read_soft(io.BytesIO(plain))
    middle = plain.index(b"^SAMPLE")
    two_members = gzip.compress(plain[:middle]) + gzip.compress(plain[middle:])
    assert read_soft(io.BytesIO(two_members)) == expected
    assert read_soft(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(plain)))) == expected


@pytest.mark.parametrize("chunk", [64, 65, 100, 1000, 4096], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_results_do_not_depend_on_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch, chunk: int, compress: bool
) -> None:
    plain = (GEO / "geoparse-tests" / "soft_ex_family.txt").read_bytes()
    expected = read_soft(io.BytesIO(plain))
    monkeypatch.setattr(stream, "_PLAIN_CHUNK", chunk)
    monkeypatch.setattr(stream, "_RAW_CHUNK", max(chunk // 4, 16))
    data = gzip.compress(plain) if compress else plain
    assert read_soft(io.BytesIO(data)) == expected


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0
        self.largest = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        self.largest = max(self.largest, len(chunk))
        return chunk


def test_entities_are_streamed() -> None:
    data = GSE781.read_bytes()
    handle = _CountingReader(data)
    entities = iter_soft_entities(handle)
    assert next(entities).kind == "DATABASE"
    assert handle.consumed <= 2 * (1 << 18) + 2  # one or two compressed chunks, not the file
    kinds = [next(entities).kind for _ in range(4)]
    assert kinds == ["SERIES", "PLATFORM", "PLATFORM", "SAMPLE"]
    assert handle.consumed < len(data) * 0.9  # 33 sample blocks still unread
    assert handle.largest <= 1 << 18  # bounded reads


# --- malformed input ---------------------------------------------------------------------------

BAD_INPUT = [
    ("empty", b"", r"<stream>: no SOFT entity found"),
    ("blank-lines-only", b"\n\n  \n", r"no SOFT entity found"),
    ("attribute-first", b"!Sample_title = x\n", r"line 1: expected '\^ENTITY = ID' before anything"),
    ("malformed-line", b"^SAMPLE = GSM1\n!Sample_title = x\nthis is not soft\n", r"line 3: expected a line"),
    ("no-equals", b"^SAMPLE = GSM1\n!Sample_title x\n", r"line 2: expected '!key = value'"),
    ("sample-without-id", b"^SAMPLE = \n!Sample_title = x\n", r"line 1: '\^SAMPLE' block has no ID"),
    ("bare-sample", b"^SERIES = GSE1\n^SAMPLE\n", r"line 2: '\^SAMPLE' block has no ID"),
    ("unknown-entity", b"^FOO = 1\n", r"line 1: unknown entity '\^FOO'"),
    (
        "table-without-end",
        b"^SAMPLE = GSM1\n!sample_table_begin\nID_REF\tVALUE\nA\t1\n",
        r"'!sample_table_begin' at line 2 has no matching '!sample_table_end' before the end",
    ),
    (
        "table-without-header",
        b"^SAMPLE = GSM1\n!sample_table_begin\n",
        r"'!sample_table_begin' at line 2 has no matching '!sample_table_end'",
    ),
    (
        "table-runs-into-next-sample",
        b"^SAMPLE = GSM1\n!sample_table_begin\nID_REF\tVALUE\nA\t1\n"
        b"^SAMPLE = GSM2\n!sample_table_begin\nID_REF\tVALUE\nB\t2\n!sample_table_end\n",
        r"line 5: the table opened by '!sample_table_begin' at line 2 runs into a '\^' line",
    ),
    (
        "text-after-table",
        b"^SAMPLE = GSM1\n!sample_table_begin\nID_REF\tVALUE\n!sample_table_end\nA\t1\n",
        r"line 5: expected a line starting with",
    ),
    (
        "bad-taxid",
        b"^SAMPLE = GSM1\n!Sample_taxid_ch1 = human\n",
        r"<stream>: GSM1: 'Sample_taxid_ch\*' holds",
    ),
]


@pytest.mark.parametrize(("data", "pattern"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(data: bytes, pattern: str) -> None:
    with pytest.raises(SoftFormatError, match=pattern):
        read_soft(io.BytesIO(data))


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    truncated = tmp_path / "GSE781_family.soft.gz"
    truncated.write_bytes(GSE781.read_bytes()[:300_000])
    with pytest.raises(SoftFormatError, match=r"GSE781_family\.soft\.gz: truncated gzip stream"):
        read_soft_path(truncated)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    data = bytearray(gzip.compress((GEO / "geoparse-tests" / "GPL4133.txt").read_bytes()))
    data[-8] ^= 0xFF  # CRC-32 of the member
    corrupt = tmp_path / "GPL4133.txt.gz"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(SoftFormatError, match=r"GPL4133\.txt\.gz: corrupt gzip data .*(incorrect data check|Incorrect checksum)"):
        read_soft_path(corrupt)


def test_trailing_garbage_after_gzip_is_an_error() -> None:
    data = gzip.compress(b"^SAMPLE = GSM1\n") + b"garbage"
    with pytest.raises(SoftFormatError, match=r"unexpected bytes after the gzip stream"):
        read_soft(io.BytesIO(data))


def test_text_handle_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a binary handle"):
        read_soft(io.StringIO("^SAMPLE = GSM1\n"))  # type: ignore[arg-type]


def test_first_entity_arrives_before_a_later_error() -> None:
    entities = iter_soft_entities(io.BytesIO(b"^SAMPLE = GSM1\n!Sample_title = ok\n^SAMPLE = \n"))
    assert next(entities).fields == {"Sample_title": ["ok"]}
    with pytest.raises(SoftFormatError, match="line 3"):
        next(entities)


def test_unique_columns() -> None:
    assert unique_columns(("a", "b", "a", "a"), [("a", "x"), ("a", "y")]) == (
        ("a", "b", "a.1", "a.2"),
        {"a": "x", "a.1": "y"},
    )
