"""Survey a public SRA / ENA study (SRP, ERP, DRP, PRJNA, PRJEB, …) into an RNA-seq experiment.

ENA's portal API ``read_run`` report (:mod:`genemill.sources.ena`) lists the study's runs. As
refine.bio does, each run (SRR/ERR/DRR) becomes one sample, so a biological sample sequenced in
several runs gives several samples (the run's SRS/ERS and SRX/ERX are kept in its fields). Each
run's FASTQ files become OriginalFiles of kind ``FASTQ`` with ENA's URL, MD5 and size as the
expected checksum and size; ``genemill process`` with ``GENEMILL_ONLINE`` downloads and verifies
them (:mod:`genemill.pipeline.rnaseq_download`) before Salmon.

The experiment's accession is the one asked for; ENA's other study accession (project ↔ SRP/ERP)
becomes an alternate accession. The platform of a run is its instrument model (e.g.
``Illumina HiSeq 2000``), a sequencing technology. Runs ENA lists without FASTQ (only submitted
files), and runs that are not transcriptome sequencing (``library_strategy`` other than RNA-Seq,
miRNA-Seq, ncRNA-Seq or ssRNA-seq, or a non-transcriptomic ``library_source``), are stored with no
raw file, so nothing is downloaded for them and processing refuses them.

A GEO series of sequencing samples (``!Series_relation = SRA: …?term=SRP…``) keeps its GSM samples:
``attach_sra_runs`` asks ENA for the SRA study's runs and gives each GSM (linked by its
``!Sample_relation = SRA: …?term=SRX…``) the FASTQ files of its RNA-seq runs, with ENA's MD5 and
size. A GSM sequenced in several runs gets the files of all of them; its annotations list the runs
(``sra_runs``) and which files belong to which run (``sra_run_files``: run → FASTQ URLs), and
:mod:`genemill.pipeline.salmon_run` quantifies them together with one ``salmon quant`` (refusing a
mix of single- and paired-end runs). Runs of the GSM that are not RNA-seq are listed but not
attached. A GSM whose reads cannot be had or quantified falls back to the submitter's table, when
the series has one (:mod:`genemill.pipeline.process`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select

from genemill.accessions import Archive, parse_accession
from genemill.config import Settings
from genemill.errors import AccessionError
from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.pipeline.ingest import store_experiment
from genemill.pipeline.rnaseq_download import RUN_FILES
from genemill.sources.ena import EnaRun
from genemill.store.db import Database
from genemill.store.models import OriginalFile, Sample

__all__ = [
    "RNA_STRATEGIES",
    "SEQUENCING",
    "attach_sra_runs",
    "is_rna_seq",
    "link_geo_series_runs",
    "run_sra_survey_job",
    "sra_metadata",
    "sra_study_of",
    "store_sra_study",
]

SEQUENCING = "high-throughput sequencing"
RNA_STRATEGIES = frozenset({"rna-seq", "mirna-seq", "ncrna-seq", "ssrna-seq"})
_SRA_TERM = re.compile(r"\b((?:[SED]RP|[SED]RX)\d+|PRJ[EDN][A-Z]\d+)\b")


def _platform_name(run: EnaRun) -> str:
    return (
        run.instrument_model if run.instrument_model not in ("", "unspecified") else run.instrument_platform
    )


def is_rna_seq(run: EnaRun) -> bool:
    """True for transcriptome sequencing (or a run ENA does not describe): worth quantifying."""
    strategy_ok = run.library_strategy.lower() in RNA_STRATEGIES or not run.library_strategy
    source_ok = run.library_source.upper() in ("TRANSCRIPTOMIC", "TRANSCRIPTOMIC SINGLE CELL", "")
    return strategy_ok and source_ok


def sra_metadata(accession: str, runs: list[EnaRun]) -> ExperimentMetadata:
    """The experiment (``accession``) with one sample per run, FASTQ URLs as its raw files."""
    first = runs[0]
    studies = {run.study_accession for run in runs} | {run.secondary_study_accession for run in runs}
    platforms: dict[str, PlatformRecord] = {}
    samples = []
    for run in runs:
        name = _platform_name(run) or "unknown sequencer"
        platforms.setdefault(
            name,
            PlatformRecord(
                accession=name,
                title=name,
                technology=SEQUENCING,
                manufacturer=run.instrument_platform,
                organism=[run.scientific_name] if run.scientific_name else [],
            ),
        )
        samples.append(
            SampleRecord(
                accession=run.run_accession,
                title=run.sample_title or run.experiment_title or run.run_accession,
                organism=[run.scientific_name] if run.scientific_name else [],
                taxon_ids=[int(run.tax_id)] if run.tax_id.isdigit() else [],
                platform=name,
                fields=_run_fields(run),
                supplementary_files=[fastq.url for fastq in run.fastq] if is_rna_seq(run) else [],
            )
        )
    series = SeriesRecord(
        accession=accession,
        title=first.study_title or f"SRA study {accession}",
        description=_description(runs),
        alternate_accessions=sorted(s for s in studies if s and s != accession),
        sample_accessions=[run.run_accession for run in runs],
        platform_accessions=sorted(platforms),
        fields={"ena_read_run_report": [accession]},
    )
    return ExperimentMetadata(
        source="SRA",
        series=series,
        platforms=list(platforms.values()),
        samples=samples,
        file_format="ENA read_run TSV",
    )


def _run_fields(run: EnaRun) -> dict[str, list[str]]:
    values: dict[str, Any] = {
        "run_accession": run.run_accession,
        "experiment_accession": run.experiment_accession,
        "sample_accession": run.sample_accession,
        "secondary_sample_accession": run.secondary_sample_accession,
        "study_accession": run.study_accession,
        "library_layout": run.library_layout,
        "library_strategy": run.library_strategy,
        "library_source": run.library_source,
        "instrument_platform": run.instrument_platform,
        "instrument_model": run.instrument_model,
        "read_count": "" if run.read_count is None else str(run.read_count),
        "base_count": "" if run.base_count is None else str(run.base_count),
    }
    return {key: [str(value)] for key, value in values.items() if value}


def _description(runs: list[EnaRun]) -> str:
    layouts = Counter(run.library_layout.lower() or "unknown layout" for run in runs)
    strategies = Counter(run.library_strategy or "unknown strategy" for run in runs)
    return (
        f"{len(runs)} sequencing run(s) listed by ENA: "
        + ", ".join(f"{n} {layout}" for layout, n in sorted(layouts.items()))
        + "; "
        + ", ".join(f"{n} {strategy}" for strategy, n in sorted(strategies.items()))
        + "."
    )


def store_sra_study(db: Database, accession: str, runs: list[EnaRun]) -> tuple[str, int]:
    """Store the study's runs as an experiment; record ENA's MD5 and size on each FASTQ file."""
    metadata = sra_metadata(accession, runs)
    expected = {fastq.url: fastq for run in runs for fastq in run.fastq}
    with db.session() as session:
        experiment = store_experiment(session, metadata)
        session.flush()
        rows = session.scalars(
            select(OriginalFile).join(Sample).where(Sample.accession.in_([r.run_accession for r in runs]))
        )
        for row in rows:
            fastq = expected.get(row.source_url)
            if fastq is not None:
                row.expected_md5, row.expected_size_in_bytes = fastq.md5, fastq.size
        return experiment.accession, len(experiment.samples)


def run_sra_survey_job(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler part of ``survey`` for SRA/ENA accessions: ask ENA, store the experiment."""
    from genemill.sources.ena import list_read_runs
    from genemill.sources.http import make_client

    accession = parse_accession(target)
    if accession.archive is not Archive.SRA:
        msg = f"{accession.code} is not an SRA/ENA study accession"
        raise AccessionError(msg)
    with make_client(settings) as client:
        runs = list_read_runs(client, settings, accession.code)
    db = Database(settings.resolved_database_url)
    try:
        code, samples = store_sra_study(db, accession.code, runs)
    finally:
        db.dispose()
    return {"accession": code, "samples": samples}


def sra_study_of(metadata: ExperimentMetadata) -> str | None:
    """The SRA study (SRP/ERP/DRP, else PRJ…) a GEO series names in its SRA relation, if any."""
    studies = []
    for relation in metadata.series.fields.get("Series_relation", []):
        kind, _, target = relation.partition(":")
        if kind.strip() == "SRA" and (match := _SRA_TERM.search(target)):
            studies.append(match.group(1))
    return next((s for s in studies if s[1:3] == "RP"), studies[0] if studies else None)


def _sample_experiments(metadata: ExperimentMetadata) -> dict[str, str]:
    """SRX/ERX accession → GSM, from the samples' ``SRA`` relations."""
    linked = {}
    for record in metadata.samples:
        for relation in record.fields.get("Sample_relation", []):
            kind, _, target = relation.partition(":")
            match = re.search(r"\b([SED]RX\d+)\b", target)
            if kind.strip() == "SRA" and match:
                linked[match.group(1)] = record.accession
    return linked


def attach_sra_runs(db: Database, metadata: ExperimentMetadata, runs: list[EnaRun]) -> dict[str, list[str]]:
    """Give each GSM of ``metadata`` the FASTQ files of its SRA RNA-seq runs; return GSM → run accessions."""
    linked = _sample_experiments(metadata)
    by_sample: dict[str, list[EnaRun]] = defaultdict(list)
    for run in runs:
        if run.experiment_accession in linked:
            by_sample[linked[run.experiment_accession]].append(run)
    with db.session() as session:
        samples = session.scalars(select(Sample).where(Sample.accession.in_(list(by_sample))))
        for sample in samples:
            found = sorted(by_sample[sample.accession], key=lambda r: r.run_accession)
            usable = [run for run in found if is_rna_seq(run) and run.fastq]
            sample.annotations = {
                **(sample.annotations or {}),
                "sra_runs": [r.run_accession for r in found],
                RUN_FILES: {run.run_accession: [fastq.url for fastq in run.fastq] for run in usable},
            }
            if not usable:
                continue
            existing = {f.source_url for f in sample.original_files}
            for fastq in (fastq for run in usable for fastq in run.fastq):
                if fastq.url not in existing:
                    sample.original_files.append(
                        OriginalFile(
                            source_url=fastq.url,
                            filename=fastq.name,
                            kind="FASTQ",
                            expected_md5=fastq.md5,
                            expected_size_in_bytes=fastq.size,
                        )
                    )
            sample.has_raw = True
    return {gsm: [r.run_accession for r in found] for gsm, found in by_sample.items()}


def link_geo_series_runs(
    settings: Settings, db: Database, metadata: ExperimentMetadata
) -> dict[str, list[str]]:
    """Ask ENA for the runs of a GEO series' SRA study and attach them (see the module docstring)."""
    study = sra_study_of(metadata)
    if study is None:
        return {}
    from genemill.sources.ena import list_read_runs
    from genemill.sources.http import make_client

    with make_client(settings) as client:
        runs = list_read_runs(client, settings, study)
    return attach_sra_runs(db, metadata, runs)
