"""Hot routes serialize their dicts directly (no response-model pass): the JSON must be what the model emits.

Also: ``X-Search-Engine`` says what answered a search, and the in-memory index answers on SQLite.
"""

from __future__ import annotations

import time

from genemill.api.schemas import ExperimentOut, SearchPage


def _through_model(model: type, body: dict) -> dict:
    return model.model_validate(body).model_dump(mode="json", by_alias=True)


def test_search_page_json_equals_the_models(catalog_client) -> None:
    for params in ({"search": "kidney"}, {"search": "GSE9002"}, {"organism": "Homo sapiens"}, {}):
        response = catalog_client.get("/v1/search/", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["results"], params
        assert _through_model(SearchPage, body) == body
        assert response.headers["X-Search-Engine"] in {"sql", "memory", "cache"}


def test_experiment_detail_json_equals_the_models(gse781_client) -> None:
    for accession in ("GSE781", "E-GEOD-781"):
        response = gse781_client.get(f"/v1/experiments/{accession}/")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accession_code"] == "GSE781" and body["samples"]
        assert _through_model(ExperimentOut, body) == body


def test_memory_index_answers_once_loaded(gse781_client) -> None:
    engine = gse781_client.app.state.search_cache.engine
    assert engine is not None
    for _ in range(200):  # the index loads in a background thread (tiny here)
        response = gse781_client.get("/v1/search/", params={"search": "renal", "limit": 3})
        if response.headers["X-Search-Engine"] != "sql":
            break
        time.sleep(0.05)
    assert response.headers["X-Search-Engine"] in {"memory", "cache"}
    assert "GSE781" in [r["accession_code"] for r in response.json()["results"]]
