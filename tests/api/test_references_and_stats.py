"""/v1/processors/{id}/, /v1/institutions/, /v1/stats-about/ and /v1/stats/failures/{kind}, on both backends.

On the site of tests/api/processed_site.py: GENERATED experiments (GSE9001-GSE9003; 4 + 0 + 5 of
their samples marked processed) and the real GSE781, whose 34 samples are processed from the
submitter's tables by genemill's ``submitter`` processor.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.api.processed_site import Site, site_fixture  # noqa: F401 (fixture `site`)

from genemill import __version__
from genemill.pipeline.executors import InlineExecutor
from genemill.pipeline.jobs import JobKind, enqueue, run_jobs

pytestmark = pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning")


def _page(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    return dict(body)


def test_processor_list_ids_lead_to_their_detail(site: Site) -> None:
    listing = _page(site.client.get("/v1/processors/"))
    assert listing["count"] >= 1
    by_name = {row["name"]: row for row in listing["results"]}
    submitter = by_name["submitter"]
    assert submitter["id"] == f"submitter@{__version__}"
    detail = site.client.get(f"/v1/processors/{submitter['id']}/")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["id"] == submitter["id"]
    assert (body["name"], body["version"]) == ("submitter", __version__)
    assert body["num_results"] == submitter["num_results"] >= 1
    assert body["num_current_results"] >= 1
    assert body["num_samples"] == 34  # every GSE781 sample came from the submitter's tables
    assert body["num_experiments"] == 1
    assert body["first_used"] == submitter["first_used"]
    assert body["last_used"] >= body["first_used"]
    assert body["modes"] == {"submitter": body["num_results"]}
    assert body["latest_result"]["mode"] == "submitter"
    assert isinstance(body["latest_result"]["parameters"], dict) and body["latest_result"]["parameters"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/processors/submitter/", 422, "String should match pattern"),
        ("/v1/processors/@1.0/", 422, "String should match pattern"),
        (
            "/v1/processors/submitter@9.9.9/",
            404,
            "no stored result was made by submitter version 9.9.9",
        ),
        ("/v1/processors/" + "x" * 201 + "@1/", 422, "String should have at most 200 characters"),
        ("/v1/processors/?limit=0", 422, "limit: Input should be greater than or equal to 1"),
        ("/v1/processors/?limit=1001", 422, "limit: Input should be less than or equal to 1000"),
        ("/v1/processors/submitter@0.1.0/?verbose=1", 400, "unknown query parameter(s) verbose"),
    ],
    ids=["no-version", "no-name", "unknown", "too-long", "limit-0", "limit-max", "unknown-param"],
)
def test_processor_bad_requests(site: Site, path: str, status: int, message: str) -> None:
    response = site.client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == status
    assert message in body["error"]


def test_institutions_with_counts_and_paging(site: Site) -> None:
    everything = _page(site.client.get("/v1/institutions/"))
    assert everything["count"] == 2
    assert everything["results"] == [
        {
            "submitter_institution": "Boston University School of Medicine",
            "num_experiments": 1,
            "num_samples": 34,
        },
        {
            "submitter_institution": "Generated Institute of Nephrology",
            "num_experiments": 1,
            "num_samples": 6,
        },
    ]
    first = _page(site.client.get("/v1/institutions/", params={"limit": 1}))
    assert first["count"] == 2 and first["results"] == everything["results"][:1]
    assert first["previous"] is None and "offset=1" in first["next"]
    second = _page(site.client.get(first["next"]))
    assert second["results"] == everything["results"][1:]
    assert second["next"] is None and "offset=0" in second["previous"]
    beyond = _page(site.client.get("/v1/institutions/", params={"offset": 10}))
    assert beyond["count"] == 2 and beyond["results"] == []


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"limit": "many"}, 422, "limit: Input should be a valid integer"),
        ({"offset": -1}, 422, "offset: Input should be greater than or equal to 0"),
        ({"name": "Boston"}, 400, "unknown query parameter(s) name"),
    ],
)
def test_institutions_bad_parameters(site: Site, query: dict[str, Any], status: int, message: str) -> None:
    response = site.client.get("/v1/institutions/", params=query)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_stats_about_counts_processed_samples_and_datasets(site: Site) -> None:
    created = site.client.post("/v1/dataset/", json={"data": {"GSE9001": ["ALL"]}})
    assert created.status_code == 201
    response = site.client.get("/v1/stats-about/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["processed_samples_by_organism"] == {"Homo sapiens": 34 + 4, "Mus musculus": 5}
    assert body["processed_samples_by_technology"] == {"MICROARRAY": 38, "RNA-SEQ": 5}
    assert body["samples_available"] == 43
    assert body["supported_organisms"] == 2
    assert body["experiments_processed"] == 3  # GSE781, GSE9001, GSE9003 (GSE9002 has none)
    assert body["total_size_in_bytes"] >= 0
    datasets = body["datasets"]
    assert datasets["created"] >= 1 and datasets["total"] == sum(
        v for k, v in datasets.items() if k != "total"
    )
    assert set(datasets) == {"total", "created", "queued", "running", "succeeded", "failed", "expired"}
    assert site.client.get("/v1/stats-about/", params={"range": "day"}).status_code == 400


def _fail_jobs(site: Site) -> str:
    """Really failing jobs through the queue: building a dataset and processing an experiment that do not exist."""
    missing = str(uuid.uuid4())
    with site.db.session() as session:
        enqueue(session, JobKind.DATASET, missing, max_attempts=1)
        enqueue(session, JobKind.PROCESS, "GSE0", max_attempts=1)
    run_jobs(
        site.settings,
        site.db,
        executor=InlineExecutor(),
        kinds=[JobKind.DATASET.value, JobKind.PROCESS.value],
    )
    return missing


def test_failures_grouped_by_reason(site: Site) -> None:
    missing = _fail_jobs(site)
    datasets = _page(site.client.get("/v1/stats/failures/dataset/"))
    assert datasets["count"] == 1
    (row,) = datasets["results"]
    assert row["error_type"] == "NotFoundError"
    assert f"no dataset '{missing}'" in row["reason"]
    assert row["job_count"] == row["target_count"] == 1
    assert row["last_failed"] is not None
    processing = _page(site.client.get("/v1/stats/failures/processor/", params={"range": "day"}))
    assert processing["count"] == 1
    assert "GSE0" in processing["results"][0]["reason"]
    assert _page(site.client.get("/v1/stats/failures/downloader/"))["count"] == 0
    assert (
        _page(site.client.get("/v1/stats/failures/dataset/", params={"limit": 1, "offset": 1}))["results"]
        == []
    )


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/stats/failures/smasher/", 422, "kind: Input should be"),
        (
            "/v1/stats/failures/dataset/?range=decade",
            422,
            "range: Input should be 'day', 'week', 'month' or 'year'",
        ),
        ("/v1/stats/failures/dataset/?limit=5000", 422, "limit: Input should be less than or equal to 1000"),
        ("/v1/stats/failures/dataset/?since=2020", 400, "unknown query parameter(s) since"),
    ],
    ids=["kind", "range", "limit", "unknown-param"],
)
def test_failures_bad_parameters(site: Site, path: str, status: int, message: str) -> None:
    response = site.client.get(path)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_new_endpoints_are_in_the_openapi_schema(site: Site) -> None:
    paths = site.client.get("/v1/schema").json()["paths"]
    for path in (
        "/v1/processors/{processor}",
        "/v1/institutions",
        "/v1/stats-about",
        "/v1/stats/failures/{kind}",
        "/v1/dataset/{dataset_id}/regenerate",
    ):
        assert path in paths, path
    download = paths["/v1/dataset/{dataset_id}/download"]["get"]["responses"]
    assert "410" in download
    read = paths["/v1/dataset/{dataset_id}"]["get"]["parameters"]
    assert "details" in {p["name"] for p in read}
