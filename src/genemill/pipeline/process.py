"""Process an experiment's samples with the right pipeline, one durable job per experiment.

Routing per sample: raw Affymetrix CEL files on disk -> the Affymetrix pipeline (RMA across the
experiment's arrays of one platform, or MAS5 per array); FASTQ or quant.sf files on disk -> Salmon
and tximport (per experiment); otherwise the submitter's processed table
when the series carries one -> the submitter pipeline, flagged ``submitter``; otherwise the sample is
marked unprocessable with the reason. A failing sample never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genemill.config import Settings
from genemill.pipeline.download import download_raw_files
from genemill.pipeline.executors import Executor, InlineExecutor
from genemill.pipeline.ingest import finish_experiment
from genemill.pipeline.jobs import JobKind, RunSummary, enqueue, run_jobs
from genemill.pipeline.rnaseq_process import has_rnaseq_files
from genemill.pipeline.submitter import process_submitter
from genemill.store import queries
from genemill.store.db import Database
from genemill.store.models import Sample
from genemill.store.results import mark_unprocessable

__all__ = ["ProcessReport", "process_experiment", "process_experiments", "run_process_job"]


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
        if raw:
            from genemill.pipeline.affymetrix import process_affymetrix

            affy = process_affymetrix(settings, session, experiment, raw, method=method)
            report.processed.update(dict.fromkeys(affy.processed, f"affymetrix-{method}"))
            report.details["affymetrix"] = affy.details | {"refused": affy.refused}
            # Arrays genemill cannot process (no CDF, corrupt file) fall back to the submitter's table.
            fallback = [s for s in raw if s.accession in affy.refused]
            rest = [*fallback, *rest]
            report.refused.update(affy.refused)
        if rnaseq:
            from genemill.pipeline.rnaseq_process import process_rnaseq

            rna = process_rnaseq(settings, session, experiment, rnaseq)
            report.processed.update(rna.processors)
            report.refused.update(rna.refused)
            report.details["rnaseq"] = rna.details
        if rest:
            outcome = process_submitter(settings, session, experiment, rest)
            report.processed.update(dict.fromkeys(outcome.processed, "submitter"))
            for accession in outcome.processed:
                report.refused.pop(accession, None)
            for accession, reason in outcome.refused.items():
                earlier = report.refused.get(accession)
                report.refused[accession] = f"{earlier}; and {reason}" if earlier else reason
                if earlier:
                    mark_unprocessable(
                        next(s for s in rest if s.accession == accession), report.refused[accession]
                    )
            report.details["submitter"] = outcome.platform_reports
        for sample in experiment.samples:
            if sample.accession not in report.processed and sample.accession not in report.refused:
                reason = "no raw files on disk and no submitter-processed table"
                mark_unprocessable(sample, reason)
                report.refused[sample.accession] = reason
        finish_experiment(session, experiment)
    return report


def run_process_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler for ``process``: ``target`` is the experiment accession."""
    db = Database(settings.resolved_database_url)
    try:
        report = process_experiment(settings, db, target, method=str(params.get("method", "rma")))
    finally:
        db.dispose()
    return {"processed": len(report.processed), "refused": report.refused}


def process_experiments(
    settings: Settings,
    db: Database,
    accessions: list[str],
    *,
    method: str = "rma",
    force: bool = False,
    executor: Executor | None = None,
) -> RunSummary:
    """Enqueue one process job per experiment and run them (finished ones are skipped unless ``force``)."""
    with db.session() as session:
        for accession in accessions:
            code = queries.get_experiment(session, accession).accession
            enqueue(session, JobKind.PROCESS, code, params={"method": method}, force=force)
    return run_jobs(settings, db, executor=executor or InlineExecutor(), kinds=[JobKind.PROCESS.value])
