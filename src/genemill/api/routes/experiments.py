"""``/v1/experiments/``: list (search filters, no facets) and detail with samples."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from genemill.api.deps import LimitDep, OffsetDep, SearchCacheDep, SessionDep, page
from genemill.api.responses import json_response
from genemill.api.routes.search import Ordering, SearchFilters
from genemill.api.schemas import ExperimentOut, ExperimentSummary, Page
from genemill.store import catalog

__all__ = ["router"]

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.get("", response_model=Page[ExperimentSummary])
def list_experiments(
    request: Request,
    session: SessionDep,
    cache: SearchCacheDep,
    filters: SearchFilters,
    limit: LimitDep = 25,
    offset: OffsetDep = 0,
    ordering: Ordering = "accession_code",
) -> dict[str, Any]:
    """Experiments in the catalog, filtered like ``/v1/search/`` (without free text or facets)."""
    result = cache.search(session, filters.query(ordering=ordering, limit=limit, offset=offset))
    return page(request, result.results, count=result.count, limit=limit, offset=offset)


@router.get("/{accession}", response_model=ExperimentOut)
async def get_experiment(accession: str, session: SessionDep) -> Response:
    """One experiment by accession or alternate accession (e.g. ``GSE781`` or ``E-GEOD-781``)."""
    # Serialized once (the dict has exactly ExperimentOut's fields; tests compare both forms).
    return json_response(catalog.experiment_detail(session, accession))
