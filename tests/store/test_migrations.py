"""Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import genemill.datasets.models
import genemill.store.search_models  # registers its tables on Base.metadata
from genemill.store.db import Database
from genemill.store.models import Base

_ = genemill.datasets.models


def _search_only(diff: object) -> bool:
    text = str(diff)
    return "fts" in text or "ix_experiment_search_document" in text  # FTS5 table / GIN index by hand


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if not _search_only(d)] == []


def test_migrate_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    db.check_schema()
