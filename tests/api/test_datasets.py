"""/v1/dataset/ and /v1/qn_targets/: refine.bio's request → start (token) → poll → download flow on GSE781."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from genemill.store.models import Job, JobState

# Building GSE781 reports a failed KS check after quantile normalization as a GenemillWarning.
pytestmark = pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning")


@pytest.fixture(scope="module")
def token(gse781_client) -> str:
    key = gse781_client.post("/v1/token/").json()["id"]
    assert gse781_client.put(f"/v1/token/{key}/", json={"is_activated": True}).status_code == 200
    return key


def test_request_start_poll_download(gse781, gse781_client, token: str) -> None:
    created = gse781_client.post("/v1/dataset/", json={"data": {"E-GEOD-781": ["GSM11805", "GSM11810"]}})
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["state"] == "CREATED"
    assert dataset["data"] == {"GSE781": ["GSM11805", "GSM11810"]}
    assert dataset["is_processing"] is False and dataset["is_processed"] is False
    assert dataset["success"] is None and dataset["download_url"] is None
    path = f"/v1/dataset/{dataset['id']}/"

    changed = gse781_client.put(path, json={"data": {"GSE781": ["ALL"]}, "scale_by": "STANDARD"}).json()
    assert changed["data"] == {"GSE781": ["ALL"]}
    assert changed["transform"] == "ZSCORE"

    refused = gse781_client.put(path, json={"start": True})
    assert refused.status_code == 403
    assert "activated API token" in refused.json()["error"]

    started = gse781_client.put(
        path, json={"start": True, "formats": ["tsv_zip", "parquet"]}, headers={"API-KEY": token}
    )
    assert started.status_code == 200, started.text
    assert started.json()["is_processing"] is True
    # The test client runs the background build before returning; poll once.
    done = gse781_client.get(path, headers={"API-KEY": token}).json()
    assert done["state"] == "SUCCEEDED", done["error"]
    assert done["is_processed"] is True and done["success"] is True
    assert done["summary"]["num_samples"] == 34
    _settings, db = gse781
    with db.session() as session:  # built through the durable job queue (a `genemill run` worker could have)
        job = session.scalar(select(Job).where(Job.kind == "dataset", Job.target == dataset["id"]))
        assert job is not None and job.state == JobState.SUCCEEDED
    assert [f["format"] for f in done["files"]] == ["tsv_zip", "parquet"]
    assert all("path" not in f for f in done["files"])
    assert done["download_url"].endswith(f"/v1/dataset/{dataset['id']}/download?format=tsv_zip")
    anonymous = gse781_client.get(path).json()
    assert anonymous["download_url"] is None

    assert gse781_client.get(done["download_url"]).status_code == 403
    archive = gse781_client.get(done["download_url"], headers={"API-KEY": token})
    assert archive.status_code == 200
    assert "genemill-dataset-" in archive.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert any(name.endswith(".tsv") for name in names)
    parquet = gse781_client.get(f"{path}download", params={"format": "parquet"}, headers={"API-KEY": token})
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"

    frozen = gse781_client.put(path, json={"data": {"GSE781": ["GSM11805"]}})
    assert frozen.status_code == 400
    assert "can no longer change" in frozen.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"data": {"GSE0": ["ALL"]}}, 404, "no experiment 'GSE0'"),
        ({"data": {}}, 422, "data: Dictionary should have at least 1 item"),
        ({"data": {"GSE781": ["ALL"]}, "aggregate_by": "PLANET"}, 422, "aggregate_by: Input should be"),
        ({"data": {"GSE781": []}}, 422, "data.GSE781: List should have at least 1 item"),
        ({"data": {"GSE781": ["ALL", "GSM11805"]}}, 400, "'ALL' cannot be combined"),
        ({"data": {"GSE781": ["ALL"]}, "min_fraction": 0.5}, 400, "only used with join=MIN_FRACTION"),
        ({"data": {"GSE781": ["ALL"]}, "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ],
    ids=["unknown-experiment", "empty", "aggregate", "empty-list", "all-and-samples", "fraction", "extra"],
)
def test_bad_requests(gse781_client, body, status: int, message: str) -> None:
    response = gse781_client.post("/v1/dataset/", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_unknown_dataset_and_missing_files(gse781_client, token: str) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert gse781_client.get(f"/v1/dataset/{missing}/").status_code == 404
    created = gse781_client.post("/v1/dataset/", json={"data": {"GSE781": ["ALL"]}}).json()
    early = gse781_client.get(f"/v1/dataset/{created['id']}/download", headers={"API-KEY": token})
    assert early.status_code == 400
    assert "has no files yet: it is CREATED" in early.json()["error"]


def test_qn_targets_listing_and_404(gse781_client) -> None:
    assert gse781_client.get("/v1/qn_targets/").json() == []
    response = gse781_client.get("/v1/qn_targets/HOMO_SAPIENS/")
    assert response.status_code == 404
    assert "no quantile-normalization target for 'HOMO_SAPIENS'" in response.json()["error"]
