"""API tokens: create, look up, activate (accept the terms of use).

A token's key is a random UUID4 string given once to its creator; only its sha256 is stored, so a
leaked database does not leak usable keys. Downloads need an *activated* token.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from genemill.errors import InputError, NotFoundError
from genemill.store.models import utcnow
from genemill.store.search_models import ApiToken

__all__ = ["TERMS_AND_CONDITIONS", "activate_token", "create_token", "find_activated_token", "get_token"]

TERMS_AND_CONDITIONS = (
    "genemill serves data derived from public archives (GEO, ArrayExpress, SRA/ENA). By activating this "
    "token you agree to use the data under the terms of those archives and of the original submitters, "
    "to cite the original studies and the processing software listed with every dataset, and to accept "
    "that the data are provided as is, without warranty of any kind."
)


def _digest(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def _check_key(key: str) -> str:
    try:
        return str(uuid.UUID(key.strip()))
    except ValueError:
        msg = f"token: expected a UUID such as 0f8c1d3e-…, found {key[:60]!r}"
        raise InputError(msg) from None


def create_token(session: Session) -> tuple[str, ApiToken]:
    """A new, not yet activated token; returns the key (shown once) and the row."""
    key = str(uuid.uuid4())
    token = ApiToken(key_sha256=_digest(key), is_activated=False)
    session.add(token)
    session.flush()
    return key, token


def get_token(session: Session, key: str) -> ApiToken:
    """The token with this key; InputError when malformed, NotFoundError when unknown."""
    token = session.scalar(select(ApiToken).where(ApiToken.key_sha256 == _digest(_check_key(key))))
    if token is None:
        msg = f"no token {key!r}; create one with POST /v1/token/"
        raise NotFoundError(msg)
    return token


def activate_token(session: Session, key: str, *, activated: bool) -> ApiToken:
    """Set whether the terms of use are accepted for this token."""
    token = get_token(session, key)
    token.is_activated = activated
    token.activated_at = utcnow() if activated else None
    session.flush()
    return token


def find_activated_token(session: Session, key: str | None) -> ApiToken | None:
    """The activated token with this key, or None (missing, malformed, unknown or not activated)."""
    if not key:
        return None
    try:
        canonical = str(uuid.UUID(key.strip()))
    except ValueError:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.key_sha256 == _digest(canonical)))
    return token if token is not None and token.is_activated else None
