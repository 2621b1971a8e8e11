"""Storage on both backends: schema, upserts, JSON round trips, transactions, job claiming."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from genemill.formats.records import DataTable, ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import store_experiment
from genemill.pipeline.jobs import JobKind, claim_jobs, claim_next, enqueue
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Experiment, Job, JobState, Organism, Sample


def _metadata(n_samples: int = 3, accession: str = "GSE100") -> ExperimentMetadata:
    samples = [
        SampleRecord(
            accession=f"GSM{1000 + i}",
            title=f"sample {i}",
            organism=["Homo sapiens"],
            taxon_ids=[9606],
            platform="GPL96",
            characteristics=[
                ("tissue", "Kidney"),
                ("age", f"{40 + i} years"),
                ("Sex", "F" if i % 2 else "M"),
            ],
            fields={"Sample_title": [f"sample {i}"], "Sample_source_name_ch1": ["kidney biopsy"]},
            supplementary_files=[
                f"ftp://ftp.ncbi.nlm.nih.gov/geo/samples/GSM1nnn/GSM{1000 + i}/suppl/GSM{1000 + i}.CEL.gz"
            ],
            table=DataTable(columns=("ID_REF", "VALUE"), text=b"1007_s_at\t10.5\n", n_rows=1),
        )
        for i in range(n_samples)
    ]
    return ExperimentMetadata(
        source="GEO",
        series=SeriesRecord(
            accession=accession,
            title="Kidney study",
            description="Normal and tumour kidney — ünïcode kept",
            pubmed_ids=["12345"],
            submitter_institution="Somewhere University",
            contributors=["Doe,,J", "Roe,,R"],
            submission_date="Mar 24 2004",
            last_update_date="2012-03-08",
            sample_accessions=[s.accession for s in samples],
            platform_accessions=["GPL96"],
            fields={"Series_title": ["Kidney study"], "Series_type": ["Expression profiling by array"]},
        ),
        platforms=[
            PlatformRecord(
                accession="GPL96",
                title="[HG-U133A] Affymetrix Human Genome U133A Array",
                technology="in situ oligonucleotide",
                manufacturer="Affymetrix",
                organism=["Homo sapiens"],
            )
        ],
        samples=samples,
        file_format="soft",
    )


def test_store_experiment_round_trip(db: Database) -> None:
    with db.session() as session:
        store_experiment(session, _metadata())
    with db.session() as session:
        experiment = queries.get_experiment(session, "gse100")
        data = queries.experiment_dict(experiment)
    assert data["accession_code"] == "GSE100"
    assert data["alternate_accession_codes"] == ["E-GEOD-100"]
    assert data["description"].endswith("ünïcode kept")
    assert data["pubmed_id"] == "12345"
    assert data["source_first_published"] == "2004-03-24"
    assert data["source_last_modified"] == "2012-03-08"
    assert data["organism_names"] == ["Homo sapiens"]
    assert data["platform_accession_codes"] == ["GPL96"]
    assert data["platform_names"] == ["Affymetrix Human Genome U133A Array (hgu133a)"]
    assert data["technology"] == "MICROARRAY"
    assert data["num_total_samples"] == 3
    assert data["sample_metadata"] == ["sex", "age", "specimen_part"]
    first = data["samples"][0]
    assert first["accession_code"] == "GSM1000"
    assert first["specimen_part"] == "kidney"
    assert first["age"] == 40.0
    assert first["age_unit"] == "year"
    assert first["sex"] == "male"
    assert first["has_raw"] is True
    assert first["harmonized_sources"]["specimen_part"]["sources"] == ["tissue"]
    assert first["annotations"]["fields"]["Sample_source_name_ch1"] == ["kidney biopsy"]
    assert first["annotations"]["characteristics"][0] == ["tissue", "Kidney"]


def test_reimport_is_idempotent_and_keeps_ids(db: Database) -> None:
    with db.session() as session:
        first_id = store_experiment(session, _metadata()).id
    with db.session() as session:
        sample_ids = sorted(s.id for s in session.scalars(select(Sample)))
    with db.session() as session:
        assert store_experiment(session, _metadata()).id == first_id
    with db.session() as session:
        assert sorted(s.id for s in session.scalars(select(Sample))) == sample_ids
        assert session.scalar(select(func.count()).select_from(Experiment)) == 1
        assert session.scalar(select(func.count()).select_from(Organism)) == 1
        sample = session.scalar(select(Sample).where(Sample.accession == "GSM1000"))
        assert sample is not None
        assert len(sample.original_files) == 1


def test_failed_import_leaves_nothing_and_keeps_earlier_experiments(db: Database) -> None:
    with db.session() as session:
        store_experiment(session, _metadata(accession="GSE1"))
    broken = _metadata(accession="GSE2")
    broken.samples.append(SampleRecord(accession="GSM1000", title="dup"))  # same sample twice
    broken.samples.append(broken.samples[0])
    with pytest.raises(IntegrityError), db.session() as session:
        store_experiment(session, broken)
        session.add(Experiment(accession="GSE1", source_database="GEO"))  # unique violation
        session.flush()
    with db.session() as session:
        accessions = sorted(session.scalars(select(Experiment.accession)))
        assert accessions == ["GSE1"]
        assert session.scalar(select(func.count()).select_from(Sample)) == 3


def test_job_claim_is_exclusive_and_finished_work_not_redone(db: Database) -> None:
    with db.session() as session:
        enqueue(session, JobKind.PROCESS, "GSM1")
        enqueue(session, JobKind.PROCESS, "GSM2")
    with db.session() as first, db.session() as second:
        a = claim_next(first, worker="host:1")
        first.commit()
        b = claim_next(second, worker="host:2")
        second.commit()
        assert a is not None and b is not None
        assert {a.target, b.target} == {"GSM1", "GSM2"}
    with db.session() as session:
        assert claim_next(session, worker="host:3") is None
        job = session.scalar(select(Job).where(Job.target == "GSM1"))
        assert job is not None
        assert job.state == JobState.RUNNING and job.attempts == 1
        job.state = JobState.SUCCEEDED
    with db.session() as session:
        again = enqueue(session, JobKind.PROCESS, "GSM1")
        assert again.state == JobState.SUCCEEDED


def test_not_before_delays_claims(db: Database) -> None:
    with db.session() as session:
        job = enqueue(session, JobKind.PROCESS, "GSM9")
        job.not_before = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with db.session() as session:
        assert claim_next(session) is None


def test_batch_claims_take_the_oldest_eligible_jobs_once(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        for n in range(1, 8):
            enqueue(session, JobKind.PROCESS_SAMPLE, f"GSM{n}", params={"n": n})
        enqueue(session, JobKind.DATASET, "dataset-1")
        session.scalar(select(Job).where(Job.target == "GSM2")).not_before = now + dt.timedelta(hours=1)
        session.scalar(select(Job).where(Job.target == "GSM3")).not_before = now - dt.timedelta(seconds=1)
    kinds = [JobKind.PROCESS_SAMPLE.value]
    with db.session() as first, db.session() as second:
        a = claim_jobs(first, kinds=kinds, limit=3, worker="host:1")
        first.commit()
        b = claim_jobs(second, kinds=kinds, limit=10, worker="host:2")
        second.commit()
    assert [(job.target, job.params) for job in a] == [
        ("GSM1", {"n": 1}),
        ("GSM3", {"n": 3}),  # its backoff is over; GSM2's is not
        ("GSM4", {"n": 4}),
    ]
    assert [job.target for job in b] == ["GSM5", "GSM6", "GSM7"]
    assert {job.kind for job in a + b} == {JobKind.PROCESS_SAMPLE.value}
    assert {job.ram_mb for job in a + b} == {None}  # no tier asked for: none recorded
    with db.session() as session:
        jobs = {job.target: job for job in session.scalars(select(Job))}
        assert all(jobs[t].state == JobState.RUNNING and jobs[t].attempts == 1 for t in ("GSM1", "GSM7"))
        assert jobs["GSM1"].worker == "host:1" and jobs["GSM5"].worker == "host:2"
        assert jobs["GSM2"].state == JobState.QUEUED and jobs["dataset-1"].state == JobState.QUEUED
        assert claim_jobs(session, kinds=kinds, limit=5) == []


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_runners_claiming_at_the_same_moment_take_different_jobs(db: Database) -> None:
    with db.session() as session:
        for n in range(1, 5):
            enqueue(session, JobKind.PROCESS_SAMPLE, f"GSM{n}")
    with db.session() as first, db.session() as second:
        a = claim_jobs(first, limit=2, worker="host:1")  # its rows stay locked until it commits
        second.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting on them would fail, not hang
        b = claim_jobs(second, limit=2, worker="host:2")
        first.commit()
        second.commit()
    assert [job.target for job in a] == ["GSM1", "GSM2"]
    assert [job.target for job in b] == ["GSM3", "GSM4"]


def test_missing_schema_is_reported(tmp_path) -> None:
    from genemill.errors import StoreError

    database = Database(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(StoreError, match="has no schema; run `genemill db init`"):
        database.check_schema()
