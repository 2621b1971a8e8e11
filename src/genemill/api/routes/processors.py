"""``/v1/processors/``: the processor names and versions behind stored results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page_links
from genemill.api.schemas import Page, ProcessorVersionOut
from genemill.store import listings

__all__ = ["router"]

router = APIRouter(prefix="/processors", tags=["processors"])


@router.get("", response_model=Page[ProcessorVersionOut])
def list_processors(
    request: Request, session: SessionDep, limit: LimitDep = 25, offset: OffsetDep = 0
) -> dict[str, Any]:
    """Distinct (processor, version) pairs with how many results each produced."""
    count, rows = listings.list_processors(session, limit=limit, offset=offset)
    following, preceding = page_links(request, count=count, limit=limit, offset=offset)
    return {"count": count, "next": following, "previous": preceding, "results": rows}
