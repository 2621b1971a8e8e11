"""One processor (name + version) behind stored results: ``/v1/processors/{id}/``.

genemill has no processor table: a processor is the (``processor``, ``processor_version``) pair
recorded on every ``ProcessingResult``. Its id is ``NAME@VERSION`` (e.g. ``submitter@0.1.0``),
stable across databases, unlike refine.bio's integer row ids. The detail says how much it produced
(results, current results, samples, experiments, first and last use, results per mode) and the
parameters of its latest result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.errors import InputError, NotFoundError
from genemill.store.models import ProcessingResult, result_sample

__all__ = ["get_processor", "parse_processor_id", "processor_id"]


def processor_id(name: str, version: str) -> str:
    """The public id of a processor version."""
    return f"{name}@{version}"


def parse_processor_id(value: str) -> tuple[str, str]:
    """(name, version) from ``NAME@VERSION``; ``InputError`` naming the expected form otherwise."""
    name, at, version = value.partition("@")
    if not at or not name or not version:
        msg = f"processor id: expected NAME@VERSION (e.g. submitter@0.1.0), found {value!r}"
        raise InputError(msg)
    return name, version


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def get_processor(session: Session, value: str) -> dict[str, Any]:
    """The detail of processor ``NAME@VERSION``; ``NotFoundError`` when no result names it."""
    name, version = parse_processor_id(value)
    mine = (ProcessingResult.processor == name, ProcessingResult.processor_version == version)
    totals = session.execute(
        select(
            func.count(ProcessingResult.id),
            func.count(func.distinct(ProcessingResult.experiment_id)),
            func.min(ProcessingResult.created_at),
            func.max(ProcessingResult.created_at),
        ).where(*mine)
    ).one()
    if not totals[0]:
        msg = f"no processor {value!r}: no stored result was made by {name} version {version}"
        raise NotFoundError(msg)
    current = session.scalar(
        select(func.count(ProcessingResult.id)).where(*mine, ProcessingResult.is_current.is_(True))
    )
    samples = session.scalar(
        select(func.count(func.distinct(result_sample.c.sample_id)))
        .join(ProcessingResult, ProcessingResult.id == result_sample.c.result_id)
        .where(*mine)
    )
    modes = session.execute(
        select(ProcessingResult.mode, func.count(ProcessingResult.id))
        .where(*mine)
        .group_by(ProcessingResult.mode)
        .order_by(ProcessingResult.mode)
    )
    latest = session.scalar(
        select(ProcessingResult).where(*mine).order_by(ProcessingResult.id.desc()).limit(1)
    )
    assert latest is not None  # totals[0] > 0
    return {
        "id": processor_id(name, version),
        "name": name,
        "version": version,
        "num_results": int(totals[0]),
        "num_current_results": int(current or 0),
        "num_samples": int(samples or 0),
        "num_experiments": int(totals[1]),
        "first_used": _iso(totals[2]),
        "last_used": _iso(totals[3]),
        "modes": {mode: int(n) for mode, n in modes},
        "latest_result": {
            "id": latest.id,
            "mode": latest.mode,
            "parameters": latest.parameters,
            "created_at": _iso(latest.created_at),
        },
    }
