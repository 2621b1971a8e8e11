"""RNA-seq runs of one experiment → tximport gene tables → three expression files and a result.

Per experiment, as refine.bio does after Salmon (tximport's numbers, :mod:`genemill.numerics.tximport`):
``countsFromAbundance = "no"`` gives gene counts (estimated fragments) and gene TPM;
``"lengthScaledTPM"`` gives the dataset value type. Each run's ``quant.sf`` is read once and
checked before it joins: readable and complete (a ``quant.sf`` inside a Salmon output folder must
have the number of rows ``aux_info/meta_info.json`` reports), every transcript in the tx2gene
table, and the same transcripts as the experiment's first good run (one index for all runs). A
run failing a check is refused with the reason naming its file; the others go on.

Files written (``$GENEMILL_HOME/expression/<experiment>/``, float32 Parquet, genes × samples):
kind ``expression`` (lengthScaledTPM), ``expression:counts`` and ``expression:tpm``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from genemill.config import Settings
from genemill.errors import InputError, SalmonFormatError
from genemill.formats.salmon import TranscriptQuant, read_quant, read_salmon_meta_info
from genemill.numerics.tximport import (
    GeneMapping,
    TranscriptEstimates,
    map_transcripts,
    scale_counts_from_abundance,
    summarize_to_genes,
)
from genemill.pipeline.salmon_index import resolve_tx2gene
from genemill.store.expression import encode_expressions, feature_columns, write_encoded
from genemill.store.models import Experiment, ProcessingResult, Sample
from genemill.store.results import EXPRESSION, record_result

__all__ = [
    "COUNTS_KIND",
    "TPM_KIND",
    "GeneLayout",
    "GeneTables",
    "QuantInput",
    "ResultSpec",
    "gene_layout",
    "prepare_gene_layout",
    "store_gene_tables",
    "summarize_runs",
]

COUNTS_KIND = "expression:counts"
TPM_KIND = "expression:tpm"
_VALUE_TYPES = {EXPRESSION: "lengthScaledTPM", COUNTS_KIND: "counts", TPM_KIND: "tpm"}


@dataclass(frozen=True)
class QuantInput:
    """One run's ``quant.sf`` (plain or gzip), the sample (column) it becomes, and its Salmon
    ``meta_info.json`` when known (its ``num_valid_targets`` must equal the rows of ``path``)."""

    accession: str
    path: Path
    meta_info: Path | None = None


@dataclass
class GeneTables:
    """Gene × sample tables of the runs that passed (columns: sample accessions)."""

    counts: pd.DataFrame
    tpm: pd.DataFrame
    length_scaled_tpm: pd.DataFrame
    symbols: pd.Series | None
    n_transcripts: int
    refused: dict[str, str] = field(default_factory=dict)
    layout: GeneLayout | None = None  # the tables' genes (index, symbols, file columns) when known


def _read_checked(run: QuantInput) -> TranscriptQuant:
    path = run.path
    with path.open("rb") as fh:
        quant = read_quant(fh, source_format="salmon")
    meta = run.meta_info or path.parent / "aux_info" / "meta_info.json"
    if (run.meta_info is not None or path.name == "quant.sf") and meta.is_file():
        with meta.open("rb") as fh:
            expected = read_salmon_meta_info(fh).num_targets
        if expected is not None and expected != len(quant):
            msg = f"truncated file: {len(quant)} transcript rows, but {meta} reports {expected} targets"
            raise SalmonFormatError(msg, path=str(path))
    return quant


@dataclass(frozen=True)
class GeneLayout:
    """tx2gene applied to one transcript order (``names``, as in the runs' ``quant.sf``): the
    transcript → gene mapping, the genes (``index``) and their symbols, and the gene id and
    symbol columns of the expression files (``feature_columns``, aligned to ``index``). It depends
    on no quantified value."""

    names: np.ndarray
    mapping: GeneMapping
    symbols: pd.Series | None
    index: pd.Index
    annotation: pd.DataFrame | None
    feature_columns: dict[str, Any]


_LAYOUTS: list[tuple[pd.DataFrame, str, GeneLayout]] = []  # most recent last
_LAYOUTS_KEPT = 4
_LAYOUTS_LOCK = threading.Lock()


def gene_layout(tx2gene: pd.DataFrame, names: np.ndarray, *, source: str) -> GeneLayout:
    """Resolve ``names`` in ``tx2gene`` and map them to genes; raise InputError naming the gaps.

    Kept for the last few tx2gene frames (by identity: a reference's table is read once per
    process and never modified) and transcript orders, so the work can be done ahead, while
    Salmon runs (:func:`prepare_gene_layout`): for a 250,000-transcript reference it is ~0.1 s.
    """
    with _LAYOUTS_LOCK:
        for frame, frame_source, layout in reversed(_LAYOUTS):
            if frame is tx2gene and frame_source == source and np.array_equal(layout.names, names):
                return layout
    resolved = resolve_tx2gene(tx2gene, names.tolist(), source=source)
    mapping = map_transcripts(names, resolved["transcript_id"], resolved["gene_id"], source=source)
    symbols = None
    index = pd.Index(mapping.gene_ids, name="gene_id", dtype=object)
    if "gene_name" in resolved:
        symbols = resolved.drop_duplicates("gene_id").set_index("gene_id")["gene_name"].reindex(index)
    annotation = _annotation(symbols)
    layout = GeneLayout(names, mapping, symbols, index, annotation, feature_columns(index, annotation))
    with _LAYOUTS_LOCK:
        _LAYOUTS.append((tx2gene, source, layout))
        del _LAYOUTS[:-_LAYOUTS_KEPT]
    return layout


def _annotation(symbols: pd.Series | None) -> pd.DataFrame | None:
    return None if symbols is None else pd.DataFrame({"symbol": symbols})


def prepare_gene_layout(tx2gene: pd.DataFrame, *, source: str) -> None:
    """Compute and keep the layout of the table's own transcript order, e.g. in a thread while
    Salmon runs: a registered reference's ``tx2gene.tsv`` lists its transcripts in the order of
    its FASTA, which Salmon's ``quant.sf`` follows. Another order is simply not found in the
    cache later; a failure is raised, with its message, by :func:`summarize_runs` itself."""
    with contextlib.suppress(Exception):
        gene_layout(tx2gene, tx2gene["transcript_id"].to_numpy(dtype=object), source=source)


def _accept(
    runs: list[QuantInput], tx2gene: pd.DataFrame, source: str, refused: dict[str, str]
) -> tuple[list[tuple[QuantInput, TranscriptQuant]], GeneLayout | None]:
    """Read every run; keep those that agree with the first good one and with tx2gene."""
    kept: list[tuple[QuantInput, TranscriptQuant]] = []
    layout: GeneLayout | None = None
    for run in runs:
        try:
            quant = _read_checked(run)
            if layout is None:
                layout = gene_layout(tx2gene, quant.names, source=source)
            elif not np.array_equal(quant.names, kept[0][1].names):
                quant = _aligned(quant, kept[0][1], run.path, kept[0][0].path, tx2gene, source)
        except InputError as exc:  # SalmonFormatError is one
            text = str(exc)
            refused[run.accession] = text if str(run.path) in text else f"{run.path}: {text}"
            continue
        kept.append((run, quant))
    return kept, layout


def _aligned(
    quant: TranscriptQuant,
    first: TranscriptQuant,
    path: Path,
    first_path: Path,
    tx2gene: pd.DataFrame,
    source: str,
) -> TranscriptQuant:
    position = pd.Index(quant.names).get_indexer(first.names)
    if len(quant) != len(first) or (position < 0).any():
        resolve_tx2gene(tx2gene, quant.names.tolist(), source=source)  # a tx2gene gap is the clearer cause
        absent = first.names[position < 0][:3].tolist()
        msg = (
            f"quantifies {len(quant)} transcripts and {first_path} {len(first)}; all runs of an "
            f"experiment must use the same transcriptome index (e.g. not here: {absent})"
        )
        raise InputError(msg)
    return TranscriptQuant(
        names=first.names,
        length=quant.length[position],
        effective_length=quant.effective_length[position],
        tpm=quant.tpm[position],
        num_reads=quant.num_reads[position],
        source_format=quant.source_format,
    )


def summarize_runs(runs: list[QuantInput], tx2gene: pd.DataFrame, *, source: str) -> GeneTables:
    """Check and read the runs' quant.sf files, then summarise them to genes (tximport).

    ``tx2gene`` has ``transcript_id``, ``gene_id`` and optionally ``gene_name`` columns;
    ``source`` names it in messages. Runs that fail a check are in ``refused``.

    Raises
    ------
    InputError
        When no run passes (the reasons are in the message).
    """
    refused: dict[str, str] = {}
    kept, layout = _accept(runs, tx2gene, source, refused)
    if not kept or layout is None:
        msg = "no usable quantification: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
        raise InputError(msg)
    names = kept[0][1].names
    estimates = TranscriptEstimates(
        transcript_ids=names,
        abundance=np.column_stack([q.tpm for _, q in kept]),
        counts=np.column_stack([q.num_reads for _, q in kept]),
        length=np.column_stack([q.effective_length for _, q in kept]),
    )
    genes = summarize_to_genes(estimates, layout.mapping, counts_from_abundance="no")
    scaled = scale_counts_from_abundance(
        genes.counts, genes.abundance, genes.length, method="lengthScaledTPM"
    )
    same_genes = genes.gene_ids is layout.mapping.gene_ids  # always, as summarize_to_genes works now
    index = layout.index if same_genes else pd.Index(genes.gene_ids, name="gene_id", dtype=object)
    columns = pd.Index([run.accession for run, _ in kept], dtype=object)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=columns)

    return GeneTables(
        counts=frame(genes.counts),
        tpm=frame(genes.abundance),
        length_scaled_tpm=frame(scaled),
        symbols=layout.symbols,
        n_transcripts=len(names),
        refused=refused,
        layout=layout if same_genes else None,
    )


@dataclass(frozen=True)
class ResultSpec:
    """How a result was made: processor, version, mode, parameters, inputs and annotations."""

    processor: str
    version: str
    mode: str
    parameters: dict[str, Any]
    input_sha256: list[str]
    annotations: dict[str, Any]


def store_gene_tables(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    *,
    samples: list[Sample],
    tables: GeneTables,
    spec: ResultSpec,
    qc: dict[str, dict[str, Any]] | None = None,
) -> ProcessingResult:
    """Write the three expression files and record one current result for ``samples`` (with
    their ``qc`` by accession, when given: :func:`genemill.store.results.record_result`)."""
    digest = hashlib.sha256("\n".join(sorted(spec.input_sha256)).encode()).hexdigest()[:12]
    base = settings.home / "expression" / experiment.accession
    stem = f"{spec.processor}-{spec.version}-{digest}".replace("/", "_").replace("+", "_")
    layout = tables.layout
    annotation = _annotation(tables.symbols) if layout is None else layout.annotation
    columns = [s.accession for s in samples]
    kinds: list[str] = []
    jobs: list[tuple[Path, pd.DataFrame, dict[str, Any]]] = []
    for kind, values in (
        (EXPRESSION, tables.length_scaled_tpm),
        (COUNTS_KIND, tables.counts),
        (TPM_KIND, tables.tpm),
    ):
        metadata = {
            "processor": spec.processor,
            "processor_version": spec.version,
            "parameters": spec.parameters,
            "value_type": _VALUE_TYPES[kind],
            "feature_type": "gene",
            "annotation_release": spec.annotations.get("reference", {}).get("release", ""),
        }
        path = base / f"{stem}.{_VALUE_TYPES[kind]}.parquet"
        same = values.columns.tolist() == columns  # the usual case: no column copy
        kinds.append(kind)
        jobs.append((path, values if same else values[columns], metadata))
    # The three tables share their gene ids and symbols (built once); large ones are encoded side by side.
    features = None if layout is None else (layout.index, layout.feature_columns)  # made ahead
    encoded = encode_expressions(jobs, annotation=annotation, features=features)
    files = [(kind, file.path, file.sha256, file.size) for kind, file in zip(kinds, encoded, strict=True)]
    # Digests and sizes are known: the files are written in a thread while the result is recorded
    # (file system calls release the GIL), and are in place before this returns, so before the
    # caller commits. A failed write is raised here; the caller's transaction then rolls back.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="expression-write") as pool:
        written = pool.submit(write_encoded, encoded)
        try:
            result = record_result(
                session,
                samples,
                experiment=experiment,
                processor=spec.processor,
                version=spec.version,
                mode=spec.mode,
                parameters=spec.parameters,
                input_sha256=spec.input_sha256,
                files=files,
                annotations={"value_type": "lengthScaledTPM"} | spec.annotations,
                qc=qc,
            )
        finally:
            written.result()
    return result
