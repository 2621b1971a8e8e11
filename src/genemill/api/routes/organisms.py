"""``/v1/organisms/``: species in the catalog with sample counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import OrganismOut, Page
from genemill.store import listings

__all__ = ["router"]

router = APIRouter(prefix="/organisms", tags=["organisms"])


@router.get("", response_model=Page[OrganismOut])
def list_organisms(
    request: Request, session: SessionDep, limit: LimitDep = 25, offset: OffsetDep = 0
) -> dict[str, Any]:
    """Organisms by scientific name, with refine.bio's code (``HOMO_SAPIENS``)."""
    count, rows = listings.list_organisms(session, limit=limit, offset=offset)
    return page(request, rows, count=count, limit=limit, offset=offset)


@router.get("/{name}", response_model=OrganismOut)
def get_organism(name: str, session: SessionDep) -> dict[str, Any]:
    """One organism by scientific name or code."""
    return listings.get_organism(session, name)
