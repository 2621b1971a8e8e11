"""Catalog reads for the API and the web pages: samples with filters, organisms, platforms, processors.

Extends :mod:`genemill.store.queries` (experiments) with the listings refine.bio's API offers.
Every listing returns ``(count, rows)`` for limit/offset pagination and takes its filters as one
frozen dataclass, so the JSON endpoint and the HTML page run the same query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from genemill.errors import InputError, NotFoundError
from genemill.store import queries
from genemill.store.models import (
    HARMONIZED_FIELDS,
    Experiment,
    Organism,
    Platform,
    ProcessingResult,
    ProcessingState,
    Sample,
    Technology,
    experiment_sample,
)

__all__ = [
    "SAMPLE_ORDERINGS",
    "SampleFilter",
    "experiment_detail",
    "get_experiment",
    "get_experiment_accession",
    "get_sample",
    "list_samples",
    "resolve_experiment_id",
    "sample_detail_dict",
]

SAMPLE_ORDERINGS = ("accession_code", "title", "is_processed", "platform", *HARMONIZED_FIELDS)


def resolve_experiment_id(session: Session, accession: str) -> int | None:
    """Id of the experiment with this accession or alternate accession (e.g. E-GEOD-781), or None."""
    code = accession.strip().upper()
    found = session.scalar(select(Experiment.id).where(Experiment.accession == code))
    if found is not None:
        return found
    # Alternate accessions are a JSON list; match the quoted code in its text form.
    text = cast(Experiment.alternate_accessions, String)
    return session.scalar(select(Experiment.id).where(text.like(f'%"{code}"%')).limit(1))


def get_experiment_accession(session: Session, accession: str) -> str:
    """The canonical accession of an experiment named by accession or alternate; NotFoundError."""
    experiment_id = resolve_experiment_id(session, accession)
    code = session.scalar(select(Experiment.accession).where(Experiment.id == experiment_id))
    if code is None:
        msg = f"no experiment {accession!r} in this genemill database (try `genemill add {accession}`)"
        raise NotFoundError(msg)
    return code


def get_experiment(session: Session, accession: str) -> Experiment:
    """The experiment (samples loaded) by accession or alternate accession; NotFoundError when absent."""
    experiment_id = resolve_experiment_id(session, accession)
    if experiment_id is None:
        msg = f"no experiment {accession!r} in this genemill database (try `genemill add {accession}`)"
        raise NotFoundError(msg)
    canonical = session.scalar(select(Experiment.accession).where(Experiment.id == experiment_id))
    return queries.get_experiment(session, canonical or accession)


def get_sample(session: Session, accession: str) -> Sample:
    """The sample with its organism, platform, results, files and experiments loaded."""
    sample = queries.get_sample(session, accession)
    _load_samples(session, [sample.id])
    return sample


@cache
def _experiment_statement() -> Select[Any]:
    # Built once: constructing SQLAlchemy expressions costs more than running this lookup.
    table = Experiment.__table__
    return select(table).where(table.c.accession == bindparam("code"))


@cache
def _experiment_by_id_statement() -> Select[Any]:
    table = Experiment.__table__
    return select(table).where(table.c.id == bindparam("experiment_id"))


def _find_experiment_row(session: Session, accession: str) -> queries.ExperimentRecord:
    """The experiment's row read with Core: an ORM object costs more than the rest of the detail."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()  # what session.execute would do: the read sees this session's changes
    connection = session.connection()
    code = accession.strip().upper()
    row = connection.execute(_experiment_statement(), {"code": code}).first()
    if row is None:
        experiment_id = resolve_experiment_id(session, code)
        if experiment_id is not None:
            row = connection.execute(_experiment_by_id_statement(), {"experiment_id": experiment_id}).first()
    if row is None:
        msg = f"no experiment {accession!r} in this genemill database (try `genemill add {accession}`)"
        raise NotFoundError(msg)
    return queries.ExperimentRecord(row)


@cache
def _detail_samples_statement() -> Select[Any]:
    harmonized = [getattr(Sample, name) for name in HARMONIZED_FIELDS]
    return (
        select(
            Sample.accession,
            Sample.title,
            Sample.technology,
            Sample.processing_state,
            Platform.accession.label("platform"),
            Platform.title.label("platform_title"),
            Organism.name.label("organism"),
            *harmonized,
        )
        .join(experiment_sample, experiment_sample.c.sample_id == Sample.id)
        .outerjoin(Platform, Platform.id == Sample.platform_id)
        .outerjoin(Organism, Organism.id == Sample.organism_id)
        .where(experiment_sample.c.experiment_id == bindparam("experiment_id"))
        .order_by(Sample.accession)
    )


_FIRST_HARMONIZED = 7  # position of the first harmonized column in _detail_samples_statement


def _detail_samples(session: Session, experiment_id: int) -> list[Any]:
    # Connection.execute: the same rows as Session.execute without the ORM layer's per-call cost.
    return list(session.connection().execute(_detail_samples_statement(), {"experiment_id": experiment_id}))


def _fields_present(rows: list[Any]) -> list[str]:
    """Harmonized fields with a value (not None or "") in any row, in HARMONIZED_FIELDS order."""
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))[_FIRST_HARMONIZED:]
    return [f for f, values in zip(HARMONIZED_FIELDS, columns, strict=True) if set(values) - {None, ""}]


def experiment_detail(session: Session, accession: str) -> dict[str, Any]:
    """``queries.experiment_dict`` (anchor names) with light sample rows, from two queries."""
    experiment = _find_experiment_row(session, accession)
    rows = _detail_samples(session, experiment.id)
    platforms = {r.platform: r.platform_title or r.platform for r in rows if r.platform}
    out = queries.experiment_fields(
        experiment,
        organisms=sorted({r.organism for r in rows if r.organism}),
        platforms=platforms,
        sample_metadata=_fields_present(rows),
    )
    out["samples"] = [_light_sample(r) for r in rows]
    return out


def _light_sample(row: Any) -> dict[str, Any]:
    state = ProcessingState(row.processing_state)
    return {
        "accession_code": row.accession,
        "title": row.title,
        "platform_accession_code": row.platform,
        "platform_name": row.platform_title,
        "pretty_platform": row.platform_title,
        "technology": Technology(row.technology).value,
        "is_processed": state == ProcessingState.PROCESSED,
        "is_unable_to_be_processed": state == ProcessingState.UNPROCESSABLE,
        "processing_state": state.value,
    }


@dataclass(frozen=True)
class SampleFilter:
    """Filters of ``/v1/samples/``; ``harmonized`` maps a harmonized field to a required value."""

    experiment_accession_code: str | None = None
    accession_codes: tuple[str, ...] = ()
    organism: str | None = None
    platform: str | None = None
    technology: str | None = None
    is_processed: bool | None = None
    filter_by: str | None = None
    harmonized: dict[str, str] = field(default_factory=dict)
    ordering: str = "-is_processed"
    limit: int = 25
    offset: int = 0


def _order_key(ordering: str) -> list[Any]:
    name = ordering.strip().removeprefix("-")
    descending = ordering.strip().startswith("-")
    if name not in SAMPLE_ORDERINGS:
        known = ", ".join(SAMPLE_ORDERINGS)
        msg = f"ordering: expected one of {known} (optionally prefixed by '-'), found {ordering!r}"
        raise InputError(msg)
    columns: dict[str, Any] = {
        "accession_code": Sample.accession,
        "title": Sample.title,
        "is_processed": Sample.processing_state == ProcessingState.PROCESSED,
        "platform": Sample.platform_id,
    }
    column = columns[name] if name in columns else getattr(Sample, name)
    key = column.desc().nulls_last() if descending else column.asc().nulls_last()
    return [key, Sample.accession]


def _harmonized_condition(name: str, value: str) -> Any:
    if name not in HARMONIZED_FIELDS:
        msg = f"{name}: not a harmonized field; expected one of {', '.join(HARMONIZED_FIELDS)}"
        raise InputError(msg)
    column = getattr(Sample, name)
    if name == "age":
        try:
            return column == float(value)
        except ValueError:
            msg = f"age: expected a number of years, found {value!r}"
            raise InputError(msg) from None
    return func.lower(column) == value.strip().lower()


def _sample_conditions(session: Session, flt: SampleFilter) -> list[Any]:
    conditions: list[Any] = []
    if flt.experiment_accession_code:
        experiment_id = resolve_experiment_id(session, flt.experiment_accession_code)
        members = select(experiment_sample.c.sample_id).where(
            experiment_sample.c.experiment_id == experiment_id
        )
        conditions.append(Sample.id.in_(members))
    if flt.accession_codes:
        conditions.append(Sample.accession.in_([a.strip() for a in flt.accession_codes]))
    if flt.organism:
        name = flt.organism.replace("_", " ").strip()
        conditions.append(
            Sample.organism_id.in_(select(Organism.id).where(func.lower(Organism.name) == name.lower()))
        )
    if flt.platform:
        code = flt.platform.strip().upper()
        conditions.append(Sample.platform_id.in_(select(Platform.id).where(Platform.accession == code)))
    if flt.technology:
        conditions.append(Sample.technology == _technology(flt.technology))
    if flt.is_processed is not None:
        processed = Sample.processing_state == ProcessingState.PROCESSED
        conditions.append(processed if flt.is_processed else ~processed)
    for name, value in flt.harmonized.items():
        conditions.append(_harmonized_condition(name, value))
    if flt.filter_by and flt.filter_by.strip():
        pattern = f"%{flt.filter_by.strip()}%"
        texts = [
            Sample.accession,
            Sample.title,
            *(getattr(Sample, n) for n in HARMONIZED_FIELDS if n != "age"),
        ]
        conditions.append(or_(*(column.ilike(pattern) for column in texts)))
    return conditions


def _technology(value: str) -> Technology:
    try:
        return Technology(value.strip().upper())
    except ValueError:
        msg = f"technology: expected one of {', '.join(t.value for t in Technology)}, found {value!r}"
        raise InputError(msg) from None


def list_samples(session: Session, flt: SampleFilter) -> tuple[int, list[Sample]]:
    """Samples matching ``flt`` (one page, relationships loaded) and the total count."""
    where = and_(True, *_sample_conditions(session, flt))
    count = session.scalar(select(func.count()).select_from(Sample).where(where)) or 0
    ids = list(
        session.scalars(
            select(Sample.id)
            .where(where)
            .order_by(*_order_key(flt.ordering))
            .limit(flt.limit)
            .offset(flt.offset)
        )
    )
    by_id = {s.id: s for s in _load_samples(session, ids)}
    return count, [by_id[i] for i in ids]


def _load_samples(session: Session, ids: list[int]) -> list[Sample]:
    if not ids:
        return []
    query = (
        select(Sample)
        .where(Sample.id.in_(ids))
        .options(
            selectinload(Sample.organism),
            selectinload(Sample.platform),
            selectinload(Sample.results).selectinload(ProcessingResult.files),
            selectinload(Sample.original_files),
            selectinload(Sample.experiments),
        )
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def sample_detail_dict(sample: Sample) -> dict[str, Any]:
    """A sample with the anchor's fields plus its experiments and original files (provenance)."""
    out = queries.sample_dict(sample)
    out["id"] = sample.id
    out["experiment_accession_codes"] = sorted(e.accession for e in sample.experiments)
    out["protocol_info"] = sample.protocol_info
    out["original_files"] = [
        {
            "filename": f.filename,
            "source_url": f.source_url,
            "kind": f.kind,
            "size_in_bytes": f.size_in_bytes,
            "sha256": f.sha256,
            "md5": f.md5,
            "is_downloaded": f.is_downloaded,
        }
        for f in sample.original_files
    ]
    for result, stored in zip(out["results"], [r for r in sample.results if r.is_current], strict=True):
        result["files"] = [
            {"kind": f.kind, "sha256": f.sha256, "size_in_bytes": f.size_in_bytes} for f in stored.files
        ]
    return out
