"""`genemill add` against a local server in GEO's and NCBI's real URL layout (nothing leaves the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer
from typer.testing import CliRunner

from genemill.cli import _register, app
from genemill.config import Settings
from genemill.pipeline.survey import add_accession
from genemill.store import queries
from genemill.store.db import Database

REPO = Path(__file__).resolve().parents[2]
GSE781 = REPO / "data" / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
PUBMED = REPO / "tests" / "data" / "sources" / "eutils_esummary_pubmed_14641932.json"
SOFT_PATH = "/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz"


@pytest.fixture
def server():
    with FixtureServer() as running:
        running.add_file(SOFT_PATH, GSE781)
        running.add_file("/entrez/eutils/esummary.fcgi", PUBMED, query={"db": "pubmed"})
        yield running


def _settings(tmp_path: Path, server: FixtureServer) -> Settings:
    return Settings(
        home=tmp_path / "home",
        geo_base_url=server.base_url,
        eutils_base_url=server.url("/entrez/eutils"),
        retry_backoff_seconds=0.01,
    )


def test_add_surveys_geo_and_pubmed(tmp_path, server) -> None:
    server.add_fault(SOFT_PATH, Fault.status(503, times=1))
    settings = _settings(tmp_path, server)
    db = Database(settings.resolved_database_url)
    db.migrate()
    summary = add_accession(settings, db, "gse781")
    assert summary.succeeded == ["GSE781"]
    with db.session() as session:
        data = queries.experiment_dict(queries.get_experiment(session, "GSE781"))
    assert data["num_total_samples"] == 34
    assert data["pubmed_id"] == "14641932"
    assert data["publication_title"]
    assert data["publication_authors"]
    statuses = [r.status for r in server.requests_for(SOFT_PATH)]
    assert statuses[:2] == [503, 200]
    db.dispose()


def test_add_unknown_accession_fails_with_its_name(tmp_path, server, monkeypatch) -> None:
    settings = _settings(tmp_path, server)
    for name, value in settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(f"GENEMILL_{name.upper()}", str(value))
    _register()
    result = CliRunner().invoke(app, ["add", "GSE999999999"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "GSE999999999 does not exist at GEO (404" in result.output
    malformed = CliRunner().invoke(app, ["add", "XYZ1"])
    assert malformed.exit_code != 0
