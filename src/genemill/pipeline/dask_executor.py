"""Run genemill's jobs on a Dask ``distributed`` cluster (``pip install 'genemill[dask]'``).

The job rows in the database stay the queue (:mod:`genemill.pipeline.jobs`); Dask only runs the
attempts. :class:`DaskExecutor` follows :class:`~genemill.pipeline.executors.Executor`
(``submit(fn, *args) -> concurrent.futures.Future``, ``shutdown()``), so ``run_jobs`` drives it
like the local pool. Dask is imported here only, and only when an executor is built.

What it adds for :func:`~genemill.pipeline.jobs.execute_job` submissions:

* **Worker loss.** Tasks are submitted with ``pure=False`` (every attempt runs) and ``retries``
  (an exception escaping the task is retried by Dask). When a worker dies mid-task Dask
  reschedules the task on another worker, up to ``distributed.scheduler.allowed-failures``
  deaths; after that the task errs with ``KilledWorker``, which becomes a *retryable*
  ``JobOutcome`` so the queue re-runs the job with backoff until ``Job.max_attempts``.
* **Memory tiers** (as refine.bio sizes its Nomad jobs). Each job asks for ``Job.ram_mb`` MB of
  the worker resource ``MEMORY`` (first tier ``MEMORY_TIERS[0]`` when unset, recorded on the
  row). Workers advertise it (``dask worker --resources MEMORY=16384``), so a worker runs at most
  ``its MEMORY / tier`` jobs at once. A ``KilledWorker`` (out-of-memory termination by the nanny
  looks the same to the scheduler as a crash) raises the job's tier to the next one
  (2048 -> 4096 -> 8192 MB) before the retry. With no worker advertising ``MEMORY`` the tiers
  are recorded but no resource is requested; a tier above the largest worker's ``MEMORY`` is
  capped to it (otherwise the task could never start).
* **Heartbeats.** While a job's task is in flight, its row's ``heartbeat_at`` is refreshed every
  ``heartbeat_every`` seconds, so another runner's ``recover_stale`` does not re-queue it.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from genemill.config import Settings
from genemill.errors import StoreError
from genemill.pipeline import jobs
from genemill.pipeline.executors import Executor, InlineExecutor, LocalExecutor
from genemill.store.db import Database
from genemill.store.models import Job, JobState, utcnow

__all__ = ["MEMORY_RESOURCE", "MEMORY_TIERS", "DaskExecutor", "executor_for", "next_tier"]

MEMORY_RESOURCE = "MEMORY"
MEMORY_TIERS: tuple[int, ...] = (2048, 4096, 8192)

logger = logging.getLogger(__name__)


def next_tier(ram_mb: int | None, tiers: Sequence[int] = MEMORY_TIERS) -> int:
    """The memory tier after ``ram_mb`` (the largest tier stays the largest)."""
    current = ram_mb or tiers[0]
    return next((tier for tier in tiers if tier > current), max(current, tiers[-1]))


def executor_for(settings: Settings, db: Database, *, workers: int | None = None) -> Executor:
    """The executor for a run: Dask at ``settings.scheduler`` when set, else local processes.

    Without a scheduler, ``workers`` (default ``settings.workers``) of 1 or less runs jobs in this
    process. With one, ``run_jobs`` keeps ``settings.workers`` jobs in flight: set it to at least
    the cluster's total worker threads.
    """
    if settings.scheduler:
        return DaskExecutor(settings.scheduler, db=db)
    count = settings.workers if workers is None else workers
    return InlineExecutor() if count <= 1 else LocalExecutor(count)


class DaskExecutor:
    """Submit job attempts to a Dask cluster: a scheduler address, a cluster object, or a new local one.

    Parameters
    ----------
    address
        Scheduler address (``tcp://host:8786``); ``None`` with no ``cluster`` starts a local cluster.
    cluster
        A ``distributed`` cluster object (``LocalCluster``, ``SSHCluster``, ``SLURMCluster``…).
    db
        The job database; needed for memory tiers and heartbeats (without it neither is used).
    tiers
        Memory tiers in MB, ascending.
    retries
        Dask-level retries of a task that raised (worker deaths are governed by
        ``distributed.scheduler.allowed-failures`` instead).
    heartbeat_every
        Seconds between heartbeat updates of in-flight jobs.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        cluster: Any = None,
        db: Database | None = None,
        tiers: Sequence[int] = MEMORY_TIERS,
        retries: int = 1,
        heartbeat_every: float = 60.0,
    ) -> None:
        from distributed import Client

        client: Callable[..., Any] = Client  # distributed is untyped
        if cluster is not None:
            self.client: Any = client(cluster)
        elif address:
            self.client = client(address)
        else:
            self.client = client(processes=True, dashboard_address=None)
        self.db = db
        self.tiers = tuple(sorted(tiers))
        self.retries = retries
        self._live: dict[str, tuple[Any, int | None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, args=(heartbeat_every,), name="genemill-heartbeat", daemon=True
        )
        if db is not None:
            self._heartbeat.start()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Schedule ``fn(*args)`` on the cluster; job attempts get a memory tier and a job-named key."""
        job_id: int | None = None
        resources = None
        if fn is jobs.execute_job:
            job_id = int(args[1])
            resources = self._resources_for(job_id)
        prefix = f"genemill-job-{job_id}" if job_id is not None else getattr(fn, "__name__", "task")
        key = f"{prefix}-{uuid.uuid4().hex[:12]}"
        dask_future = self.client.submit(
            fn,
            *args,
            key=key,
            pure=False,
            retries=self.retries,
            resources=resources,
        )
        result: Future[Any] = Future()
        with self._lock:
            self._live[key] = (dask_future, job_id)
        dask_future.add_done_callback(lambda done: self._settle(done, result, job_id))
        return result

    def shutdown(self) -> None:
        """Cancel tasks still in flight, stop heartbeats and close the client (and its own cluster)."""
        self._stop.set()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=10)
        with self._lock:
            pending = [future for future, _ in self._live.values()]
            self._live.clear()
        if pending:
            self.client.cancel(pending)
        self.client.close()

    # ------------------------------------------------------------------ internals

    def _settle(self, done: Any, result: Future[Any], job_id: int | None) -> None:
        """Copy a finished Dask future into ``result``; a failed job attempt becomes a JobOutcome."""
        with self._lock:
            self._live.pop(done.key, None)
        try:
            if done.status == "finished":
                result.set_result(done.result())
                return
            error: BaseException = CancelledError(f"task {done.key} was {done.status}")
            if done.status == "error":
                error = done.exception()
            if job_id is None:
                result.set_exception(error)
                return
            result.set_result(self._failed_outcome(job_id, error))
        finally:
            if not result.done():  # never leave the runner waiting on a future nobody will settle
                msg = f"could not collect the outcome of Dask task {done.key} (status {done.status})"
                result.set_exception(StoreError(msg))

    def _failed_outcome(self, job_id: int, error: BaseException) -> jobs.JobOutcome:
        from distributed import KilledWorker

        message = str(error)
        if isinstance(error, KilledWorker):
            try:
                tier = f"memory tier now {self._raise_tier(job_id)} MB"
            except SQLAlchemyError as exc:
                tier = f"memory tier not raised ({type(exc).__name__})"
            message = (
                f"the worker process died while running this job (out of memory or a crash); "
                f"{tier}. Dask: {error}"
            )
        return jobs.JobOutcome(
            job_id=job_id,
            ok=False,
            error_type=type(error).__name__,
            error=message,
            traceback="".join(traceback.format_exception(error)),
            retryable=True,
        )

    def _resources_for(self, job_id: int) -> dict[str, float] | None:
        """The ``MEMORY`` request of a job: its tier (recorded when unset), capped to the workers."""
        if self.db is None:
            return None
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job is None:
                return None
            if job.ram_mb is None:
                job.ram_mb = self.tiers[0]
            tier = job.ram_mb
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        offered = [float(w.get("resources", {}).get(MEMORY_RESOURCE, 0)) for w in workers.values()]
        if not any(offered):
            return None
        if tier > max(offered):
            logger.warning("job %s wants %s MB; the largest worker offers %s MB", job_id, tier, max(offered))
        return {MEMORY_RESOURCE: min(float(tier), max(offered))}

    def _raise_tier(self, job_id: int) -> int:
        if self.db is None:
            return next_tier(None, self.tiers)
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job is None:
                return next_tier(None, self.tiers)
            job.ram_mb = next_tier(job.ram_mb, self.tiers)
            return job.ram_mb

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                ids = [job_id for _, job_id in self._live.values() if job_id is not None]
            if not ids or self.db is None:
                continue
            try:
                with self.db.session() as session:
                    session.execute(
                        update(Job)
                        .where(Job.id.in_(ids), Job.state == JobState.RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
            except SQLAlchemyError as exc:  # the database is away for a moment: beat again later
                logger.warning("heartbeat of jobs %s failed: %s", ids, exc)
