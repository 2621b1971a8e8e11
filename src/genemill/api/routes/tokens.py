"""``/v1/token/``: create an API token, read it, accept the terms of use (activate it)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from genemill.api.deps import SessionDep
from genemill.api.schemas import TokenOut, TokenUpdate
from genemill.store.tokens import TERMS_AND_CONDITIONS, activate_token, create_token, get_token

__all__ = ["router"]

router = APIRouter(prefix="/token", tags=["tokens"])


def _out(key: str, *, activated: bool) -> dict[str, Any]:
    return {"id": key, "is_activated": activated, "terms_and_conditions": TERMS_AND_CONDITIONS}


@router.post("", response_model=TokenOut, status_code=201)
def create(session: SessionDep) -> dict[str, Any]:
    """A new token; send ``PUT /v1/token/{id}/ {"is_activated": true}`` to accept the terms."""
    key, token = create_token(session)
    return _out(key, activated=token.is_activated)


@router.get("/{token_id}", response_model=TokenOut)
def read(token_id: uuid.UUID, session: SessionDep) -> dict[str, Any]:
    """A token's state."""
    return _out(str(token_id), activated=get_token(session, str(token_id)).is_activated)


@router.put("/{token_id}", response_model=TokenOut)
def update(token_id: uuid.UUID, body: TokenUpdate, session: SessionDep) -> dict[str, Any]:
    """Accept (or withdraw) the terms of use for this token."""
    token = activate_token(session, str(token_id), activated=body.is_activated)
    return _out(str(token_id), activated=token.is_activated)
