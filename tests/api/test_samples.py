"""/v1/samples/: filters (experiment, organism, platform, harmonized fields, state, text) and provenance."""

from __future__ import annotations

import re

import pytest


def _codes(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["accession_code"] for r in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"experiment_accession_code": "GSE9002"}, ["GSM9101", "GSM9102", "GSM9103"]),
        ({"experiment_accession_code": "E-GEOD-9002"}, ["GSM9101", "GSM9102", "GSM9103"]),
        ({"experiment_accession_code": "GSE9001", "sex": "FEMALE"}, ["GSM9001", "GSM9002"]),
        ({"experiment_accession_code": "GSE9001", "age": "55"}, ["GSM9005"]),
        ({"experiment_accession_code": "GSE9001", "is_processed": "false"}, ["GSM9005", "GSM9006"]),
        ({"filter_by": "tumour", "ordering": "accession_code"}, ["GSM9001", "GSM9003", "GSM9005"]),
        ({"organism": "MUS_MUSCULUS", "platform": "gpl1261"}, ["GSM9101", "GSM9102", "GSM9103"]),
        ({"technology": "RNA-SEQ", "limit": 2}, ["GSM9201", "GSM9202"]),
        ({"accession_codes": "GSM9003,GSM9201"}, ["GSM9003", "GSM9201"]),
        ({"experiment_accession_code": "GSE0"}, []),
    ],
    ids=["experiment", "alternate", "sex", "age", "unprocessed", "text", "organism-platform", "technology",
         "accessions", "unknown-experiment"],
)  # fmt: skip
def test_filters(catalog_client, params: dict[str, str], expected: list[str]) -> None:
    params = {"ordering": "accession_code", **params}
    assert _codes(catalog_client.get("/v1/samples/", params=params)) == expected


def test_default_ordering_puts_processed_samples_first(catalog_client) -> None:
    results = catalog_client.get("/v1/samples/", params={"experiment_accession_code": "GSE9001"}).json()
    flags = [r["is_processed"] for r in results["results"]]
    assert flags == sorted(flags, reverse=True)


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"ordering": "colour"}, 422, r"ordering: String should match pattern"),
        ({"technology": "PCR"}, 422, r"technology: Input should be 'MICROARRAY', 'RNA-SEQ' or 'UNKNOWN'"),
        ({"age": "old"}, 422, r"age: Input should be a valid number"),
        ({"colour": "red"}, 400, r"unknown query parameter\(s\) colour"),
    ],
    ids=["ordering", "technology", "age", "unknown"],
)
def test_bad_parameters_are_4xx(catalog_client, params: dict[str, str], status: int, message: str) -> None:
    response = catalog_client.get("/v1/samples/", params=params)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert re.search(message, response.json()["error"])


def test_sample_detail_carries_processing_provenance(gse781_client) -> None:
    body = gse781_client.get("/v1/samples/GSM11805/").json()
    assert body["experiment_accession_codes"] == ["GSE781"]
    assert body["is_processed"] is True
    assert body["platform_accession_code"] == "GPL96"
    result = body["results"][0]
    assert result["processor"]["name"] == "submitter"
    assert result["processor"]["version"]
    assert len(result["input_sha256"]) >= 1 and all(len(h) == 64 for h in result["input_sha256"])
    assert len(result["output_sha256"]) == 64
    assert {f["kind"] for f in result["files"]} >= {"expression"}
    assert body["original_files"][0]["filename"] == "GSM11805.CEL.gz"
    assert body["annotations"]["fields"]["Sample_source_name_ch1"]
    assert body["sex"] == "female"


def test_unknown_sample_is_404(gse781_client) -> None:
    response = gse781_client.get("/v1/samples/GSM0/")
    assert response.status_code == 404
    assert response.json()["error"] == "no sample 'GSM0' in this genemill database"
