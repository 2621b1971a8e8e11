"""Tests for genemill.numerics.tximport against hand-worked cases and Bioconductor tximport 1.26.

The R references under tests/data/reference/tximport/ were written by
tests/scripts/tximport_reference.R (see VERSIONS.txt there).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genemill.errors import InputError
from genemill.formats.gtf import read_tx2gene_table, tx2gene_from_gencode_names
from genemill.formats.salmon import read_salmon_quant
from genemill.numerics.tximport import (
    TranscriptEstimates,
    map_transcripts,
    replace_missing_length,
    scale_counts_from_abundance,
    summarize_to_genes,
)

ROOT = Path(__file__).parents[2]
DATA = ROOT / "data"
REFERENCE = ROOT / "tests" / "data" / "reference" / "tximport"
MODES = ["no", "scaledTPM", "lengthScaledTPM"]


def estimates(ids: list[str], abundance: list[list[float]], counts=None, length=None) -> TranscriptEstimates:  # type: ignore[no-untyped-def]
    a = np.array(abundance, dtype=np.float64)
    return TranscriptEstimates(
        transcript_ids=np.array(ids, dtype=object),
        abundance=a,
        counts=a.copy() if counts is None else np.array(counts, dtype=np.float64),
        length=np.full_like(a, 100.0) if length is None else np.array(length, dtype=np.float64),
    )


# ------------------------------------------------------------------------------- hand-worked cases


def test_sums_and_abundance_weighted_length() -> None:
    tx = estimates(
        ["t1", "t2", "t3"],
        abundance=[[1.0, 3.0], [3.0, 1.0], [5.0, 5.0]],
        counts=[[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]],
        length=[[100.0, 200.0], [300.0, 400.0], [500.0, 500.0]],
    )
    mapping = map_transcripts(tx.transcript_ids, ["t1", "t2", "t3"], ["gB", "gB", "gA"])
    genes = summarize_to_genes(tx, mapping)
    assert genes.gene_ids.tolist() == ["gA", "gB"]
    np.testing.assert_array_equal(genes.counts, [[50.0, 60.0], [40.0, 60.0]])
    np.testing.assert_array_equal(genes.abundance, [[5.0, 5.0], [4.0, 4.0]])
    # gB sample 1: (1*100 + 3*300) / 4 = 250; sample 2: (3*200 + 1*400) / 4 = 250
    np.testing.assert_allclose(genes.length, [[500.0, 500.0], [250.0, 250.0]], rtol=1e-15)
    assert genes.counts_from_abundance == "no"


def test_zero_abundance_lengths_follow_replace_missing_length() -> None:
    tx = estimates(
        ["t1", "t2", "t3", "t4"],
        abundance=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 8.0], [1.0, 1.0, 1.0]],
        length=[[100.0, 110.0, 120.0], [300.0, 330.0, 360.0], [40.0, 90.0, 160.0], [7.0, 7.0, 7.0]],
    )
    mapping = map_transcripts(tx.transcript_ids, ["t1", "t2", "t3", "t4"], ["g1", "g1", "g2", "g3"])
    genes = summarize_to_genes(tx, mapping)
    # g1 has TPM 0 everywhere: mean over transcripts of the per-transcript mean length.
    np.testing.assert_allclose(genes.length[0], [(110.0 + 330.0) / 2] * 3, rtol=1e-15)
    # g2 is 0/0 in sample 1 only: geometric mean of the defined samples (90, 160) = 120.
    np.testing.assert_allclose(genes.length[1], [120.0, 90.0, 160.0], rtol=1e-15)
    np.testing.assert_array_equal(genes.length[2], [7.0, 7.0, 7.0])


def test_counts_from_abundance_formulas() -> None:
    counts = np.array([[10.0, 0.0], [30.0, 60.0]])
    abundance = np.array([[1.0, 2.0], [3.0, 2.0]])
    length = np.array([[100.0, 300.0], [50.0, 50.0]])
    scaled = scale_counts_from_abundance(counts, abundance, length, method="scaledTPM")
    np.testing.assert_allclose(scaled, [[10.0, 30.0], [30.0, 30.0]])
    length_scaled = scale_counts_from_abundance(counts, abundance, length, method="lengthScaledTPM")
    generated = abundance * np.array([[200.0], [50.0]])
    np.testing.assert_allclose(length_scaled, generated * (counts.sum(0) / generated.sum(0)))
    np.testing.assert_allclose(length_scaled.sum(0), counts.sum(0))
    with pytest.raises(ValueError, match="method must be 'scaledTPM' or 'lengthScaledTPM'"):
        scale_counts_from_abundance(counts, abundance, length, method="no")  # type: ignore[arg-type]


def test_replace_missing_length_leaves_complete_rows() -> None:
    length = np.array([[1.0, 2.0], [np.nan, np.nan], [np.nan, 4.0]])
    fixed = replace_missing_length(length, np.array([9.0, 8.0, 7.0]))
    np.testing.assert_array_equal(fixed, [[1.0, 2.0], [8.0, 8.0], [4.0, 4.0]])
    assert np.isnan(length[1, 0])  # input untouched


def test_genes_sorted_by_code_point_and_first_tx2gene_row_wins() -> None:
    tx = estimates(["t1", "t2", "t3"], abundance=[[1.0], [2.0], [4.0]])
    mapping = map_transcripts(
        tx.transcript_ids, ["t3", "t1", "t2", "t1", "extra"], ["b", "a", "B", "zzz", "ignored"]
    )
    genes = summarize_to_genes(tx, mapping)
    assert genes.gene_ids.tolist() == ["B", "a", "b"]
    np.testing.assert_array_equal(genes.counts[:, 0], [2.0, 1.0, 4.0])


def test_missing_transcripts_error_names_file_count_and_examples() -> None:
    ids = ["t1.1", "t2.1", "t3.1", "t4.1", "t5.1"]
    with pytest.raises(InputError) as info:
        map_transcripts(ids, ["t1.1", "t2", "t3", "t4", "t5"], ["g"] * 5, source="SRR1.quant.sf")
    message = str(info.value)
    assert message.startswith("4 of 5 transcripts in SRR1.quant.sf are missing from tx2gene")
    assert "(e.g. ['t2.1', 't3.1', 't4.1', …])" in message
    assert "pass missing='drop'" in message
    assert "ignore_tx_version=True would match 4 of them" in message


def test_missing_drop_and_ignore_tx_version() -> None:
    ids = ["t1.1", "t2.1", "t3.7"]
    dropped = map_transcripts(ids, ["t1.1", "t2.1"], ["g1", "g2"], missing="drop")
    assert dropped.missing.tolist() == ["t3.7"]
    assert dropped.kept.tolist() == [True, True, False]
    # Trimming applies to tx2gene too: a versioned table still matches.
    trimmed = map_transcripts(ids, ["t1.9", "t2", "t3.1"], ["g1", "g2", "g3"], ignore_tx_version=True)
    assert trimmed.missing.size == 0
    assert trimmed.gene_ids.tolist() == ["g1", "g2", "g3"]


def test_ignore_after_bar() -> None:
    ids = ["ENST1.1|ENSG1.1|x|", "ENST2.1|ENSG1.1|y|"]
    mapping = map_transcripts(ids, ["ENST1.1", "ENST2.1"], ["ENSG1.1"] * 2, ignore_after_bar=True)
    assert mapping.kept.all()


def test_no_match_error_shows_both_sides() -> None:
    with pytest.raises(
        InputError, match=r"none of the 2 transcripts in the quantification files is in tx2gene"
    ):
        map_transcripts(["a", "b"], ["x"], ["g"])


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="missing must be 'error' or 'drop'"):
        map_transcripts(["a"], ["a"], ["g"], missing="ignore")  # type: ignore[arg-type]
    tx = estimates(["a"], abundance=[[1.0]])
    mapping = map_transcripts(["a"], ["a"], ["g"])
    with pytest.raises(ValueError, match="counts_from_abundance must be"):
        summarize_to_genes(tx, mapping, counts_from_abundance="dtuScaledTPM")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"counts must have shape \(1, 1\)"):
        TranscriptEstimates(np.array(["a"], dtype=object), np.ones((1, 1)), np.ones((2, 1)), np.ones((1, 1)))


# ----------------------------------------------------------------------------------- invariants

_matrix = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 12), st.integers(1, 4)),
    elements=st.one_of(st.just(0.0), st.floats(1e-3, 1e4)),
)


@settings(max_examples=60, deadline=None)
@given(_matrix, st.data())
def test_invariants(abundance: np.ndarray, data: st.DataObject) -> None:
    n_tx = abundance.shape[0]
    genes_of = data.draw(st.lists(st.sampled_from("abcd"), min_size=n_tx, max_size=n_tx))
    length = data.draw(hnp.arrays(np.float64, abundance.shape, elements=st.floats(1.0, 5e3)))
    counts = abundance * length / 100.0
    ids = [f"t{i}" for i in range(n_tx)]
    tx = TranscriptEstimates(np.array(ids, dtype=object), abundance, counts, length)
    mapping = map_transcripts(ids, ids, genes_of)
    genes = summarize_to_genes(tx, mapping)
    np.testing.assert_allclose(genes.counts.sum(0), counts.sum(0), rtol=1e-12)
    assert not np.isnan(genes.length).any()
    for row, gene in enumerate(genes.gene_ids):
        rows = [i for i, g in enumerate(genes_of) if g == gene]
        assert length[rows].min() * (1 - 1e-12) <= genes.length[row].min()
        assert genes.length[row].max() <= length[rows].max() * (1 + 1e-12)
    # Row order of the transcripts does not matter.
    perm = data.draw(st.permutations(range(n_tx)))
    shuffled = TranscriptEstimates(
        np.array(ids, dtype=object)[perm], abundance[perm], counts[perm], length[perm]
    )
    again = summarize_to_genes(shuffled, map_transcripts(shuffled.transcript_ids, ids, genes_of))
    np.testing.assert_allclose(again.length, genes.length, rtol=1e-12)
    if (abundance.sum(0) > 0).all():
        scaled = summarize_to_genes(tx, mapping, counts_from_abundance="lengthScaledTPM")
        np.testing.assert_allclose(scaled.counts.sum(0), counts.sum(0), rtol=1e-12)


# ----------------------------------------------------------------------- equality with R tximport


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", index_col=0, dtype={0: str}, float_precision="round_trip")


def r_reference(name: str, counts_from_abundance: str) -> dict[str, pd.DataFrame]:
    """R's abundance, length and counts for one set (rebuilding factored counts, see the R script)."""
    folder = REFERENCE / name
    abundance, length = _table(folder / "abundance.tsv.gz"), _table(folder / "length.tsv.gz")
    full = folder / f"counts_{counts_from_abundance}.tsv.gz"
    if full.exists():
        counts = _table(full)
    else:  # counts = t(t(new) * factor), one IEEE multiplication per cell, as R computed it
        factor = _table(folder / "scale_factors.tsv")[counts_from_abundance].to_numpy()
        new = abundance.to_numpy()
        if counts_from_abundance == "lengthScaledTPM":
            new = new * _table(folder / "mean_length.tsv.gz")["mean_length"].to_numpy()[:, None]
        counts = pd.DataFrame(new * factor[None, :], index=abundance.index, columns=abundance.columns)
    return {"abundance": abundance, "length": length, "counts": counts}


def _read_estimates(paths: list[Path]) -> TranscriptEstimates:
    quants = []
    for path in paths:
        with path.open("rb") as fh:
            quants.append(read_salmon_quant(fh))
    return TranscriptEstimates(
        transcript_ids=quants[0].names,
        abundance=np.column_stack([q.tpm for q in quants]),
        counts=np.column_stack([q.num_reads for q in quants]),
        length=np.column_stack([q.effective_length for q in quants]),
    )


def _zebrafish() -> tuple[TranscriptEstimates, pd.DataFrame]:
    folder = DATA / "rnaseq-refinebio-SRP095529"
    tx = _read_estimates(sorted(folder.glob("SRR*.quant.sf.gz")))
    with (folder / "genes_to_transcripts.txt.gz").open("rb") as fh:
        return tx, read_tx2gene_table(fh, order="gene_transcript")


def _mouse() -> tuple[TranscriptEstimates, pd.DataFrame]:
    tx = _read_estimates(sorted((DATA / "rnaseq-pytximport-mouse-subset").glob("Sample_*.sf")))
    return tx, tx2gene_from_gencode_names(tx.transcript_ids)


@pytest.fixture(scope="module")
def zebrafish() -> tuple[TranscriptEstimates, pd.DataFrame]:
    return _zebrafish()


def _check_against_r(
    tx: TranscriptEstimates, tx2gene: pd.DataFrame, name: str, counts_from_abundance: str, **options: str
) -> None:
    mapping = map_transcripts(tx.transcript_ids, tx2gene["transcript_id"], tx2gene["gene_id"], **options)  # type: ignore[arg-type]
    genes = summarize_to_genes(tx, mapping, counts_from_abundance=counts_from_abundance)  # type: ignore[arg-type]
    reference = r_reference(name, counts_from_abundance)
    assert genes.gene_ids.tolist() == reference["counts"].index.tolist()  # same genes, same order
    for key in ("counts", "abundance", "length"):
        np.testing.assert_allclose(
            getattr(genes, key), reference[key].to_numpy(), rtol=1e-9, atol=0, err_msg=key
        )


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_equals_r_tximport_zebrafish(
    zebrafish: tuple[TranscriptEstimates, pd.DataFrame], counts_from_abundance: str
) -> None:
    tx, tx2gene = zebrafish
    _check_against_r(tx, tx2gene, "zebrafish-SRP095529", counts_from_abundance)


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_equals_r_tximport_mouse_gencode(counts_from_abundance: str) -> None:
    tx, tx2gene = _mouse()
    _check_against_r(tx, tx2gene, "mouse-gencode", counts_from_abundance)


@pytest.mark.parametrize("counts_from_abundance", MODES)
def test_equals_r_tximport_when_dropping_missing(counts_from_abundance: str) -> None:
    tx, tx2gene = _mouse()
    _check_against_r(tx, tx2gene.iloc[50:], "mouse-gencode-drop50", counts_from_abundance, missing="drop")


# --------------------------------------------------------------------------- live R (optional)

_LIVE_R = """
suppressPackageStartupMessages(library(tximport))
invisible(Sys.setlocale("LC_COLLATE", "C"))
args <- commandArgs(TRUE)
files <- setNames(args[-1], paste0("s", seq_along(args[-1])))
t2g <- read.delim(args[1], header = FALSE, colClasses = "character")
for (cfa in c("no", "scaledTPM", "lengthScaledTPM")) {
  txi <- suppressMessages(tximport(files, type = "salmon", tx2gene = t2g, countsFromAbundance = cfa,
                                   dropInfReps = TRUE, importer = read.delim))
  for (key in c("counts", "abundance", "length"))
    write.table(txi[[key]], paste0(dirname(args[1]), "/", cfa, "_", key, ".tsv"), sep = "\t", quote = FALSE)
}
"""


@pytest.mark.r
def test_random_edge_cases_against_live_r(tmp_path: Path) -> None:
    """Zero-TPM patterns (whole genes, single samples) on random data, checked by R on the spot."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not installed")
    rng = np.random.default_rng(20240611)
    n_tx, n_samples = 300, 4
    ids = np.array([f"T{i:04d}" for i in range(n_tx)], dtype=object)
    genes = np.array([f"G{g:03d}" for g in rng.integers(0, 90, n_tx)], dtype=object)
    tpm = rng.gamma(0.5, 50.0, (n_tx, n_samples)) * (rng.random((n_tx, n_samples)) > 0.4)
    tpm[genes == "G007"] = 0.0
    length = rng.uniform(20.0, 4000.0, (n_tx, n_samples)).round(3)
    counts = (tpm * length / 1000.0).round(3)
    tpm = tpm.round(6)
    paths = []
    for j in range(n_samples):
        frame = pd.DataFrame(
            {
                "Name": ids,
                "Length": 5000,
                "EffectiveLength": length[:, j],
                "TPM": tpm[:, j],
                "NumReads": counts[:, j],
            }
        )
        paths.append(tmp_path / f"s{j + 1}.sf")
        frame.to_csv(paths[-1], sep="\t", index=False)
    pd.DataFrame({"tx": ids, "gene": genes}).to_csv(tmp_path / "t2g.tsv", sep="\t", index=False, header=False)
    script = tmp_path / "run.R"
    script.write_text(_LIVE_R)
    subprocess.run(
        ["Rscript", str(script), str(tmp_path / "t2g.tsv"), *map(str, paths)], check=True, capture_output=True
    )
    tx = _read_estimates(paths)
    mapping = map_transcripts(ids, ids, genes)
    for mode in MODES:
        result = summarize_to_genes(tx, mapping, counts_from_abundance=mode)  # type: ignore[arg-type]
        for key in ("counts", "abundance", "length"):
            expected = pd.read_csv(tmp_path / f"{mode}_{key}.tsv", sep="\t", float_precision="round_trip")
            assert expected.index.tolist() == result.gene_ids.tolist()
            np.testing.assert_allclose(
                getattr(result, key), expected.to_numpy(), rtol=1e-9, atol=0, err_msg=f"{mode} {key}"
            )


def test_map_transcripts_keeps_the_first_row_of_a_duplicated_transcript() -> None:
    """tximport's cleanTx2Gene: a transcript listed twice in tx2gene keeps its first gene."""
    mapping = map_transcripts(
        np.array(["t1", "t2", "t3"], dtype=object),
        np.array(["t2", "t1", "t2", "t3"], dtype=object),
        np.array(["gB", "gA", "gZ", "gA"], dtype=object),
    )
    assert mapping.gene_ids.tolist() == ["gA", "gB"]
    assert mapping.gene_index.tolist() == [0, 1, 0]
    unique = map_transcripts(
        np.array(["t1", "t2"], dtype=object), np.array(["t2", "t1"], dtype=object), np.array(["gB", "gA"])
    )
    assert unique.gene_ids.tolist() == ["gA", "gB"] and unique.gene_index.tolist() == [0, 1]
