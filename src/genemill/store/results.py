"""Record processing results and find each sample's current gene-level values.

Contract shared by every processor and the dataset builder: a processed sample is linked to one
*current* ProcessingResult (``is_current``) whose ComputedFile of kind ``expression`` is a Parquet
file of the expression store holding a column named by the sample's accession. Recording a new
result for a sample retires (``is_current = False``) the older ones, which stay for provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from genemill.store.files import sha256_file
from genemill.store.models import (
    ComputedFile,
    Experiment,
    ProcessingResult,
    ProcessingState,
    Sample,
    utcnow,
)

__all__ = ["CurrentValues", "current_values", "mark_unprocessable", "record_result"]

EXPRESSION = "expression"


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
    files: Sequence[tuple[str, Path] | tuple[str, Path, str]],
    annotations: dict[str, Any] | None = None,
) -> ProcessingResult:
    """Store a result for ``samples`` with its files and mark the samples processed.

    Each file is ``(kind, path)``, hashed here, or ``(kind, path, sha256)`` when the writer already
    hashed the final bytes (:func:`genemill.store.expression.write_expression` returns that digest),
    which saves reading the file back.
    """
    result = ProcessingResult(
        experiment_id=experiment.id if experiment else None,
        processor=processor,
        processor_version=version,
        mode=mode,
        parameters=parameters,
        input_sha256=sorted(input_sha256),
        annotations=annotations or {},
        time_end=utcnow(),
    )
    for kind, path, *known in files:
        digest = known[0] if known else sha256_file(path)
        result.files.append(
            ComputedFile(kind=kind, path=str(path), size_in_bytes=path.stat().st_size, sha256=digest)
        )
        if kind == EXPRESSION and result.output_sha256 is None:
            result.output_sha256 = digest
    for sample in samples:
        for old in sample.results:
            if old.is_current:  # setting False again would still make it dirty for the flush
                old.is_current = False
        sample.processing_state = ProcessingState.PROCESSED
        sample.unprocessable_reason = None
    result.samples = list(samples)
    session.add(result)
    session.flush()
    return result


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
