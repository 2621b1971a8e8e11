"""The durable job runner: retries with backoff, permanent failures, resuming killed runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from genemill.pipeline import jobs
from genemill.pipeline.executors import InlineExecutor, LocalExecutor
from genemill.pipeline.jobs import JobKind, enqueue, run_jobs
from genemill.store.db import Database
from genemill.store.models import Job, JobState


@pytest.fixture(autouse=True)
def _handler():
    jobs.register_handler(JobKind.DOWNLOAD, "tests.pipeline.job_handlers:count_and_maybe_fail")
    yield
    jobs._HANDLERS.pop(JobKind.DOWNLOAD.value, None)


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_transient_failures_are_retried_then_succeed(settings, db: Database, tmp_path) -> None:
    log = tmp_path / "log"
    with db.session() as session:
        enqueue(session, JobKind.DOWNLOAD, "GSM1", params={"log": str(log), "fail_times": 2}, max_attempts=3)
    summary = run_jobs(settings, db, executor=InlineExecutor(), kinds=["download"])
    assert summary.succeeded == ["GSM1"]
    assert summary.retried == 2
    assert len(_lines(log)) == 3
    with db.session() as session:
        job = session.scalar(select(Job))
        assert job is not None and job.state == JobState.SUCCEEDED and job.attempts == 3


def test_retry_limit_and_permanent_errors_are_recorded(settings, db: Database, tmp_path) -> None:
    log = tmp_path / "log"
    with db.session() as session:
        enqueue(
            session, JobKind.DOWNLOAD, "GSM-flaky", params={"log": str(log), "fail_times": 9}, max_attempts=2
        )
        enqueue(
            session, JobKind.DOWNLOAD, "GSM-bad", params={"log": str(log), "permanent": True}, max_attempts=3
        )
    summary = run_jobs(settings, db, executor=InlineExecutor(), kinds=["download"])
    failed = dict(summary.failed)
    assert failed["GSM-flaky"] == "SourceError: GSM-flaky: archive answered 503 (attempt 2)"
    assert failed["GSM-bad"] == "InputError: GSM-bad: malformed input"
    with db.session() as session:
        bad = session.scalar(select(Job).where(Job.target == "GSM-bad"))
        assert bad is not None and bad.attempts == 1 and not bad.retryable
        assert "InputError" in (bad.traceback or "")
    lines = _lines(log)
    assert lines.count(next(line for line in lines if line.startswith("GSM-bad"))) == 1


def test_killed_run_is_resumed_and_finished_work_not_redone(settings, db: Database, tmp_path) -> None:
    log = tmp_path / "log"
    with db.session() as session:
        for target in ("GSM1", "GSM2", "GSM3"):
            enqueue(session, JobKind.DOWNLOAD, target, params={"log": str(log)})
        done = session.scalar(select(Job).where(Job.target == "GSM1"))
        assert done is not None
        done.state = JobState.SUCCEEDED
        orphan = session.scalar(select(Job).where(Job.target == "GSM2"))
        assert orphan is not None
        orphan.state = JobState.RUNNING  # as a killed runner leaves it
        orphan.worker = f"{jobs.socket.gethostname()}:999999999"
        orphan.attempts = 1
        orphan.started_at = orphan.heartbeat_at = dt.datetime.now(dt.UTC)
    summary = run_jobs(settings, db, executor=InlineExecutor(), kinds=["download"])
    assert summary.recovered == 1
    assert sorted(summary.succeeded) == ["GSM2", "GSM3"]
    assert sorted(line.split()[0] for line in _lines(log)) == ["GSM2", "GSM3"]


def test_local_process_pool_runs_jobs_in_other_processes(
    sqlite_settings, sqlite_db: Database, tmp_path
) -> None:
    import os

    log = tmp_path / "log"
    with sqlite_db.session() as session:
        for i in range(4):
            enqueue(session, JobKind.DOWNLOAD, f"GSM{i}", params={"log": str(log)})
    executor = LocalExecutor(2)
    try:
        summary = run_jobs(sqlite_settings, sqlite_db, executor=executor, kinds=["download"])
    finally:
        executor.shutdown()
    assert sorted(summary.succeeded) == [f"GSM{i}" for i in range(4)]
    pids = {line.split()[1] for line in _lines(log)}
    assert str(os.getpid()) not in pids
