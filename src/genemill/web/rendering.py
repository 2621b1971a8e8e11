"""Rendering: the Jinja template set, the error page, and the cart shown in every page's header."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from genemill.api.dataset_requests import EDITABLE, cart_summary
from genemill.datasets import get_dataset
from genemill.errors import NotFoundError
from genemill.store.db import Database
from genemill.web import filters

__all__ = [
    "CART_COOKIE",
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "TOKEN_COOKIE",
    "cart_state",
    "render",
    "render_error",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
CART_COOKIE = "genemill_cart"
TOKEN_COOKIE = "genemill_token"


@cache
def templates() -> Jinja2Templates:
    """The template set with genemill's filters (built on first use, not at import)."""
    env = Jinja2Templates(directory=TEMPLATES_DIR)
    filters.register(env.env)
    return env


def cart_state(request: Request, session: Any) -> dict[str, Any] | None:
    """The cart named by the cookie (request data and counts), or None when there is no editable one."""
    dataset_id = request.cookies.get(CART_COOKIE)
    if not dataset_id:
        return None
    try:
        dataset = get_dataset(session, dataset_id)
    except NotFoundError:
        return None
    if dataset.state not in EDITABLE:
        return None
    return {"id": dataset.id, "data": dataset.spec.get("data", {}), **cart_summary(session, dataset)}


def _header_cart(request: Request) -> dict[str, Any] | None:
    if not request.cookies.get(CART_COOKIE):
        return None
    db: Database = request.app.state.db
    with db.session() as session:
        return cart_state(request, session)


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """Render a template with the request and the header cart in its context."""
    if "cart" not in context:
        context = {**context, "cart": _header_cart(request)}
    return templates().TemplateResponse(request, name, context, status_code=status)


def render_error(request: Request, *, message: str, status: int, errors: list[str]) -> HTMLResponse:
    """The error page: same status and message as the JSON error shape (no database access)."""
    context = {"message": message, "status": status, "errors": errors, "cart": None}
    return render(request, "error.html", context, status=status)
