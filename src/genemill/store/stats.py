"""Catalog numbers: experiments, samples by state and technology, organisms, jobs, processors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.store.models import Experiment, Job, Organism, ProcessingResult, ProcessingState, Sample

__all__ = ["catalog_stats"]


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
