"""Engines and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL by URL; schema via Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from genemill.errors import StoreError

__all__ = ["Database", "make_engine", "migrate"]

_MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_MMAP_BYTES = 1 << 30  # per connection, of address space; SQLite caps it (2 GB by default)


def _normalize_url(url: str) -> str:
    # Users write postgresql://; we drive it with psycopg 3 rather than the psycopg2 default.
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    url = _normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Reads through a memory map: a page missing from SQLite's small per-connection cache
            # then costs no read() copy. On the 490 MB bench catalog a 25-row search page fell
            # from ~0.30 to ~0.18 ms and an experiment's sample rows from ~0.08 to ~0.03 ms.
            # Address space only (the OS page cache holds the pages either way).
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, *, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


class Database:
    """An engine plus a session factory; ``session()`` commits on success, rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = _normalize_url(url)
        self.engine = make_engine(self.url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        """True when the backend is PostgreSQL."""
        return self.engine.dialect.name == "postgresql"

    def migrate(self) -> None:
        """Create or upgrade the schema."""
        migrate(self.engine)

    def check_schema(self) -> None:
        """Raise StoreError when the schema has not been created."""
        if not inspect(self.engine).has_table("experiment"):
            where = self.engine.url.render_as_string(hide_password=True)
            msg = f"database {where} has no schema; run `genemill db init`"
            raise StoreError(msg)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error."""
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
