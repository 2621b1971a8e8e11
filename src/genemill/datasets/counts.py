"""How many stored datasets are in each state (``/v1/stats-about/``), expired ones counted as such."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.datasets.lifetime import overdue
from genemill.datasets.models import Dataset, DatasetState
from genemill.store.models import utcnow

__all__ = ["dataset_counts"]


def dataset_counts(session: Session) -> dict[str, int]:
    """``{"total", "created", "queued", "running", "succeeded", "failed", "expired"}``.

    A built dataset whose lifetime is over counts as expired even before the sweep has marked it.
    """
    counts = {state.value.lower(): 0 for state in DatasetState}
    for state, n in session.execute(select(Dataset.state, func.count()).group_by(Dataset.state)):
        counts[DatasetState(state).value.lower()] = int(n)
    late = session.scalar(select(func.count()).select_from(Dataset).where(overdue(utcnow())))
    counts["succeeded"] -= late or 0
    counts["expired"] += late or 0
    return {"total": sum(counts.values()), **counts}
