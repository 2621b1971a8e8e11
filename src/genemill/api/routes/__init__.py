"""JSON routes under ``/v1/``: one module per resource, each a thin shell over ``genemill.store``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from genemill.api.deps import reject_unknown_params
from genemill.api.routes import (
    datasets,
    experiments,
    institutions,
    organisms,
    platforms,
    processors,
    qn_targets,
    samples,
    search,
    stats,
    tokens,
)
from genemill.api.schemas import ErrorOut

__all__ = ["build_router"]

_ERRORS = {
    400: "Bad parameter (unknown query parameter, bad ordering, malformed accession…)",
    403: "An activated API token is required (API-KEY header)",
    404: "No such experiment, sample, organism, processor, token or dataset",
    422: "Parameter or body validation failed",
    429: "Too many requests from this client",
}


def build_router() -> APIRouter:
    """All ``/v1/`` routes, refusing undeclared query parameters."""
    errors: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorOut, "description": description} for status, description in _ERRORS.items()
    }
    router = APIRouter(prefix="/v1", dependencies=[Depends(reject_unknown_params)], responses=errors)
    modules = (
        search,
        experiments,
        samples,
        organisms,
        platforms,
        processors,
        institutions,
        tokens,
        stats,
        datasets,
        qn_targets,
    )
    for module in modules:
        router.include_router(module.router)
    router.include_router(stats.about_router)
    return router
