"""GEO RNA-seq samples of several SRA runs, and the submitter-table fallback of RNA-seq samples.

A local fixture server answers GEO and the ENA portal API with the hand-written series
``tests/data/sources/GSE999992_family.soft`` and read_run report
``tests/data/sources/ena_filereport_read_run_SRP999992.tsv`` (fictional accessions, platform and
submitter values; see tests/data/sources/PROVENANCE.md) and serves REAL FASTQ files of ``data/`` at
ENA's URL paths:

* GSM9999921: runs SRR9999921 (``data/rnaseq-kallisto-test`` reads) and SRR9999922
  (``data/rnaseq-salmon-example`` reads, the same simulated reads in other gzip files), paired-end;
* GSM9999922: SRR9999923 (paired-end) and SRR9999924 (single-end: salmon-example mate 1 only);
* GSM9999923 (with a submitter table) and GSM9999924 (without): their runs' files are not served
  (404).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fixture_server import FixtureServer

from genemill.config import Settings
from genemill.errors import InputError
from genemill.pipeline.process import process_experiment
from genemill.pipeline.salmon import quant_arguments
from genemill.pipeline.salmon_index import register_reference
from genemill.pipeline.salmon_run import fastq_runs
from genemill.pipeline.survey import add_accession
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.models import OriginalFile, ProcessingState, Sample
from genemill.store.results import current_values

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
SOURCES = REPO / "tests" / "data" / "sources"
REPORT = SOURCES / "ena_filereport_read_run_SRP999992.tsv"
SOFT = SOURCES / "GSE999992_family.soft"
API = "/ena/portal/api/filereport"
KALLISTO, SALMON_EXAMPLE = DATA / "rnaseq-kallisto-test", DATA / "rnaseq-salmon-example"
# run -> (served file name -> real file); SRR9999925/6 are never served.
FASTQS = {
    "SRR9999921": {f"SRR9999921_{m}.fastq.gz": KALLISTO / f"reads_{m}.fastq.gz" for m in (1, 2)},
    "SRR9999922": {f"SRR9999922_{m}.fastq.gz": SALMON_EXAMPLE / f"reads_{m}.fastq.gz" for m in (1, 2)},
    "SRR9999923": {f"SRR9999923_{m}.fastq.gz": KALLISTO / f"reads_{m}.fastq.gz" for m in (1, 2)},
    "SRR9999924": {"SRR9999924.fastq.gz": SALMON_EXAMPLE / "reads_1.fastq.gz"},
}
NO_TABLE = "no submitter-processed data table in the series metadata"

requires_salmon = pytest.mark.skipif(shutil.which("salmon") is None, reason="salmon is not installed")


def _folder(run: str) -> str:
    return f"/vol1/fastq/{run[:6]}/00{run[-1]}/{run}"


@contextmanager
def _server(runs: tuple[str, ...]) -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        for accession in ("SRP999992", "PRJNA999992"):
            running.add_file(API, REPORT, content_type="text/plain", query={"accession": accession})
        running.add_bytes(
            "/geo/series/GSE999nnn/GSE999992/soft/GSE999992_family.soft.gz", gzip.compress(SOFT.read_bytes())
        )
        for run in runs:
            for name, path in FASTQS[run].items():
                running.add_file(f"{_folder(run)}/{name}", path)
        yield running


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    """Every run's files but those of the two-run GSM9999921 (so Salmon does not run)."""
    with _server(("SRR9999923", "SRR9999924")) as running:
        yield running


def _settings(tmp_path: Path, server: FixtureServer, database_url: str | None) -> Settings:
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        ena_base_url=server.url("/ena/portal/api"),
        geo_base_url=server.base_url,
        online=True,
        retry_backoff_seconds=0.01,
    )
    register_reference(
        settings,
        transcripts=KALLISTO / "transcripts.fasta.gz",
        gtf=KALLISTO / "transcripts.gtf.gz",
        organism="Homo sapiens",
    )
    return settings


def _survey(settings: Settings) -> Database:
    db = Database(settings.resolved_database_url)
    db.migrate()
    summary = add_accession(settings, db, "GSE999992")
    assert summary.succeeded == ["GSE999992"] and not summary.failed, summary
    return db


def _ena_rows() -> dict[str, dict[str, str]]:
    with REPORT.open() as fh:
        return {row["run_accession"]: row for row in csv.DictReader(fh, delimiter="\t")}


def test_a_gsm_gets_the_fastq_files_of_all_its_runs(tmp_path, server, database_url) -> None:
    db = _survey(_settings(tmp_path, server, database_url))
    rows = _ena_rows()
    with db.session() as session:
        samples = {s.accession: s for s in queries.get_experiment(session, "GSE999992").samples}
        two = samples["GSM9999921"]
        assert two.annotations["sra_runs"] == ["SRR9999921", "SRR9999922"]
        urls = {
            run: ["https://" + url for url in rows[run]["fastq_ftp"].split(";")]
            for run in ("SRR9999921", "SRR9999922")
        }
        assert two.annotations["sra_run_files"] == urls
        files = sorted(two.original_files, key=lambda f: f.filename)
        assert [(f.kind, f.filename, f.expected_md5) for f in files] == [
            ("FASTQ", "SRR9999921_1.fastq.gz", "d69e7c74338ac243a91bcf194046cdf6"),
            ("FASTQ", "SRR9999921_2.fastq.gz", "6ad12ff09eb2c5ad1639f06ae7a9c3b7"),
            ("FASTQ", "SRR9999922_1.fastq.gz", "8945a36b406375d67e2ff4221975068b"),
            ("FASTQ", "SRR9999922_2.fastq.gz", "0273364f632ee5d68c253736d8b75cce"),
        ]
        assert two.has_raw
        mixed = sorted(f.filename for f in samples["GSM9999922"].original_files)
        assert mixed == ["SRR9999923_1.fastq.gz", "SRR9999923_2.fastq.gz", "SRR9999924.fastq.gz"]
    db.dispose()


def test_runs_of_mixed_layout_are_refused_naming_the_runs(tmp_path, server, database_url) -> None:
    settings = _settings(tmp_path, server, database_url)
    db = _survey(settings)
    report = process_experiment(settings, db, "GSE999992")
    reason = report.refused["GSM9999922"]
    assert reason == (
        "the sequencing runs of sample GSM9999922 mix layouts (SRR9999923 paired-end (2 file(s)), "
        "SRR9999924 single-end (1 file(s))): genemill quantifies a sample's runs together only when all "
        f"are single-end or all paired-end; and {NO_TABLE}"
    )
    with db.session() as session:
        sample = queries.get_sample(session, "GSM9999922")
        assert sample.processing_state is ProcessingState.UNPROCESSABLE
        assert sample.unprocessable_reason == reason
        assert all(f.is_downloaded for f in sample.original_files)  # fetched, then refused before Salmon
    assert not (settings.home / "quant" / "GSE999992" / "GSM9999922").exists()
    db.dispose()


def test_missing_fastqs_fall_back_to_the_submitter_table_with_the_reason(
    tmp_path, server, database_url
) -> None:
    settings = _settings(tmp_path, server, database_url)
    db = _survey(settings)
    report = process_experiment(settings, db, "GSE999992")
    assert report.processed["GSM9999923"] == "submitter"
    assert "GSM9999923" not in report.refused
    assert [r.status for r in server.requests_for(f"{_folder('SRR9999925')}/SRR9999925_1.fastq.gz")][
        -1
    ] == 404
    with db.session() as session:
        sample = queries.get_sample(session, "GSM9999923")
        assert sample.processing_state is ProcessingState.PROCESSED and sample.unprocessable_reason is None
        note = sample.qc["submitter_fallback"]
        assert note["raw_pipeline"] == "rnaseq"
        assert note["reason"].startswith("SRR9999925_1.fastq.gz (https://ftp.sra.ebi.ac.uk/vol1/fastq/")
        assert "404" in note["reason"]
        assert report.details["submitter_fallback"]["GSM9999923"] == note
        values = current_values(sample)
        assert values is not None and values.result.mode == "submitter"
        column = read_expression(values.path, samples=["GSM9999923"])["GSM9999923"]
    # The hand-written table's linear values, log2-transformed by the submitter pipeline.
    assert column["ENSG00000037965"] == pytest.approx(np.log2(87.1), rel=1e-6)  # HOXC8
    assert column["ENSG00000172789"] == pytest.approx(np.log2(152.4), rel=1e-6)  # HOXC5
    db.dispose()


def test_missing_fastqs_without_a_submitter_table_give_both_reasons(tmp_path, server, database_url) -> None:
    settings = _settings(tmp_path, server, database_url)
    db = _survey(settings)
    report = process_experiment(settings, db, "GSE999992")
    reason = report.refused["GSM9999924"]
    download, _, submitter = reason.partition("; and ")
    assert download.startswith("SRR9999926_1.fastq.gz (https://ftp.sra.ebi.ac.uk/vol1/fastq/SRR999/006/")
    assert "404" in download
    assert submitter == NO_TABLE
    with db.session() as session:
        sample = queries.get_sample(session, "GSM9999924")
        assert sample.processing_state is ProcessingState.UNPROCESSABLE
        assert sample.unprocessable_reason == reason
        assert "submitter_fallback" not in (sample.qc or {})
    db.dispose()


@pytest.mark.salmon
@requires_salmon
def test_a_gsm_of_two_runs_is_quantified_by_one_salmon_quant_over_both(tmp_path, database_url) -> None:
    with _server(tuple(FASTQS)) as server:
        settings = _settings(tmp_path, server, database_url)
        db = _survey(settings)
        report = process_experiment(settings, db, "GSE999992")
        again = process_experiment(settings, db, "GSE999992")  # the quant cache marker is reused
    assert report.processed["GSM9999921"] == "salmon-tximport"
    assert again.processed["GSM9999921"] == "salmon-tximport"
    seconds = report.details["rnaseq"]["salmon-tximport"]["salmon_seconds"]["GSM9999921"]
    assert seconds > 0 and again.details["rnaseq"]["salmon-tximport"]["salmon_seconds"]["GSM9999921"] == 0
    rows = _ena_rows()
    ena_reads = {run: int(rows[run]["read_count"]) for run in ("SRR9999921", "SRR9999922")}
    with db.session() as session:
        sample = queries.get_sample(session, "GSM9999921")
        assert sample.processing_state is ProcessingState.PROCESSED
        runs = sample.qc["fastq"]["runs"]
        assert [(r["run"], r["files"], r["n_reads"]) for r in runs] == [
            ("SRR9999921", ["SRR9999921_1.fastq.gz", "SRR9999921_2.fastq.gz"], ena_reads["SRR9999921"]),
            ("SRR9999922", ["SRR9999922_1.fastq.gz", "SRR9999922_2.fastq.gz"], ena_reads["SRR9999922"]),
        ]
        assert sample.qc["fastq"]["n_reads"] == sum(ena_reads.values()) == 20000
        assert sample.qc["fastq"]["files"] == 4
        assert sample.qc["salmon"]["num_processed"] == 20000  # Salmon read both runs' fragments
        assert sample.qc["salmon"]["mapping_rate"] == pytest.approx(0.9303)
        counts = current_values(sample, kind="expression:counts")
        assert counts is not None
        values = read_expression(counts.path, samples=["GSM9999921"])["GSM9999921"]
        assert float(values.sum()) == pytest.approx(2 * 9303, abs=2)  # each run maps 9303 fragments
        index = sample.qc["salmon"]["index"]
    marker = json.loads(
        (settings.home / "quant" / "GSE999992" / "GSM9999921" / index / "genemill_quant.json").read_text()
    )
    real = [KALLISTO / "reads_1.fastq.gz", KALLISTO / "reads_2.fastq.gz"]
    real += [SALMON_EXAMPLE / "reads_1.fastq.gz", SALMON_EXAMPLE / "reads_2.fastq.gz"]
    assert marker["input_sha256"] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in real]
    assert [r["n_reads"] for r in marker["runs"]] == [10000, 10000]
    db.dispose()


def _fastq(name: str) -> OriginalFile:
    return OriginalFile(source_url=f"https://x/{name}", filename=name, kind="FASTQ", local_path=f"/s/{name}", is_downloaded=True)  # fmt: skip


def test_fastq_runs_group_files_by_the_run_annotation() -> None:
    names = ["B_2.fastq.gz", "A_1.fastq.gz", "B_1.fastq.gz", "A_2.fastq.gz", "A.fastq.gz"]
    runs_of = {"B": [f"https://x/B_{m}.fastq.gz" for m in (1, 2)]}
    runs_of["A"] = ["https://x/A.fastq.gz", *(f"https://x/A_{m}.fastq.gz" for m in (1, 2))]
    sample = Sample(
        accession="GSM1", annotations={"sra_run_files": runs_of}, original_files=[_fastq(n) for n in names]
    )
    grouped = [(run.accession, [f.filename for f in run.files]) for run in fastq_runs(sample)]
    assert grouped == [("A", ["A_1.fastq.gz", "A_2.fastq.gz"]), ("B", ["B_1.fastq.gz", "B_2.fastq.gz"])]
    plain = Sample(accession="S1", original_files=[_fastq("R_2.fastq.gz"), _fastq("R_1.fastq.gz")])
    assert [(r.accession, len(r.files)) for r in fastq_runs(plain)] == [("S1", 2)]


def test_quant_arguments_for_several_runs() -> None:
    paired = quant_arguments(
        [[Path("a_1.fq"), Path("a_2.fq")], [Path("b_1.fq"), Path("b_2.fq")]], Path("i"), Path("o"), threads=2
    )
    assert paired[6:12] == ["-1", "a_1.fq", "b_1.fq", "-2", "a_2.fq", "b_2.fq"] and "--gcBias" in paired
    single = quant_arguments([[Path("a.fq")], [Path("b.fq")]], Path("i"), Path("o"), threads=2)
    assert single[6:9] == ["-r", "a.fq", "b.fq"] and "--gcBias" not in single
    with pytest.raises(InputError, match="share one layout"):
        quant_arguments([[Path("a_1.fq"), Path("a_2.fq")], [Path("b.fq")]], Path("i"), Path("o"), threads=2)
