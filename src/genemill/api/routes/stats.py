"""``/v1/stats/``, ``/v1/stats/failures/{kind}`` and ``/v1/stats-about/``: catalog numbers.

``kind`` is a job kind (survey, import, download, process, process-sample, dataset) or one of
refine.bio's names: ``downloader`` (download jobs) and ``processor`` (process and process-sample).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from genemill.api.deps import LimitDep, OffsetDep, SessionDep, page
from genemill.api.schemas import AboutStatsOut, JobFailureOut, Page, StatsOut
from genemill.datasets import dataset_counts
from genemill.pipeline.jobs import JobKind
from genemill.store.stats import about_stats, catalog_stats, failure_stats

__all__ = ["about_router", "router"]

router = APIRouter(prefix="/stats", tags=["stats"])
about_router = APIRouter(prefix="/stats-about", tags=["stats"])

FailureKind = enum.StrEnum(  # type: ignore[misc]
    "FailureKind", {k.name: k.value for k in JobKind} | {"DOWNLOADER": "downloader", "PROCESSOR": "processor"}
)
_ALIASES = {
    "downloader": (JobKind.DOWNLOAD.value,),
    "processor": (JobKind.PROCESS.value, JobKind.PROCESS_SAMPLE.value),
}


@router.get("", response_model=StatsOut)
def stats(session: SessionDep) -> dict[str, Any]:
    """Experiments, samples by state and technology, organisms, jobs and processors."""
    return catalog_stats(session)


@router.get("/failures/{kind}", response_model=Page[JobFailureOut])
def failures(
    kind: FailureKind,
    request: Request,
    session: SessionDep,
    range_: Annotated[
        Literal["day", "week", "month", "year"] | None,
        Query(alias="range", description="Only jobs that failed within the last day, week, month or year"),
    ] = None,
    limit: LimitDep = 25,
    offset: OffsetDep = 0,
) -> dict[str, Any]:
    """Failed jobs of a kind grouped by error, most frequent first."""
    kinds = _ALIASES.get(kind.value, (kind.value,))
    count, rows = failure_stats(session, kinds, within=range_, limit=limit, offset=offset)
    return page(request, rows, count=count, limit=limit, offset=offset)


@about_router.get("", response_model=AboutStatsOut)
def stats_about(session: SessionDep) -> dict[str, Any]:
    """What can be downloaded: processed samples per organism and technology, experiments, datasets."""
    return {**about_stats(session), "datasets": dataset_counts(session)}
