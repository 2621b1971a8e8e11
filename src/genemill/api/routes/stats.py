"""``/v1/stats/``: catalog numbers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from genemill.api.deps import SessionDep
from genemill.api.schemas import StatsOut
from genemill.store.stats import catalog_stats

__all__ = ["router"]

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("", response_model=StatsOut)
def stats(session: SessionDep) -> dict[str, Any]:
    """Experiments, samples by state and technology, organisms, jobs and processors."""
    return catalog_stats(session)
