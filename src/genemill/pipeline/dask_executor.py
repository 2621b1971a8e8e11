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
  ``its MEMORY / tier`` jobs at once. The tier rises to the next one (2048 -> 4096 -> 8192 MB)
  before the retry only when memory was the cause: the job raised ``MemoryError``, or a
  ``KilledWorker`` follows the nanny terminating a worker that ran the task for exceeding its
  ``--memory-limit`` (the nanny's ``worker-restart-memory`` event, matched by worker address to
  the scheduler's ``remove-worker`` events that list the task, among the workers that logged
  starting it: a worker also holds tasks it has not started). The cause is recorded on the job:
  ``error_type`` ``WorkerOutOfMemory`` (with the worker's RSS and limit in ``error``) or
  ``KilledWorker`` (any other death: a crash, a signal such as the kernel's OOM killer, which
  Dask cannot tell from ``kill -9``, or a lost host; the tier is kept). With no worker
  advertising ``MEMORY`` the tiers are recorded but no resource is requested; a tier above the
  largest worker's ``MEMORY`` is capped to it (otherwise the task could never start).
* **Heartbeats.** While a job's task is in flight, its row's ``heartbeat_at`` is refreshed every
  ``heartbeat_every`` seconds, so another runner's ``recover_stale`` does not re-queue it.
* **Scheduler loss.** Connecting gives up after ``connect_timeout`` seconds. When the client
  loses its scheduler, Dask cancels every future at once; the in-flight attempts then fail with
  :class:`SchedulerLostError` (and so does every later ``submit``), which ``run_jobs`` raises: the
  run stops at once with that error instead of waiting. A scheduler that hangs with its
  connections open is caught by a probe (its identity asked every ``probe_every`` seconds while
  tasks are in flight) and by the bound on every call genemill makes to it (``probe_timeout``).
  Their jobs stay RUNNING under this runner's id; the next run's ``recover_stale`` re-queues them
  once this process has exited (or their heartbeat is stale), and re-running against a new
  cluster does only unfinished work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, InvalidStateError
from contextlib import suppress
from dataclasses import replace
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import SQLAlchemyError

from genemill.config import Settings
from genemill.errors import GenemillError, StoreError
from genemill.pipeline import jobs
from genemill.pipeline.executors import Executor, InlineExecutor, LocalExecutor
from genemill.store.db import Database
from genemill.store.models import Job, JobState, utcnow

__all__ = [
    "DASK_CONFIG",
    "MEMORY_RESOURCE",
    "MEMORY_TIERS",
    "OUT_OF_MEMORY",
    "DaskExecutor",
    "SchedulerLostError",
    "executor_for",
    "next_tier",
]

MEMORY_RESOURCE = "MEMORY"
MEMORY_TIERS: tuple[int, ...] = (2048, 4096, 8192)
OUT_OF_MEMORY = "WorkerOutOfMemory"
"""``Job.error_type`` of an attempt whose worker the Dask nanny terminated for its memory limit."""
MEMORY_EVENT = "worker-restart-memory"
"""The topic of the event the nanny logs when it terminates a worker over its memory limit."""
DASK_CONFIG: dict[str, Any] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.interval": "100ms",
}
"""Dask settings for genemill's coarse jobs (seconds to hours each), for ``dask.config.set``.

* The 20 ms default tick (a diagnostic that warns when an event loop is blocked) runs ~50
  callbacks a second in the scheduler, in every nanny and in every worker: on the 2-core bench
  machine, where a LocalCluster's scheduler and nannies share the runner's process, that was half
  of the runner's CPU (0.89 -> 0.43 s of event-loop CPU for 40 per-sample jobs).
* The worker's statistical profiler samples the running task's stack every 10 ms by default,
  in the worker's event loop; every 100 ms still fills the dashboard's profile of jobs that run
  for seconds, and cut the worker's event-loop CPU from 0.44 to 0.24 s per 40 jobs.

For a standalone cluster set ``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s`` and
``DASK_DISTRIBUTED__WORKER__PROFILE__INTERVAL=100ms`` in the scheduler's and workers' environment.
"""
WORKERS_MAX_AGE = 5.0
"""Seconds the scheduler's list of workers (their ``MEMORY`` and limits) is reused between submits."""
STARTED_EVENT = "genemill-task-started"
"""The topic of the event a worker logs when it starts one of our tasks (``key``, ``pid``, ``limit``)."""


def run_marked(fn: Callable[..., Any], /, *args: Any) -> Any:
    """Run ``fn(*args)`` in a Dask worker after telling the scheduler this task started here.

    A worker also holds tasks it has not started (``processing`` on the scheduler); only a
    worker that started the task can have died of it.
    """
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not in a worker (e.g. run inline)
        return fn(*args)
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None) or 0
    worker.log_event(STARTED_EVENT, {"key": worker.get_current_task(), "pid": os.getpid(), "limit": limit})
    return fn(*args)


class SchedulerLostError(GenemillError):
    """The Dask scheduler cannot be reached (not started, died, or the network is gone)."""


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
    connect_timeout
        Seconds to reach the scheduler before giving up with :class:`SchedulerLostError`.
    event_wait
        Seconds to wait for the nanny's memory event after a ``KilledWorker`` (it may arrive
        just after the worker's removal).
    probe_every, probe_timeout
        While tasks are in flight the scheduler is asked for its identity every ``probe_every``
        seconds; no answer within ``probe_timeout`` seconds counts as a lost scheduler (one that
        hangs without closing its connections).
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
        connect_timeout: float = 30.0,
        event_wait: float = 2.0,
        probe_every: float = 30.0,
        probe_timeout: float = 30.0,
    ) -> None:
        from distributed import Client

        client: Callable[..., Any] = Client  # distributed is untyped
        if cluster is not None:
            self.client: Any = client(cluster, timeout=connect_timeout)
        elif address:
            try:
                self.client = client(address, timeout=connect_timeout)
            except OSError as exc:
                msg = f"cannot reach the Dask scheduler at {address} within {connect_timeout:g} s: {exc}"
                raise SchedulerLostError(msg) from exc
        else:
            import dask

            with dask.config.set(DASK_CONFIG):
                self.client = client(processes=True, dashboard_address=":0")
        self.address = str(self.client.scheduler.address)
        self.event_wait = event_wait
        self._lost: str | None = None
        self._limits: dict[str, float] = {}  # worker address -> memory limit (bytes)
        self._workers_seen: tuple[float, dict[str, Any]] | None = None  # (monotonic time, workers)
        self.db = db
        self.tiers = tuple(sorted(tiers))
        self.retries = retries
        self.probe_timeout = probe_timeout
        self._live: dict[str, tuple[Any, int | None, Future[Any]]] = {}
        self._claimed_tiers: dict[int, int] = {}  # job id -> tier the runner's claim recorded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._beat, args=(heartbeat_every,), name="genemill-heartbeat", daemon=True
        )
        self._prober = threading.Thread(
            target=self._probe, args=(probe_every,), name="genemill-scheduler-probe", daemon=True
        )
        if db is not None:
            self._heartbeat.start()
        self._prober.start()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def claim_tier(self) -> int | None:
        """The first memory tier, for ``run_jobs`` to record on job rows as it claims them."""
        return self.tiers[0] if self.db is not None else None

    def tier_recorded(self, job_id: int, ram_mb: int | None) -> None:
        """The runner's claim recorded ``ram_mb`` on job ``job_id``: its submit need not read it."""
        if ram_mb is not None:
            self._claimed_tiers[job_id] = ram_mb

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Schedule ``fn(*args)`` on the cluster; job attempts get a memory tier and a job-named key."""
        self._check_connected()
        job_id: int | None = None
        resources = None
        if fn is jobs.execute_job:
            job_id = int(args[1])
            resources = self._resources_for(job_id)
        prefix = f"genemill-job-{job_id}" if job_id is not None else getattr(fn, "__name__", "task")
        key = f"{prefix}-{uuid.uuid4().hex[:12]}"
        dask_future = self.client.submit(
            run_marked,
            fn,
            *args,
            key=key,
            pure=False,
            retries=self.retries,
            resources=resources,
        )
        result: Future[Any] = Future()
        with self._lock:
            self._live[key] = (dask_future, job_id, result)
        dask_future.add_done_callback(lambda done: self._settle(done, result, job_id))
        return result

    def shutdown(self) -> None:
        """Cancel tasks still in flight, stop heartbeats and close the client (and its own cluster)."""
        self._stop.set()
        for thread in (self._heartbeat, self._prober):
            if thread.is_alive():
                thread.join(timeout=10)
        with self._lock:
            pending = [future for future, _, _ in self._live.values()]
            self._live.clear()
        if pending and self._lost is None and self.client.status == "running":
            self.client.cancel(pending)
        if self._lost is None:
            self.client.close(timeout=10)
            return
        # A client that lost its scheduler would otherwise keep reconnecting for connect_timeout.
        with suppress(OSError, TimeoutError, RuntimeError):
            self.client.close(timeout=2)

    # ------------------------------------------------------------------ internals

    def _ask(self, method: str, **kwargs: Any) -> Any:
        """Call the scheduler's ``method`` RPC, waiting at most ``probe_timeout`` seconds.

        No answer (or a closed connection) marks the scheduler lost and raises SchedulerLostError:
        a scheduler that hangs must not hang the runner.
        """
        self._check_connected()
        try:
            call = getattr(self.client.scheduler, method)
            return self.client.sync(call, callback_timeout=self.probe_timeout, **kwargs)
        except (OSError, TimeoutError) as exc:
            self._lost = self._lost or (
                f"no answer from the scheduler within {self.probe_timeout:g} s ({type(exc).__name__})"
            )
            raise self._lost_error() from exc

    def _lost_error(self) -> SchedulerLostError:
        msg = f"lost the Dask scheduler at {self.address} ({self._lost}); run again once it is back"
        return SchedulerLostError(msg)

    def _check_connected(self) -> None:
        if self._lost is None and self.client.status not in ("running", "newly-created"):
            self._lost = f"the client is {self.client.status}"
        if self._lost is not None:
            raise self._lost_error()

    def _settle(self, done: Any, result: Future[Any], job_id: int | None) -> None:
        """Copy a finished Dask future into ``result``; a failed job attempt becomes a JobOutcome."""
        with self._lock:
            self._live.pop(done.key, None)
        with suppress(InvalidStateError):  # the scheduler was declared lost: result already failed
            self._settle_into(done, result, job_id)

    def _settle_into(self, done: Any, result: Future[Any], job_id: int | None) -> None:
        if result.done():
            return
        try:
            if done.status == "finished":
                outcome = done.result()
                if job_id is not None and getattr(outcome, "error_type", None) == "MemoryError":
                    outcome = self._memory_error(job_id, outcome)
                result.set_result(outcome)
                return
            if done.status == "cancelled" and self._connection_lost(done):
                try:
                    self._check_connected()
                except SchedulerLostError as exc:
                    result.set_exception(exc)
                    return
            error: BaseException = CancelledError(f"task {done.key} was {done.status}")
            if done.status == "error":
                error = done.exception()
            if job_id is None:
                result.set_exception(error)
                return
            result.set_result(self._failed_outcome(job_id, done.key, error))
        finally:
            if not result.done():  # never leave the runner waiting on a future nobody will settle
                msg = f"could not collect the outcome of Dask task {done.key} (status {done.status})"
                result.set_exception(StoreError(msg))

    def _connection_lost(self, done: Any) -> bool:
        """True when a cancelled future was cancelled because the scheduler went away."""
        cancelled = getattr(getattr(done, "_state", None), "exception", None)
        reason = getattr(cancelled, "reason", None)
        if reason == "scheduler-connection-lost" or self.client.status not in ("running", "newly-created"):
            self._lost = self._lost or "the connection to the scheduler was lost"
            return True
        return False

    def _failed_outcome(self, job_id: int, key: str, error: BaseException) -> jobs.JobOutcome:
        from distributed import KilledWorker

        message, error_type = str(error), type(error).__name__
        if isinstance(error, KilledWorker):
            memory = self._memory_kill(key, error)
            if memory is not None:
                error_type = OUT_OF_MEMORY
                message = f"{memory}; {self._tier_note(job_id, raise_it=True)}. Dask: {error}"
            else:
                message = (
                    "the worker process died while this job was on it, and not by a memory-limit "
                    "termination of a worker that had started it (a crash, a signal such as the "
                    "kernel's OOM killer, another job's death on the same worker, or a lost host); "
                    f"{self._tier_note(job_id, raise_it=False)}. Dask: {error}"
                )
        return jobs.JobOutcome(
            job_id=job_id,
            ok=False,
            error_type=error_type,
            error=message,
            traceback="".join(traceback.format_exception(error)),
            retryable=True,
        )

    def _memory_error(self, job_id: int, outcome: jobs.JobOutcome) -> jobs.JobOutcome:
        """A job that raised MemoryError ran out of memory too: raise its tier before the retry."""
        note = self._tier_note(job_id, raise_it=True)
        return replace(outcome, error_type=OUT_OF_MEMORY, error=f"MemoryError: {outcome.error}; {note}")

    def _tier_note(self, job_id: int, *, raise_it: bool) -> str:
        try:
            if raise_it:
                return f"memory tier now {self._raise_tier(job_id)} MB"
            return f"memory tier kept at {self._current_tier(job_id)} MB"
        except SQLAlchemyError as exc:
            return f"memory tier unknown ({type(exc).__name__})"

    def _current_tier(self, job_id: int) -> int:
        if self.db is None:
            return self.tiers[0]
        with self.db.session() as session:
            job = session.get(Job, job_id)
            return job.ram_mb if job is not None and job.ram_mb else self.tiers[0]

    def _memory_kill(self, key: str, error: BaseException) -> str | None:
        """Describe the nanny's memory-limit kill of a worker that had started ``key``, or None.

        Workers that died holding ``key`` come from the scheduler's ``remove-worker`` events (and
        ``KilledWorker.last_worker``); of those, the ones that started it logged
        :data:`STARTED_EVENT` (a memory hog runs long enough for that event to arrive; a task
        that crashes at once may not, and then is not a memory kill either).
        """
        try:
            died = {
                str(event.get("worker"))
                for _, event in self._ask("events", topic="all")
                if isinstance(event, dict)
                and event.get("action") == "remove-worker"
                and key in (event.get("processing-tasks") or ())
            }
            last = getattr(getattr(error, "last_worker", None), "address", None)
            if last:
                died.add(str(last))
            ran = {
                str(event.get("worker")): float(event.get("limit") or 0)
                for _, event in self._ask("events", topic=STARTED_EVENT)
                if isinstance(event, dict) and event.get("key") == key
            }
            self._limits.update(ran)
            died &= set(ran)
            kills: list[dict[str, Any]] = []
            deadline = time.monotonic() + self.event_wait
            while died:
                kills = [
                    event
                    for _, event in self._ask("events", topic=MEMORY_EVENT)
                    if isinstance(event, dict) and event.get("worker") in died
                ]
                if kills or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        except SchedulerLostError as exc:  # the scheduler is away: cause unknown
            logger.warning("could not read the scheduler's events for %s: %s", key, exc)
            return None
        if not kills:
            return None
        event = kills[-1]
        limit = self._memory_limit(str(event.get("worker")))
        rss = float(event.get("rss", 0)) / 2**20
        budget = f" of its {limit / 2**20:.0f} MB limit" if limit else ""
        return (
            f"out of memory: the Dask nanny terminated worker {event.get('worker')} (pid {event.get('pid')}) "
            f"at {rss:.0f} MB{budget} while it ran this job"
        )

    def _memory_limit(self, worker: str) -> float:
        """The worker's memory limit in bytes (seen at submit time: a dead worker has left), or 0."""
        if worker not in self._limits:
            with suppress(SchedulerLostError):
                self._workers(max_age=0.0)
        return self._limits.get(worker, 0.0)

    def _resources_for(self, job_id: int) -> dict[str, float] | None:
        """The ``MEMORY`` request of a job: its tier (recorded when unset), capped to the workers."""
        if self.db is None:
            return None
        tier = self._claimed_tiers.pop(job_id, None)
        if tier is None:  # not claimed by run_jobs: record the first tier and read the tier, at once
            with self.db.session() as session:
                tier = session.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(ram_mb=func.coalesce(Job.ram_mb, self.tiers[0]))
                    .returning(Job.ram_mb)
                    .execution_options(synchronize_session=False)
                ).scalar()
        if tier is None:
            return None
        offered = [float(w.get("resources", {}).get(MEMORY_RESOURCE, 0)) for w in self._workers().values()]
        if not any(offered):
            return None
        if tier > max(offered):
            logger.warning("job %s wants %s MB; the largest worker offers %s MB", job_id, tier, max(offered))
        return {MEMORY_RESOURCE: min(float(tier), max(offered))}

    def _workers(self, *, max_age: float = WORKERS_MAX_AGE) -> dict[str, Any]:
        """The scheduler's workers, asked again when the last answer is older than ``max_age`` s.

        Each answer also records every worker's memory limit (``_limits``).
        """
        now = time.monotonic()
        if self._workers_seen is None or now - self._workers_seen[0] >= max_age:
            workers = self._ask("identity", n_workers=-1).get("workers", {})
            self._limits.update({a: float(w.get("memory_limit") or 0) for a, w in workers.items()})
            self._workers_seen = (now, workers)
        return self._workers_seen[1]

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
                ids = [job_id for _, job_id, _ in self._live.values() if job_id is not None]
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

    def _probe(self, every: float) -> None:
        """Declare the scheduler lost when it does not answer while tasks are in flight."""
        while not self._stop.wait(every):
            with self._lock:
                busy = bool(self._live)
            if not busy or self._lost is not None:
                continue
            try:
                self._ask("identity")
            except SchedulerLostError:
                self._fail_in_flight()

    def _fail_in_flight(self) -> None:
        """Fail every in-flight attempt with SchedulerLostError (their jobs stay RUNNING)."""
        with self._lock:
            waiting = [result for _, _, result in self._live.values()]
        for result in waiting:
            with suppress(InvalidStateError):  # settled meanwhile
                result.set_exception(self._lost_error())
