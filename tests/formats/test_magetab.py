"""ArrayExpress MAGE-TAB reader: real IDF/SDRF files (data/magetab-caarray/PROVENANCE.md,
data/affy-cel-without-cdf/PROVENANCE.md) and hand-written inline snippets for the edge cases."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from genemill.errors import MageTabFormatError
from genemill.formats.magetab import read_idf, read_magetab, read_sdrf, sample_accession

DATA = Path(__file__).parents[2] / "data"
CAARRAY = DATA / "magetab-caarray"
E_MTAB_3050 = DATA / "affy-cel-without-cdf" / "E-MTAB-3050.sdrf.txt"


def test_e_mexp_428_idf_and_sdrf() -> None:
    meta = read_magetab(CAARRAY / "e-mexp-428_v1.0.idf")  # SDRF found through 'SDRF File'
    series = meta.series
    assert (meta.source, meta.file_format) == ("ARRAY_EXPRESS", "mage-tab")
    assert series.accession == "E-MEXP-428"  # no Comment[ArrayExpressAccession]: from the name
    assert series.title == "University of Heidelberg H sapiens TK6"
    assert series.description.startswith("Gene expression of TK6 cells transduced with an oncoretrovirus")
    assert series.pubmed_ids == ["16953664"]
    assert series.submitter_institution == "Department of Radiation Oncology, University of Heidelberg"
    assert len(series.contributors) == 8
    assert series.contributors[4] == "Jens W Zeller"  # mid initials aligned by column
    assert series.fields["Person Mid Initials"] == ["", "", "", "", "W"]  # internal blanks kept
    assert series.fields["Public Release Date"] == ["2005-04-01"]
    assert series.platform_accessions == ["A-AFFY-44"]
    assert [p.accession for p in meta.platforms] == ["A-AFFY-44"]
    assert len(meta.samples) == 6
    sample = meta.samples[2]
    assert sample.accession == "E-MEXP-428-H_TK6MDR1 replicate 1"  # the assay name holds the file stem
    assert sample.title == "TK6MDR1 replicate 1"
    assert sample.characteristics == [("EF1", "SF91m3 oncoretrovirus")]
    assert sample.platform == "A-AFFY-44"
    assert sample.supplementary_files == ["H_TK6 MDR1 replicate 1.CEL", "e-mexp-428data_v1.0.data"]
    assert sample.fields["Protocol REF"] == ["P-AFFY-2", "TRANPRTCL10656"]  # duplicate columns
    assert sample.fields["Factor Value [EF1](genotype)"] == ["SF91m3 oncoretrovirus"]
    assert series.sample_accessions[0] == "E-MEXP-428-H_TK6 replicate 1"


def test_large_gsk_sdrf_with_comment_header() -> None:
    meta = read_magetab(CAARRAY / "GSK_RNA.idf")
    assert meta.series.accession == ""  # neither a Comment nor an E-XXXX-n file name
    assert meta.series.title == "Transcriptomics for Cancer Cell Line Project"
    assert meta.series.submitter_institution == "GSK"
    assert len(meta.samples) == 950
    first = meta.samples[0]
    assert first.accession == "1A2 - Replicate 1"
    assert first.organism == ["Homo sapiens"]
    assert ("Cell Line Name", "1A2") in first.characteristics
    assert ("DISEASESTATE", "Burkitt Lymphoma") not in first.characteristics  # same as DiseaseState
    assert first.fields["Term Source REF"][2] == "ncbitax"  # "ncbitax " stripped
    assert first.fields["Material Type"] == ["Cell", "cDNA", "cRNA"]


def test_refine_bio_sdrf_with_mis_encoded_text_and_two_tables() -> None:
    with E_MTAB_3050.open("rb") as fh:
        samples = read_sdrf(fh, path_hint=str(E_MTAB_3050))
    assert len(samples) == 7  # 5 assays of the first table, 2 of the appended second table
    first = samples[0]
    assert first.accession == "E-MTAB-3050-1007409-C30057"  # refine.bio: assay name holds "C30057"
    assert first.title == "donor A islets"
    assert (first.organism, first.platform) == (["Homo sapiens"], "A-AFFY-1")
    assert ("age", "54 year") in first.characteristics  # Unit[time unit] appended
    assert ("test result", "NA") in first.characteristics
    assert "C30057.CEL" in first.supplementary_files
    assert first.fields["Description"][0].startswith("ï¿½Islets from 54 years old female")  # as upstream
    assert samples[5].accession == "E-MTAB-3050-SAMPLE229091SUB6092"
    assert samples[5].platform == "A-AFFY-38"
    assert ("Genotype", "RPL11 mutation") in samples[5].characteristics


def test_quoted_idf_with_bare_carriage_returns() -> None:
    with (CAARRAY / "experiment-id-1015897590474521.idf").open("rb") as fh:
        series = read_idf(fh)
    assert series.title.startswith("A catalytic antioxidant (AEOL 10150)")
    assert series.pubmed_ids == ["12374626"]
    assert series.contributors == ["Russell Bowler", "JD Crapo"]
    assert series.submitter_institution == "National Jewish Medical and Research Center"


def test_sample_accession_rule() -> None:
    def rule(source: str, assay: str, filename: str = "") -> str:
        return sample_accession("E-MTAB-1", source=source, assay=assay, filename=filename)

    assert rule("donor A", "1007409-C30057", "C30057.CEL") == "E-MTAB-1-1007409-C30057"  # file stem
    assert rule("S1", "hyb 1") == "E-MTAB-1-S1"  # the one without spaces
    assert rule("long source", "short x") == "E-MTAB-1-long source"  # else the longer
    assert rule("mouse 1", "") == "E-MTAB-1-mouse 1"  # only one of the two
    assert sample_accession("", source="a", assay="", filename="") == "a"


# Hand-written SDRFs in MAGE-TAB layout.
LATIN1 = (
    b"Source Name\tCharacteristics[organism]\tCharacteristics[strain]\tCharacteristics[organism]"
    b"\tArray Data File\tComment[FASTQ_URI]\t\t\r\n"
    b"mouse 1\tMus musculus\tC57BL/6 \xe9l\xe8ve\tMus musculus\tm1.CEL\tftp://x/m1.fq.gz\t\t\r\n"
)
TWO_CHANNEL = (
    b"Source Name\tCharacteristics[organism]\tLabel\tHybridization Name\tArray Data File\tFactor Value[dose]\n"
    b"s1\tHomo sapiens\tCy3\thyb1\thyb1.gpr\t0\n"
    b"s2\tHomo sapiens\tCy5\thyb1\thyb1.gpr\t10\n"
)


def test_latin1_duplicate_and_trailing_empty_columns() -> None:
    (sample,) = read_sdrf(io.BytesIO(LATIN1), experiment="E-TABM-1")
    assert sample.accession == "E-TABM-1-mouse 1"
    assert sample.characteristics == [
        ("organism", "Mus musculus"),
        ("strain", "C57BL/6 élève"),
        ("organism", "Mus musculus"),
    ]
    assert sample.fields["Characteristics[organism]"] == ["Mus musculus", "Mus musculus"]
    assert "" not in sample.fields  # the two empty trailing header cells are dropped
    assert sample.supplementary_files == ["m1.CEL", "ftp://x/m1.fq.gz"]


def test_channels_of_one_hybridization_merge() -> None:
    (sample,) = read_sdrf(io.BytesIO(TWO_CHANNEL), experiment="E-GEOD-1")
    assert sample.accession == "E-GEOD-1-hyb1"
    assert sample.fields["Label"] == ["Cy3", "Cy5"]
    assert sample.fields["Source Name"] == ["s1", "s2"]
    assert sample.characteristics == [("organism", "Homo sapiens"), ("dose", "0"), ("dose", "10")]


BAD_SDRF = [
    ("empty", b"", r"<stream>: empty file"),
    ("comments-only", b"# nothing\n\n", r"empty file"),
    (
        "too-many-cells",
        b"Source Name\tArray Data File\ns1\ta.CEL\n\ns2\tb.CEL\textra\n",
        r"line 4: row has 3 cells but the header names 2 columns",
    ),
    ("no-names", b"Source Name\tLabel\n\tCy3\n", r"line 2: row has no Source Name"),
]


@pytest.mark.parametrize(("data", "pattern"), [c[1:] for c in BAD_SDRF], ids=[c[0] for c in BAD_SDRF])
def test_bad_sdrf(data: bytes, pattern: str) -> None:
    with pytest.raises(MageTabFormatError, match=pattern):
        read_sdrf(io.BytesIO(data))


def test_missing_sdrf_is_reported(tmp_path: Path) -> None:
    idf = tmp_path / "E-MEXP-428.idf.txt"
    shutil.copy(CAARRAY / "e-mexp-428_v1.0.idf", idf)
    with pytest.raises(
        MageTabFormatError, match=r"E-MEXP-428\.idf\.txt: the SDRF named by .*e-mexp-428_v1\.0\.sdrf"
    ):
        read_magetab(idf)
    idf.write_bytes(b"Investigation Title\tx\n")
    with pytest.raises(MageTabFormatError, match=r"no 'SDRF File' row"):
        read_magetab(idf)


def test_explicit_sdrf_path(tmp_path: Path) -> None:
    idf = tmp_path / "E-MTAB-3050.idf.txt"
    idf.write_bytes(b'"Investigation Title"\t"islets"\nComment[ArrayExpressAccession]\tE-MTAB-3050\n')
    meta = read_magetab(idf, E_MTAB_3050)
    assert meta.series.accession == "E-MTAB-3050"
    assert meta.series.platform_accessions == ["A-AFFY-1", "A-AFFY-38"]
    assert len(meta.series.sample_accessions) == 7
