"""Tests for genemill.rnaseq.tximport, the public tximport equivalent, against R tximport 1.26."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genemill.errors import InputError, SalmonFormatError
from genemill.formats.gtf import tx2gene_from_gencode_names
from genemill.rnaseq import sample_name, tximport

ROOT = Path(__file__).parents[1]
DATA = ROOT / "data"
REFERENCE = ROOT / "tests" / "data" / "reference" / "tximport"
GENERATED = REFERENCE / "generated-inputs"
ZEBRAFISH = DATA / "rnaseq-refinebio-SRP095529"
MOUSE = sorted((DATA / "rnaseq-pytximport-mouse-subset").glob("Sample_*.sf"))
SALMON_110 = ROOT / "tests" / "data" / "salmon" / "salmon-1.10.1-example"
MODES = ["no", "scaledTPM", "lengthScaledTPM"]


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", index_col=0, dtype={0: str}, float_precision="round_trip")


def r_reference(name: str, counts_from_abundance: str) -> dict[str, pd.DataFrame]:
    """R's tables for one set; factored count tables are rebuilt as R computed them (see README)."""
    folder = REFERENCE / name
    abundance, length = _table(folder / "abundance.tsv.gz"), _table(folder / "length.tsv.gz")
    full = folder / f"counts_{counts_from_abundance}.tsv.gz"
    if full.exists():
        counts = _table(full)
    else:
        factor = _table(folder / "scale_factors.tsv")[counts_from_abundance].to_numpy()
        new = abundance.to_numpy()
        if counts_from_abundance == "lengthScaledTPM":
            new = new * _table(folder / "mean_length.tsv.gz")["mean_length"].to_numpy()[:, None]
        counts = pd.DataFrame(new * factor[None, :], index=abundance.index, columns=abundance.columns)
    return {"counts": counts, "abundance": abundance, "length": length}


def assert_equals_r(result: object, name: str, counts_from_abundance: str) -> None:
    reference = r_reference(name, counts_from_abundance)
    for key, expected in reference.items():
        got = getattr(result, key)
        assert got.index.tolist() == expected.index.tolist(), key
        assert got.columns.tolist() == expected.columns.tolist(), key
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=0, err_msg=key)


@pytest.fixture(scope="module")
def mouse_tx2gene() -> pd.DataFrame:
    names = pd.read_csv(MOUSE[0], sep="\t", usecols=["Name"])["Name"]
    return tx2gene_from_gencode_names(names)


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_zebrafish_refinebio_equals_r(counts_from_abundance: str) -> None:
    result = tximport(
        sorted(ZEBRAFISH.glob("SRR*.quant.sf.gz")),
        ZEBRAFISH / "genes_to_transcripts.txt.gz",
        tx2gene_order="gene_transcript",
        counts_from_abundance=counts_from_abundance,  # type: ignore[arg-type]
    )
    assert result.counts.shape == (31882, 6)
    assert result.counts.columns.tolist() == [f"SRR51256{i}" for i in range(21, 27)]
    assert result.counts.index.name == "gene_id"
    assert result.counts_from_abundance == counts_from_abundance
    assert result.dropped_transcripts == ()
    assert_equals_r(result, "zebrafish-SRP095529", counts_from_abundance)


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_mouse_gencode_names_equals_r(mouse_tx2gene: pd.DataFrame, counts_from_abundance: str) -> None:
    result = tximport(MOUSE, mouse_tx2gene, counts_from_abundance=counts_from_abundance)  # type: ignore[arg-type]
    assert result.counts.columns.tolist() == ["Sample_1", "Sample_2", "Sample_3"]
    assert_equals_r(result, "mouse-gencode", counts_from_abundance)


def test_mouse_missing_transcripts_error_then_drop_equals_r(mouse_tx2gene: pd.DataFrame) -> None:
    partial = mouse_tx2gene.iloc[50:]
    with pytest.raises(
        InputError, match=r"^50 of 500 transcripts in .*Sample_1\.sf \(and the other 2 samples"
    ):
        tximport(MOUSE, partial)
    result = tximport(MOUSE, partial, missing="drop", counts_from_abundance="lengthScaledTPM")
    assert len(result.dropped_transcripts) == 50
    assert result.dropped_transcripts[0] == mouse_tx2gene["transcript_id"].iloc[0]
    assert_equals_r(result, "mouse-gencode-drop50", "lengthScaledTPM")


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_generated_kallisto_layout_equals_r(mouse_tx2gene: pd.DataFrame, counts_from_abundance: str) -> None:
    paths = sorted(GENERATED.glob("kallisto/*/abundance.tsv.gz"))
    result = tximport(paths, mouse_tx2gene, type="kallisto", counts_from_abundance=counts_from_abundance)  # type: ignore[arg-type]
    assert result.counts.columns.tolist() == ["Sample_1", "Sample_2", "Sample_3"]  # parent folders
    assert_equals_r(result, "mouse-gencode-kallisto-generated", counts_from_abundance)


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_generated_rsem_layout_equals_r(mouse_tx2gene: pd.DataFrame, counts_from_abundance: str) -> None:
    paths = sorted(GENERATED.glob("rsem/*.isoforms.results.gz"))
    result = tximport(paths, mouse_tx2gene, type="rsem", counts_from_abundance=counts_from_abundance)  # type: ignore[arg-type]
    assert result.counts.columns.tolist() == ["Sample_1", "Sample_2", "Sample_3"]
    assert_equals_r(result, "mouse-gencode-rsem-generated", counts_from_abundance)


def test_geuvadis_directory_layout_names_samples_by_folder() -> None:
    folder = DATA / "rnaseq-tximportdata-geuvadis"
    paths = [folder / "ERR188021" / "quant.sf.gz", folder / "ERR188088" / "quant.sf.gz"]
    names = pd.read_csv(paths[0], sep="\t", usecols=["Name"])["Name"]
    # No real tx2gene for GENCODE v27 offline (see PROVENANCE.md): one pseudo-gene per transcript
    # checks naming, the meta_info row count and the identity of transcript and gene level.
    result = tximport(paths, pd.DataFrame({"transcript_id": names, "gene_id": names}))
    assert result.counts.columns.tolist() == ["ERR188021", "ERR188088"]
    assert result.counts.shape == (200401, 2)
    quant = pd.read_csv(paths[1], sep="\t", index_col=0)
    np.testing.assert_array_equal(result.counts["ERR188088"].loc[quant.index], quant["NumReads"])


def test_gtf_path_as_tx2gene(tmp_path: Path) -> None:
    # Hand-made quant.sf values on three transcripts of the kallisto test GTF (two UGT3A2 isoforms).
    quant = tmp_path / "quant.sf"
    quant.write_text(
        "Name\tLength\tEffectiveLength\tTPM\tNumReads\n"
        "ENST00000282507\t2000\t1800\t10\t18\nENST00000513300\t1000\t800\t30\t24\n"
    )
    result = tximport([quant], DATA / "rnaseq-kallisto-test" / "transcripts.gtf.gz")
    assert result.counts.loc["ENSG00000168671"].tolist() == [42.0]
    assert result.length.loc["ENSG00000168671"].tolist() == [pytest.approx((10 * 1800 + 30 * 800) / 40)]
    assert result.counts.columns.tolist() == [tmp_path.name]


def test_truncated_quant_sf_caught_by_meta_info(tmp_path: Path) -> None:
    sample = tmp_path / "sample_a"
    shutil.copytree(SALMON_110, sample)
    lines = (sample / "quant.sf").read_text().splitlines(keepends=True)
    (sample / "quant.sf").write_text("".join(lines[:-1]))
    names = [line.split("\t")[0] for line in lines[1:]]
    with pytest.raises(
        SalmonFormatError, match=r"quant\.sf: truncated file: 14 transcript rows, but .*reports 15"
    ):
        tximport([sample / "quant.sf"], pd.DataFrame({"transcript_id": names, "gene_id": names}))


def test_samples_with_reordered_rows_are_aligned(tmp_path: Path, mouse_tx2gene: pd.DataFrame) -> None:
    frame = pd.read_csv(MOUSE[1], sep="\t", dtype={"Name": str})
    shuffled = tmp_path / "Sample_2.sf"
    frame.iloc[::-1].to_csv(shuffled, sep="\t", index=False)
    result = tximport([MOUSE[0], shuffled, MOUSE[2]], mouse_tx2gene)
    assert_equals_r(result, "mouse-gencode", "no")


def test_samples_with_different_transcripts(tmp_path: Path, mouse_tx2gene: pd.DataFrame) -> None:
    frame = pd.read_csv(MOUSE[1], sep="\t", dtype={"Name": str})
    smaller = tmp_path / "Sample_2.sf"
    frame.iloc[1:].to_csv(smaller, sep="\t", index=False)
    with pytest.raises(
        InputError, match=r"Sample_2\.sf quantifies 499 transcripts and .*Sample_1\.sf 500; all samples"
    ):
        tximport([MOUSE[0], smaller], mouse_tx2gene)


def test_sample_names_option_and_duplicates(mouse_tx2gene: pd.DataFrame, tmp_path: Path) -> None:
    result = tximport(MOUSE, mouse_tx2gene, sample_names=["a", "b", "c"])
    assert result.abundance.columns.tolist() == ["a", "b", "c"]
    with pytest.raises(InputError, match=r"duplicate sample names \['x'\]; pass sample_names="):
        tximport(MOUSE[:2], mouse_tx2gene, sample_names=["x", "x"])
    with pytest.raises(InputError, match=r"2 sample names for 3 files"):
        tximport(MOUSE, mouse_tx2gene, sample_names=["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"1 quantification file\(s\) not found: .*nope\.sf"):
        tximport([MOUSE[0], tmp_path / "nope.sf"], mouse_tx2gene)


def test_tx2gene_dataframe_first_two_columns_like_r() -> None:
    names = pd.read_csv(MOUSE[0], sep="\t", usecols=["Name"])["Name"]
    table = pd.DataFrame({"TXNAME": names, "GENEID": names.str.split("|").str[1]})
    result = tximport(MOUSE, table)
    assert_equals_r(result, "mouse-gencode", "no")


def test_bad_quant_file_names_path(tmp_path: Path, mouse_tx2gene: pd.DataFrame) -> None:
    bad = tmp_path / "S9.quant.sf.gz"
    bad.write_bytes(gzip.compress(b"Name\tLength\tEffectiveLength\tTPM\tNumReads\nx\t1\t1\tNaN?\t1\n"))
    with pytest.raises(
        SalmonFormatError, match=r"S9\.quant\.sf\.gz, line 2: column 4 \(TPM\): expected a number"
    ):
        tximport([bad], mouse_tx2gene)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("runs/SRR1/quant.sf", "SRR1"),
        ("runs/SRR1/quant.sf.gz", "SRR1"),
        ("k/S2/abundance.tsv", "S2"),
        ("SRR5125621.quant.sf.gz", "SRR5125621"),
        ("Sample_1.sf", "Sample_1"),
        ("x/S3.isoforms.results", "S3"),
        ("odd.name.txt", "odd.name.txt"),
    ],
)
def test_sample_name(path: str, expected: str) -> None:
    assert sample_name(path) == expected
