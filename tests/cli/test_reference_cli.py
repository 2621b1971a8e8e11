"""`genemill reference add | list` and quantifying against a registered reference, with the real Salmon.

Data: ``rnaseq-kallisto-test`` (14 real GENCODE transcripts + their GTF, 10,000 simulated read
pairs; see its PROVENANCE.md).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genemill.cli import _register, app
from genemill.config import Settings
from genemill.formats.fasta import read_fasta
from genemill.pipeline.salmon_index import find_reference, list_indexes, list_references

KALLISTO = Path(__file__).resolve().parents[2] / "data" / "rnaseq-kallisto-test"

_register()

requires_salmon = pytest.mark.skipif(shutil.which("salmon") is None, reason="salmon is not installed")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("GENEMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENEMILL_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def _add(run, *extra: str):
    return run(
        "reference", "add", "--organism", "Homo sapiens", "--transcripts", str(KALLISTO / "transcripts.fasta.gz"),
        "--gtf", str(KALLISTO / "transcripts.gtf.gz"), "--source", "GENCODE", "--release", "27",
        "--assembly", "GRCh38", *extra,
    )  # fmt: skip


@pytest.mark.salmon
@requires_salmon
def test_reference_add_builds_indexes_and_list_shows_them(run, tmp_path: Path) -> None:
    added = _add(run, "--k", "23")
    assert added.exit_code == 0, added.output
    assert "14 transcripts" in added.output and "k=23" in added.output and "built in" in added.output
    settings = Settings(home=tmp_path / "home")
    (reference,) = list_references(settings)
    assert (reference.organism, reference.source, reference.release, reference.assembly) == (
        "Homo sapiens", "GENCODE", "27", "GRCh38",
    )  # fmt: skip
    assert [index.k for index in list_indexes(settings, reference)] == [23]
    again = _add(run, "--k", "23")  # the same files: same reference, cached index
    assert again.exit_code == 0 and "cached" in again.output
    assert len(list_references(settings)) == 1
    listed = run("reference", "list")
    assert listed.exit_code == 0
    assert reference.key[:16] in listed.output and "Homo sapiens" in listed.output
    assert "GENCODE, 27, GRCh38  14 transcripts  indexes: k=23 (salmon 1.10" in listed.output


def test_reference_add_needs_sequences(run) -> None:
    result = CliRunner().invoke(app, ["reference", "add", "--organism", "Homo sapiens"])
    assert result.exit_code == 2
    assert "give a transcript FASTA" in result.output


def test_reference_list_when_empty(run) -> None:
    listed = run("reference", "list")
    assert listed.exit_code == 0 and "no references registered" in listed.output


@pytest.mark.salmon
@requires_salmon
def test_import_fastq_picks_the_registered_reference_by_organism(run, tmp_path: Path) -> None:
    assert _add(run, "--no-build").exit_code == 0
    reference = find_reference(Settings(home=tmp_path / "home"), "homo sapiens")
    assert reference is not None and reference.transcripts is not None
    reads = [str(KALLISTO / "reads_1.fastq.gz"), str(KALLISTO / "reads_2.fastq.gz")]
    result = run("import-fastq", "--title", "t", "--organism", "Homo sapiens", "--threads", "2", *reads)
    assert result.exit_code == 0, result.output
    accession = result.output.split("private experiment ")[1].split(":")[0]
    assert reference.key[:16] in run("show", accession).output
    assert "1 processed, 0 refused" in result.output and "93.0%" in result.output


def test_import_fastq_without_a_reference_for_the_organism(run) -> None:
    reads = [str(KALLISTO / "reads_1.fastq.gz"), str(KALLISTO / "reads_2.fastq.gz")]
    with pytest.raises(Exception, match="no registered transcriptome for Mus musculus"):
        run("import-fastq", "--title", "t", "--organism", "Mus musculus", *reads)


def _generated_genome(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """The GENERATED genome of tests/formats/test_fasta.py (real transcripts laid on a made-up sequence)."""
    spec = importlib.util.spec_from_file_location(
        "fasta_tests", Path(__file__).parents[1] / "formats" / "test_fasta.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._generated_genome(tmp_path)


@pytest.mark.salmon
@requires_salmon
def test_reference_from_a_genome_and_gtf_quantifies_the_reads(run, tmp_path: Path) -> None:
    genome, gtf, real = _generated_genome(tmp_path)
    added = run(
        "reference", "add", "--organism", "Homo sapiens", "--genome", str(genome), "--gtf", str(gtf),
        "--source", "GENCODE", "--assembly", "GRCh38 (generated layout)", "--k", "23",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    (reference,) = list_references(Settings(home=tmp_path / "home"))
    assert reference.transcripts is not None
    with reference.transcripts.open("rb") as fh:
        cut = dict(read_fasta(fh))
    for name, sequence in real.items():  # FASTA ids are versioned, GTF ids not
        assert cut[name.split(".")[0]] == sequence
    reads = [str(KALLISTO / "reads_1.fastq.gz"), str(KALLISTO / "reads_2.fastq.gz")]
    result = run("import-fastq", "--title", "t", "--organism", "Homo sapiens", "--threads", "2", *reads)
    assert result.exit_code == 0, result.output
    assert "1 processed, 0 refused" in result.output and "93.0%" in result.output
