"""``/v1/platforms/``: array designs and sequencers with readable names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import Page, PlatformOut
from genemill.store import listings

__all__ = ["router"]

router = APIRouter(prefix="/platforms", tags=["platforms"])


@router.get("", response_model=Page[PlatformOut])
def list_platforms(
    request: Request, session: SessionDep, limit: LimitDep = 25, offset: OffsetDep = 0
) -> dict[str, Any]:
    """Platforms by accession with sample counts."""
    count, rows = listings.list_platforms(session, limit=limit, offset=offset)
    return page(request, rows, count=count, limit=limit, offset=offset)
