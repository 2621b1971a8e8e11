"""/v1/search/: relevance, exact-accession pinning, field syntax, facets (downloadable samples), paging.

Runs on SQLite (FTS5 + bm25) and PostgreSQL (tsvector + ts_rank_cd) through the ``db`` fixture.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from genemill.store.models import Experiment
from genemill.store.search import SearchQuery, reindex_experiment, search


def _codes(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["accession_code"] for r in response.json()["results"]]


def test_title_match_ranks_above_description_match(catalog_client) -> None:
    codes = _codes(catalog_client.get("/v1/search/", params={"search": "kidney"}))
    assert set(codes) == {"GSE9001", "GSE9002", "GSE9003"}
    # "kidney" is in GSE9003's title, GSE9001's title, but only in GSE9002's description.
    assert codes[-1] == "GSE9002"


def test_all_words_are_required_and_prefixes_match(catalog_client) -> None:
    assert _codes(catalog_client.get("/v1/search/", params={"search": "renal carcinoma"})) == ["GSE9001"]
    assert _codes(catalog_client.get("/v1/search/", params={"search": "hepatect"})) == ["GSE9002"]
    assert _codes(catalog_client.get("/v1/search/", params={"search": "carcinoma liver"})) == []


def test_sample_text_is_searchable(catalog_client) -> None:
    # "tumour" appears only in GSE9001's sample titles.
    assert _codes(catalog_client.get("/v1/search/", params={"search": "tumour"})) == ["GSE9001"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('publication_authors:"Jane Q Public"', ["GSE9003"]),
        ("publication_authors:Turing", ["GSE9001"]),
        ('submitter_institution:"Nephrology"', ["GSE9001"]),
        ("accession_code:GSE9002", ["GSE9002"]),
        ("title:Liver", ["GSE9002"]),
        ("alternate_accession_code:E-GEOD-9003", ["GSE9003"]),
        ("e12:kidney", ["GSE9003"]),
    ],
    ids=["authors-quoted", "authors-word", "institution", "accession", "title", "alternate", "unknown-field"],
)
def test_field_syntax(catalog_client, query: str, expected: list[str]) -> None:
    assert _codes(catalog_client.get("/v1/search/", params={"search": query})) == expected


def test_exact_accession_is_pinned_first_whatever_the_ordering(catalog_client) -> None:
    for ordering in ("_score", "-num_total_samples", "num_total_samples"):
        response = catalog_client.get("/v1/search/", params={"search": "GSE9002", "ordering": ordering})
        results = response.json()["results"]
        assert results[0]["accession_code"] == "GSE9002"
        assert results[0]["is_exact_match"] is True
    pinned = catalog_client.get("/v1/search/", params={"search": "e-geod-9001"}).json()["results"]
    assert pinned[0]["accession_code"] == "GSE9001"


def test_facets_count_downloadable_samples(catalog_client) -> None:
    body = catalog_client.get("/v1/search/").json()
    assert body["count"] == 3
    facets = body["facets"]
    assert facets["organism"] == {"Mus musculus": 5, "Homo sapiens": 4}
    assert facets["technology"] == {"RNA-SEQ": 5, "MICROARRAY": 4}
    assert facets["platform"] == {"GPL13112": 5, "GPL96": 4, "GPL1261": 0}
    assert facets["has_publication"] == {"false": 5, "true": 4}
    assert body["facet_experiments"]["organism"] == {"Mus musculus": 2, "Homo sapiens": 1}


def test_facet_filters_and_multi_select_counts(catalog_client) -> None:
    body = catalog_client.get("/v1/search/", params={"organism": "MUS_MUSCULUS"}).json()
    assert sorted(r["accession_code"] for r in body["results"]) == ["GSE9002", "GSE9003"]
    # The organism facet ignores its own filter (other values stay selectable)...
    assert body["facets"]["organism"] == {"Mus musculus": 5, "Homo sapiens": 4}
    # ...while the other facets count only mouse experiments.
    assert body["facets"]["technology"] == {"RNA-SEQ": 5, "MICROARRAY": 0}
    both = catalog_client.get("/v1/search/?organism=Mus musculus&organism=Homo sapiens").json()
    assert both["count"] == 3
    combined = catalog_client.get(
        "/v1/search/", params={"technology": "MICROARRAY", "has_publication": "true"}
    ).json()
    assert [r["accession_code"] for r in combined["results"]] == ["GSE9001"]
    platform = catalog_client.get("/v1/search/", params={"platform": "gpl1261,GPL13112"}).json()
    assert platform["count"] == 2


def test_downloadable_threshold(catalog_client) -> None:
    codes = _codes(catalog_client.get("/v1/search/", params={"num_downloadable_samples__gt": 0}))
    assert sorted(codes) == ["GSE9001", "GSE9003"]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("num_total_samples", ["GSE9002", "GSE9003", "GSE9001"]),
        ("-num_total_samples", ["GSE9001", "GSE9003", "GSE9002"]),
        ("-source_first_published", ["GSE9003", "GSE9002", "GSE9001"]),
        ("source_first_published", ["GSE9001", "GSE9002", "GSE9003"]),
        ("_score", ["GSE9003", "GSE9001", "GSE9002"]),
    ],
)
def test_ordering(catalog_client, ordering: str, expected: list[str]) -> None:
    assert _codes(catalog_client.get("/v1/search/", params={"ordering": ordering})) == expected


def test_pagination_links(catalog_client) -> None:
    first = catalog_client.get("/v1/search/", params={"limit": 2, "ordering": "accession_code"}).json()
    assert first["count"] == 3
    assert [r["accession_code"] for r in first["results"]] == ["GSE9001", "GSE9002"]
    assert first["previous"] is None
    second = catalog_client.get(first["next"]).json()
    assert [r["accession_code"] for r in second["results"]] == ["GSE9003"]
    assert second["next"] is None
    assert "offset=0" in second["previous"]


def test_result_fields_have_anchor_names(catalog_client) -> None:
    result = catalog_client.get("/v1/search/", params={"search": "GSE9001"}).json()["results"][0]
    for name in (
        "id", "title", "publication_title", "description", "technology", "accession_code",
        "alternate_accession_code", "submitter_institution", "has_publication", "publication_doi",
        "publication_authors", "sample_metadata_fields", "platform_names", "platform_accession_codes",
        "organism_names", "downloadable_organism_names", "pubmed_id", "num_total_samples",
        "num_processed_samples", "num_downloadable_samples", "source_first_published", "_score",
    ):  # fmt: skip
        assert name in result, name
    assert result["sample_metadata_fields"] == ["sex", "age"]
    assert result["platform_names"] == ["Affymetrix Human Genome U133A Array (hgu133a)"]
    assert result["downloadable_organism_names"] == ["Homo sapiens"]


def test_post_search_takes_the_same_parameters(catalog_client) -> None:
    got = catalog_client.post("/v1/search/", json={"search": "kidney", "organism": ["Homo sapiens"]}).json()
    assert [r["accession_code"] for r in got["results"]] == ["GSE9001"]
    bad = catalog_client.post("/v1/search/", json={"serch": "kidney"})
    assert bad.status_code == 422


def test_reindex_replaces_old_text(db, client) -> None:
    with db.session() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.accession == "GSE9002"))
        experiment.title = "Pancreatic islets under stress"
        reindex_experiment(session, experiment)
    assert _codes(client.get("/v1/search/", params={"search": "hepatectomy"})) == []
    assert _codes(client.get("/v1/search/", params={"search": "pancreatic"})) == ["GSE9002"]
    with db.session() as session:
        result = search(session, SearchQuery(text="islets"))
    assert result.count == 1


def test_gse781_is_found_by_keyword_and_alternate_accession(gse781_client) -> None:
    renal = gse781_client.get("/v1/search/", params={"search": "renal"}).json()
    assert [r["accession_code"] for r in renal["results"]] == ["GSE781"]
    assert renal["facets"]["platform"] == {"GPL96": 17, "GPL97": 17}
    assert renal["results"][0]["num_downloadable_samples"] == 34
    alternate = gse781_client.get("/v1/search/", params={"search": "E-GEOD-781"}).json()
    assert alternate["results"][0]["is_exact_match"] is True


def test_search_cache_hits_until_the_index_changes(db, client) -> None:
    from genemill.store.search import SearchCache

    cache = SearchCache(size=8, ttl=600)
    query = SearchQuery(text="liver")
    with db.session() as session:
        first = cache.search(session, query)
        again = cache.search(session, query)
    assert again.engine == "cache" and again.results is first.results and (cache.hits, cache.misses) == (1, 1)
    with db.session() as session:
        experiment = session.scalar(select(Experiment).where(Experiment.accession == "GSE9002"))
        experiment.title = "Spleen only"
        reindex_experiment(session, experiment)
    with db.session() as session:
        fresh = cache.search(session, query)
    assert fresh is not first and cache.misses == 2
    assert [r["title"] for r in fresh.results] == ["Spleen only"]  # "liver" is still in its description
    disabled = SearchCache(size=0)
    with db.session() as session:
        assert disabled.search(session, query).count == 1
    assert disabled.hits == disabled.misses == 0


def test_sql_searches_run_in_the_thread_pool_not_on_the_event_loop(catalog_client) -> None:
    """A search only SQL answers (field terms here; PostgreSQL always) must not stall the loop:
    on the loop thread at most the index-generation lookup (SQLite) runs."""
    import threading

    from sqlalchemy import event

    engine = catalog_client.app.state.db.engine
    statements: list[tuple[str, str]] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append((threading.current_thread().name, statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = catalog_client.get("/v1/search/", params={"search": "title:Liver", "limit": 3})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200 and response.headers["X-Search-Engine"] == "sql"
    assert _codes(response) == ["GSE9002"]
    in_pool = [s for name, s in statements if name == "AnyIO worker thread"]
    on_loop = [s for name, s in statements if name not in ("AnyIO worker thread", "search-index")]
    assert any("Liver" in str(s) or "matching" in s or "experiment" in s for s in in_pool), statements
    assert all("max(" in s and "updated_at" in s for s in on_loop), on_loop
