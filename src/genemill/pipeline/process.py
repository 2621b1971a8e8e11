"""Process an experiment's samples with the right pipeline, as durable jobs.

Routing per sample: raw Affymetrix CEL files on disk -> the Affymetrix pipeline (RMA across the
experiment's arrays of one platform, or MAS5 per array); FASTQ (on disk or to fetch from ENA) or
quant.sf files -> Salmon and tximport (per experiment); otherwise the submitter's processed table
when the series carries one -> the submitter pipeline, flagged ``submitter``; otherwise the sample is
marked unprocessable with the reason. A failing sample never stops the others.

One fallback rule for raw data: a sample its raw-data pipeline refuses (an array without CDF or a
corrupt CEL; FASTQ that cannot be downloaded, runs Salmon refuses or a low mapping rate) goes on to
the submitter's table. Processed from it, the sample's ``qc["submitter_fallback"]`` keeps why its raw
data were not used; refused by both, its reason names both (``"<raw reason>; and <submitter reason>"``).

Jobs (``process_experiments``, what ``genemill process`` runs): with RMA, or for RNA-seq
experiments, one ``process`` job per experiment runs ``process_experiment``; with a per-array
method (MAS5) every sample is its own ``process-sample`` job
(:mod:`genemill.pipeline.sample_jobs`), so samples fan out over a cluster's workers and a sample
that crashes its worker is marked unprocessable while the others finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.pipeline.download import download_raw_files
from genemill.pipeline.executors import Executor, InlineExecutor
from genemill.pipeline.ingest import finish_experiment
from genemill.pipeline.jobs import JobKind, JobOutcome, RunSummary, enqueue, run_jobs
from genemill.pipeline.rnaseq_process import FASTQ_KIND, QUANT_KIND, has_rnaseq_files
from genemill.pipeline.sample_jobs import (
    PER_SAMPLE_METHODS,
    SampleRunReport,
    enqueue_sample_jobs,
    mark_failed_samples,
    note_submitter_fallback,
    sample_report,
)
from genemill.pipeline.submitter import fallback_refusal, process_submitter
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Experiment, Job, JobState, Sample
from genemill.store.results import mark_unprocessable

RNASEQ_KINDS = frozenset({FASTQ_KIND, QUANT_KIND})

__all__ = [
    "ProcessReport",
    "ProcessRun",
    "Progress",
    "fans_out",
    "process_experiment",
    "process_experiments",
    "run_process_job",
]


@dataclass
class ProcessReport:
    """What one processing run did to an experiment's samples."""

    accession: str
    processed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _local_cels(sample: Sample) -> list[str]:
    return [
        f.local_path for f in sample.original_files if f.kind == "CEL" and f.local_path and f.is_downloaded
    ]


def process_experiment(
    settings: Settings, db: Database, accession: str, *, method: str = "rma"
) -> ProcessReport:
    """Process every sample of a stored experiment; return what was processed or refused and why."""
    with db.session() as session:
        experiment = queries.get_experiment(session, accession)
        report = ProcessReport(accession=experiment.accession)
        if settings.online:
            downloads = download_raw_files(settings, experiment.samples)
            report.details["downloads"] = {"fetched": downloads.fetched, "failed": downloads.failed}
        raw = [s for s in experiment.samples if _local_cels(s)]
        rnaseq = [s for s in experiment.samples if not _local_cels(s) and has_rnaseq_files(s)]
        rest = [s for s in experiment.samples if not _local_cels(s) and not has_rnaseq_files(s)]
        raw_refused: dict[str, _RawRefusal] = {}
        if raw:
            from genemill.pipeline.affymetrix import process_affymetrix

            affy = process_affymetrix(settings, session, experiment, raw, method=method)
            report.processed.update(dict.fromkeys(affy.processed, f"affymetrix-{method}"))
            report.details["affymetrix"] = affy.details | {"refused": affy.refused}
            raw_refused.update({a: _RawRefusal(f"affymetrix-{method}", r) for a, r in affy.refused.items()})
        if rnaseq:
            from genemill.pipeline.rnaseq_process import process_rnaseq

            rna = process_rnaseq(settings, session, experiment, rnaseq)
            report.processed.update(rna.processors)
            report.details["rnaseq"] = rna.details
            raw_refused.update({a: _RawRefusal("rnaseq", r) for a, r in rna.refused.items()})
        fallback = [s for s in [*raw, *rnaseq] if s.accession in raw_refused]
        if fallback or rest:
            _submitter_tables(settings, session, experiment, [*fallback, *rest], raw_refused, report)
        for sample in experiment.samples:
            if sample.accession not in report.processed and sample.accession not in report.refused:
                reason = fallback_refusal(None, None)
                mark_unprocessable(sample, reason)
                report.refused[sample.accession] = reason
        finish_experiment(session, experiment)
    return report


@dataclass(frozen=True)
class _RawRefusal:
    """Why a sample's raw data (CEL, FASTQ) were not used, and which pipeline said so."""

    pipeline: str
    reason: str


def _submitter_tables(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    raw_refused: dict[str, _RawRefusal],
    report: ProcessReport,
) -> None:
    """The submitter's tables for ``samples``, the fallback of those in ``raw_refused`` (module docstring)."""
    outcome = process_submitter(settings, session, experiment, samples)
    by_accession = {s.accession: s for s in samples}
    report.processed.update(dict.fromkeys(outcome.processed, "submitter"))
    for accession in outcome.processed:
        if (earlier := raw_refused.get(accession)) is not None:
            note = note_submitter_fallback(by_accession[accession], earlier.pipeline, earlier.reason)
            report.details.setdefault("submitter_fallback", {})[accession] = note
    for accession in dict.fromkeys([*raw_refused, *outcome.refused]):
        if accession in outcome.processed:
            continue
        earlier = raw_refused.get(accession)
        reason = fallback_refusal(earlier and earlier.reason, outcome.refused.get(accession))
        report.refused[accession] = reason
        if earlier:
            mark_unprocessable(by_accession[accession], reason)
    report.details["submitter"] = outcome.platform_reports


def run_process_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``process``: ``target`` is the experiment accession."""
    db = Database(settings.resolved_database_url)
    try:
        report = process_experiment(settings, db, target, method=str(params.get("method", "rma")))
    finally:
        db.dispose()
    return {"processed": len(report.processed), "refused": report.refused}


@dataclass
class ProcessRun:
    """What ``process_experiments`` did: the job runner's counts and where each experiment stands.

    ``experiments`` maps an experiment accession to ``"experiment"`` (one job for the whole
    experiment) or ``"samples"`` (one job per sample); ``samples`` holds the per-sample reports.
    """

    summary: RunSummary
    experiments: dict[str, str] = field(default_factory=dict)
    samples: dict[str, SampleRunReport] = field(default_factory=dict)


def fans_out(session: Session, accession: str, method: str) -> bool:
    """True when ``accession`` is processed one job per sample with ``method``.

    Per-array methods (MAS5) and the submitter's tables run per sample; RMA (arrays normalized
    together) and RNA-seq experiments (Salmon index built once) stay one job per experiment.
    """
    if method not in PER_SAMPLE_METHODS:
        return False
    experiment = queries.get_experiment(session, accession)
    return not any(f.kind in RNASEQ_KINDS for s in experiment.samples for f in s.original_files)


Progress = Callable[[int, int, str], None]


def process_experiments(
    settings: Settings,
    db: Database,
    accessions: list[str],
    *,
    method: str = "rma",
    force: bool = False,
    executor: Executor | None = None,
    on_progress: Progress | None = None,
) -> ProcessRun:
    """Enqueue the experiments' process jobs and run them (finished ones are skipped unless ``force``).

    With a per-array ``method`` each sample is its own job (they fan out over a cluster and a
    sample that crashes its worker cannot sink the experiment: it ends unprocessable with the
    reason); otherwise one job per experiment. ``on_progress(finished, total, message)`` is called
    once the jobs are queued and after every attempt (a retried attempt is not finished).
    """
    run = ProcessRun(summary=RunSummary())
    with db.session() as session:
        for accession in accessions:
            code = queries.get_experiment(session, accession).accession
            run.experiments[code] = "samples" if fans_out(session, code, method) else "experiment"
    for code, shape in run.experiments.items():
        if shape == "samples":
            enqueue_sample_jobs(settings, db, code, method=method, force=force)
            continue
        with db.session() as session:
            enqueue(session, JobKind.PROCESS, code, params={"method": method}, force=force)
    kinds = [JobKind.PROCESS.value, JobKind.PROCESS_SAMPLE.value]
    on_done = None if on_progress is None else _progress_reporter(db, _waiting(db, kinds), on_progress)
    run.summary = run_jobs(settings, db, executor=executor or InlineExecutor(), kinds=kinds, on_done=on_done)
    for code, shape in run.experiments.items():
        if shape == "samples":
            mark_failed_samples(db, code)  # also refreshes counts and the search index
            run.samples[code] = sample_report(db, code)
    return run


def _progress_reporter(db: Database, total: int, on_progress: Progress) -> Callable[[JobOutcome], None]:
    """Tell ``on_progress`` the job count now, then after every attempt (retries do not count)."""
    finished = 0
    on_progress(0, total, f"{total} job(s) to run")

    def report(outcome: JobOutcome) -> None:
        nonlocal finished
        with db.session() as session:
            job = session.get(Job, outcome.job_id)
            target, state = (job.target, job.state) if job is not None else ("?", None)
        word = {JobState.SUCCEEDED: "done", JobState.FAILED: "failed"}.get(
            state or JobState.QUEUED, "retrying"
        )
        finished += word != "retrying"
        on_progress(finished, total, f"{target} {word}")

    return report


def _waiting(db: Database, kinds: list[str]) -> int:
    with db.session() as session:
        query = select(func.count()).select_from(Job)
        query = query.where(Job.kind.in_(kinds), Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
        return int(session.scalar(query) or 0)
