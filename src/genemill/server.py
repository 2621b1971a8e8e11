"""The web application: ``create_app(settings)`` joins the JSON API, the HTML pages and /static.

This is the one place errors become HTTP responses. Status table (first match wins):

=====================  ======  ===================================================================
error                  status  why
=====================  ======  ===================================================================
NotFoundError           404    no such experiment / sample / token / dataset
InputError              400    bad parameter or request (AccessionError, DatasetSpecError, …)
SourceError             502    a remote archive failed us
ProcessingError         422    the request was valid but its data cannot be processed (not retried)
StoreError              500    database or file-store integrity
other GenemillError     500
request validation      422    FastAPI's parameter/body validation
HTTPException           its own (404 unknown path, 405, 403 missing API token)
rate limited            429    per-client token bucket
anything else           500    logged with its traceback
=====================  ======  ===================================================================

JSON requests (paths under ``/v1``) get ``{"ok": false, "error", "errors", "status"}``; pages get
``error.html`` with the same status and message.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from genemill import __version__
from genemill.api.routes import build_router as build_api_router
from genemill.config import Settings
from genemill.errors import (
    GenemillError,
    InputError,
    NotFoundError,
    ProcessingError,
    SourceError,
    StoreError,
)
from genemill.store.db import Database
from genemill.store.search import SearchCache
from genemill.store.search_engine import SearchEngine
from genemill.web.pages import STATIC_DIR, render_error
from genemill.web.pages import build_router as build_web_router

__all__ = ["RateLimit", "create_app", "error_body", "status_for"]

logger = logging.getLogger("genemill.server")

_STATUS: list[tuple[type[GenemillError], int]] = [
    (NotFoundError, 404),
    (InputError, 400),
    (SourceError, 502),
    (ProcessingError, 422),
    (StoreError, 500),
    (GenemillError, 500),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def status_for(exc: GenemillError) -> int:
    """The HTTP status of a genemill error (the table above)."""
    return next(code for cls, code in _STATUS if isinstance(exc, cls))


def error_body(message: str, status: int, *, errors: list[str] | None = None) -> dict[str, Any]:
    """The canonical error JSON."""
    return {
        "ok": False,
        "error": message,
        "errors": errors if errors is not None else [message],
        "status": status,
    }


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path == "/v1" or path.startswith("/v1/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _respond(request: Request, message: str, status: int, *, errors: list[str] | None = None) -> Response:
    headers = {"Retry-After": "1"} if status == 429 else None
    if _wants_json(request):
        return JSONResponse(error_body(message, status, errors=errors), status_code=status, headers=headers)
    return render_error(request, message=message, status=status, errors=errors or [message])


async def _genemill_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GenemillError)
    return _respond(request, str(exc), status_for(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path", "header"))
        errors.append(f"{where or 'request'}: {err.get('msg', 'invalid')} (found {err.get('input')!r})")
    return _respond(request, "; ".join(errors) or "invalid request", 422, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail) if exc.detail else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no page or endpoint at {request.url.path}"
    return _respond(request, message, exc.status_code)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(request, f"internal error ({type(exc).__name__}); see the server log", 500)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per client address: ``per_second`` refill, ``burst`` capacity."""

    per_second: float = 10.0
    burst: int = 40


class _RateLimiter:
    """ASGI middleware answering 429 (canonical shape) when a client's bucket is empty."""

    def __init__(self, app: ASGIApp, limit: RateLimit) -> None:
        self.app = app
        self.limit = limit
        self.buckets: dict[str, tuple[float, float]] = {}

    def _allow(self, client: str) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.per_second)
        if len(self.buckets) > 10_000:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            return False
        self.buckets[client] = (tokens - 1.0, now)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self._allow(client):
            await self.app(scope, receive, send)
            return
        wait = math.ceil(1.0 / self.limit.per_second)
        rate = f"{self.limit.per_second:g}"
        message = f"too many requests from {client}: at most {rate} per second; retry in {wait} s"
        response = _respond(Request(scope), message, 429)
        await response(scope, receive, send)


class _RejectNul:
    """ASGI middleware: a NUL character in the path or query string is a 400 (PostgreSQL cannot store it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")):
            message = (
                "the request path or query string contains a NUL character (%00), which no field can hold"
            )
            response = _respond(Request(scope), message, 400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _TrailingSlash:
    """ASGI middleware: ``/v1/experiments/GSE781/`` (refine.bio's form) routes like the bare path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
        await self.app(scope, receive, send)


def _dataset_runner(settings: Settings, db: Database) -> Callable[[str], None]:
    """Run the queued dataset jobs in this process (after the response that queued one).

    Routes queue a ``JobKind.DATASET`` job when a dataset is started, so a separate
    ``genemill run`` worker can build it too; job claiming makes sure only one of them does.
    """

    def run(dataset_id: str) -> None:
        from genemill.pipeline.executors import InlineExecutor
        from genemill.pipeline.jobs import JobKind, run_jobs

        try:
            run_jobs(settings, db, executor=InlineExecutor(), kinds=[JobKind.DATASET.value])
        except Exception:  # the job and dataset rows hold the outcome; the log gets the traceback
            logger.exception("running queued dataset jobs (after starting %s) failed", dataset_id)

    return run


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    rate_limit: RateLimit | None = RateLimit(),
    search_cache: SearchCache | None = None,
) -> FastAPI:
    """Build the application: ``/v1`` JSON API, HTML pages, ``/static``.

    ``rate_limit=None`` disables rate limiting; ``search_cache`` defaults to a 512-entry, 60 s cache
    keyed by the search index generation (``SearchCache(size=0)`` disables it) whose misses run on
    the in-memory search index (SQLite), loaded in a background thread from here on.
    """
    app = FastAPI(
        title="genemill",
        version=__version__,
        description="Public gene-expression experiments as validated, comparable gene-level data.",
        openapi_url="/v1/schema",
        docs_url="/v1/swagger",
        redoc_url="/v1",
    )
    app.state.settings = settings
    app.state.db = db if db is not None else Database(settings.resolved_database_url)
    app.state.dataset_runner = _dataset_runner(settings, app.state.db)
    app.state.search_cache = search_cache if search_cache is not None else SearchCache(engine=SearchEngine())
    if app.state.search_cache.engine is not None:
        app.state.search_cache.engine.start_loading(app.state.db.engine)
    app.add_exception_handler(GenemillError, _genemill_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(build_api_router())
    app.include_router(build_web_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(_RejectNul)
    if rate_limit is not None:
        app.add_middleware(_RateLimiter, limit=rate_limit)
    app.add_middleware(_TrailingSlash)
    return app
