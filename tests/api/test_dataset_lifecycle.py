"""/v1/dataset/: ``?details=true``, expiry (410 Gone) and regeneration, on SQLite and PostgreSQL.

On the site of tests/api/processed_site.py (GENERATED experiments + the real, processed GSE781), so
datasets are really built.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.api.processed_site import SHORT_LIFETIME_SECONDS, Site, site_fixture  # noqa: F401 (fixture `site`)

from genemill.datasets import Dataset, DatasetState, expire_datasets, get_dataset

# Building GSE781 reports a failed KS check after quantile normalization as a GenemillWarning.
pytestmark = pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning")


def _create(client: Any, data: dict[str, list[str]]) -> str:
    response = client.post("/v1/dataset/", json={"data": data})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _build(client: Any, dataset_id: str, token: str) -> dict[str, Any]:
    started = client.put(f"/v1/dataset/{dataset_id}/", json={"start": True}, headers={"API-KEY": token})
    assert started.status_code == 200, started.text
    # The test client runs the background build before returning.
    return dict(client.get(f"/v1/dataset/{dataset_id}/", headers={"API-KEY": token}).json())


def _row(site: Site, dataset_id: str) -> Dataset:
    with site.db.session() as session:
        return get_dataset(session, dataset_id)


def test_details_list_experiments_and_samples(site: Site) -> None:
    dataset_id = _create(site.client, {"GSE781": ["GSM11810", "GSM11805"], "GSE9002": ["ALL"]})
    plain = site.client.get(f"/v1/dataset/{dataset_id}/").json()
    assert "experiments" not in plain and "organism_samples" not in plain

    detailed = site.client.get(f"/v1/dataset/{dataset_id}/", params={"details": "true"})
    assert detailed.status_code == 200, detailed.text
    body = detailed.json()
    assert body["data"] == {"GSE781": ["GSM11805", "GSM11810"], "GSE9002": ["ALL"]}
    experiments = {e["accession_code"]: e for e in body["experiments"]}
    assert set(experiments) == {"GSE781", "GSE9002"}
    renal = experiments["GSE781"]
    assert renal["title"] == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert renal["pubmed_id"] == "14641932"
    assert renal["organism_names"] == ["Homo sapiens"]
    assert renal["num_total_samples"] == 34
    assert [s["accession_code"] for s in renal["samples"]] == ["GSM11805", "GSM11810"]
    assert all(s["organism"] == "Homo sapiens" and s["is_processed"] for s in renal["samples"])
    liver = experiments["GSE9002"]
    assert [s["accession_code"] for s in liver["samples"]] == ["GSM9101", "GSM9102", "GSM9103"]
    assert {s["platform_accession_code"] for s in liver["samples"]} == {"GPL1261"}
    assert body["organism_samples"] == {
        "HOMO_SAPIENS": ["GSM11805", "GSM11810"],
        "MUS_MUSCULUS": ["GSM9101", "GSM9102", "GSM9103"],
    }
    assert body["worker_version"] is None  # not built yet


def test_details_after_a_build_name_the_worker_version(site: Site) -> None:
    dataset_id = _create(site.client, {"GSE781": ["GSM11805", "GSM11810"]})
    built = _build(site.client, dataset_id, site.token)
    assert built["state"] == "SUCCEEDED", built["error"]
    assert built["is_available"] is True and built["is_expired"] is False
    assert built["expires_on"] is not None and built["expires_on"] == built["expires_at"]
    detailed = site.client.get(f"/v1/dataset/{dataset_id}/", params={"details": True}).json()
    assert detailed["worker_version"] == "0.1.0"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("details=maybe", 422, "details: Input should be a valid boolean"),
        ("detail=true", 400, "unknown query parameter(s) detail"),
    ],
)
def test_bad_details_parameter(site: Site, query: str, status: int, message: str) -> None:
    dataset_id = _create(site.client, {"GSE9001": ["ALL"]})
    response = site.client.get(f"/v1/dataset/{dataset_id}/?{query}")
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_expired_files_answer_410_and_regenerate(site: Site) -> None:
    headers = {"API-KEY": site.token}
    dataset_id = _create(site.short_client, {"GSE781": ["ALL"]})
    built = _build(site.short_client, dataset_id, site.token)
    assert built["state"] == "SUCCEEDED", built["error"]
    first_file = Path(_row(site, dataset_id).files[0]["path"])
    assert first_file.is_file()
    time.sleep(SHORT_LIFETIME_SECONDS + 0.2)  # past the short lifetime

    # Overdue before any sweep: refused on time, and said so.
    status = site.client.get(f"/v1/dataset/{dataset_id}/", headers=headers).json()
    assert status["state"] == "SUCCEEDED" and status["is_expired"] is True
    assert status["is_available"] is False and status["download_url"] is None
    assert all(f["download_url"] is None for f in status["files"])
    gone = site.client.get(f"/v1/dataset/{dataset_id}/download", headers=headers)
    assert gone.status_code == 410, gone.text
    assert gone.json()["status"] == 410
    assert f"dataset {dataset_id} expired on " in gone.json()["error"]
    assert f"POST /v1/dataset/{dataset_id}/regenerate" in gone.json()["error"]

    # Any finished dataset job sweeps overdue datasets: the file is removed, the state says EXPIRED.
    other = _build(site.client, _create(site.client, {"GSE781": ["GSM11805", "GSM11810"]}), site.token)
    assert other["state"] == "SUCCEEDED", other["error"]
    assert not first_file.exists()
    swept = site.client.get(f"/v1/dataset/{dataset_id}/").json()
    assert swept["state"] == "EXPIRED" and swept["is_processed"] is True and swept["is_expired"] is True
    assert site.client.get(f"/v1/dataset/{dataset_id}/download", headers=headers).status_code == 410

    refused = site.client.post(f"/v1/dataset/{dataset_id}/regenerate")
    assert refused.status_code == 403
    regenerated = site.client.post(f"/v1/dataset/{dataset_id}/regenerate", headers=headers)
    assert regenerated.status_code == 200, regenerated.text
    assert regenerated.json()["id"] == dataset_id
    assert regenerated.json()["state"] == "QUEUED" and regenerated.json()["files"] == []
    rebuilt = site.client.get(f"/v1/dataset/{dataset_id}/", headers=headers).json()
    assert rebuilt["state"] == "SUCCEEDED", rebuilt["error"]
    assert rebuilt["is_available"] is True and rebuilt["data"] == {"GSE781": ["ALL"]}
    archive = site.client.get(rebuilt["download_url"], headers=headers)
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert any(name.endswith(".tsv") for name in names)
    assert rebuilt["summary"]["num_samples"] == 34


def test_regenerate_refuses_what_has_not_expired(site: Site) -> None:
    headers = {"API-KEY": site.token}
    fresh = _create(site.client, {"GSE781": ["GSM11805", "GSM11810"]})
    created = site.client.post(f"/v1/dataset/{fresh}/regenerate", headers=headers)
    assert created.status_code == 400
    assert "is CREATED, not expired" in created.json()["error"]
    built = _build(site.client, fresh, site.token)
    assert built["state"] == "SUCCEEDED", built["error"]
    available = site.client.post(f"/v1/dataset/{fresh}/regenerate", headers=headers)
    assert available.status_code == 400
    assert "has not expired: its files can be downloaded until" in available.json()["error"]
    missing = site.client.post(f"/v1/dataset/{uuid.uuid4()}/regenerate", headers=headers)
    assert missing.status_code == 404
    malformed = site.client.post("/v1/dataset/not-a-uuid/regenerate", headers=headers)
    assert malformed.status_code == 422


def test_sweep_with_a_later_clock(site: Site) -> None:
    dataset_id = _create(site.client, {"GSE781": ["GSM11805", "GSM11810"]})
    built = _build(site.client, dataset_id, site.token)
    assert built["state"] == "SUCCEEDED", built["error"]
    with site.db.session() as session:
        row = get_dataset(session, dataset_id)
        assert row.expires_at is not None and row.finished_at is not None
        lifetime = row.expires_at - row.finished_at
        assert abs(lifetime.total_seconds() - 7 * 86400) < 1  # Settings.dataset_lifetime_days default
        assert dataset_id not in expire_datasets(session, now=row.expires_at - lifetime / 2)
        assert dataset_id in expire_datasets(session, now=row.expires_at)
    assert _row(site, dataset_id).state == DatasetState.EXPIRED
