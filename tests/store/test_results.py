"""Tests for genemill.store.results: the recorded sha256 is the file's, hashed here or by the writer."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import store_experiment
from genemill.pipeline.rnaseq_store import GeneTables, ResultSpec, store_gene_tables
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import write_expression
from genemill.store.models import (
    ComputedFile,
    Experiment,
    ProcessingResult,
    ProcessingState,
    Sample,
    result_sample,
)
from genemill.store.results import current_values, record_result


def _experiment_metadata() -> ExperimentMetadata:
    samples = [SampleRecord(accession=f"GSM{i}", title=f"sample {i}", platform="GPL1") for i in (1, 2)]
    return ExperimentMetadata(
        source="GEO",
        series=SeriesRecord(accession="GSE1", title="constructed"),
        platforms=[PlatformRecord(accession="GPL1", title="constructed")],
        samples=samples,
    )


def _record(
    session: Session,
    experiment: Experiment,
    version: str,
    files: list[Any],
    *,
    qc: dict[str, dict[str, Any]] | None = None,
    samples: list[Sample] | None = None,
) -> None:
    """Record a constructed result of ``files`` for ``samples`` (default: every sample of ``experiment``)."""
    record_result(
        session,
        list(experiment.samples) if samples is None else samples,
        experiment=experiment,
        processor="constructed",
        version=version,
        mode="raw",
        parameters={},
        input_sha256=[],
        files=files,
        qc=qc,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_recorded_sha256_is_the_files_whether_given_or_computed(db: Database, tmp_path: Path) -> None:
    values = pd.DataFrame({"GSM1": [1.0, 2.0], "GSM2": [3.0, np.nan]}, index=["ENSG1", "ENSG2"])
    given, hashed = tmp_path / "given.parquet", tmp_path / "hashed.parquet"
    digest = write_expression(given, values, metadata={"value_type": "log2"})
    write_expression(hashed, values * 2, metadata={"value_type": "log2"})
    with db.session() as session:
        experiment = store_experiment(session, _experiment_metadata())
        _record(session, experiment, "1", [("expression", given, digest), ("expression:other", hashed)])
    with db.session() as session:
        files = {f.kind: f for f in session.scalars(select(ComputedFile))}
        result = session.scalars(select(ProcessingResult)).one()
        assert files["expression"].sha256 == _sha256(given) == result.output_sha256
        assert files["expression:other"].sha256 == _sha256(hashed)
        assert files["expression"].size_in_bytes == given.stat().st_size


def test_rnaseq_result_records_the_sha256_of_each_written_file(settings: Settings, db: Database) -> None:
    genes = pd.Index(["ENSG1", "ENSG2", "ENSG3"])
    counts = pd.DataFrame({"GSM1": [10.0, 0.0, 5.0], "GSM2": [1.0, 2.0, 3.0]}, index=genes)
    tables = GeneTables(
        counts=counts,
        tpm=counts / counts.sum() * 1e6,
        length_scaled_tpm=counts * 1.5,
        symbols=pd.Series(["A", None, "C"], index=genes),
        n_transcripts=3,
    )
    spec = ResultSpec(
        processor="constructed",
        version="1",
        mode="raw",
        parameters={},
        input_sha256=["0" * 64],
        annotations={},
    )
    with db.session() as session:
        experiment = store_experiment(session, _experiment_metadata())
        store_gene_tables(
            settings, session, experiment, samples=list(experiment.samples), tables=tables, spec=spec
        )
    with db.session() as session:
        files = list(session.scalars(select(ComputedFile)))
        assert len(files) == 3
        for file in files:
            assert file.sha256 == _sha256(Path(file.path))
        sample = next(iter(session.scalars(select(ProcessingResult)).one().samples))
        current = current_values(sample)
        assert current is not None and current.result.output_sha256 == _sha256(current.path)


def test_a_failed_expression_write_leaves_no_result(settings: Settings, db: Database) -> None:
    """The files are written in a thread while the result is recorded: a write that fails is
    raised all the same, and the transaction that recorded the result rolls back."""
    genes = pd.Index(["ENSG1", "ENSG2"])
    counts = pd.DataFrame({"GSM1": [10.0, 0.0], "GSM2": [1.0, 2.0]}, index=genes)
    tables = GeneTables(counts=counts, tpm=counts, length_scaled_tpm=counts, symbols=None, n_transcripts=2)
    spec = ResultSpec(
        processor="constructed", version="1", mode="raw", parameters={}, input_sha256=[], annotations={}
    )
    with db.session() as session:
        store_experiment(session, _experiment_metadata())
    blocker = settings.home / "expression" / "GSE1"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the experiment's folder should be")
    with pytest.raises(OSError), db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        store_gene_tables(
            settings, session, experiment, samples=list(experiment.samples), tables=tables, spec=spec
        )
    with db.session() as session:
        assert session.scalars(select(ProcessingResult)).all() == []
        assert session.scalars(select(ComputedFile)).all() == []
        assert {s.is_processed for s in queries.get_experiment(session, "GSE1").samples} == {False}


def test_recording_stores_the_given_qc_and_keeps_other_pending_changes(db: Database, tmp_path: Path) -> None:
    """The samples' state and QC are written by the recording statement: the session's samples
    read them without being dirty for them, and a change the caller made and did not flush yet
    (a title here) is still written by the session's flush."""
    path = tmp_path / "values.parquet"
    digest = write_expression(path, pd.DataFrame({"GSM1": [1.0]}, index=["ENSG1"]), metadata={})
    with db.session() as session:
        experiment = store_experiment(session, _experiment_metadata())
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1", for_processing=True)
        first, second = experiment.samples
        first.title = "renamed before recording"
        _record(
            session,
            experiment,
            "1",
            [("expression", path, digest)],
            qc={"GSM1": {"salmon": {"mapping_rate": 0.9}}},
        )
        assert first.qc == {"salmon": {"mapping_rate": 0.9}} and second.qc == {}
        assert first.is_processed and second.is_processed
        assert second not in session.dirty
        assert inspect(first).attrs.title.history.has_changes()
    with db.session() as session:
        stored = {s.accession: s for s in queries.get_experiment(session, "GSE1").samples}
        assert stored["GSM1"].qc == {"salmon": {"mapping_rate": 0.9}} and stored["GSM2"].qc == {}
        assert stored["GSM1"].title == "renamed before recording"
        assert {s.processing_state for s in stored.values()} == {ProcessingState.PROCESSED}


def test_older_results_of_more_samples_than_one_statement_takes_are_all_retired(
    db: Database, tmp_path: Path
) -> None:
    """The retiring UPDATE takes 500 sample ids at a time: every batch, the last partial one too."""
    samples = [
        SampleRecord(accession=f"GSM{i}", title=f"sample {i}", platform="GPL1") for i in range(1, 1202)
    ]
    metadata = _experiment_metadata()
    metadata = ExperimentMetadata(
        source=metadata.source, series=metadata.series, platforms=metadata.platforms, samples=samples
    )
    path = tmp_path / "values.parquet"
    digest = write_expression(path, pd.DataFrame({"GSM1": [1.0]}, index=["ENSG1"]), metadata={})
    for version, chosen in (
        ("first batch", slice(0, 500)),
        ("last batch", slice(1000, None)),
        ("new", slice(None)),
    ):
        with db.session() as session:
            experiment = store_experiment(session, metadata)
            _record(
                session,
                experiment,
                version,
                [("expression", path, digest)],
                samples=experiment.samples[chosen],
            )
    with db.session() as session:
        current = {r.processor_version: r.is_current for r in session.scalars(select(ProcessingResult))}
        linked = session.scalar(select(func.count()).select_from(result_sample))
    assert current == {"first batch": False, "last batch": False, "new": True}
    assert linked == 500 + 201 + 1201


def test_only_the_current_result_is_retired(db: Database, tmp_path: Path) -> None:
    values = pd.DataFrame({"GSM1": [1.0], "GSM2": [2.0]}, index=["ENSG1"])
    for number in range(3):
        path = tmp_path / f"{number}.parquet"
        digest = write_expression(path, values * number, metadata={"value_type": "log2"})
        with db.session() as session:
            experiment = store_experiment(session, _experiment_metadata())
            _record(session, experiment, str(number), [("expression", path, digest)])
    with db.session() as session:
        current = {r.processor_version: r.is_current for r in session.scalars(select(ProcessingResult))}
    assert current == {"0": False, "1": False, "2": True}


def test_recording_retires_older_results_without_reading_them(db: Database, tmp_path: Path) -> None:
    """Older results are retired in SQL: none is loaded, however many a sample has, and those the
    session already holds read as retired; the samples' results load afresh when next read."""
    values = pd.DataFrame({"GSM1": [1.0], "GSM2": [2.0]}, index=["ENSG1"])
    path = tmp_path / "old.parquet"
    for version in ("older", "old"):
        with db.session() as session:
            experiment = store_experiment(session, _experiment_metadata())
            written = write_expression(path, values, metadata={})
            _record(session, experiment, version, [("expression", path, written)])
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1", for_processing=True)
        samples = list(experiment.samples)
        held = session.scalars(
            select(ProcessingResult).where(ProcessingResult.processor_version == "old")
        ).one()
        assert held.is_current
        assert all("results" in inspect(sample).unloaded for sample in samples)
        statements.clear()
        _record(
            session, experiment, "new", [("expression", path, write_expression(path, values, metadata={}))]
        )
        assert not [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert not held.is_current and held not in session.dirty
        assert [[r.processor_version for r in sorted(s.results, key=lambda r: r.id)] for s in samples] == [
            ["older", "old", "new"],
            ["older", "old", "new"],
        ]
        assert {r.processor_version for s in samples for r in s.results if r.is_current} == {"new"}
    with db.session() as session:
        current = {r.processor_version: r.is_current for r in session.scalars(select(ProcessingResult))}
    assert current == {"older": False, "old": False, "new": True}
