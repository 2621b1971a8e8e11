"""Dependencies shared by the API routes and the web pages (``Annotated`` aliases).

* ``SessionDep``: one database session per request, committed when the handler returns normally
  and before the response is sent (``scope="function"``), rolled back on error.
* ``SettingsDep``: the Settings ``create_app`` was built with; ``SearchCacheDep`` its search cache.
* ``TokenDep``: the activated token named by the ``API-KEY`` header, or None;
  ``ActivatedTokenDep`` refuses the request (403) without one.
* ``LimitDep`` / ``OffsetDep``: refine.bio's pagination (default 25, at most 1000).
* ``reject_unknown_params``: a router dependency answering 400 to query parameters the route does
  not declare (refine.bio's ``InvalidFilters``), so a typo never silently returns everything.

Dependencies that do no I/O are ``async def``: FastAPI runs sync dependencies in a thread pool,
and the hop costs more than the work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.errors import InputError
from genemill.store.db import Database
from genemill.store.search import SearchCache
from genemill.store.search_models import ApiToken
from genemill.store.tokens import find_activated_token

__all__ = [
    "ActivatedTokenDep",
    "LimitDep",
    "OffsetDep",
    "SearchCacheDep",
    "SessionDep",
    "SettingsDep",
    "TokenDep",
    "get_session",
    "page",
    "reject_unknown_params",
    "token_required_message",
]

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session on the app's database for the duration of the handler."""
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


async def get_search_cache(request: Request) -> SearchCache:
    """The app's search-result cache."""
    cache: SearchCache = request.app.state.search_cache
    return cache


async def get_settings(request: Request) -> Settings:
    """The Settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_token(
    session: Annotated[Session, Depends(get_session, scope="function")],
    api_key: Annotated[str | None, Header(alias="API-KEY")] = None,
) -> ApiToken | None:
    """The activated token named by the ``API-KEY`` header, if any."""
    return find_activated_token(session, api_key)


def token_required_message() -> str:
    """What a 403 for a missing or inactive token says."""
    return (
        "this needs an activated API token in the API-KEY header: create one with POST /v1/token/, "
        'then accept the terms of use with PUT /v1/token/{id}/ {"is_activated": true}'
    )


async def require_token(token: Annotated[ApiToken | None, Depends(get_token)]) -> ApiToken:
    """Refuse the request (403) unless an activated token was sent."""
    if token is None:
        raise HTTPException(status_code=403, detail=token_required_message())
    return token


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SearchCacheDep = Annotated[SearchCache, Depends(get_search_cache)]
TokenDep = Annotated[ApiToken | None, Depends(get_token)]
ActivatedTokenDep = Annotated[ApiToken, Depends(require_token)]
LimitDep = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 1000).")]
OffsetDep = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Index of the first result.")]


def _declared_query_names(dependant: Any) -> set[str]:
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(param.alias for param in current.query_params)
        stack.extend(current.dependencies)
    return names


_DECLARED: dict[int, frozenset[str]] = {}


async def reject_unknown_params(request: Request) -> None:
    """InputError (400) naming query parameters the matched route does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _DECLARED.get(id(route))
    if allowed is None:
        allowed = _DECLARED.setdefault(id(route), frozenset(_declared_query_names(dependant)))
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        msg = f"unknown query parameter(s) {', '.join(unknown)}; this endpoint accepts: {accepted}"
        raise InputError(msg)


def page(request: Request, results: list[Any], *, count: int, limit: int, offset: int) -> dict[str, Any]:
    """A limit/offset page as the API returns it: ``count``, ``next``, ``previous``, ``results``."""
    following, preceding = _page_links(request, count=count, limit=limit, offset=offset)
    return {"count": count, "next": following, "previous": preceding, "results": results}


def _page_links(request: Request, *, count: int, limit: int, offset: int) -> tuple[str | None, str | None]:
    """Absolute ``next`` and ``previous`` URLs for a limit/offset page (None at the ends)."""
    url = request.url
    following = (
        url.include_query_params(limit=limit, offset=offset + limit) if offset + limit < count else None
    )
    preceding = None
    if offset > 0:
        back = max(offset - limit, 0)
        preceding = url.include_query_params(limit=limit, offset=back)
    return (str(following) if following else None, str(preceding) if preceding else None)
