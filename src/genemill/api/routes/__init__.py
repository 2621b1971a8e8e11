"""JSON routes under ``/v1/``: one module per resource, each a thin shell over ``genemill.store``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from genemill.api.deps import reject_unknown_params
from genemill.api.routes import experiments, organisms, platforms, processors, samples, search, stats, tokens

__all__ = ["build_router"]


def build_router() -> APIRouter:
    """All ``/v1/`` routes, refusing undeclared query parameters."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(reject_unknown_params)])
    for module in (search, experiments, samples, organisms, platforms, processors, tokens, stats):
        router.include_router(module.router)
    return router
