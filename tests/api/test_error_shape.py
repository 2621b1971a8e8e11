"""Every error path answers ``{"ok": false, "error", "errors", "status"}`` (JSON) or error.html (pages).

The status table lives in server.py; this file pins it, datasette-style.
"""

from __future__ import annotations

import pytest

from genemill.errors import (
    AccessionError,
    DatasetSpecError,
    GenemillError,
    NotFoundError,
    ProcessingError,
    SourceError,
    StoreError,
    ToolError,
)
from genemill.server import RateLimit, create_app, error_body, status_for

BAD_REQUESTS = [
    ("get", "/v1/search/?limit=0", 422),
    ("get", "/v1/search/?limit=1001", 422),
    ("get", "/v1/search/?offset=-1", 422),
    ("get", "/v1/search/?offset=99999999999999999999", 422),
    ("get", "/v1/search/?has_publication=maybe", 422),
    ("get", "/v1/search/?num_downloadable_samples__gt=x", 422),
    ("get", "/v1/search/?ordering=-colour", 422),
    ("get", "/v1/search/?unknown=1", 400),
    ("get", "/v1/search/?organism=%00", 400),
    ("get", "/v1/experiments/GSE%00/", 400),
    ("get", "/v1/experiments/?limit=abc", 422),
    ("get", "/v1/experiments/GSE0/", 404),
    ("get", "/v1/samples/?ordering=zzz", 422),
    ("get", "/v1/samples/GSM0/", 404),
    ("get", "/v1/organisms/Martian/", 404),
    ("get", "/v1/organisms/?limit=-5", 422),
    ("get", "/v1/token/xyz/", 422),
    ("post", "/v1/token/?x=1", 400),
    ("get", "/v1/nowhere/", 404),
    ("delete", "/v1/experiments/GSE9001/", 405),
    ("post", "/v1/search/", 422),
]


def test_nul_in_a_json_body_is_400(catalog_client) -> None:
    response = catalog_client.post("/v1/search/", json={"search": "kid\u0000ney"})
    assert response.status_code == 400
    assert "NUL character" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"), BAD_REQUESTS, ids=[f"{m} {p}" for m, p, _ in BAD_REQUESTS]
)
def test_json_error_shape(catalog_client, method: str, path: str, status: int) -> None:
    response = catalog_client.request(method.upper(), path)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"ok", "error", "errors", "status"}
    assert body["ok"] is False
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["errors"] and all(isinstance(e, str) for e in body["errors"])


def test_validation_errors_name_the_parameter(catalog_client) -> None:
    body = catalog_client.get("/v1/search/?limit=0&offset=-1").json()
    assert body["errors"] == [
        "limit: Input should be greater than or equal to 1 (found '0')",
        "offset: Input should be greater than or equal to 0 (found '-1')",
    ]
    assert body["error"] == "; ".join(body["errors"])


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/experiments/GSE0", 404, "no experiment &#39;GSE0&#39;"),
        ("/samples/GSM0", 404, "no sample"),
        ("/no/such/page", 404, "no page or endpoint at /no/such/page"),
        ("/search?limit=1000000", 422, "limit: Input should be less than or equal to 100"),
        ("/experiments/GSE9001/pca.svg?color_by=shoe_size", 400, "color_by: expected platform"),
    ],
)
def test_pages_get_the_error_page_with_the_same_status(
    catalog_client, path: str, status: int, text: str
) -> None:
    response = catalog_client.get(path, headers={"accept": "text/html"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f'<p class="error-status">{status}</p>' in response.text
    assert text in response.text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AccessionError("x"), 400),
        (DatasetSpecError("x"), 400),
        (NotFoundError("x"), 404),
        (SourceError("x"), 502),
        (ProcessingError("x"), 422),
        (ToolError("x", returncode=1), 422),
        (StoreError("x"), 500),
        (GenemillError("x"), 500),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_status_table(error: GenemillError, status: int) -> None:
    assert status_for(error) == status
    assert error_body("x", status) == {"ok": False, "error": "x", "errors": ["x"], "status": status}


def _app_raising(settings, error: Exception):
    app = create_app(settings, rate_limit=None)

    @app.get("/v1/boom")
    def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            SourceError("GEO answered 503 for GSE1 after 3 attempts"),
            502,
            "GEO answered 503 for GSE1 after 3 attempts",
        ),
        (RuntimeError("bug"), 500, "internal error (RuntimeError); see the server log"),
    ],
    ids=["source", "unexpected"],
)
def test_server_side_errors(sqlite_settings, client_for, error: Exception, status: int, message: str) -> None:
    with client_for(_app_raising(sqlite_settings, error), raise_server_exceptions=False) as client:
        response = client.get("/v1/boom")
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": message, "errors": [message], "status": status}


def test_rate_limit_answers_429_in_the_canonical_shape(sqlite_settings, sqlite_db, client_for) -> None:
    app = create_app(sqlite_settings, db=sqlite_db, rate_limit=RateLimit(per_second=0.001, burst=3))
    client = client_for(app)
    statuses = [client.get("/v1/stats/").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    limited = client.get("/v1/stats/")
    assert limited.headers["retry-after"] == "1"
    body = limited.json()
    assert body["status"] == 429 and body["ok"] is False
    assert "too many requests from testclient" in body["error"]
    assert client.get("/static/genemill.css").status_code == 200  # static files are not limited
    page = client.get("/search", headers={"accept": "text/html"})
    assert page.status_code == 429 and "Too many requests" in page.text
