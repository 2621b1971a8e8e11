"""SQLite connection settings made by ``make_engine`` (every pooled connection gets them)."""

from __future__ import annotations

from pathlib import Path

from genemill.store.db import SQLITE_MMAP_BYTES, make_engine


def test_sqlite_connections_use_wal_foreign_keys_and_a_memory_map(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'genemill.sqlite'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA mmap_size").scalar() == SQLITE_MMAP_BYTES
    finally:
        engine.dispose()
