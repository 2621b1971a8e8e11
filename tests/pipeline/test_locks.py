"""Concurrency safety: named locks on both backends, two runners on one queue and one experiment.

What is proved here:

* the compare-and-set claim of ``jobs.claim_next`` alone keeps two concurrent runners (separate
  processes, PostgreSQL) from running any queued job twice;
* two runners started on the same experiment enqueue without a unique-key race and process each
  sample exactly once;
* an attempt left running by a dead runner (which the claim cannot see) is not repeated: the
  re-queued attempt waits for the sample lock, then finds the sample processed and skips it;
* locks are released when their holder is SIGKILLed (PostgreSQL session / kernel flock).
"""

from __future__ import annotations

import enum
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select, text, update

from genemill.config import Settings
from genemill.errors import StoreError
from genemill.pipeline.jobs import JobKind, enqueue
from genemill.pipeline.locks import hold_lock, job_lock_name, lock_key, try_lock
from genemill.pipeline.private import create_cel_experiment
from genemill.pipeline.sample_jobs import process_samples
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Job, JobState, ProcessingResult, ProcessingState, result_sample

REPO = Path(__file__).resolve().parents[2]
FOCUS = REPO / "data" / "affy-hg-focus"
CELS = [FOCUS / "HG-Focus-1-121502.calvin.CEL.gz", FOCUS / "HG-Focus-2-121502.calvin.CEL.gz"]


class _Kind(enum.StrEnum):
    LOG = "test-log"


def log_handler(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Record one execution of ``target`` in ``exec_log`` (run inside the runner processes)."""
    db = Database(settings.resolved_database_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO exec_log (target, pid) VALUES (:t, :p)"), {"t": target, "p": os.getpid()}
            )
        time.sleep(float(params.get("sleep", 0.0)))
    finally:
        db.dispose()
    return {"pid": os.getpid()}


SCRIPT = """
import json, sys
from genemill.config import Settings
from genemill.pipeline import jobs
from genemill.pipeline.executors import InlineExecutor
from genemill.store.db import Database

config = json.loads(sys.argv[1])
settings = Settings(**config["settings"])
db = Database(settings.resolved_database_url)
if config["mode"] == "runner":
    jobs._HANDLERS[config["kind"]] = config["handler"]
    summary = jobs.run_jobs(settings, db, executor=InlineExecutor(), kinds=[config["kind"]])
    print(json.dumps(summary.succeeded))
elif config["mode"] == "samples":
    from genemill.pipeline.sample_jobs import process_samples
    report = process_samples(settings, db, config["accession"], method="mas5")
    print(json.dumps(report.summary.succeeded))
elif config["mode"] == "orphan":
    import time
    from genemill.pipeline.locks import hold_lock
    from genemill.pipeline.sample_jobs import _process_one
    with hold_lock(db, "sample:" + config["target"]):
        print("held", flush=True)
        time.sleep(0.5)
        print(json.dumps(_process_one(settings, db, config["target"], config["params"])), flush=True)
elif config["mode"] == "holder":
    import time
    from genemill.pipeline.locks import hold_lock
    with hold_lock(db, config["name"]):
        print("held", flush=True)
        time.sleep(60)
"""


def _spawn(tmp_path: Path, settings: Settings, **config: Any) -> subprocess.Popen[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    config["settings"] = settings.model_dump(mode="json", include={"home", "database_url", "workers"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


# --------------------------------------------------------------------------- the locks themselves


def test_lock_keys_are_stable_signed_64_bit_integers() -> None:
    assert lock_key("sample:GSM1") == lock_key("sample:GSM1") != lock_key("sample:GSM2")
    assert -(2**63) <= lock_key("x") < 2**63
    assert job_lock_name(12) == "job:12"


def test_a_held_lock_is_refused_to_others_and_free_after_release(db: Database) -> None:
    with try_lock(db, "sample:GSM1") as first:
        assert first
        with try_lock(db, "sample:GSM1") as second, try_lock(db, "sample:GSM2") as other:
            assert not second
            assert other
    with try_lock(db, "sample:GSM1") as again:
        assert again


def test_waiting_for_a_held_lock_times_out_with_a_store_error(db: Database) -> None:
    with hold_lock(db, "sample:GSM1"):
        started = time.monotonic()
        with (
            pytest.raises(StoreError, match=r"lock 'sample:GSM1' is held by another runner \(waited 0.3 s\)"),
            hold_lock(db, "sample:GSM1", timeout=0.3),
        ):
            pass
        assert time.monotonic() - started >= 0.3


def test_a_killed_holder_releases_its_lock(settings: Settings, db: Database, tmp_path: Path) -> None:
    holder = _spawn(tmp_path, settings, mode="holder", name="sample:GSM9")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with try_lock(db, "sample:GSM9") as taken:
            assert not taken
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    deadline = time.monotonic() + 10
    while True:
        with try_lock(db, "sample:GSM9") as taken:
            if taken:
                break
        assert time.monotonic() < deadline, "lock still held 10 s after its holder was killed"
        time.sleep(0.1)


# --------------------------------------------------------------------------- runners (PostgreSQL)


@pytest.fixture
def pg(postgres_server_url: str, tmp_path: Path) -> tuple[Settings, Database]:
    from sqlalchemy import create_engine

    engine = create_engine(Database(postgres_server_url).url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    settings = Settings(home=tmp_path / "home", database_url=postgres_server_url, retry_backoff_seconds=0.05)
    db = Database(settings.resolved_database_url)
    db.migrate()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE exec_log (id serial PRIMARY KEY, target text, pid int)"))
    yield settings, db
    db.dispose()


@pytest.mark.postgres
def test_two_concurrent_runners_never_run_a_job_twice(pg, tmp_path: Path) -> None:
    settings, db = pg
    names = [f"job{k:02d}" for k in range(16)]
    with db.session() as session:
        for name in names:
            enqueue(session, cast(JobKind, _Kind.LOG), name, params={"sleep": 0.05})
    config = {"mode": "runner", "kind": _Kind.LOG.value, "handler": f"{__name__}:log_handler"}
    runners = [_spawn(tmp_path, settings, **config) for _ in range(2)]
    succeeded = [json.loads(_finish(runner).splitlines()[-1]) for runner in runners]
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT target, pid FROM exec_log")).all()
    assert sorted(target for target, _ in rows) == names  # every job ran, none twice
    assert len({pid for _, pid in rows}) == 2  # both runners took part
    assert sorted(succeeded[0] + succeeded[1]) == names
    print(f"runner 1 ran {len(succeeded[0])} jobs, runner 2 ran {len(succeeded[1])}")


def _experiment(settings: Settings, db: Database, tmp_path: Path, n: int) -> str:
    paths = []
    for k in range(n):
        path = tmp_path / "cels" / f"S{k + 1}.CEL.gz"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(gzip.decompress(CELS[k % 2].read_bytes()), compresslevel=1, mtime=k))
        paths.append(path)
    return create_cel_experiment(settings, db, paths, title="concurrency", cdf=FOCUS / "HG-Focus.CDF.gz")


def _results_per_sample(db: Database, accession: str) -> dict[str, int]:
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        counts = {}
        for sample in experiment.samples:
            query = (
                select(func.count()).select_from(result_sample).where(result_sample.c.sample_id == sample.id)
            )
            counts[sample.accession] = session.scalar(query)
            assert sample.processing_state == ProcessingState.PROCESSED
    return counts


@pytest.mark.postgres
def test_two_runners_on_one_experiment_process_each_sample_once(pg, tmp_path: Path) -> None:
    settings, db = pg
    accession = _experiment(settings, db, tmp_path, 3)
    runners = [_spawn(tmp_path, settings, mode="samples", accession=accession) for _ in range(2)]
    succeeded = [json.loads(_finish(runner).splitlines()[-1]) for runner in runners]
    assert sorted(succeeded[0] + succeeded[1]) == sorted(_results_per_sample(db, accession))
    assert set(_results_per_sample(db, accession).values()) == {1}
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3
        assert session.scalar(select(func.count()).select_from(ProcessingResult)) == 3


@pytest.mark.postgres
def test_an_attempt_orphaned_by_a_dead_runner_is_not_repeated(pg, tmp_path: Path) -> None:
    settings, db = pg
    accession = _experiment(settings, db, tmp_path, 1)
    target = f"{accession}-S1"
    params = {"method": "mas5", "experiment": accession, "force": False}
    with db.session() as session:  # a runner (pid 2**22 + 1, long gone) had claimed the job
        job = enqueue(session, JobKind.PROCESS_SAMPLE, target, params=params)
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(state=JobState.RUNNING, attempts=1, worker=f"{socket.gethostname()}:4194305")
        )
    orphan = _spawn(tmp_path, settings, mode="orphan", target=target, params=params)
    assert orphan.stdout is not None and orphan.stdout.readline().strip() == "held"
    started = time.monotonic()
    report = process_samples(settings, db, accession, method="mas5")
    waited = time.monotonic() - started
    assert json.loads(_finish(orphan).splitlines()[-1]) == {"sample": target, "processor": "affymetrix-mas5"}
    assert report.summary.recovered == 1
    assert report.summary.succeeded == [target]
    assert report.processed == [target]
    assert _results_per_sample(db, accession) == {target: 1}
    assert waited >= 0.5  # the re-queued attempt waited for the orphan's lock, then skipped
