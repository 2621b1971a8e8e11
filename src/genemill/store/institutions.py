"""Submitter institutions: the distinct ``Experiment.submitter_institution`` values, with counts.

refine.bio lists them at ``/v1/institutions/`` (ANCHOR.md §4) so its search can offer
``submitter_institution:`` filters; here each comes with how many experiments and samples it
submitted, most experiments first. Experiments without an institution are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.store.models import Experiment

__all__ = ["list_institutions"]


def list_institutions(
    session: Session, *, limit: int = 25, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """Distinct non-empty submitter institutions with experiment and sample counts, paged."""
    institution = Experiment.submitter_institution
    named = institution != ""
    total = session.scalar(select(func.count(func.distinct(institution))).where(named)) or 0
    n_experiments = func.count(Experiment.id)
    rows = session.execute(
        select(institution, n_experiments, func.sum(Experiment.num_total_samples))
        .where(named)
        .group_by(institution)
        .order_by(n_experiments.desc(), institution)
        .limit(limit)
        .offset(offset)
    )
    return total, [
        {"submitter_institution": name, "num_experiments": int(n), "num_samples": int(samples or 0)}
        for name, n, samples in rows
    ]
