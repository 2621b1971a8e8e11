"""Tests for finish_experiment's reindex-only-when-needed and the processing load of an experiment."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, event, inspect, select

from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline import ingest
from genemill.pipeline.ingest import finish_experiment, index_inputs, store_experiment
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import ProcessingState
from genemill.store.search import SearchQuery, search
from genemill.store.search_models import ExperimentFacet, ExperimentSearch


def _metadata() -> ExperimentMetadata:
    """Hand-written two-sample experiment (constructed here, not real data)."""
    samples = [
        SampleRecord(
            accession=f"GSM{i}",
            title=f"sample {i}",
            platform="GPL1",
            supplementary_files=[f"ftp://example.org/GSM{i}.CEL.gz"],
        )
        for i in (1, 2)
    ]
    return ExperimentMetadata(
        source="GEO",
        series=SeriesRecord(accession="GSE1", title="constructed"),
        platforms=[PlatformRecord(accession="GPL1", title="constructed")],
        samples=samples,
    )


class Reindexed(list[int]):
    """Experiment ids reindexed by finish_experiment, and the options of each call."""

    options: list[dict[str, Any]]

    def clear(self) -> None:
        super().clear()
        self.options.clear()


@pytest.fixture
def reindexed(monkeypatch: pytest.MonkeyPatch) -> Reindexed:
    """Experiment ids reindexed by finish_experiment (the real reindex still runs)."""
    calls = Reindexed()
    calls.options = []
    real = ingest.reindex_experiment

    def spy(session, experiment, **options) -> None:  # type: ignore[no-untyped-def]
        calls.append(experiment.id)
        calls.options.append(options)
        real(session, experiment, **options)

    monkeypatch.setattr(ingest, "reindex_experiment", spy)
    return calls


def _downloadable(db: Database) -> int:
    with db.session() as session:
        rows = session.scalars(select(ExperimentFacet).where(ExperimentFacet.facet == "platform"))
        return sum(row.downloadable_samples for row in rows)


def test_unchanged_states_skip_the_reindex_and_a_state_change_does_not(db: Database, reindexed) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    reindexed.clear()
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        before = index_inputs(experiment)
        finish_experiment(session, experiment, unchanged_since=before)
    assert reindexed == []
    assert _downloadable(db) == 0
    _process_first_sample(db)
    assert len(reindexed) == 1
    assert _downloadable(db) == 1


def _process_first_sample(db: Database) -> None:
    """Mark GSM1 processed and finish the experiment against the snapshot taken before."""
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        before = index_inputs(experiment)
        experiment.samples[0].processing_state = ProcessingState.PROCESSED
        finish_experiment(session, experiment, unchanged_since=before)
        assert experiment.num_processed_samples == 1 and experiment not in session.dirty  # one UPDATE


def _found(db: Database, words: str) -> list[str]:
    with db.session() as session:
        return [r["accession_code"] for r in search(session, SearchQuery(text=words)).results]


def test_a_state_change_alone_keeps_the_text_index_and_rewrites_the_counts(db: Database, reindexed) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    reindexed.clear()
    _process_first_sample(db)
    assert [options["with_text"] for options in reindexed.options] == [False]
    assert _downloadable(db) == 1
    with db.session() as session:
        stored = queries.get_experiment(session, "GSE1")
        assert (stored.num_processed_samples, stored.num_downloadable_samples) == (1, 1)
    assert _found(db, "constructed") == ["GSE1"]  # the text index (PostgreSQL: the row's tsvector) kept
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        before = index_inputs(experiment)
        experiment.samples[1].title = "renamed sample"
        experiment.samples[1].processing_state = ProcessingState.PROCESSED
        finish_experiment(session, experiment, unchanged_since=before)
    assert reindexed.options[-1]["with_text"] is True  # a title changed: the text is rebuilt
    assert _downloadable(db) == 2
    assert _found(db, "renamed") == ["GSE1"]


def test_a_prepared_document_is_written_only_for_the_states_it_was_built_for(db: Database, reindexed) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    for processed, written in ((2, True), (1, False)):
        with db.session() as session:
            experiment = queries.get_experiment(session, "GSE1")
            for sample in experiment.samples:
                sample.processing_state = ProcessingState.NEW
            finish_experiment(session, experiment)
        reindexed.clear()
        with db.session() as session:
            experiment = queries.get_experiment(session, "GSE1")
            before = index_inputs(experiment)
            expected = tuple(row._replace(processing_state=ProcessingState.PROCESSED) for row in before)
            prepared = ingest.prepare_index(session, experiment, expected)
            for sample in experiment.samples[:processed]:
                sample.processing_state = ProcessingState.PROCESSED
            finish_experiment(session, experiment, unchanged_since=before, indexed=True, prepared=prepared)
        document = reindexed.options[0].get("document")
        assert (document is prepared.document) is written and reindexed.options[0]["with_text"] is False
        assert _downloadable(db) == processed  # the counts of the states reached, either way


def test_a_missing_search_row_is_written_even_when_unchanged(db: Database, reindexed) -> None:
    with db.session() as session:
        experiment = store_experiment(session, _metadata())
        session.execute(delete(ExperimentSearch).where(ExperimentSearch.experiment_id == experiment.id))
    reindexed.clear()
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        finish_experiment(session, experiment, unchanged_since=index_inputs(experiment))
    assert len(reindexed) == 1
    with db.session() as session:
        assert session.scalar(select(ExperimentSearch.experiment_id)) is not None


def test_a_search_row_known_to_be_missing_or_present_is_not_asked_again(db: Database, reindexed) -> None:
    with db.session() as session:
        experiment = store_experiment(session, _metadata())
        assert ingest.has_search_row(session, experiment)
    reindexed.clear()
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with db.session() as session:
        experiment = queries.get_experiment(session, "GSE1")
        asked = len(statements)
        finish_experiment(session, experiment, unchanged_since=index_inputs(experiment), indexed=True)
        assert len(statements) == asked and reindexed == []
        finish_experiment(session, experiment, unchanged_since=index_inputs(experiment), indexed=False)
    assert len(reindexed) == 1  # told it is missing: written again


def test_without_a_snapshot_finish_experiment_always_reindexes(db: Database, reindexed) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    reindexed.clear()
    with db.session() as session:
        finish_experiment(session, queries.get_experiment(session, "GSE1"))
    assert len(reindexed) == 1


def test_for_processing_loads_files_and_organisms_up_front_and_leaves_results(db: Database) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    with db.session() as session:
        plain = queries.get_experiment(session, "GSE1")
        assert all("original_files" in inspect(s).unloaded for s in plain.samples)
    with db.session() as session:
        loaded = queries.get_experiment(session, "GSE1", for_processing=True)
        for sample in loaded.samples:
            unloaded = inspect(sample).unloaded
            assert not {"original_files", "organism"} & unloaded
            assert "platform" in unloaded  # processing does not read it; it loads if touched
            assert "results" in unloaded  # recording a result does not read them
        assert sorted(f.filename for s in loaded.samples for f in s.original_files) == [
            "GSM1.CEL.gz",
            "GSM2.CEL.gz",
        ]
        assert {s.platform.accession for s in loaded.samples} == {"GPL1"}
