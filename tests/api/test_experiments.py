"""/v1/experiments/: the anchor's detail fields on the real GSE781, lookups, list filters and paging."""

from __future__ import annotations

import pytest

ANCHOR_DETAIL_FIELDS = (
    "id", "title", "description", "samples", "protocol_description", "accession_code",
    "alternate_accession_code", "source_database", "source_url", "has_publication", "publication_title",
    "publication_doi", "publication_authors", "pubmed_id", "source_first_published", "source_last_modified",
    "submitter_institution", "last_modified", "created_at", "organism_names", "sample_metadata",
    "num_total_samples", "num_processed_samples", "num_downloadable_samples",
)  # fmt: skip


def test_gse781_detail_has_the_anchor_fields(gse781_client) -> None:
    response = gse781_client.get("/v1/experiments/GSE781/")
    assert response.status_code == 200
    body = response.json()
    for name in ANCHOR_DETAIL_FIELDS:
        assert name in body, name
    assert body["title"] == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert body["pubmed_id"] == "14641932"
    assert body["submitter_institution"] == "Boston University School of Medicine"
    assert body["alternate_accession_code"] == "E-GEOD-781"
    assert body["source_url"] == "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE781"
    assert body["organism_names"] == ["Homo sapiens"]
    assert body["platform_accession_codes"] == ["GPL96", "GPL97"]
    assert body["num_total_samples"] == len(body["samples"]) == 34
    assert body["num_downloadable_samples"] == 34
    sample = body["samples"][0]
    assert set(sample) >= {"accession_code", "platform_name", "pretty_platform", "technology", "is_processed"}
    assert sample["is_processed"] is True


@pytest.mark.parametrize(
    "path", ["/v1/experiments/GSE781", "/v1/experiments/gse781/", "/v1/experiments/E-GEOD-781/"]
)
def test_lookup_by_accession_case_and_alternate(gse781_client, path: str) -> None:
    response = gse781_client.get(path)
    assert response.status_code == 200
    assert response.json()["accession_code"] == "GSE781"


def test_unknown_experiment_is_404_with_the_error_shape(gse781_client) -> None:
    response = gse781_client.get("/v1/experiments/GSE0/")
    assert response.status_code == 404
    assert response.json() == {
        "ok": False,
        "error": "no experiment 'GSE0' in this genemill database (try `genemill add GSE0`)",
        "errors": ["no experiment 'GSE0' in this genemill database (try `genemill add GSE0`)"],
        "status": 404,
    }


def test_list_filters_and_pages(catalog_client) -> None:
    everything = catalog_client.get("/v1/experiments/").json()
    assert [r["accession_code"] for r in everything["results"]] == ["GSE9001", "GSE9002", "GSE9003"]
    mouse = catalog_client.get("/v1/experiments/", params={"organism": "MUS_MUSCULUS", "limit": 1}).json()
    assert mouse["count"] == 2
    assert [r["accession_code"] for r in mouse["results"]] == ["GSE9002"]
    assert mouse["next"] is not None
    following = catalog_client.get(mouse["next"]).json()
    assert [r["accession_code"] for r in following["results"]] == ["GSE9003"]
    newest = catalog_client.get("/v1/experiments/", params={"ordering": "-source_first_published"}).json()
    assert newest["results"][0]["accession_code"] == "GSE9003"


def test_list_refuses_free_text(catalog_client) -> None:
    # The list takes filters only; free text belongs to /v1/search/ (a typo must not return everything).
    response = catalog_client.get("/v1/experiments/", params={"search": "kidney"})
    assert response.status_code == 400
    assert "unknown query parameter(s) search" in response.json()["error"]


def test_detail_agrees_with_the_shared_query_layer(gse781) -> None:
    from genemill.store import catalog, queries

    _settings, db = gse781
    with db.session() as session:
        fast = catalog.experiment_detail(session, "E-GEOD-781")
        shared = queries.experiment_dict(queries.get_experiment(session, "GSE781"))
    for key, value in shared.items():
        if key == "samples":
            continue
        assert fast[key] == value, key
    light = {k: fast["samples"][0][k] for k in fast["samples"][0]}
    assert light == {k: shared["samples"][0][k] for k in light}
    assert [s["accession_code"] for s in fast["samples"]] == [s["accession_code"] for s in shared["samples"]]
