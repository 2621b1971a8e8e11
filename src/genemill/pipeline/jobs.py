"""The durable job queue: Job rows in the database are the queue, executors only run them.

Claiming is a compare-and-set UPDATE (``WHERE state = 'QUEUED'``), so two runners never run the
same job, on SQLite and PostgreSQL alike. A job killed mid-run stays RUNNING with its worker id;
the next run re-queues it when that worker process is gone (same host) or its heartbeat is stale.
Finished jobs are never redone. This module is the job boundary: the one place where any
exception from a job is caught, recorded (type, message, traceback) and classified:

* ``InputError``, ``ProcessingError``, ``NotFoundError`` -> FAILED at once (retrying cannot help);
* anything else (network, ``SourceError``, crashes) -> retried with exponential backoff until
  ``max_attempts``, then FAILED.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Update, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.errors import InputError, NotFoundError, ProcessingError
from genemill.pipeline.executors import Executor
from genemill.pipeline.heap import keep_temporaries_on_heap
from genemill.store.db import Database
from genemill.store.models import Job, JobState, utcnow

__all__ = [
    "ClaimedJob",
    "JobKind",
    "JobOutcome",
    "RunSummary",
    "claim_jobs",
    "claim_next",
    "enqueue",
    "execute_job",
    "handler_name",
    "job_database",
    "recover_stale",
    "register_handler",
    "run_jobs",
]

STALE_AFTER = dt.timedelta(minutes=10)


class JobKind(enum.StrEnum):
    """What a job does."""

    SURVEY = "survey"
    IMPORT = "import"
    DOWNLOAD = "download"
    PROCESS = "process"
    PROCESS_SAMPLE = "process-sample"
    DATASET = "dataset"


Handler = Callable[[Settings, str, dict[str, Any]], dict[str, Any] | None]
_HANDLERS: dict[str, str] = {}


def register_handler(kind: JobKind, dotted: str) -> None:
    """Map a job kind to ``"package.module:function"`` (imported in the worker process)."""
    _HANDLERS[kind.value] = dotted


def _resolve(kind: str) -> Handler:
    from importlib import import_module

    dotted = kind if ":" in kind else handler_name(kind)
    module, name = dotted.split(":")
    handler: Handler = getattr(import_module(module), name)
    return handler


_DEFAULT_HANDLERS = {
    JobKind.SURVEY.value: "genemill.pipeline.survey:run_survey_job",
    JobKind.IMPORT.value: "genemill.pipeline.survey:run_import_job",
    JobKind.PROCESS.value: "genemill.pipeline.process:run_process_job",
    JobKind.DATASET.value: "genemill.datasets.job:run_dataset_job",
    JobKind.PROCESS_SAMPLE.value: "genemill.pipeline.sample_jobs:run_sample_job",
}


_DATABASES: dict[str, Database] = {}
_DATABASES_KEPT = 4
_DATABASES_LOCK = threading.Lock()


def job_database(settings: Settings) -> Database:
    """This process's Database for ``settings``' URL, made once and kept for the jobs that follow.

    A worker process runs job after job against the same database: one engine keeps its pooled
    connections (no new PostgreSQL backend per job) and its compiled-statement cache. The last
    ``_DATABASES_KEPT`` URLs are kept; older engines are disposed.
    """
    url = settings.resolved_database_url
    with _DATABASES_LOCK:  # a Dask worker may run jobs in several threads
        db = _DATABASES.pop(url, None) or Database(url)
        _DATABASES[url] = db  # most recently used last
        while len(_DATABASES) > _DATABASES_KEPT:
            _DATABASES.pop(next(iter(_DATABASES))).dispose()
    return db


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(
    session: Session,
    kind: JobKind,
    target: str,
    *,
    params: dict[str, Any] | None = None,
    max_attempts: int = 3,
    requeue_failed: bool = True,
    force: bool = False,
) -> Job:
    """Add a job, or return the existing one for (kind, target).

    A SUCCEEDED job is left alone (finished work is not redone); a FAILED one is re-queued with
    fresh attempts when ``requeue_failed``; ``force`` re-queues a SUCCEEDED one too.
    """
    job = session.scalar(select(Job).where(Job.kind == kind.value, Job.target == target))
    if job is None:
        job = Job(kind=kind.value, target=target, params=params or {}, max_attempts=max_attempts)
        try:  # two runners may enqueue the same job at once: the unique (kind, target) decides
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            job = session.scalar(select(Job).where(Job.kind == kind.value, Job.target == target))
            assert job is not None
    elif (job.state == JobState.FAILED and requeue_failed) or (force and job.state != JobState.RUNNING):
        job.state = JobState.QUEUED
        job.attempts = 0
        job.error = job.error_type = job.traceback = None
        job.params = params or job.params
        job.not_before = None
    session.flush()
    return job


def _alive(worker: str | None) -> bool:
    if not worker or ":" not in worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def recover_stale(session: Session, *, stale_after: dt.timedelta = STALE_AFTER) -> int:
    """Re-queue RUNNING jobs whose worker died (same host) or whose heartbeat is stale."""
    now = utcnow()
    count = 0
    for job in session.scalars(select(Job).where(Job.state == JobState.RUNNING)):
        beat = job.heartbeat_at or job.started_at
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=dt.UTC)
        stale = beat is None or now - beat > stale_after
        if stale or not _alive(job.worker):
            job.state = JobState.QUEUED
            job.error = f"re-queued: worker {job.worker} stopped during attempt {job.attempts}"
            count += 1
    session.flush()
    return count


class ClaimedJob(NamedTuple):
    """A job this runner has just moved to RUNNING (its memory tier when the claim recorded one)."""

    id: int
    kind: str
    target: str
    params: dict[str, Any]
    ram_mb: int | None


@functools.cache
def _claim_statement(kinds: tuple[str, ...] | None, *, record_tier: bool) -> Update:
    """The claim, built once per (kinds, tier) shape: the runner issues it for every batch of jobs.

    The oldest eligible ids are picked by a CTE of the UPDATE itself (one statement, Core rather
    than the ORM's bulk path); on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets two runners claiming
    at once take different jobs instead of one of them finding its picks taken.
    """
    table = Job.__table__
    now = bindparam("now", type_=table.c.started_at.type)
    eligible = select(table.c.id).where(
        table.c.state == JobState.QUEUED, or_(table.c.not_before.is_(None), table.c.not_before <= now)
    )
    if kinds is not None:
        eligible = eligible.where(table.c.kind.in_(kinds))
    # A CTE, not ``IN (subquery)``: PostgreSQL may re-run a LIMIT … SKIP LOCKED subquery for each
    # row it updates (each run skipping the rows just locked: more than ``limit`` jobs claimed);
    # a CTE with a locking clause is evaluated once.
    picked = (
        eligible.order_by(table.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    values: dict[str, Any] = {
        "state": JobState.RUNNING,
        "attempts": table.c.attempts + 1,
        "worker": bindparam("worker", type_=table.c.worker.type),
        "started_at": now,
        "heartbeat_at": now,
    }
    if record_tier:
        values["ram_mb"] = func.coalesce(table.c.ram_mb, bindparam("tier", type_=table.c.ram_mb.type))
    return (
        update(table)
        .where(table.c.id.in_(select(picked.c.id)), table.c.state == JobState.QUEUED)
        .values(values)
        .returning(table.c.id, table.c.kind, table.c.target, table.c.params, table.c.ram_mb)
    )


def claim_jobs(
    session: Session,
    *,
    kinds: Iterable[str] | None = None,
    limit: int = 1,
    worker: str = "",
    first_tier: int | None = None,
) -> list[ClaimedJob]:
    """Atomically move up to ``limit`` of the oldest eligible QUEUED jobs to RUNNING.

    Returns each job this call claimed, by id. One compare-and-set ``UPDATE … WHERE state =
    'QUEUED' … RETURNING`` claims the whole batch: a job another runner claimed meanwhile fails
    the ``state`` test and is not returned, on SQLite (writes are serialized) and PostgreSQL (the
    row is re-checked after the other transaction commits) alike. ``first_tier`` (MB) is recorded
    as the memory tier of claimed jobs that have none yet (a Dask executor's first tier), which
    saves the executor a statement per job.
    """
    if limit <= 0:
        return []
    statement = _claim_statement(None if kinds is None else tuple(kinds), record_tier=first_tier is not None)
    claimed = session.execute(
        statement, {"now": utcnow(), "limit": limit, "worker": worker or worker_id(), "tier": first_tier}
    ).all()
    return sorted(
        ClaimedJob(row.id, row.kind, row.target, dict(row.params or {}), row.ram_mb) for row in claimed
    )


def claim_next(session: Session, *, kinds: Iterable[str] | None = None, worker: str = "") -> Job | None:
    """Atomically move the oldest eligible QUEUED job to RUNNING and return it."""
    claimed = claim_jobs(session, kinds=kinds, limit=1, worker=worker)
    if not claimed:
        return None
    job = session.get(Job, claimed[0].id)
    assert job is not None
    session.refresh(job)
    return job


@dataclass(frozen=True)
class JobOutcome:
    """What a job attempt produced; exceptions are flattened so they cross process boundaries."""

    job_id: int
    ok: bool
    result: dict[str, Any] | None = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    retryable: bool = False


def handler_name(kind: str) -> str:
    """The ``module:function`` that runs jobs of ``kind`` (registered, else the default)."""
    return _HANDLERS.get(kind) or _DEFAULT_HANDLERS[kind]


def execute_job(
    settings: Settings,
    job_id: int,
    kind: str,
    target: str,
    params: dict[str, Any],
    handler: str | None = None,
) -> JobOutcome:
    """Run one job's handler (in whatever process the executor chose) and report its outcome.

    ``handler`` (``module:function``) is resolved by the submitting process and travels with the
    job, so registrations made there also hold in worker processes.
    """
    keep_temporaries_on_heap()  # once per process: job kernels allocate large temporaries
    try:
        result = _resolve(handler or kind)(settings, target, params)
    except Exception as exc:  # the job boundary: record everything, classify, never swallow silently
        permanent = isinstance(exc, InputError | ProcessingError | NotFoundError)
        return JobOutcome(
            job_id=job_id,
            ok=False,
            error_type=type(exc).__name__,
            error=str(exc),
            traceback=traceback.format_exc(),
            retryable=not permanent,
        )
    return JobOutcome(job_id=job_id, ok=True, result=result)


@dataclass
class RunSummary:
    """Counts of what one runner pass did."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    retried: int = 0
    recovered: int = 0


def _record_successes(session: Session, job_ids: list[int], summary: RunSummary) -> None:
    """Mark jobs SUCCEEDED in one Core UPDATE (the common case: no row needs reading first)."""
    table = Job.__table__
    done = session.execute(
        update(table)
        .where(table.c.id.in_(job_ids))
        .values(state=JobState.SUCCEEDED, finished_at=utcnow(), error=None, error_type=None, traceback=None)
        .returning(table.c.id, table.c.target)
    ).all()
    targets = dict(done)
    summary.succeeded.extend(targets[job_id] for job_id in job_ids if job_id in targets)


def _record_failure(session: Session, outcome: JobOutcome, summary: RunSummary, *, backoff: float) -> None:
    job = session.get(Job, outcome.job_id)
    if job is None:
        return
    job.finished_at = utcnow()
    job.error, job.error_type, job.traceback = outcome.error, outcome.error_type, outcome.traceback
    if outcome.retryable and job.attempts < job.max_attempts:
        job.state = JobState.QUEUED
        job.not_before = utcnow() + dt.timedelta(seconds=min(300.0, backoff * 2 ** (job.attempts - 1)))
        summary.retried += 1
    else:
        job.state = JobState.FAILED
        job.retryable = outcome.retryable
        summary.failed.append((job.target, f"{outcome.error_type}: {outcome.error}"))


def _record_and_claim(
    db: Database,
    outcomes: list[JobOutcome],
    summary: RunSummary,
    *,
    kinds: list[str] | None,
    limit: int,
    backoff: float,
    first_tier: int | None = None,
) -> list[ClaimedJob]:
    """Record finished attempts and claim up to ``limit`` more jobs, in one transaction."""
    with db.session() as session:
        succeeded = [outcome.job_id for outcome in outcomes if outcome.ok]
        if succeeded:
            _record_successes(session, succeeded, summary)
        for outcome in outcomes:
            if not outcome.ok:
                _record_failure(session, outcome, summary, backoff=backoff)
        return claim_jobs(session, kinds=kinds, limit=limit, first_tier=first_tier)


def _next_wait(db: Database, kinds: list[str] | None) -> float | None:
    with db.session() as session:
        query = select(Job.not_before).where(Job.state == JobState.QUEUED)
        if kinds is not None:
            query = query.where(Job.kind.in_(kinds))
        times = list(session.scalars(query))
    if not times:
        return None
    now = utcnow()
    waits = [
        ((t if t.tzinfo else t.replace(tzinfo=dt.UTC)) - now).total_seconds() if t else 0.0 for t in times
    ]
    return max(0.0, min(waits))


def run_jobs(
    settings: Settings,
    db: Database,
    *,
    executor: Executor,
    kinds: list[str] | None = None,
    on_done: Callable[[JobOutcome], None] | None = None,
) -> RunSummary:
    """Run queued jobs (of ``kinds``) until none is left, with at most ``settings.workers`` in flight.

    An executor that sizes jobs by memory (Dask) names its first tier (``claim_tier``): the claim
    records it on the job rows, and ``tier_recorded`` tells the executor what each row holds.
    """
    summary = RunSummary()
    first_tier: int | None = getattr(executor, "claim_tier", None)
    tier_recorded: Callable[[int, int | None], None] | None = getattr(executor, "tier_recorded", None)
    with db.session() as session:
        summary.recovered = recover_stale(session)
    running: dict[Future[JobOutcome], int] = {}
    finished: list[JobOutcome] = []
    backoff = settings.retry_backoff_seconds
    while True:
        free = max(1, settings.workers) - len(running)
        claimed = _record_and_claim(
            db, finished, summary, kinds=kinds, limit=free, backoff=backoff, first_tier=first_tier
        )
        if on_done is not None:
            for outcome in finished:
                on_done(outcome)
        finished = []
        for job_id, kind, target, params, ram_mb in claimed:
            if tier_recorded is not None and first_tier is not None:
                tier_recorded(job_id, ram_mb)
            handler = handler_name(kind)
            future = executor.submit(execute_job, settings, job_id, kind, target, params, handler)
            running[future] = job_id
        if not running:
            delay = _next_wait(db, kinds)
            if delay is None:
                return summary
            time.sleep(min(delay, 5.0) + 0.01)
            continue
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            running.pop(future)
            try:
                finished.append(future.result())
            except BaseException:  # e.g. SchedulerLostError: keep what did finish, then stop
                _record_and_claim(db, finished, summary, kinds=kinds, limit=0, backoff=backoff)
                raise
