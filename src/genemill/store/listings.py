"""Reference listings for the API and pages: organisms, platforms, processors, result modes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from genemill.errors import NotFoundError
from genemill.store.models import Organism, Platform, ProcessingResult, ProcessingState, Sample, Technology

__all__ = [
    "get_organism",
    "list_organisms",
    "list_platforms",
    "list_processors",
    "list_result_modes",
    "platform_titles",
]


def list_organisms(session: Session, *, limit: int = 25, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Organisms with their sample and processed-sample counts."""
    processed = func.sum(case((Sample.processing_state == ProcessingState.PROCESSED, 1), else_=0))
    total = session.scalar(select(func.count()).select_from(Organism)) or 0
    rows = session.execute(
        select(Organism, func.count(Sample.id), processed)
        .outerjoin(Sample, Sample.organism_id == Organism.id)
        .group_by(Organism.id)
        .order_by(Organism.name)
        .limit(limit)
        .offset(offset)
    )
    return total, [
        {
            "name": organism.name,
            "code": organism.code,
            "taxonomy_id": organism.taxonomy_id,
            "num_samples": int(n_samples),
            "num_processed_samples": int(n_processed or 0),
        }
        for organism, n_samples, n_processed in rows
    ]


def get_organism(session: Session, name: str) -> dict[str, Any]:
    """One organism by scientific name or refine.bio code (HOMO_SAPIENS); NotFoundError when absent."""
    wanted = name.replace("_", " ").strip().lower()
    _total, rows = list_organisms(session, limit=100_000)
    for row in rows:
        if row["name"].lower() == wanted:
            return row
    msg = f"no organism {name!r} in this genemill database"
    raise NotFoundError(msg)


def list_platforms(session: Session, *, limit: int = 25, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Platforms with pretty names and sample counts."""
    total = session.scalar(select(func.count()).select_from(Platform)) or 0
    rows = session.execute(
        select(Platform, func.count(Sample.id))
        .outerjoin(Sample, Sample.platform_id == Platform.id)
        .group_by(Platform.id)
        .order_by(Platform.accession)
        .limit(limit)
        .offset(offset)
    )
    return total, [
        {
            "platform_accession_code": platform.accession,
            "platform_name": platform.title or platform.accession,
            "internal_name": platform.internal_name,
            "technology": Technology(platform.technology).value,
            "manufacturer": platform.manufacturer,
            "num_samples": int(n_samples),
        }
        for platform, n_samples in rows
    ]


def list_processors(
    session: Session, *, limit: int = 25, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """Distinct processor name and version pairs found in processing results, with usage counts."""
    groups = (
        select(
            ProcessingResult.processor,
            ProcessingResult.processor_version,
            func.count(ProcessingResult.id).label("n"),
            func.min(ProcessingResult.created_at).label("first"),
        )
        .group_by(ProcessingResult.processor, ProcessingResult.processor_version)
        .subquery()
    )
    total = session.scalar(select(func.count()).select_from(groups)) or 0
    rows = session.execute(
        select(groups).order_by(groups.c.processor, groups.c.processor_version).limit(limit).offset(offset)
    )
    return total, [
        {
            "name": row.processor,
            "version": row.processor_version,
            "num_results": int(row.n),
            "first_used": row.first.isoformat() if row.first else None,
        }
        for row in rows
    ]


def platform_titles(session: Session, codes: list[str]) -> dict[str, str]:
    """Readable names of platforms by accession (the accession itself when untitled)."""
    rows = session.execute(select(Platform.accession, Platform.title).where(Platform.accession.in_(codes)))
    return {code: title or code for code, title in rows}


def list_result_modes(session: Session, processor: str) -> list[str]:
    """Distinct ``mode`` values of a processor's current results (e.g. the keys of QN targets)."""
    rows = session.scalars(
        select(ProcessingResult.mode)
        .where(ProcessingResult.processor == processor, ProcessingResult.is_current.is_(True))
        .distinct()
        .order_by(ProcessingResult.mode)
    )
    return list(rows)
