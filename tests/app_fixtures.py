"""App fixtures shared by tests/api and tests/web: a small GENERATED catalog on both backends, and the real GSE781 imported + processed.

The generated experiments (GSE9001-GSE9003) are made up for ranking and facet tests and say so in
their descriptions; GSE781 is the real GEO family SOFT bundled in data/geo-soft (see its PROVENANCE).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from genemill.config import Settings
from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import refresh_counts, store_experiment
from genemill.server import RateLimit, create_app
from genemill.store.db import Database
from genemill.store.models import ProcessingState
from genemill.store.search import reindex_all

with warnings.catch_warnings():
    # starlette warns at import that it prefers httpx2 to httpx; the client works with httpx.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GSE781 = (
    Path(__file__).resolve().parents[1] / "data" / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
)

PLATFORMS = {
    "GPL96": ("[HG-U133A] Affymetrix Human Genome U133A Array", "in situ oligonucleotide", "Homo sapiens"),
    "GPL1261": (
        "[Mouse430_2] Affymetrix Mouse Genome 430 2.0 Array",
        "in situ oligonucleotide",
        "Mus musculus",
    ),
    "GPL13112": ("Illumina HiSeq 2000 (Mus musculus)", "high-throughput sequencing", "Mus musculus"),
}


def generated_experiment(
    accession: str,
    *,
    title: str,
    description: str,
    platform: str,
    samples: list[dict[str, Any]],
    **series: Any,
) -> ExperimentMetadata:
    """A made-up experiment (GENERATED test data) built from records, as a parser would return it."""
    pretty, technology, organism = PLATFORMS[platform]
    records = [
        SampleRecord(
            accession=s["accession"],
            title=s.get("title", s["accession"]),
            organism=[organism],
            platform=platform,
            characteristics=list(s.get("characteristics", [])),
            fields={"Sample_source_name_ch1": [s.get("source", "tissue")]},
        )
        for s in samples
    ]
    return ExperimentMetadata(
        source="GEO",
        series=SeriesRecord(
            accession=accession,
            title=title,
            description=description,
            sample_accessions=[s["accession"] for s in samples],
            platform_accessions=[platform],
            **series,
        ),
        platforms=[
            PlatformRecord(
                accession=platform,
                title=pretty,
                technology=technology,
                manufacturer="Illumina" if "Illumina" in pretty else "Affymetrix",
                organism=[organism],
            )
        ],
        samples=records,
        file_format="soft",
    )


def _catalog() -> list[tuple[ExperimentMetadata, int]]:
    """(experiment, number of samples to mark processed)."""
    kidney = generated_experiment(
        "GSE9001",
        title="Renal cell carcinoma and matched normal kidney",
        description="GENERATED test experiment: clear cell renal carcinoma versus adjacent normal tissue.",
        platform="GPL96",
        samples=[
            {
                "accession": f"GSM900{i}",
                "title": f"{'tumour' if i % 2 else 'normal'} kidney {i}",
                "characteristics": [("Sex", "female" if i < 3 else "male"), ("age", f"{50 + i} years")],
            }
            for i in range(1, 7)
        ],
        pubmed_ids=["11111111"],
        submitter_institution="Generated Institute of Nephrology",
        contributors=["Ada Lovelace", "Alan Turing"],
        submission_date="Jan 05 2010",
    )
    liver = generated_experiment(
        "GSE9002",
        title="Liver regeneration after partial hepatectomy",
        description="GENERATED test experiment about liver; kidney is mentioned once as a control organ.",
        platform="GPL1261",
        samples=[{"accession": f"GSM910{i}", "title": f"liver {i}"} for i in range(1, 4)],
        submission_date="Mar 01 2015",
    )
    development = generated_experiment(
        "GSE9003",
        title="Kidney development time course in mouse",
        description="GENERATED test experiment: embryonic kidney sequenced at five stages.",
        platform="GPL13112",
        samples=[
            {
                "accession": f"GSM920{i}",
                "title": f"E{11 + i} kidney",
                "characteristics": [("tissue", "kidney")],
            }
            for i in range(1, 6)
        ],
        contributors=["Jane Q Public"],
        submission_date="Jul 20 2020",
    )
    return [(kidney, 4), (liver, 0), (development, 5)]


def load_generated_catalog(db: Database) -> None:
    """Store the generated experiments, mark some samples processed, and index them."""
    with db.session() as session:
        for metadata, n_processed in _catalog():
            experiment = store_experiment(session, metadata)
            for sample in experiment.samples[:n_processed]:
                sample.processing_state = ProcessingState.PROCESSED
            refresh_counts(experiment)
        session.flush()
        reindex_all(session)


def make_client(settings: Settings, db: Database, *, rate_limit: RateLimit | None = None) -> TestClient:
    """A test client on an app sharing ``db``."""
    return TestClient(create_app(settings, db=db, rate_limit=rate_limit))


@pytest.fixture
def client_for() -> Any:
    """``client_for(app, **kwargs)``: a TestClient (imported here, quietly) for a custom app."""
    return TestClient


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The app on the generated catalog, on SQLite and PostgreSQL."""
    load_generated_catalog(db)
    with make_client(settings, db) as test_client:
        yield test_client


def _module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of its own for a module-scoped fixture (a separate PostgreSQL database, not the shared one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'genemill.sqlite'}"
        return
    base = os.environ.get("GENEMILL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("GENEMILL_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server")
    admin = create_engine(Database(base).url, isolation_level="AUTOCOMMIT")
    name = f"genemill_api_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The app on the generated catalog, built once per module and backend (read-only tests)."""
    for url in _module_database_url(request, tmp_path_factory):
        settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=url)
        db = Database(url)
        db.migrate()
        load_generated_catalog(db)
        with make_client(settings, db) as test_client:
            yield test_client
        db.dispose()


@pytest.fixture(scope="session")
def gse781(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Database]]:
    """The real GSE781 imported from its family SOFT and processed (submitter tables), on SQLite."""
    from genemill.pipeline.process import process_experiment
    from genemill.pipeline.survey import import_metadata

    settings = Settings(home=tmp_path_factory.mktemp("gse781"))
    db = Database(settings.resolved_database_url)
    db.migrate()
    import_metadata(settings, db, GSE781)
    process_experiment(settings, db, "GSE781")
    with db.session() as session:
        reindex_all(session)
    yield settings, db
    db.dispose()


@pytest.fixture(scope="session")
def gse781_client(gse781: tuple[Settings, Database]) -> Iterator[TestClient]:
    """The app on the processed GSE781."""
    settings, db = gse781
    with make_client(settings, db) as test_client:
        yield test_client
