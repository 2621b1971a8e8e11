"""Named locks that keep two runners from doing the same piece of work at the same time.

A lock is held for the duration of a ``with`` block and is released by the database server or
the kernel when its holder dies, so a killed worker or runner never leaves a lock behind:

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock(bigint)``) taken on a
  dedicated autocommit connection; the server drops it when that connection closes, including
  when the process holding it is killed. Works across hosts.
* **SQLite** (one machine): ``fcntl.flock`` on ``<database folder>/locks/<key>.lock``; the kernel
  releases it when the process exits.

The key of a name is the first 8 bytes of BLAKE2b(``"genemill:" + name``) read as a signed 64-bit
integer (PostgreSQL's advisory key space), and its hex form names the lock file.

How the queue uses them (see :mod:`genemill.pipeline.jobs`): claiming a job is already a
compare-and-set ``UPDATE … WHERE state = 'QUEUED'``, so two runners never claim the same queued
job. What the claim cannot see is an attempt that is still running after its runner was declared
dead (a killed client whose Dask task keeps running, or a long job re-queued for a stale
heartbeat): the work itself takes :func:`hold_lock` on ``job_lock_name(job_id)`` or on the
sample it processes, and checks whether the work is already done once it holds the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text

from genemill.errors import StoreError
from genemill.store.db import Database

__all__ = ["hold_lock", "job_lock_name", "lock_key", "try_lock"]

_POLL_SECONDS = 0.2


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name``."""
    digest = hashlib.blake2b(f"genemill:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def job_lock_name(job_id: int) -> str:
    """The lock name that guards the execution of one job."""
    return f"job:{job_id}"


@contextlib.contextmanager
def try_lock(db: Database, name: str) -> Iterator[bool]:
    """Try once to take the lock ``name``; yield whether this process now holds it.

    The lock (when taken) is released when the block ends or the holder dies.
    """
    with _backend(db, name) as attempt:
        yield attempt()


@contextlib.contextmanager
def hold_lock(db: Database, name: str, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock ``name`` for the block, waiting up to ``timeout`` seconds (None: forever).

    Raises :class:`~genemill.errors.StoreError` (retryable by the job queue) when the lock is
    still held elsewhere after ``timeout``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with _backend(db, name) as attempt:
        while not attempt():
            if deadline is not None and time.monotonic() >= deadline:
                msg = f"lock {name!r} is held by another runner (waited {timeout:g} s); try again later"
                raise StoreError(msg)
            time.sleep(_POLL_SECONDS)
        yield


@contextlib.contextmanager
def _backend(db: Database, name: str) -> Iterator[Any]:
    if db.is_postgres:
        with _postgres(db, lock_key(name)) as attempt:
            yield attempt
    elif db.engine.dialect.name == "sqlite":
        with _lock_file(_lock_dir(db) / f"{lock_key(name) & (2**64 - 1):016x}.lock") as attempt:
            yield attempt
    else:
        msg = f"locks need PostgreSQL or SQLite, found database dialect {db.engine.dialect.name!r}"
        raise StoreError(msg)


@contextlib.contextmanager
def _postgres(db: Database, key: int) -> Iterator[Any]:
    connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    held = False

    def attempt() -> bool:
        nonlocal held
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        return held

    try:
        yield attempt
    finally:
        try:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            connection.close()


@contextlib.contextmanager
def _lock_file(path: Path) -> Iterator[Any]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[bytes] = path.open("a+b")

    def attempt() -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        return True

    try:
        yield attempt
    finally:
        handle.close()  # closing the descriptor releases the flock


def _lock_dir(db: Database) -> Path:
    database = db.engine.url.database
    if database and database != ":memory:":
        return Path(database).resolve().parent / "locks"
    return Path(tempfile.gettempdir()) / "genemill-locks"
