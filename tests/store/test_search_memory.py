"""The in-memory search index gives the SQLite FTS5 path's answers: same hits, order, _score, counts, facets.

Parity is checked on the real GSE781 (imported from its family SOFT and processed) next to the small
GENERATED catalog of tests/app_fixtures.py, and on a GENERATED catalog made by bench/api_load.py's
generator (the benchmark's own vocabulary and query mix, at a size a test can afford).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select
from tests.app_fixtures import GSE781, generated_experiment, load_generated_catalog

from genemill.store.db import Database
from genemill.store.models import Experiment
from genemill.store.search import SearchCache, SearchQuery, reindex_experiment, search
from genemill.store.search_engine import SearchEngine
from genemill.store.search_memory import MemoryIndex
from genemill.store.search_query import ORDERINGS
from genemill.store.search_tokens import Fts5Tokenizer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api_load.py"


def _bench_module() -> Any:
    spec = importlib.util.spec_from_file_location("api_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(session: Any, engine: SearchEngine, query: SearchQuery, *, served: str = "memory") -> None:
    expected = search(session, query)
    found = engine.search(session, query)
    assert found.engine == served, query
    assert found.count == expected.count, query
    assert found.results == expected.results, query
    assert found.facets == expected.facets, query
    assert found.facet_experiments == expected.facet_experiments, query


@pytest.fixture(scope="module")
def real_and_generated(tmp_path_factory: pytest.TempPathFactory) -> Database:
    """GENERATED GSE9001-GSE9003 plus the real GSE781, imported and processed, on SQLite."""
    from genemill.config import Settings
    from genemill.pipeline.process import process_experiment
    from genemill.pipeline.survey import import_metadata

    home = tmp_path_factory.mktemp("memory-real")
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'genemill.sqlite'}")
    db = Database(settings.resolved_database_url)
    db.migrate()
    load_generated_catalog(db)
    _store_awkward_text(db)
    import_metadata(settings, db, GSE781)
    process_experiment(settings, db, "GSE781")
    return db


def _store_awkward_text(db: Database) -> None:
    """A GENERATED experiment whose text has accents, Greek, micro signs, underscores and punctuation."""
    from genemill.pipeline.ingest import finish_experiment, store_experiment

    metadata = generated_experiment(
        "GSE9004",
        title="Müller glia: naïve T-cells, IL-2/IL-7 (10 µM) and ΔNp63 in the kidney_x",
        description="GENERATED test experiment — «quoted» text, Ünïcödé, 3'UTR, CD4+CD25+, x\u00a0y.",
        platform="GPL96",
        samples=[{"accession": "GSM9401", "title": "ΔNp63–knockdown Straße #1"}],
        contributors=["Zoë Ångström"],
    )
    with db.session() as session:
        finish_experiment(session, store_experiment(session, metadata))


QUERIES = [
    SearchQuery(),
    SearchQuery(text="kidney"),
    SearchQuery(text="renal"),
    SearchQuery(text="renal carcinoma"),
    SearchQuery(text="kidn"),
    SearchQuery(text="hepatect"),
    SearchQuery(text="tumour"),
    SearchQuery(text="the kidney of a mouse"),
    SearchQuery(text="GSE781"),
    SearchQuery(text="gse781"),
    SearchQuery(text="E-GEOD-781"),
    SearchQuery(text="GSE9002", ordering="-num_total_samples"),
    SearchQuery(text="kidney", organisms=("Homo sapiens",)),
    SearchQuery(text="kidney", organisms=("MUS_MUSCULUS",), technologies=("rna-seq",)),
    SearchQuery(platforms=("GPL96", "GPL1261")),
    SearchQuery(has_publication=True),
    SearchQuery(text="kidney", has_publication=False),
    SearchQuery(num_downloadable_samples_gt=3),
    SearchQuery(num_processed_samples_gt=0, text="kidney"),
    SearchQuery(text="nothingmatchesthisword"),
    SearchQuery(text="muller"),
    SearchQuery(text="Müller naïve"),
    SearchQuery(text="ΔNp63"),
    SearchQuery(text="µM"),
    SearchQuery(text="il 7"),
    SearchQuery(text="strasse"),
    SearchQuery(text="straße"),
    SearchQuery(text="angstrom zoe"),
    SearchQuery(text="cd4 utr"),
    SearchQuery(text="unicode"),
    SearchQuery(text="kidney", limit=1, offset=1),
    SearchQuery(limit=2, offset=3),
    *(SearchQuery(text="kidney", ordering=o) for o in ORDERINGS),
    *(SearchQuery(ordering=f"-{o}") for o in ORDERINGS),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_same_answers_as_fts5_on_real_and_generated_experiments(
    real_and_generated: Database, query: SearchQuery
) -> None:
    engine = SearchEngine(background=False)
    with real_and_generated.session() as session:
        _same(session, engine, query)


def test_the_real_experiment_is_found_in_memory(real_and_generated: Database) -> None:
    engine = SearchEngine(background=False)
    with real_and_generated.session() as session:
        found = engine.search(session, SearchQuery(text="renal"))
        assert found.engine == "memory"
        assert "GSE781" in [r["accession_code"] for r in found.results]
        pinned = engine.search(session, SearchQuery(text="E-GEOD-781"))
        assert pinned.results[0]["accession_code"] == "GSE781" and pinned.results[0]["is_exact_match"]


def test_field_terms_and_split_words_are_left_to_sql(real_and_generated: Database) -> None:
    engine = SearchEngine(background=False)
    with real_and_generated.session() as session:
        _same(session, engine, SearchQuery(text="title:Liver"), served="sql")
        # FTS5 cuts "kidney_x" into a two-term phrase; the memory index answers one-term phrases only.
        _same(session, engine, SearchQuery(text="kidney_x"), served="sql")


def test_reindex_changes_the_generation_and_the_answers(real_and_generated: Database) -> None:
    engine = SearchEngine(background=False)
    with real_and_generated.session() as session:
        before = engine.search(session, SearchQuery(text="zebrafishgills"))
        assert before.count == 0 and before.engine == "memory"
        first = engine.index
        experiment = session.scalars(select(Experiment).where(Experiment.accession == "GSE9002")).one()
        old_title = experiment.title
        experiment.title = "Zebrafishgills regeneration"
        reindex_experiment(session, experiment)
        after = engine.search(session, SearchQuery(text="zebrafishgills"))
        assert engine.index is not first
        assert [r["accession_code"] for r in after.results] == ["GSE9002"]
        _same(session, engine, SearchQuery(text="zebrafishgills regeneration"))
        experiment.title = old_title
        reindex_experiment(session, experiment)


@pytest.fixture(scope="module")
def bench_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Any]:
    """A GENERATED catalog from the benchmark's generator: 400 experiments, 4,000 samples."""
    api_load = _bench_module()
    path = tmp_path_factory.mktemp("memory-bench") / "genemill.sqlite"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    api_load.generate_catalog(db, n_experiments=400, n_samples=4000)
    return db, api_load


def _bench_query(api_load: Any, rng: random.Random, n_experiments: int) -> SearchQuery:
    params = parse_qs(urlparse(api_load._search_url(rng, n_experiments)).query)
    return SearchQuery(
        text=params["search"][0],
        organisms=tuple(params.get("organism", [])),
        technologies=tuple(params.get("technology", [])),
        ordering=rng.choice(["_score", "_score", "-num_total_samples", "source_first_published", "title"]),
        offset=rng.choice([0, 0, 0, 10, 40]),
        limit=rng.choice([25, 25, 5, 100]),
    )


def test_same_answers_as_fts5_on_the_generated_bench_catalog(bench_catalog: tuple[Database, Any]) -> None:
    db, api_load = bench_catalog
    engine = SearchEngine(background=False)
    rng = random.Random(3)
    with db.session() as session:
        for _ in range(150):
            _same(session, engine, _bench_query(api_load, rng, 400))


def test_load_refuses_an_index_fts5_disagrees_with(bench_catalog: tuple[Database, Any]) -> None:
    db, _ = bench_catalog
    with db.session() as session:
        index = MemoryIndex.load(session, "probe")
        # Every term FTS5 holds, with its counts, is in memory (checked by load); spot-check one.
        assert "kidnei" in index.terms  # porter stem of "kidney", as FTS5 stores it
        assert index.n_docs == 400


def test_fts5_tokenizer_gives_the_table_terms() -> None:
    tokenizer = Fts5Tokenizer("porter unicode61 remove_diacritics 2")
    assert tokenizer.terms("Kidneys of Müller-type MICE") == ["kidnei", "of", "muller", "type", "mice"]
    assert tokenizer.terms("__") == []


def test_an_index_it_cannot_mirror_stays_on_sql(tmp_path: Path) -> None:
    # An FTS row naming no experiment (the SQL path counts it, the snapshot could not): refuse.
    from sqlalchemy import text

    db = Database(f"sqlite:///{tmp_path / 'genemill.sqlite'}")
    db.migrate()
    load_generated_catalog(db)
    with db.session() as session:
        session.execute(
            text("INSERT INTO experiment_fts (rowid, title) VALUES (987654, 'orphan kidney row')")
        )
    engine = SearchEngine(background=False)
    with db.session() as session:
        _same(session, engine, SearchQuery(text="kidney"), served="sql")
        assert engine.index is None and engine.failed_generation is not None
    db.dispose()


def test_search_in_memory_never_runs_sql_or_loads(real_and_generated: Database) -> None:
    """What an async route calls on the event loop: None whenever SQL (or a load) is needed."""
    engine = SearchEngine(background=False)
    cache = SearchCache(size=0, engine=engine)
    with real_and_generated.session() as session:
        assert cache.search_in_memory(session, SearchQuery(text="renal")) is None  # not loaded yet
        assert engine.index is None
        assert cache.search(session, SearchQuery(text="renal")).engine == "memory"  # loads it
        found = cache.search_in_memory(session, SearchQuery(text="renal"))
        assert found is not None and found.engine == "memory"
        assert found == engine.search(session, SearchQuery(text="renal"))
        assert cache.search_in_memory(session, SearchQuery(text="title:Liver")) is None
        assert cache.search_in_memory(session, SearchQuery(text="kidney_x")) is None
        cached = SearchCache(engine=engine)
        assert cached.search_in_memory(session, SearchQuery(text="renal")) == found
        again = cached.search_in_memory(session, SearchQuery(text="renal"))
        assert again is not None and again.engine == "cache" and again.results == found.results


def test_a_background_load_freezes_the_heap_out_of_the_collector(real_and_generated: Database) -> None:
    import gc
    import time

    assert not SearchEngine(background=False).freeze_heap  # tests and tools keep the collector as is
    gc.unfreeze()
    engine = SearchEngine()
    try:
        engine.start_loading(real_and_generated.engine)
        deadline = time.monotonic() + 60
        while engine.loading and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.index is not None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
