"""``/v1/processors/``: the processor names and versions behind stored results.

A processor's id is ``NAME@VERSION`` (``/v1/processors/submitter@0.1.0/``); a malformed id
is a 422 (the path pattern), an unknown one a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import Page, ProcessorDetailOut, ProcessorVersionOut
from genemill.store import listings
from genemill.store.processors import get_processor, processor_id

__all__ = ["router"]

router = APIRouter(prefix="/processors", tags=["processors"])


@router.get("", response_model=Page[ProcessorVersionOut])
def list_processors(
    request: Request, session: SessionDep, limit: LimitDep = 25, offset: OffsetDep = 0
) -> dict[str, Any]:
    """Distinct (processor, version) pairs with how many results each produced."""
    count, rows = listings.list_processors(session, limit=limit, offset=offset)
    results = [{**row, "id": processor_id(row["name"], row["version"])} for row in rows]
    return page(request, results, count=count, limit=limit, offset=offset)


@router.get("/{processor}", response_model=ProcessorDetailOut)
def processor_detail(
    processor: Annotated[
        str, Path(max_length=200, pattern=r"^[^@]+@.+$", description="NAME@VERSION, e.g. submitter@0.1.0")
    ],
    session: SessionDep,
) -> dict[str, Any]:
    """One processor version: results, samples and experiments it produced, its latest parameters."""
    return get_processor(session, processor)
