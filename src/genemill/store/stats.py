"""Catalog numbers for ``/v1/stats/``, ``/v1/stats-about/`` and ``/v1/stats/failures/{kind}``.

* ``catalog_stats``: experiments, samples by state and technology, organisms, jobs, processors;
* ``about_stats``: refine.bio's about-page numbers (``samples_available``, ``total_size_in_bytes``,
  ``supported_organisms``, ``experiments_processed``) plus processed samples per organism and
  technology;
* ``failure_stats``: failed jobs of some kinds grouped by error (refine.bio's
  ``/v1/stats/failures/{downloader,processor}``: ``reason``, ``job_count``), optionally only those
  that finished within a ``range`` (day, week, month, year).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.store.models import (
    Experiment,
    Job,
    JobState,
    Organism,
    OriginalFile,
    ProcessingResult,
    ProcessingState,
    Sample,
    utcnow,
)

__all__ = ["RANGES", "about_stats", "catalog_stats", "failure_stats"]

RANGES = {
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "month": dt.timedelta(days=30),
    "year": dt.timedelta(days=365),
}
REASON_LENGTH = 200  # failures are grouped on the first characters of the message, as refine.bio does (80)


def _grouped(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column))
    return {str(getattr(key, "value", key)): int(n) for key, n in rows if key is not None}


def catalog_stats(session: Session) -> dict[str, Any]:
    """Counts for ``/v1/stats/`` and the about page."""
    experiments = session.scalar(select(func.count()).select_from(Experiment)) or 0
    downloadable = (
        session.scalar(
            select(func.count()).select_from(Experiment).where(Experiment.num_downloadable_samples > 0)
        )
        or 0
    )
    states = _grouped(session, Sample.processing_state)
    organisms = session.execute(
        select(Organism.name, func.count(Sample.id))
        .join(Sample, Sample.organism_id == Organism.id)
        .group_by(Organism.name)
        .order_by(func.count(Sample.id).desc())
    )
    processors = select(ProcessingResult.processor, ProcessingResult.processor_version).distinct().subquery()
    return {
        "experiments": {"total": experiments, "with_downloadable_samples": downloadable},
        "samples": {
            "total": sum(states.values()),
            "processed": states.get(ProcessingState.PROCESSED.value, 0),
            "unprocessable": states.get(ProcessingState.UNPROCESSABLE.value, 0),
            **{state.lower(): n for state, n in states.items()},
        },
        "samples_by_technology": _grouped(session, Sample.technology),
        "organisms": {name: int(n) for name, n in organisms},
        "jobs": _grouped(session, Job.state),
        "processors": session.scalar(select(func.count()).select_from(processors)) or 0,
    }


def about_stats(session: Session) -> dict[str, Any]:
    """The about page's numbers: what can be downloaded, from how many organisms and experiments."""
    processed = Sample.processing_state == ProcessingState.PROCESSED
    by_organism = session.execute(
        select(Organism.name, func.count(Sample.id))
        .join(Sample, Sample.organism_id == Organism.id)
        .where(processed)
        .group_by(Organism.name)
        .order_by(func.count(Sample.id).desc(), Organism.name)
    )
    organisms = {name: int(n) for name, n in by_organism}
    technologies = session.execute(
        select(Sample.technology, func.count()).where(processed).group_by(Sample.technology)
    )
    experiments = select(func.count()).select_from(Experiment).where(Experiment.num_processed_samples > 0)
    return {
        "samples_available": sum(organisms.values()),
        "total_size_in_bytes": int(session.scalar(select(func.sum(OriginalFile.size_in_bytes))) or 0),
        "supported_organisms": len(organisms),
        "experiments_processed": session.scalar(experiments) or 0,
        "processed_samples_by_organism": organisms,
        "processed_samples_by_technology": {
            str(getattr(key, "value", key)): int(n) for key, n in technologies if key is not None
        },
    }


def failure_stats(
    session: Session,
    kinds: Sequence[str],
    *,
    within: str | None = None,
    limit: int = 25,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """Failed jobs of ``kinds`` grouped by error type and message start, most frequent first."""
    reason = func.substr(func.coalesce(Job.error, ""), 1, REASON_LENGTH)
    conditions = [Job.state == JobState.FAILED, Job.kind.in_(list(kinds))]
    if within is not None:
        conditions.append(Job.finished_at >= utcnow() - RANGES[within])
    groups = (
        select(
            Job.error_type.label("error_type"),
            reason.label("reason"),
            func.count(Job.id).label("job_count"),
            func.count(func.distinct(Job.target)).label("target_count"),
            func.max(Job.finished_at).label("last_failed"),
        )
        .where(*conditions)
        .group_by(Job.error_type, reason)
        .subquery()
    )
    total = session.scalar(select(func.count()).select_from(groups)) or 0
    rows = session.execute(
        select(groups)
        .order_by(groups.c.job_count.desc(), groups.c.reason, groups.c.error_type)
        .limit(limit)
        .offset(offset)
    )
    return total, [
        {
            "reason": row.reason,
            "error_type": row.error_type,
            "job_count": int(row.job_count),
            "target_count": int(row.target_count),
            "last_failed": row.last_failed.isoformat() if row.last_failed is not None else None,
        }
        for row in rows
    ]
