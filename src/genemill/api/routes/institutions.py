"""``/v1/institutions/``: distinct submitter institutions with their experiment counts (paged)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import InstitutionOut, Page
from genemill.store.institutions import list_institutions

__all__ = ["router"]

router = APIRouter(prefix="/institutions", tags=["institutions"])


@router.get("", response_model=Page[InstitutionOut])
def institutions(
    request: Request, session: SessionDep, limit: LimitDep = 25, offset: OffsetDep = 0
) -> dict[str, Any]:
    """Submitter institutions, most experiments first (search them with ``submitter_institution``)."""
    count, rows = list_institutions(session, limit=limit, offset=offset)
    return page(request, rows, count=count, limit=limit, offset=offset)
