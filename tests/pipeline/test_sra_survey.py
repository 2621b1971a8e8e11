"""`genemill add SRP…` → one sample per run with ENA's FASTQ URLs, MD5s and sizes; `genemill process`
online downloads them (verified) and quantifies with the real Salmon.

A local fixture server answers the ENA portal API with the hand-written read_run report
``tests/data/sources/ena_filereport_read_run_SRP999990.tsv`` (fictional accessions, see
tests/data/sources/PROVENANCE.md) and serves the real FASTQ files it names, at ENA's URL paths:
SRR9999901 is ``data/rnaseq-kallisto-test``'s reads (the reference registered here is its
transcriptome), SRR9999902 ``data/rnaseq-salmon-example``'s reads (other gzip files of the same
decompressed reads, so both runs map 93.03 % against the kallisto-test transcripts).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from fixture_server import FixtureServer
from typer.testing import CliRunner

from genemill.cli import _register, app
from genemill.config import Settings
from genemill.pipeline.process import process_experiment
from genemill.pipeline.salmon_index import register_reference
from genemill.pipeline.survey import add_accession
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.models import ProcessingState
from genemill.store.results import current_values

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
REPORT = REPO / "tests" / "data" / "sources" / "ena_filereport_read_run_SRP999990.tsv"
API = "/ena/portal/api/filereport"
FILES = {
    "SRR9999901": DATA / "rnaseq-kallisto-test",
    "SRR9999902": DATA / "rnaseq-salmon-example",
}

requires_salmon = pytest.mark.skipif(shutil.which("salmon") is None, reason="salmon is not installed")

_register()


def _folder(run: str) -> str:
    return f"/vol1/fastq/{run[:6]}/00{run[-1]}/{run}"


@pytest.fixture
def server():
    with FixtureServer() as running:
        for accession in ("SRP999990", "PRJNA999990"):
            running.add_file(API, REPORT, content_type="text/plain", query={"accession": accession})
        for run, folder in FILES.items():
            for mate in (1, 2):
                running.add_file(f"{_folder(run)}/{run}_{mate}.fastq.gz", folder / f"reads_{mate}.fastq.gz")
        yield running


def _settings(
    tmp_path: Path, server: FixtureServer, *, online: bool = True, database_url: str | None = None
) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        ena_base_url=server.url("/ena/portal/api"),
        online=online,
        retry_backoff_seconds=0.01,
    )


def _survey(settings: Settings, accession: str = "SRP999990") -> Database:
    db = Database(settings.resolved_database_url)
    db.migrate()
    summary = add_accession(settings, db, accession)
    assert summary.succeeded == [accession] and not summary.failed, summary
    return db


def test_sra_study_becomes_one_sample_per_run_with_fastq_files(tmp_path, server, database_url) -> None:
    db = _survey(_settings(tmp_path, server, database_url=database_url))
    with db.session() as session:
        experiment = queries.get_experiment(session, "SRP999990")
        assert experiment.source_database == "SRA"
        assert experiment.title == "genemill test study: simulated reads from two real example sets"
        assert experiment.alternate_accessions == ["PRJNA999990"]
        samples = {s.accession: s for s in experiment.samples}
        assert sorted(samples) == ["SRR9999901", "SRR9999902"]
        run = samples["SRR9999901"]
        assert run.organism.name == "Homo sapiens" and run.technology.value == "RNA-SEQ"
        assert run.platform.accession == "Illumina HiSeq 2000"
        assert run.annotations["fields"]["secondary_sample_accession"] == ["SRS9999901"]
        files = sorted(run.original_files, key=lambda f: f.filename)
        assert [(f.kind, f.filename, f.expected_md5, f.expected_size_in_bytes, f.is_downloaded) for f in files] == [
            ("FASTQ", "SRR9999901_1.fastq.gz", "d69e7c74338ac243a91bcf194046cdf6", 209954, False),
            ("FASTQ", "SRR9999901_2.fastq.gz", "6ad12ff09eb2c5ad1639f06ae7a9c3b7", 210485, False),
        ]  # fmt: skip
        assert files[0].source_url == (
            "https://ftp.sra.ebi.ac.uk/vol1/fastq/SRR999/001/SRR9999901/SRR9999901_1.fastq.gz"
        )
    assert [r.query.get("accession") for r in server.requests_for(API)] == [["SRP999990"]]
    db.dispose()


@pytest.mark.salmon
@requires_salmon
def test_process_downloads_verified_fastqs_and_quantifies(tmp_path, server) -> None:
    settings = _settings(tmp_path, server)
    kallisto = DATA / "rnaseq-kallisto-test"
    register_reference(
        settings,
        transcripts=kallisto / "transcripts.fasta.gz",
        gtf=kallisto / "transcripts.gtf.gz",
        organism="Homo sapiens",
    )
    db = _survey(settings)
    report = process_experiment(settings, db, "SRP999990")
    assert report.processed == dict.fromkeys(FILES, "salmon-tximport") and not report.refused
    for run in FILES:
        assert [r.status for r in server.requests_for(f"{_folder(run)}/{run}_1.fastq.gz")] == [200]
    with db.session() as session:
        samples = {s.accession: s for s in queries.get_experiment(session, "SRP999990").samples}
        for good in samples.values():
            assert good.processing_state is ProcessingState.PROCESSED
            assert good.qc["salmon"]["mapping_rate"] == pytest.approx(0.9303)
            assert good.qc["fastq"]["n_reads"] == 10000
            assert all(f.is_downloaded and f.md5 == f.expected_md5 for f in good.original_files)
            assert all(Path(str(f.local_path)).is_file() for f in good.original_files)
            counts = current_values(good, kind="expression:counts")
            assert counts is not None
            values = read_expression(counts.path, samples=[good.accession])[good.accession]
            assert float(values.sum()) == pytest.approx(9303, abs=1)  # Salmon's mapped fragments
    assert not list((settings.home / "downloads").rglob("*.fastq.gz"))  # moved into the file store
    db.dispose()


def test_a_fastq_failing_its_md5_is_refused_and_not_kept(tmp_path, server, database_url) -> None:
    settings = _settings(tmp_path, server, database_url=database_url)
    db = _survey(settings)
    run = "SRR9999902"  # serve another file in its place (other size and MD5 than ENA lists)
    server.add_file(f"{_folder(run)}/{run}_1.fastq.gz", FILES["SRR9999901"] / "reads_1.fastq.gz")
    report = process_experiment(settings, db, "SRP999990")
    reason = report.refused[run]
    assert "SRR9999902_1.fastq.gz" in reason and ("md5" in reason.lower() or "size" in reason.lower())
    with db.session() as session:
        sample = queries.get_experiment(session, "SRP999990").samples[1]
        assert sample.accession == run and not any(f.is_downloaded for f in sample.original_files)
    assert not list((settings.home / "downloads" / run).iterdir())  # the bad download was deleted
    db.dispose()


def test_offline_processing_says_the_fastqs_are_not_downloaded(tmp_path, server) -> None:
    settings = _settings(tmp_path, server, online=False)
    db = _survey(settings)
    report = process_experiment(settings, db, "SRP999990")
    assert report.refused["SRR9999901"] == (
        "FASTQ files not downloaded yet (SRR9999901_1.fastq.gz, SRR9999901_2.fastq.gz): "
        "process with GENEMILL_ONLINE=1 to fetch them from ENA; "
        "and no submitter-processed data table (no series metadata file)"  # the raw-data fallback
    )
    assert not [r for r in server.requests if r.path.endswith(".fastq.gz")]
    db.dispose()


def test_genemill_add_project_accession_from_the_cli(tmp_path, server, monkeypatch) -> None:
    monkeypatch.setenv("GENEMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GENEMILL_ENA_BASE_URL", server.url("/ena/portal/api"))
    monkeypatch.delenv("GENEMILL_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["add", "PRJNA999990"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(app, ["show", "PRJNA999990"], catch_exceptions=False)
    assert "SRR9999901" in shown.output and "SRR9999902" in shown.output
    assert "SRP999990" in shown.output  # the SRA study is an alternate accession


GEO_SOFT = REPO / "tests" / "data" / "sources" / "GSE999990_family.soft"


@pytest.mark.salmon
@requires_salmon
def test_geo_series_samples_get_their_sra_runs_fastqs(tmp_path, server) -> None:
    server.add_bytes(
        "/geo/series/GSE999nnn/GSE999990/soft/GSE999990_family.soft.gz", gzip.compress(GEO_SOFT.read_bytes())
    )
    settings = _settings(tmp_path, server).model_copy(update={"geo_base_url": server.base_url})
    kallisto = DATA / "rnaseq-kallisto-test"
    register_reference(
        settings, transcripts=kallisto / "transcripts.fasta.gz", gtf=kallisto / "transcripts.gtf.gz",
        organism="Homo sapiens",
    )  # fmt: skip
    db = _survey(settings, "GSE999990")
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE999990")
        assert "SRP999990" in experiment.alternate_accessions
        samples = {s.accession: s for s in experiment.samples}
        assert sorted(samples) == ["GSM9999901", "GSM9999902"]
        files = sorted(samples["GSM9999901"].original_files, key=lambda f: f.filename)
        assert [(f.kind, f.filename, f.expected_md5) for f in files] == [
            ("FASTQ", "SRR9999901_1.fastq.gz", "d69e7c74338ac243a91bcf194046cdf6"),
            ("FASTQ", "SRR9999901_2.fastq.gz", "6ad12ff09eb2c5ad1639f06ae7a9c3b7"),
        ]
        assert samples["GSM9999902"].annotations["sra_runs"] == ["SRR9999902"]
    assert [r.query.get("accession") for r in server.requests_for(API)] == [["SRP999990"]]
    report = process_experiment(settings, db, "GSE999990")
    assert report.processed == {"GSM9999901": "salmon-tximport", "GSM9999902": "salmon-tximport"}
    db.dispose()


def test_runs_that_are_not_rna_seq_get_no_fastq_files(tmp_path, server) -> None:
    """The report with SRR9999902 relabelled ChIP-Seq / GENOMIC (edited here, in the test)."""
    lines = REPORT.read_text().splitlines()
    lines[2] = lines[2].replace("\tRNA-Seq\tTRANSCRIPTOMIC\t", "\tChIP-Seq\tGENOMIC\t")
    assert "ChIP-Seq" in lines[2]
    server.add_bytes(
        API, "\n".join(lines) + "\n", content_type="text/plain", query={"accession": "SRP999991"}
    )
    settings = _settings(tmp_path, server)
    db = _survey(settings, "SRP999991")
    report = process_experiment(settings, db, "SRP999991")
    with db.session() as session:
        samples = {s.accession: s for s in queries.get_experiment(session, "SRP999991").samples}
        assert [f.filename for f in samples["SRR9999902"].original_files] == []
        assert samples["SRR9999902"].annotations["fields"]["library_strategy"] == ["ChIP-Seq"]
        assert len(samples["SRR9999901"].original_files) == 2
    assert "SRR9999902" in report.refused
    assert not [r for r in server.requests if "SRR9999902" in r.path]  # nothing downloaded for it
    db.dispose()
