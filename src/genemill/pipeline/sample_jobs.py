"""Per-sample processing jobs: one durable job per sample for single-sample methods.

MAS5 (``mas5-single-array``) and submitter tables are computed one sample at a time, so each
sample gets its own job (kind ``process-sample``, target = the sample accession, params
``{"method", "experiment"}``): a sample that crashes its worker or raises cannot sink its
experiment, and an experiment's samples spread over all workers. RMA normalizes an experiment's
arrays together and stays one job per experiment (:mod:`genemill.pipeline.process`).

A sample job:

1. holds the lock ``sample:<accession>`` (:mod:`genemill.pipeline.locks`) so two runners never
   process one sample at the same time, then skips the sample when a current result of the same
   processor already exists (an earlier attempt finished after its runner died);
2. (online) downloads that sample's raw files, then routes like ``process_experiment``: CEL files
   on disk -> the Affymetrix pipeline for that one array, falling back to the submitter's table
   when the array cannot be processed; else the submitter's table; else unprocessable with the
   reason(s). A bad input is refused with its reason by those pipelines (the job still succeeds);
3. moves the files it wrote to ``expression/<experiment>/samples/<sample>/`` (the pipelines name
   files by experiment and input, which several per-sample runs would share) and points the
   result's ComputedFile rows there, while holding an output lock keyed by that shared name.

After the runner finishes, samples whose job FAILED (retries exhausted: crashes, killed workers)
are marked unprocessable with the job's last error.
"""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.errors import InputError
from genemill.pipeline.download import download_raw_files
from genemill.pipeline.executors import Executor, InlineExecutor
from genemill.pipeline.ingest import finish_experiment
from genemill.pipeline.jobs import JobKind, RunSummary, enqueue, job_database, run_jobs
from genemill.pipeline.locks import hold_lock
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Experiment, Job, JobState, ProcessingResult, ProcessingState, Sample
from genemill.store.results import mark_unprocessable

__all__ = [
    "PER_SAMPLE_METHODS",
    "SampleRunReport",
    "enqueue_sample_jobs",
    "mark_failed_samples",
    "note_submitter_fallback",
    "process_samples",
    "run_sample_job",
    "sample_report",
]

PER_SAMPLE_METHODS = ("mas5", "rma-reference")
"""Single-array methods: each array is summarized alone (MAS5, or RMA against a stored reference)."""
LOCK_TIMEOUT = 300.0

logger = logging.getLogger(__name__)


HANDLER = "genemill.pipeline.sample_jobs:run_sample_job"
_KIND = JobKind.PROCESS_SAMPLE


@dataclass
class SampleRunReport:
    """Where every sample of an experiment stands after a per-sample run."""

    accession: str
    processed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)


def process_samples(
    settings: Settings,
    db: Database,
    accession: str,
    *,
    method: str = "mas5",
    executor: Executor | None = None,
    max_attempts: int | None = None,
    force: bool = False,
) -> SampleRunReport:
    """Enqueue one job per sample of ``accession``, run the queue, and report each sample's state.

    Finished samples are not redone unless ``force``; a FAILED sample job is re-queued with fresh
    attempts. RMA is refused here (it is per experiment: use ``process_experiments``).
    """
    code = enqueue_sample_jobs(settings, db, accession, method=method, max_attempts=max_attempts, force=force)
    summary = run_jobs(
        settings, db, executor=executor or InlineExecutor(), kinds=[JobKind.PROCESS_SAMPLE.value]
    )
    mark_failed_samples(db, code)
    report = sample_report(db, code)
    report.summary = summary
    return report


def enqueue_sample_jobs(
    settings: Settings,
    db: Database,
    accession: str,
    *,
    method: str = "mas5",
    max_attempts: int | None = None,
    force: bool = False,
) -> str:
    """Enqueue (or keep) one ``process-sample`` job per sample of ``accession``; return its accession.

    Finished sample jobs are kept unless ``force``; FAILED ones are re-queued with fresh attempts.
    """
    if method not in PER_SAMPLE_METHODS:
        msg = f"method {method!r} is not per sample (per-sample methods: {', '.join(PER_SAMPLE_METHODS)})"
        raise InputError(msg)
    with db.session() as session:
        code = queries.get_experiment(session, accession).accession
    # Two runners enqueueing the same experiment would race on the (kind, target) unique key.
    with hold_lock(db, f"enqueue:{code}", timeout=60), db.session() as session:
        for sample in queries.get_experiment(session, code).samples:
            enqueue(
                session,
                _KIND,
                sample.accession,
                params={"method": method, "experiment": code, "force": force},
                max_attempts=max_attempts or settings.max_attempts,
                force=force,
            )
    return code


def mark_failed_samples(db: Database, accession: str) -> dict[str, str]:
    """Mark samples of ``accession`` whose sample job FAILED as unprocessable; return their reasons.

    Also refreshes the experiment's sample counts and its search entry, so searches (including the
    in-memory index, reloaded per index generation) sort and filter on the new counts.
    """
    reasons: dict[str, str] = {}
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        by_accession = {s.accession: s for s in experiment.samples}
        failed = session.scalars(
            select(Job).where(
                Job.kind == JobKind.PROCESS_SAMPLE.value,
                Job.state == JobState.FAILED,
                Job.target.in_(list(by_accession)),
            )
        )
        for job in failed:
            sample = by_accession[job.target]
            if sample.processing_state == ProcessingState.PROCESSED:
                continue
            reason = f"processing failed after {job.attempts} attempt(s): {job.error_type}: {job.error}"
            mark_unprocessable(sample, reason)
            reasons[sample.accession] = reason
        finish_experiment(session, experiment)  # counts and search index, in one transaction
    return reasons


def sample_report(db: Database, accession: str) -> SampleRunReport:
    """Each sample of ``accession``: processed, refused (with the reason) or still pending."""
    report = SampleRunReport(accession=accession)
    with db.session() as session:
        for sample in queries.get_experiment(session, accession).samples:
            if sample.processing_state == ProcessingState.PROCESSED:
                report.processed.append(sample.accession)
            elif sample.processing_state == ProcessingState.UNPROCESSABLE:
                report.refused[sample.accession] = sample.unprocessable_reason or ""
            else:
                report.pending.append(sample.accession)
    return report


def run_sample_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``process-sample``: process the one sample ``target`` (see module docstring)."""
    method = str(params.get("method", "mas5"))
    if method not in PER_SAMPLE_METHODS:
        msg = f"sample job {target}: method {method!r} is not per sample"
        raise InputError(msg)
    db = job_database(settings)
    with hold_lock(db, f"sample:{target}", timeout=float(params.get("lock_timeout", LOCK_TIMEOUT))):
        return _process_one(settings, db, target, params)


def _process_one(settings: Settings, db: Database, target: str, params: dict[str, Any]) -> dict[str, Any]:
    with db.session() as session:
        sample = queries.get_sample(session, target)
        experiment = _experiment(session, str(params["experiment"]))
        if settings.online:  # this sample's raw files only: downloads fan out with the jobs
            download_raw_files(settings, [sample])
        processor = f"affymetrix-{params.get('method', 'mas5')}" if _cel_key(sample) else "submitter"
        if not params.get("force") and _current_result(session, sample, processor) is not None:
            return {"sample": sample.accession, "skipped": f"already processed by {processor}"}
        output_key = f"output:{experiment.accession}:" + (_cel_key(sample) or "submitter")
    with hold_lock(db, output_key, timeout=LOCK_TIMEOUT):
        try:
            return _process_and_store(settings, db, target, params, processor)
        except IntegrityError:
            # Sample jobs running side by side may both create a shared row (the platform);
            # the loser finds it on a second pass.
            logger.info("sample job %s: unique-key race, processing once more", target)
            return _process_and_store(settings, db, target, params, processor)


def _process_and_store(
    settings: Settings, db: Database, target: str, params: dict[str, Any], processor: str
) -> dict[str, Any]:
    with db.session() as session:
        sample = queries.get_sample(session, target)
        experiment = _experiment(session, str(params["experiment"]))
        method = str(params.get("method", "mas5"))
        refused = _run_pipeline(settings, db, session, experiment, sample, method)
        if refused is not None:
            return {"sample": sample.accession, "refused": refused}
        # The submitter's table may have stood in for an array that could not be processed.
        for name in (processor, "submitter"):
            result = _current_result(session, sample, name)
            if result is not None:
                _move_outputs(settings, result, experiment, sample)
                return {"sample": sample.accession, "processor": name}
        return {"sample": sample.accession, "processor": processor}


def _run_pipeline(
    settings: Settings, db: Database, session: Session, experiment: Experiment, sample: Sample, method: str
) -> str | None:
    """Process one sample; return the refusal reason, or None when it was processed.

    As ``process_experiment``: an array genemill cannot process (no CDF, corrupt file) falls back
    to the submitter's table, and a sample refused by both carries both reasons.
    """
    array_refusal = None
    if _cel_key(sample):
        from genemill.pipeline.affymetrix import process_affymetrix

        outcome = process_affymetrix(settings, session, experiment, [sample], method=method)
        array_refusal = outcome.refused.get(sample.accession)
        if array_refusal is None:
            return None
    from genemill.pipeline.submitter import fallback_refusal, process_submitter

    # The submitter's output file is named by the experiment's table, shared by its samples.
    shared = f"output:{experiment.accession}:submitter"
    with hold_lock(db, shared, timeout=LOCK_TIMEOUT) if array_refusal else nullcontext():
        submitted = process_submitter(settings, session, experiment, [sample])
        if sample.accession in submitted.processed:
            if array_refusal:
                note_submitter_fallback(sample, f"affymetrix-{method}", array_refusal)
            result = _current_result(session, sample, "submitter")
            if result is not None:
                _move_outputs(settings, result, experiment, sample)
            return None
    reason = fallback_refusal(array_refusal, submitted.refused.get(sample.accession))
    mark_unprocessable(sample, reason)
    return reason


def _experiment(session: Session, accession: str) -> Experiment:
    """The job's experiment row alone: a sample job never reads its siblings.

    ``queries.get_experiment`` also loads every sample (with platform, organism and results),
    which made each of an experiment's N sample jobs read all N samples.
    """
    experiment = session.scalar(select(Experiment).where(Experiment.accession == accession))
    return experiment if experiment is not None else queries.get_experiment(session, accession)


def note_submitter_fallback(sample: Sample, pipeline: str, reason: str) -> dict[str, str]:
    """Keep on the sample why its raw data were not used when its submitter's table stood in."""
    note = {"raw_pipeline": pipeline, "reason": reason}
    sample.qc = {**(sample.qc or {}), "submitter_fallback": note}
    return note


def _cel_key(sample: Sample) -> str:
    """What names the sample's downloaded CEL in lock keys: its recorded sha256, else its path;
    empty when the sample has no CEL on disk (it goes to the submitter's table)."""
    for original in sample.original_files:
        if original.kind == "CEL" and original.local_path and original.is_downloaded:
            return original.sha256 or original.local_path
    return ""


def _current_result(session: Session, sample: Sample, processor: str) -> ProcessingResult | None:
    session.flush()
    session.refresh(sample, attribute_names=["results"])
    current = [r for r in sample.results if r.is_current and r.processor == processor]
    return max(current, key=lambda r: r.id) if current else None


def _move_outputs(
    settings: Settings, result: ProcessingResult, experiment: Experiment, sample: Sample
) -> None:
    """Move the result's files into the sample's own folder (same names) and record the new paths."""
    folder = settings.home / "expression" / experiment.accession / "samples" / _safe(sample.accession)
    folder.mkdir(parents=True, exist_ok=True)
    for computed in result.files:
        source = Path(computed.path)
        if source.parent == folder:
            continue
        destination = folder / source.name
        source.replace(destination)
        computed.path = str(destination)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
