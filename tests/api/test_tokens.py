"""/v1/token/: create (not activated), read, activate by accepting the terms; key checks."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from genemill.store.search_models import ApiToken
from genemill.store.tokens import find_activated_token


def test_create_read_activate(client, db) -> None:
    created = client.post("/v1/token/")
    assert created.status_code == 201
    token = created.json()
    assert token["is_activated"] is False
    assert "terms" in token["terms_and_conditions"]
    key = token["id"]
    assert uuid.UUID(key)
    assert client.get(f"/v1/token/{key}/").json()["is_activated"] is False
    activated = client.put(f"/v1/token/{key}/", json={"is_activated": True})
    assert activated.status_code == 200
    assert activated.json()["is_activated"] is True
    assert client.get(f"/v1/token/{key}").json()["is_activated"] is True
    with db.session() as session:
        stored = session.scalars(select(ApiToken)).one()
        assert stored.key_sha256 != key  # only the hash is kept
        assert find_activated_token(session, key) is not None
        assert find_activated_token(session, str(uuid.uuid4())) is None
        assert find_activated_token(session, "not-a-key") is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("get", "/v1/token/not-a-uuid/", None, 422, "token_id: Input should be a valid UUID"),
        ("get", f"/v1/token/{uuid.UUID(int=1)}/", None, 404, "no token"),
        ("put", f"/v1/token/{uuid.UUID(int=1)}/", {"is_activated": True}, 404, "no token"),
        ("put", f"/v1/token/{uuid.UUID(int=1)}/", {"activated": True}, 422, "is_activated: Field required"),
        (
            "put",
            f"/v1/token/{uuid.UUID(int=1)}/",
            {"is_activated": "perhaps"},
            422,
            "is_activated: Input should",
        ),
    ],
    ids=["malformed", "unknown", "unknown-put", "missing-field", "not-bool"],
)
def test_token_errors(client, method: str, path: str, body, status: int, message: str) -> None:
    response = client.request(method.upper(), path, json=body)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert message in response.json()["error"]
