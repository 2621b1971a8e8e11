"""Shared fixtures: isolated settings (tmp GENEMILL_HOME), databases on SQLite and PostgreSQL.

PostgreSQL tests use the server named by ``GENEMILL_TEST_POSTGRES_URL`` (``.ci/run`` sets it to
the machine's 127.0.0.1:5432). Each test session creates its own throw-away database there.
When the variable is unset, PostgreSQL-parametrized tests are skipped with a message saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from genemill.config import Settings
from genemill.store.db import Database

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"

POSTGRES_ENV = "GENEMILL_TEST_POSTGRES_URL"


@pytest.fixture
def data_dir() -> Path:
    """The repository's bundled real data (see data/*/PROVENANCE.md)."""
    return DATA


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: PostgreSQL tests need a server (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    from sqlalchemy import create_engine, text

    admin = create_engine(Database(base).url, isolation_level="AUTOCOMMIT")
    name = f"genemill_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genemill.sqlite'}"
    url: str = request.getfixturevalue("postgres_server_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings pointing at a temporary home and the parametrized database."""
    return Settings(home=tmp_path / "home", database_url=database_url, workers=2, retry_backoff_seconds=0.01)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on the embedded default only (SQLite in a temporary home)."""
    return Settings(home=tmp_path / "home", workers=2, retry_backoff_seconds=0.01)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(settings.resolved_database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_settings: Settings) -> Iterator[Database]:
    """A migrated SQLite database."""
    database = Database(sqlite_settings.resolved_database_url)
    database.migrate()
    yield database
    database.dispose()
