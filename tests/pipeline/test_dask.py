"""Jobs on a real Dask cluster (LocalCluster, worker processes) with the real PostgreSQL queue.

Fault tests: a worker killed mid-job, the runner (Dask client) killed mid-run, a poison sample
that kills every worker it touches. Executions are counted in a side-effect table ``exec_log``
(one ``start`` row per attempt that began, one ``done`` row per completed effect).
"""

from __future__ import annotations

import enum
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select, text

from genemill.config import Settings
from genemill.pipeline import jobs
from genemill.pipeline.dask_executor import MEMORY_TIERS, DaskExecutor, executor_for, next_tier
from genemill.pipeline.executors import InlineExecutor, LocalExecutor
from genemill.pipeline.jobs import JobKind, enqueue, run_jobs
from genemill.pipeline.locks import hold_lock
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.process import process_experiments
from genemill.pipeline.sample_jobs import run_sample_job
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.expression import read_expression
from genemill.store.models import Job, JobState, ProcessingState
from genemill.store.results import current_values

FOCUS = Path(__file__).resolve().parents[2] / "data" / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


class _Kind(enum.StrEnum):
    SLEEP = "test-sleep"


SLEEP = cast(JobKind, _Kind.SLEEP)


# --------------------------------------------------------------------------- job functions (run in workers)


def record_handler(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """A fault-test job: log the attempt, sleep, write its output atomically, log the effect once."""
    db = Database(settings.resolved_database_url)
    try:
        with hold_lock(db, f"test:{target}", timeout=60), db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO exec_log (target, phase, pid) VALUES (:t, 'start', :p)"),
                {"t": target, "p": os.getpid()},
            )
        with hold_lock(db, f"test:{target}", timeout=60):
            with db.engine.begin() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM exec_log WHERE target = :t AND phase = 'done'"), {"t": target}
                ).scalar()
            if done:
                return {"skipped": True}
            time.sleep(float(params["sleep"]))
            out = Path(params["out"]) / f"{target}.txt"
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(f"{target} by {os.getpid()}\n")
            tmp.replace(out)
            with db.engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO exec_log (target, phase, pid) VALUES (:t, 'done', :p)"),
                    {"t": target, "p": os.getpid()},
                )
    finally:
        db.dispose()
    return {"pid": os.getpid()}


def poison_or_process(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The per-sample handler, except that a sample named POISON kills the worker process."""
    if "POISON" in target:
        os._exit(3)
    return run_sample_job(settings, target, params)


def hog_crash_or_finish(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """``hog``: allocate (and touch) 32 MB every 20 ms until the nanny stops the worker;
    ``crash``: exit the worker process at once; ``raises-memory-error``: raise MemoryError;
    anything else: return."""
    if target == "hog":
        held = []
        for _ in range(200):  # 6.4 GB if nothing stops it
            held.append(np.ones(4 << 20))
            time.sleep(0.02)
        return {"held_mb": 32 * len(held)}
    if target == "crash":
        os._exit(3)
    if target == "raises-memory-error":
        raise MemoryError("unable to allocate 9.3 GiB for an array")
    return {"ok": True}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster():
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        local = distributed.LocalCluster(
            n_workers=3,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            resources={"MEMORY": 8192},
        )
    yield local
    local.close()


def _fresh_postgres(tmp_path: Path, url: str, *, workers: int) -> Settings:
    engine = create_engine(Database(url).url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    settings = Settings(home=tmp_path / "home", database_url=url, workers=workers, retry_backoff_seconds=0.2)
    db = Database(settings.resolved_database_url)
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE exec_log (id serial PRIMARY KEY, target text, phase text, pid int)"))
    db.dispose()
    return settings


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_server_url: str, cluster) -> Settings:
    settings = _fresh_postgres(tmp_path, postgres_server_url, workers=3)
    from distributed import Client

    with Client(cluster) as client:
        client.wait_for_workers(3, timeout=60)
    return settings


@pytest.fixture
def pg_db(pg_settings: Settings):
    database = Database(pg_settings.resolved_database_url)
    yield database
    database.dispose()


def _log(db: Database) -> pd.DataFrame:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT target, phase, pid FROM exec_log ORDER BY id")).all()
    return pd.DataFrame(rows, columns=["target", "phase", "pid"])


def _enqueue_sleepers(db: Database, names: list[str], *, sleep: float, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with db.session() as session:
        for name in names:
            enqueue(session, SLEEP, name, params={"sleep": sleep, "out": str(out)}, max_attempts=3)


# --------------------------------------------------------------------------- small units


def test_memory_tiers_rise_and_stop_at_the_top() -> None:
    assert next_tier(None) == 4096
    assert next_tier(2048) == 4096
    assert next_tier(4096) == 8192
    assert next_tier(8192) == 8192
    assert next_tier(3000, (1024, 2048, 4096)) == 4096
    assert MEMORY_TIERS == (2048, 4096, 8192)


def test_executor_for_picks_dask_only_with_a_scheduler(tmp_path, cluster) -> None:
    settings = Settings(home=tmp_path, workers=2)
    db = Database(settings.resolved_database_url)
    assert isinstance(executor_for(settings, db, workers=1), InlineExecutor)
    local = executor_for(settings, db)
    assert isinstance(local, LocalExecutor) and local.workers == 2
    local.shutdown()
    remote = executor_for(settings.model_copy(update={"scheduler": cluster.scheduler_address}), db)
    assert isinstance(remote, DaskExecutor)
    assert remote.submit(divmod, 7, 2).result() == (3, 1)  # any function: a concurrent future back
    with pytest.raises(ValueError, match="invalid literal"):
        remote.submit(int, "x").result()
    remote.shutdown()
    db.dispose()


@pytest.mark.postgres
def test_memory_requests_follow_the_job_tier_capped_to_the_workers(pg_settings, pg_db, cluster) -> None:
    with pg_db.session() as session:
        small = enqueue(session, SLEEP, "small", params={})
        huge = enqueue(session, SLEEP, "huge", params={})
        huge.ram_mb = 16384
        ids = small.id, huge.id
    with DaskExecutor(cluster=cluster, db=pg_db) as executor:
        assert executor._resources_for(ids[0]) == {"MEMORY": 2048}
        assert executor._resources_for(ids[1]) == {"MEMORY": 8192}  # no worker offers 16384
    with pg_db.session() as session:
        assert session.get(Job, ids[0]).ram_mb == 2048  # the first tier is recorded on the row


# --------------------------------------------------------------------------- fault tests


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_killed_mid_job_is_retried_elsewhere_and_written_once(
    pg_settings, pg_db, cluster, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(jobs._HANDLERS, _Kind.SLEEP.value, f"{__name__}:record_handler")
    names = [f"job{k}" for k in range(4)]
    out = tmp_path / "out"
    _enqueue_sleepers(pg_db, names, sleep=1.5, out=out)
    executor = DaskExecutor(cluster=cluster, db=pg_db, heartbeat_every=0.5)
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            summary=run_jobs(pg_settings, pg_db, executor=executor, kinds=["test-sleep"])
        )
    )
    runner.start()
    victim_job, victim_pid, restrictions = _kill_a_busy_worker(executor, pg_db, cluster)
    assert restrictions == {"MEMORY": 2048}  # first memory tier, asked of the workers
    runner.join(timeout=60)
    executor.shutdown()
    assert not runner.is_alive()
    assert sorted(result["summary"].succeeded) == names
    log = _log(pg_db)
    done = log[log.phase == "done"]
    assert sorted(done.target) == names  # every output written exactly once
    starts = log[(log.phase == "start") & (log.target == victim_job)]
    assert len(starts) == 2  # the killed attempt and its retry
    assert victim_pid in set(starts.pid) and done[done.target == victim_job].pid.iloc[0] != victim_pid
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.txt" for n in names]
    with pg_db.session() as session:
        rows = list(session.scalars(select(Job)))
        states = {j.target: (j.state, j.attempts) for j in rows}
        assert all(j.ram_mb == 2048 for j in rows)
        assert all((j.heartbeat_at - j.started_at).total_seconds() > 0.4 for j in rows)  # beats while running
    assert all(state == JobState.SUCCEEDED for state, _ in states.values())
    print(f"killed worker pid {victim_pid} running {victim_job}; job attempts {states[victim_job][1]}")


def _kill_a_busy_worker(executor: DaskExecutor, db: Database, cluster) -> tuple[str, int, dict]:
    """Wait until a job has started on a worker, then SIGKILL that worker's process."""
    client = executor.client
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        started = _log(db)
        for address, keys in client.processing().items():
            for key in keys:
                if not str(key).startswith("genemill-job-"):
                    continue
                job_id = int(str(key).split("-")[2])
                with db.session() as session:
                    target = session.get(Job, job_id).target
                if target in set(started.target):
                    pid = client.run(os.getpid, workers=[address])[address]
                    if pid in set(started[started.target == target].pid):
                        restrictions = dict(cluster.scheduler.tasks[key].resource_restrictions or {})
                        os.kill(pid, signal.SIGKILL)
                        return target, pid, restrictions
        time.sleep(0.1)
    raise AssertionError("no job started on a worker within 30 s")


RUNNER = """
import json, sys
from genemill.config import Settings
from genemill.pipeline import jobs
from genemill.pipeline.dask_executor import DaskExecutor
from genemill.store.db import Database

if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    jobs._HANDLERS[config["kind"]] = config["handler"]
    settings = Settings(**config["settings"])
    db = Database(settings.resolved_database_url)
    executor = DaskExecutor(config["scheduler"], db=db, **config.get("executor", {}))
    try:
        jobs.run_jobs(settings, db, executor=executor, kinds=[config["kind"]])
    finally:
        executor.shutdown()
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_a_killed_runner_leaves_only_unfinished_work_for_the_next_run(
    pg_settings, pg_db, cluster, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(jobs._HANDLERS, _Kind.SLEEP.value, f"{__name__}:record_handler")
    names = [f"job{k}" for k in range(6)]
    _enqueue_sleepers(pg_db, names, sleep=1.0, out=tmp_path / "out")
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    config = {
        "kind": _Kind.SLEEP.value,
        "handler": f"{__name__}:record_handler",
        "scheduler": cluster.scheduler_address,
        "settings": pg_settings.model_dump(mode="json", include={"home", "database_url", "workers"}),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    runner = subprocess.Popen([sys.executable, str(script), json.dumps(config)], env=env)
    try:
        _wait_for(
            lambda: _states(pg_db).count(JobState.SUCCEEDED) >= 3 and JobState.RUNNING in _states(pg_db)
        )
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()  # reap it: a zombie's pid still looks alive to recover_stale
    at_kill = dict(zip(names, _states(pg_db), strict=True))
    finished = sorted(j for j, s in at_kill.items() if s == JobState.SUCCEEDED)
    running = sorted(j for j, s in at_kill.items() if s == JobState.RUNNING)
    executor = DaskExecutor(cluster=cluster, db=pg_db)
    summary = run_jobs(pg_settings, pg_db, executor=executor, kinds=["test-sleep"])
    executor.shutdown()
    assert summary.recovered == len(running) > 0
    assert sorted(summary.succeeded) == sorted(set(names) - set(finished))
    assert _states(pg_db) == [JobState.SUCCEEDED] * len(names)
    log = _log(pg_db)
    assert sorted(log[log.phase == "done"].target) == names  # each effect exactly once
    starts = log[log.phase == "start"].target.value_counts()
    assert all(starts[j] == 1 for j in finished)  # finished work was not redone
    print(f"at kill: {len(finished)} finished, {len(running)} running; attempts started: {dict(starts)}")


def _states(db: Database) -> list[JobState]:
    with db.session() as session:
        return [j.state for j in session.scalars(select(Job).order_by(Job.target))]


def _wait_for(condition, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _copies(tmp_path: Path) -> list[Path]:
    """HG-Focus CELs under several sample names, re-gzipped so each file's bytes differ."""
    names = ["S1", "S2", "S3", "POISON"]
    paths = []
    for k, name in enumerate(names):
        raw = gzip.decompress(CELS[k % 2].read_bytes())
        path = tmp_path / "cels" / f"{name}.CEL.gz"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=k))
        paths.append(path)
    return paths


@pytest.mark.slow
@pytest.mark.postgres
def test_a_poison_sample_is_unprocessable_after_its_retries_and_the_others_finish(
    pg_settings, pg_db, cluster, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(jobs._HANDLERS, JobKind.PROCESS_SAMPLE.value, f"{__name__}:poison_or_process")
    accession = create_cel_experiment(
        pg_settings, pg_db, _copies(tmp_path), title="poison", cdf=FOCUS / "HG-Focus.CDF.gz"
    )
    executor = DaskExecutor(cluster=cluster, db=pg_db)
    # What `genemill process ACCESSION --method mas5 --scheduler ...` runs: one job per sample.
    settings = pg_settings.model_copy(update={"max_attempts": 2})
    run = process_experiments(settings, pg_db, [accession], method="mas5", executor=executor)
    executor.shutdown()
    report = run.samples[accession]
    poison = f"{accession}-POISON"
    assert sorted(report.processed) == [f"{accession}-S{k}" for k in range(1, 4)]
    assert list(report.refused) == [poison]
    reason = report.refused[poison]
    assert reason.startswith(
        "processing failed after 2 attempt(s): KilledWorker: the worker process died while this job was on it"
    )
    assert "memory tier kept at 2048 MB" in reason
    reference = np.log2(
        pd.read_csv(FOCUS / "reference" / "HG-Focus_affy_mas5_signal.tsv", sep="\t", index_col=0)
    )
    with pg_db.session() as session:
        job = session.scalar(select(Job).where(Job.target == poison))
        assert (job.state, job.attempts, job.ram_mb) == (JobState.FAILED, 2, 2048)  # a crash: tier kept
        assert job.error_type == "KilledWorker" and "not by a memory-limit termination" in job.error
        sample = queries.get_sample(session, poison)
        assert sample.processing_state == ProcessingState.UNPROCESSABLE
        for k in range(1, 4):
            sample = queries.get_sample(session, f"{accession}-S{k}")
            assert len(sample.results) == 1  # processed once
            values = current_values(sample, kind="expression:probeset")
            assert values is not None and values.path.parent.name == sample.accession
            stored = read_expression(values.path)[sample.accession]
            expected = reference.iloc[:, (k - 1) % 2].loc[stored.index]
            assert float(np.abs(stored.to_numpy() - expected.to_numpy()).max()) < 1e-4
        counted = session.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.SUCCEEDED))
    assert counted == 3


# --------------------------------------------------------------------------- memory kills


@pytest.fixture(scope="module")
def small_cluster():
    """Two 600 MiB workers; a worker that dies once fails its task (no Dask-level rescheduling)."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            memory_limit="600MiB",
            resources={"MEMORY": 8192},
        )
    yield local
    local.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_only_a_memory_limit_kill_raises_the_tier_and_its_cause_is_recorded(
    tmp_path, postgres_server_url, small_cluster, monkeypatch
) -> None:
    # One job in flight at a time: a job waiting on a worker another job kills would die with it.
    settings = _fresh_postgres(tmp_path, postgres_server_url, workers=1)
    monkeypatch.setitem(jobs._HANDLERS, _Kind.SLEEP.value, f"{__name__}:hog_crash_or_finish")
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        for name in ("hog", "crash", "raises-memory-error", "fine"):
            enqueue(session, SLEEP, name, params={}, max_attempts=2)
    with DaskExecutor(cluster=small_cluster, db=db) as executor:
        summary = run_jobs(settings, db, executor=executor, kinds=[_Kind.SLEEP.value])
    failed = ["crash", "hog", "raises-memory-error"]
    assert summary.succeeded == ["fine"] and sorted(t for t, _ in summary.failed) == failed
    with db.session() as session:
        rows = {j.target: j for j in session.scalars(select(Job))}
        hog, crash = rows["hog"], rows["crash"]
        assert (hog.state, hog.attempts, hog.ram_mb) == (JobState.FAILED, 2, 8192)  # 2048 -> 4096 -> 8192
        assert hog.error_type == "WorkerOutOfMemory"
        assert "out of memory: the Dask nanny terminated worker tcp://" in hog.error
        assert "of its 600 MB limit while it ran this job; memory tier now 8192 MB" in hog.error
        assert (crash.state, crash.attempts, crash.ram_mb) == (JobState.FAILED, 2, 2048)
        assert crash.error_type == "KilledWorker" and "memory tier kept at 2048 MB" in crash.error
        raised = rows["raises-memory-error"]
        assert (raised.state, raised.attempts, raised.ram_mb) == (JobState.FAILED, 2, 8192)
        assert raised.error_type == "WorkerOutOfMemory"
        assert raised.error.startswith(
            "MemoryError: unable to allocate 9.3 GiB for an array; memory tier now 8192"
        )
        assert rows["fine"].ram_mb == 2048
    db.dispose()
    print(f"hog: {hog.error[:160]}")


# --------------------------------------------------------------------------- scheduler loss


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout() -> None:
    pytest.importorskip("distributed")
    from genemill.pipeline.dask_executor import SchedulerLostError

    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(SchedulerLostError, match=f"cannot reach the Dask scheduler at {address} within 2 s"):
        DaskExecutor(address, connect_timeout=2)
    assert time.monotonic() - started < 15


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("how", "because"),
    [
        (signal.SIGKILL, "the connection to the scheduler was lost"),
        (signal.SIGSTOP, "no answer from the scheduler within 3 s"),  # hangs, connections open
    ],
    ids=["killed", "hung"],
)
def test_a_lost_scheduler_stops_the_run_and_a_new_cluster_finishes_only_the_rest(
    pg_settings, pg_db, cluster, tmp_path, monkeypatch, how, because
) -> None:
    """A real scheduler process and two worker processes; the scheduler is killed or stopped mid-run."""
    monkeypatch.setitem(jobs._HANDLERS, _Kind.SLEEP.value, f"{__name__}:record_handler")
    names = [f"job{k}" for k in range(6)]
    _enqueue_sleepers(pg_db, names, sleep=1.5, out=tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask_cli = str(Path(sys.executable).with_name("dask"))
    scheduler = _start(
        [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        env,
    )
    workers = _start(
        [
            dask_cli,
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--death-timeout",
            "20",
        ],
        env,
    )
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    config = {
        "kind": _Kind.SLEEP.value,
        "handler": f"{__name__}:record_handler",
        "scheduler": address,
        "settings": pg_settings.model_dump(mode="json", include={"home", "database_url"}) | {"workers": 2},
        "executor": {"probe_every": 1.0, "probe_timeout": 3.0},
    }
    runner = subprocess.Popen(
        [sys.executable, str(script), json.dumps(config)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: _states(pg_db).count(JobState.SUCCEEDED) >= 2 and JobState.RUNNING in _states(pg_db),
            timeout=90,
        )
        at_kill = dict(zip(names, _states(pg_db), strict=True))
        killed = time.monotonic()
        os.killpg(scheduler.pid, how)
        _, stderr = runner.communicate(timeout=60)  # no hang: the runner stops by itself
        stopped_after = time.monotonic() - killed
    finally:
        for process in (runner, scheduler, workers):
            _stop(process)
    assert runner.returncode != 0
    assert f"SchedulerLostError: lost the Dask scheduler at {address} ({because}" in stderr
    assert stopped_after < 20
    left = dict(zip(names, _states(pg_db), strict=True))
    finished = sorted(j for j, s in at_kill.items() if s == JobState.SUCCEEDED)
    running = sorted(j for j, s in left.items() if s == JobState.RUNNING)
    assert running  # attempts in flight when the scheduler died stay RUNNING under the dead runner

    executor = DaskExecutor(cluster=cluster, db=pg_db)  # a new cluster
    summary = run_jobs(pg_settings, pg_db, executor=executor, kinds=[_Kind.SLEEP.value])
    executor.shutdown()
    assert summary.recovered == len(running)
    assert sorted(summary.succeeded) == sorted(j for j, s in left.items() if s != JobState.SUCCEEDED)
    assert _states(pg_db) == [JobState.SUCCEEDED] * len(names)
    log = _log(pg_db)
    assert sorted(log[log.phase == "done"].target) == names  # each output written exactly once
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{n}.txt" for n in names]
    starts = log[log.phase == "start"].target.value_counts()
    assert all(starts[j] == 1 for j in finished)  # work finished before the loss was not redone
    print(f"runner stopped {stopped_after:.1f} s after the scheduler died; left RUNNING: {running}")
