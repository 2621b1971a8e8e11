"""A site with really processed data, on SQLite and PostgreSQL, for tests that build datasets or read results.

The catalog is the GENERATED test experiments (tests/app_fixtures.py) plus the real GSE781 family
SOFT (data/geo-soft, see its PROVENANCE), imported and processed from its submitter tables. Two
apps share the database: one keeps built files a week (the default lifetime), the other lets them
expire after ``SHORT_LIFETIME_SECONDS``. Test modules import ``site_fixture`` and ask for ``site``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.app_fixtures import GSE781, _module_database_url, load_generated_catalog, make_client

from genemill.config import Settings
from genemill.pipeline.process import process_experiment
from genemill.pipeline.survey import import_metadata
from genemill.store.db import Database
from genemill.store.search import reindex_all

__all__ = ["SHORT_LIFETIME_SECONDS", "Site", "site_fixture"]

SHORT_LIFETIME_SECONDS = 1.5


@dataclass
class Site:
    """The database, the default settings, both clients and an activated API token."""

    db: Database
    settings: Settings
    client: Any
    short_client: Any
    token: str


@pytest.fixture(
    name="site", scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """GENERATED catalog + processed GSE781, built once per test module and backend."""
    for url in _module_database_url(request, tmp_path_factory):
        home = tmp_path_factory.mktemp("home")
        settings = Settings(home=home, database_url=url)
        short = Settings(home=home, database_url=url, dataset_lifetime_days=SHORT_LIFETIME_SECONDS / 86400)
        db = Database(url)
        db.migrate()
        load_generated_catalog(db)
        import_metadata(settings, db, GSE781)
        process_experiment(settings, db, "GSE781")
        with db.session() as session:
            reindex_all(session)
        with make_client(settings, db) as client, make_client(short, db) as short_client:
            token = client.post("/v1/token/").json()["id"]
            assert client.put(f"/v1/token/{token}/", json={"is_activated": True}).status_code == 200
            yield Site(db, settings, client, short_client, token)
        db.dispose()
