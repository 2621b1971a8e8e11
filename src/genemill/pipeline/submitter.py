"""Submitter-processed samples ("NO_OP" in refine.bio): the GSM data table, mapped to Ensembl genes.

For each sample: the identifier column is detected by overlap with the platform's probe ids (a
table overlapping < 50% is refused with the figure), the value column (``VALUE``) is parsed with
non-numeric cells reported, never zeroed, linear (MAS5-like) values are log2-transformed (zeros and
negatives become NaN and are counted), and probes are mapped and collapsed per gene under the
recorded policy. Results are stored with ``mode = submitter`` so datasets can include or exclude
them. One bad sample never sinks its experiment: it is marked unprocessable with its reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

import genemill
from genemill.config import Settings
from genemill.errors import InputError, NotFoundError
from genemill.formats.records import DataTable, SampleRecord
from genemill.genes import (
    DEFAULT_COLLAPSE,
    DEFAULT_MULTI_GENE,
    ProbeMap,
    ValueScale,
    detect_id_column,
    detect_value_scale,
    map_to_genes,
    parse_numeric_column,
    to_log2,
)
from genemill.pipeline.annotation import best_platform_table, load_platform_table, probe_map_for
from genemill.store.expression import write_expression
from genemill.store.models import Experiment, OriginalFile, Sample
from genemill.store.results import EXPRESSION, mark_unprocessable, record_result

__all__ = ["NOTHING_TO_PROCESS", "SubmitterOutcome", "fallback_refusal", "process_submitter"]

PROCESSOR = "submitter"
NOTHING_TO_PROCESS = "no raw files on disk and no submitter-processed table"
"""Why a sample with neither raw files nor a submitter's table is refused."""


def fallback_refusal(raw_reason: str | None, submitter_reason: str | None) -> str:
    """Why a sample is refused once its raw data and then its submitter's table were tried.

    The one rule of the experiment-wide and the per-sample routes: raw data refused and the table
    refused gives ``"<raw reason>; and <submitter reason>"``; a table that was not even found
    gives ``"<raw reason>; and no submitter-processed table"``.
    """
    if raw_reason is None:
        return submitter_reason or NOTHING_TO_PROCESS
    return f"{raw_reason}; and {submitter_reason or 'no submitter-processed table'}"


@dataclass
class SubmitterOutcome:
    """Samples processed and refused by one submitter run."""

    processed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    platform_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class _SampleValues:
    values: pd.Series
    detail: dict[str, Any]


def _metadata_file(session: Session, experiment: Experiment) -> Path:
    query = (
        select(OriginalFile)
        .where(OriginalFile.experiment_id == experiment.id, OriginalFile.kind == "METADATA")
        .order_by(OriginalFile.id.desc())
    )
    stored = session.scalars(query).first()
    if stored is None or not stored.local_path or not Path(stored.local_path).is_file():
        msg = f"{experiment.accession}: no stored metadata file with submitter tables; re-import it"
        raise NotFoundError(msg)
    return Path(stored.local_path)


def _value_column(frame: pd.DataFrame, id_column: str) -> str:
    if "VALUE" in frame.columns:
        return "VALUE"
    for column in frame.columns:
        if column != id_column:
            return str(column)
    msg = f"data table has no value column besides {id_column!r}"
    raise InputError(msg)


def _sample_values(accession: str, table: DataTable, probe_map: ProbeMap, platform: str) -> _SampleValues:
    frame = table.to_frame()
    match = detect_id_column(frame, probe_map.probe_ids, sample=accession, platform=platform)
    value_column = _value_column(frame, match.column)
    ids = frame[match.column].astype(str).to_numpy()
    numbers = parse_numeric_column(frame[value_column].to_numpy(), row_ids=ids)
    scale = detect_value_scale(numbers.values)
    values = numbers.values
    detail: dict[str, Any] = {
        "id_column": match.column,
        "id_overlap": round(match.overlap, 4),
        "value_column": value_column,
        "value_scale": scale.value,
        "n_rows": len(ids),
        "n_null": numbers.n_null,
        "n_non_numeric": len(numbers.bad_cells),
        "non_numeric_examples": [list(cell) for cell in numbers.bad_cells[:5]],
    }
    if scale is ValueScale.LINEAR:
        logged = to_log2(values)
        values = logged.values
        detail.update(log2_transformed=True, n_zero=logged.n_zero, n_negative=logged.n_negative)
    series = pd.Series(values, index=pd.Index(ids, name="probe_id"))
    detail["n_duplicate_ids"] = int(series.index.duplicated().sum())
    series = series[~series.index.duplicated()]
    return _SampleValues(series, detail)


def _platform_map(settings: Settings, platform: str, probe_ids: list[str]) -> tuple[ProbeMap, str]:
    table = load_platform_table(settings, platform) or best_platform_table(
        settings, probe_ids, prefer=platform
    )
    if table is None:
        msg = f"no probe annotation table for platform {platform} (import its GPL SOFT first)"
        raise NotFoundError(msg)
    return probe_map_for(settings, table), table.accession


def _group(
    samples: list[Sample], records: dict[str, SampleRecord]
) -> tuple[dict[str, list[SampleRecord]], dict[str, str]]:
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    refused: dict[str, str] = {}
    for sample in samples:
        record = records.get(sample.accession)
        if record is None or record.table is None or record.table.n_rows == 0:
            refused[sample.accession] = "no submitter-processed data table in the series metadata"
        elif not (record.platform or (sample.platform and sample.platform.accession)):
            refused[sample.accession] = "submitter table has no platform to map its identifiers"
        else:
            groups[record.platform or sample.platform.accession].append(record)  # type: ignore[union-attr]
    return groups, refused


def _process_platform(
    settings: Settings, platform: str, records: list[SampleRecord], outcome: SubmitterOutcome
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]]]:
    first = records[0].table
    assert first is not None
    try:
        probe_map, table_accession = _platform_map(
            settings, platform, list(first.to_frame().iloc[:, 0].astype(str))
        )
    except (NotFoundError, InputError) as exc:  # no usable annotation: these samples cannot be mapped
        outcome.refused.update(dict.fromkeys((r.accession for r in records), str(exc)))
        return pd.DataFrame(), pd.DataFrame(), {}
    columns: dict[str, pd.Series] = {}
    details: dict[str, dict[str, Any]] = {}
    for record in records:
        try:
            values = _sample_values(record.accession, record.table, probe_map, platform)  # type: ignore[arg-type]
        except InputError as exc:
            outcome.refused[record.accession] = str(exc)
            continue
        columns[record.accession] = values.values
        details[record.accession] = values.detail
    if not columns:
        return pd.DataFrame(), pd.DataFrame(), details
    matrix = pd.DataFrame(columns)
    genes = map_to_genes(matrix, probe_map, multi_gene=DEFAULT_MULTI_GENE, collapse=DEFAULT_COLLAPSE)
    report = genes.report.as_dict() | {
        "annotation_table": table_accession,
        "probe_map": probe_map.stats.__dict__,
    }
    outcome.platform_reports[platform] = report
    for accession in columns:
        details[accession]["n_genes"] = int(np.isfinite(genes.expression[accession].to_numpy()).sum())
    return genes.expression, genes.genes, details


def process_submitter(
    settings: Settings, session: Session, experiment: Experiment, samples: list[Sample]
) -> SubmitterOutcome:
    """Map the submitter tables of ``samples`` to genes, store one Parquet file and the result."""
    from genemill.pipeline.survey import read_metadata_file

    try:
        source = _metadata_file(session, experiment)
    except NotFoundError:  # a private experiment of raw files: there are no submitter tables
        reason = "no submitter-processed data table (no series metadata file)"
        outcome = SubmitterOutcome(refused=dict.fromkeys((s.accession for s in samples), reason))
        for sample in samples:
            mark_unprocessable(sample, reason)
        return outcome
    metadata = read_metadata_file(source)
    groups, refused = _group(samples, {r.accession: r for r in metadata.samples})
    outcome = SubmitterOutcome(refused=refused)
    frames, gene_tables, details = [], [], {}
    for platform, records in sorted(groups.items()):
        expression, genes, platform_details = _process_platform(settings, platform, records, outcome)
        details.update(platform_details)
        if not expression.empty:
            frames.append(expression)
            gene_tables.append(genes)
    by_accession = {s.accession: s for s in samples}
    for accession, reason in outcome.refused.items():
        mark_unprocessable(by_accession[accession], f"submitter table refused: {reason}")
    if not frames:
        return outcome
    _store(settings, session, experiment, (frames, gene_tables, details, source), outcome, by_accession)
    return outcome


def _store(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    parts: tuple[list[pd.DataFrame], list[pd.DataFrame], dict[str, dict[str, Any]], Path],
    outcome: SubmitterOutcome,
    by_accession: dict[str, Sample],
) -> None:
    frames, gene_tables, details, source = parts
    expression = pd.concat(frames, axis=1, join="outer").sort_index()
    genes = pd.concat(gene_tables)
    genes = genes[~genes.index.duplicated()]
    from genemill.store.files import sha256_file

    input_sha = sha256_file(source)
    parameters = {
        "multi_gene": DEFAULT_MULTI_GENE.value,
        "collapse": DEFAULT_COLLAPSE.value,
        "log2_linear_values": True,
    }
    path = (
        settings.home
        / "expression"
        / experiment.accession
        / f"submitter-{genemill.__version__}-{input_sha[:12]}.parquet"
    )
    metadata = {
        "feature_type": "gene",
        "value_type": "log2",
        "processor": PROCESSOR,
        "processor_version": genemill.__version__,
        "parameters": parameters,
        "annotation_release": next(iter(outcome.platform_reports.values()))["annotation_release"],
    }
    write_expression(path, expression, metadata=metadata, annotation=genes)
    processed = [by_accession[a] for a in expression.columns]
    record_result(
        session,
        processed,
        experiment=experiment,
        processor=PROCESSOR,
        version=genemill.__version__,
        mode="submitter",
        parameters=parameters,
        input_sha256=[input_sha],
        files=[(EXPRESSION, path)],
        annotations={"value_type": "log2", "platforms": outcome.platform_reports, "samples": details},
    )
    outcome.processed = list(expression.columns)
    outcome.path = path
