"""Record processing results and find each sample's current gene-level values.

Contract shared by every processor and the dataset builder: a processed sample is linked to one
*current* ProcessingResult (``is_current``) whose ComputedFile of kind ``expression`` is a Parquet
file of the expression store holding a column named by the sample's accession. Recording a new
result for a sample retires (``is_current = False``) the older ones, which stay for provenance.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Insert, Update, bindparam, insert, inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from genemill.store.files import sha256_file
from genemill.store.models import (
    ComputedFile,
    Experiment,
    ProcessingResult,
    ProcessingState,
    Sample,
    result_sample,
    utcnow,
)

__all__ = ["CurrentValues", "current_values", "mark_unprocessable", "record_result"]

EXPRESSION = "expression"
_IDS_PER_STATEMENT = 500


def record_result(
    session: Session,
    samples: list[Sample],
    *,
    experiment: Experiment | None,
    processor: str,
    version: str,
    mode: str,
    parameters: dict[str, Any],
    input_sha256: list[str],
    files: Sequence[tuple[str, Path] | tuple[str, Path, str] | tuple[str, Path, str, int]],
    annotations: dict[str, Any] | None = None,
    qc: Mapping[str, dict[str, Any]] | None = None,
) -> ProcessingResult:
    """Store a result for ``samples`` with its files and mark the samples processed.

    ``qc`` (by sample accession) becomes those samples' ``qc``, written with their new state.

    Each file is ``(kind, path)``, hashed here, or ``(kind, path, sha256)`` when the writer already
    hashed the final bytes (:func:`genemill.store.expression.write_expression` returns that digest),
    which saves reading the file back, or ``(kind, path, sha256, size)`` for bytes still being
    written (:class:`genemill.store.expression.EncodedExpression`): the caller commits only once
    they are in place.

    Written with a few Core statements, not the ORM's unit of work (whose flush of one changed
    sample took ~1.2 ms): the samples' older results are retired by one UPDATE whatever their
    number, so they need not be loaded (a sample re-processed many times costs the same as a new
    one), and one UPDATE gives the samples their state and QC. The objects in the session are
    brought up to date without being made dirty; ``sample.results`` is expired, to load afresh
    when next read. Other pending changes of the samples stay for the session's next flush.
    """
    now = utcnow()
    computed: list[dict[str, Any]] = []
    output_sha256 = None
    for kind, path, *known in files:
        digest = known[0] if known else sha256_file(path)
        size = known[1] if len(known) > 1 else path.stat().st_size
        computed.append({"kind": kind, "path": str(path), "size_in_bytes": size, "sha256": digest})
        if kind == EXPRESSION and output_sha256 is None:
            output_sha256 = digest
    if session.new or session.deleted or any(inspect(sample).key is None for sample in samples):
        session.flush()  # ids for new samples or experiment, and rows the statements below read
    sample_ids = [sample.id for sample in samples]
    connection = session.connection()
    retired = [
        result_id
        for start in range(0, len(sample_ids), _IDS_PER_STATEMENT)  # within SQLite's variable limit
        for result_id in connection.execute(
            _retire_statement(), {"sample_ids": sample_ids[start : start + _IDS_PER_STATEMENT]}
        ).scalars()
    ]
    states = [
        {"sample_id": sample.id, "qc": (qc or {}).get(sample.accession, sample.qc), "updated_at": now}
        for sample in samples
    ]
    if states:
        connection.execute(_mark_processed_statement(), states)
    values = {
        "experiment_id": experiment.id if experiment else None,
        "processor": processor,
        "processor_version": version,
        "mode": mode,
        "parameters": parameters,
        "input_sha256": sorted(input_sha256),
        "output_sha256": output_sha256,
        "annotations": annotations or {},
        "is_current": True,
        "time_start": None,
        "time_end": now,
        "created_at": now,
    }
    result_id = connection.execute(_insert_result_statement(), values).scalar_one()
    if computed:
        rows = [row | {"result_id": result_id, "created_at": now} for row in computed]
        connection.execute(insert(ComputedFile.__table__), rows)
    if sample_ids:
        connection.execute(
            insert(result_sample), [{"result_id": result_id, "sample_id": sid} for sid in sample_ids]
        )
    _retire_loaded(session, retired)
    for sample, state in zip(samples, states, strict=True):
        for name, value in (
            ("processing_state", ProcessingState.PROCESSED),
            ("unprocessable_reason", None),
            ("qc", state["qc"]),
            ("updated_at", now),
        ):
            set_committed_value(sample, name, value)
        session.expire(sample, ["results"])
    # The row as written, in the session without reading it back (its files and samples load when read).
    result = ProcessingResult(id=result_id, **values)
    make_transient_to_detached(result)
    session.add(result)
    return result


@functools.cache
def _retire_statement() -> Update:
    """Set ``is_current`` false on the current results of the samples ``:sample_ids``; return their ids."""
    table = ProcessingResult.__table__
    theirs = select(result_sample.c.result_id).where(
        result_sample.c.sample_id.in_(bindparam("sample_ids", expanding=True))
    )
    return (
        update(table)
        .where(table.c.is_current.is_(True), table.c.id.in_(theirs))
        .values(is_current=False)
        .returning(table.c.id)
    )


@functools.cache
def _mark_processed_statement() -> Update:
    """Mark the sample ``:sample_id`` processed, with its ``:qc`` (executemany)."""
    table = Sample.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("sample_id"))
        .values(
            processing_state=ProcessingState.PROCESSED,
            unprocessable_reason=None,
            qc=bindparam("qc"),
            updated_at=bindparam("updated_at"),
        )
    )


@functools.cache
def _insert_result_statement() -> Insert:
    table = ProcessingResult.__table__
    return insert(table).returning(table.c.id)


def _retire_loaded(session: Session, result_ids: Sequence[int]) -> None:
    """Mark the retired results that the session holds as retired, without making them dirty."""
    for result_id in result_ids:
        loaded = session.identity_map.get(identity_key(ProcessingResult, result_id))
        if loaded is not None:
            set_committed_value(loaded, "is_current", False)


def mark_unprocessable(sample: Sample, reason: str) -> None:
    """Record why a sample cannot be processed (shown wherever the sample is missing)."""
    sample.processing_state = ProcessingState.UNPROCESSABLE
    sample.unprocessable_reason = reason


@dataclass(frozen=True)
class CurrentValues:
    """Where a processed sample's current values are and how they were made."""

    sample: str
    path: Path
    result: ProcessingResult
    value_type: str


def current_values(sample: Sample, *, kind: str = EXPRESSION) -> CurrentValues | None:
    """The current result's expression file for ``sample``, or None when not processed."""
    for result in sorted(sample.results, key=lambda r: r.id, reverse=True):
        if not result.is_current:
            continue
        for file in result.files:
            if file.kind == kind:
                return CurrentValues(
                    sample=sample.accession,
                    path=Path(file.path),
                    result=result,
                    value_type=str(result.annotations.get("value_type", "")),
                )
    return None
