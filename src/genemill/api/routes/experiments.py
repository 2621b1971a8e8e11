"""``/v1/experiments/``: list (search filters, no facets) and detail with samples."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page_links
from genemill.api.routes.search import Ordering, SearchFilters
from genemill.api.schemas import ExperimentOut, ExperimentSummary, Page
from genemill.store import catalog, queries
from genemill.store.search import search

__all__ = ["router"]

router = APIRouter(prefix="/experiments", tags=["experiments"])


@router.get("", response_model=Page[ExperimentSummary])
def list_experiments(
    request: Request,
    session: SessionDep,
    filters: SearchFilters,
    limit: LimitDep = 25,
    offset: OffsetDep = 0,
    ordering: Ordering = "accession_code",
) -> dict[str, Any]:
    """Experiments in the catalog, filtered like ``/v1/search/`` (without free text or facets)."""
    result = search(session, filters.query(ordering=ordering, limit=limit, offset=offset))
    following, preceding = page_links(request, count=result.count, limit=limit, offset=offset)
    return {"count": result.count, "next": following, "previous": preceding, "results": result.results}


@router.get("/{accession}", response_model=ExperimentOut)
def get_experiment(accession: str, session: SessionDep) -> dict[str, Any]:
    """One experiment by accession or alternate accession (e.g. ``GSE781`` or ``E-GEOD-781``)."""
    experiment = catalog.get_experiment(session, accession)
    out = queries.experiment_dict(experiment)
    out["id"] = experiment.id
    out["protocol_description"] = experiment.protocol_description
    out["created_at"] = experiment.created_at.isoformat() if experiment.created_at else None
    out["last_modified"] = experiment.updated_at.isoformat() if experiment.updated_at else None
    return out
