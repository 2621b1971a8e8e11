"""Affymetrix samples: CEL files on disk -> RMA (or MAS5) -> probe sets -> Ensembl genes, stored.

The CEL header's chip type decides the platform (it wins over the repository's label); the CDF is
found in ``$GENEMILL_HOME/cdf/`` by normalized chip type (``genemill import-cel --cdf`` puts it
there), or in online mode fetched from the CDF repository (:mod:`genemill.pipeline.affy_cdf`),
and its parsed layout cached by checksum. Every CEL is checked first (readable, same chip and
dimensions as the CDF): a bad array is marked unprocessable with the reason and the others of
its experiment are processed. Methods and the mode recorded on each result:

* ``rma``: the experiment's arrays of one platform normalized together (``rma-experiment``);
* ``rma-reference``: each array alone against the platform's stored RMA reference
  (``rma-reference``, reference id in the parameters; :mod:`genemill.pipeline.affy_reference`);
* ``mas5``: a single-array method (``mas5-single-array``).

Output files are named by method, chip, version and a digest of the sample set (accessions and
CEL sha256, plus the reference id), so runs over different samples never share a file name.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import genemill
from genemill import affy
from genemill.config import Settings
from genemill.errors import DownloadError, InputError, NotFoundError, SourceError
from genemill.formats.cdf import CdfLayout
from genemill.formats.cel import CelFile
from genemill.genes import DEFAULT_COLLAPSE, DEFAULT_MULTI_GENE, map_to_genes
from genemill.numerics.mas5 import Mas5Plan, Mas5Result, mas5_plan
from genemill.numerics.mas5 import mas5 as mas5_kernel
from genemill.pipeline.affy_cdf import CdfResolver, cdf_dir, install_cdf
from genemill.pipeline.affy_reference import current_reference, platform_accession
from genemill.pipeline.annotation import best_platform_table, probe_map_for
from genemill.pipeline.rma_bounded import experiment_rma
from genemill.platforms import cel_chip_stem
from genemill.store.expression import write_expression
from genemill.store.files import sha256_file
from genemill.store.models import Experiment, OriginalFile, Platform, Sample
from genemill.store.results import EXPRESSION, mark_unprocessable, record_result

__all__ = ["METHODS", "AffyOutcome", "cdf_dir", "install_cdf", "mas5_on_layout", "process_affymetrix"]

PROBESET_KIND = "expression:probeset"
MODES = {"rma": "rma-experiment", "rma-reference": "rma-reference", "mas5": "mas5-single-array"}
METHODS = tuple(MODES)
"""Summarization methods: experiment-wide RMA, RMA against the platform reference, MAS5."""


@dataclass
class AffyOutcome:
    """Samples processed and refused by one Affymetrix run, with per-platform details."""

    processed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _cel_file(sample: Sample) -> OriginalFile:
    """The sample's CEL file on disk."""
    return next(f for f in sample.original_files if f.kind == "CEL" and f.local_path)


def _cel_path(sample: Sample) -> Path:
    return Path(str(_cel_file(sample).local_path))


def _cel_sha256(sample: Sample) -> str:
    """The CEL's checksum as recorded when it entered the file store, else computed now.

    Stored files are content-addressed and never rewritten, so the recorded sha256 is the
    content's; hashing a 13 MB array again took ~8 ms of every per-sample job.
    """
    return _cel_file(sample).sha256 or sha256_file(_cel_path(sample))


def _cel_name(sample: Sample) -> str:
    """The CEL file's own name (the stored copy is named by its hash)."""
    return _cel_file(sample).filename


def _read_cel(path: Path) -> CelFile:
    """Parse a CEL file; each thread keeps the last one it parsed, so a one-array job reads it once.

    Its header is checked first (``_check_cels``), then its intensities are summarized, in the
    same thread. Only one parsed file is kept per thread (~10 MB for an HG-U133 Plus 2.0 array):
    RMA over many arrays still reads them one at a time. Stored files never change; the key
    includes size and mtime regardless.
    """
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    last: tuple[tuple[str, int, int], CelFile] | None = getattr(_LAST_CEL, "entry", None)
    if last is not None and last[0] == key:
        return last[1]
    cel = affy.read_cel(path)
    _LAST_CEL.entry = (key, cel)
    return cel


_LAST_CEL = threading.local()


def _mas5_plan(layout: CdfLayout) -> Mas5Plan:
    """The layout's MAS5 plan, made once per layout object (layouts are cached per process)."""
    with _PLANS_LOCK:
        hit = _PLANS.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    plan = mas5_plan(
        layout.pm_index, layout.mm_index, offsets=layout.offsets, n_cols=layout.cols, n_rows=layout.rows
    )
    with _PLANS_LOCK:  # a Dask worker may run jobs in several threads
        while len(_PLANS) >= _PLANS_KEPT:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[id(layout)] = (layout, plan)  # the layout is held, so its id is not reused meanwhile
    return plan


_PLANS: dict[int, tuple[CdfLayout, Mas5Plan]] = {}
_PLANS_KEPT = 4
_PLANS_LOCK = threading.Lock()


def _check_cels(
    resolver: CdfResolver, samples: list[Sample], outcome: AffyOutcome
) -> dict[str, tuple[CdfLayout, list[Sample]]]:
    """Read every CEL header; group readable ones by chip type; refuse the others with the reason."""
    groups: dict[str, tuple[CdfLayout, list[Sample]]] = {}
    for sample in samples:
        path = _cel_path(sample)
        try:
            cel = _read_cel(path)
            layout = resolver.layout_for(cel)
        except (InputError, NotFoundError, SourceError, OSError) as exc:  # SourceError: CDF fetch
            _refuse(
                outcome, [sample], str(exc).replace(f"{path}: ", "").replace(str(path), _cel_name(sample))
            )
            continue
        groups.setdefault(cel.chip_type, (layout, []))[1].append(sample)
    return groups


def _refuse(outcome: AffyOutcome, samples: list[Sample], reason: str) -> None:
    for sample in samples:
        name = _cel_name(sample)
        text = reason if reason.startswith(f"{name}: ") else f"{name}: {reason}"
        outcome.refused[sample.accession] = text
        mark_unprocessable(sample, text)


def mas5_on_layout(intensities: np.ndarray, layout: CdfLayout) -> Mas5Result:
    """MAS5 of whole-chip intensities (cells x arrays) on ``layout``, with its plan made once."""
    return mas5_kernel(
        intensities,
        layout.pm_index,
        layout.mm_index,
        offsets=layout.offsets,
        n_cols=layout.cols,
        n_rows=layout.rows,
        plan=_mas5_plan(layout),
    )


def _summarize(
    paths: list[Path],
    layout: CdfLayout,
    method: str,
    reference: affy.RmaReference | None,
    *,
    scratch_dir: Path,
) -> pd.DataFrame:
    if method == "rma":  # in memory, or chunked with a disk-backed scratch matrix when large
        return experiment_rma(paths, layout, scratch_dir=scratch_dir)
    if method == "rma-reference":
        return affy.rma(paths, cdf=layout, reference=reference)
    intensities = np.column_stack([_read_cel(p).intensities for p in paths])
    result = mas5_on_layout(intensities, layout)
    keep = np.diff(layout.offsets) > 0
    ids = [pid for pid, k in zip(layout.probeset_ids, keep, strict=True) if k]
    return pd.DataFrame(
        np.log2(result.signal[keep]),
        index=pd.Index(ids, name="probe_set_id"),
        columns=[affy.sample_name(p) for p in paths],
    )


def _platform_row(session: Session, chip_type: str) -> Platform:
    """Find or create the chip's Platform row; a concurrent creator wins and its row is used.

    Parallel sample jobs may insert the same platform at once: the insert runs in a savepoint, so
    losing the race on the unique accession rolls back only the savepoint and re-selects.
    """
    accession = platform_accession(chip_type)
    platform = session.scalar(select(Platform).where(Platform.accession == accession))
    if platform is not None:
        return platform
    from genemill.platforms import describe_platform
    from genemill.store.models import Technology

    candidate = Platform(
        accession=accession,
        internal_name=cel_chip_stem(chip_type),
        title=describe_platform(accession, title=chip_type).pretty,
        technology=Technology.MICROARRAY,
        manufacturer="Affymetrix",
    )
    try:
        with session.begin_nested():
            session.add(candidate)
    except IntegrityError:
        platform = session.scalar(select(Platform).where(Platform.accession == accession))
        if platform is None:
            raise
        return platform
    return candidate


def _sample_set_digest(samples: list[Sample], input_sha256: list[str], reference_id: str) -> str:
    """Digest of which samples (and CELs, and reference) an output holds: its file-name key."""
    pairs = sorted(zip((s.accession for s in samples), input_sha256, strict=True))
    return hashlib.sha256(json.dumps([pairs, reference_id]).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class _Group:
    """The arrays of one chip type, its CDF layout and (mode ``rma-reference``) its reference."""

    chip_type: str
    layout: CdfLayout
    samples: list[Sample]
    reference: affy.RmaReference | None


@dataclass(frozen=True)
class _Run:
    """One platform group's processing: what was run on which inputs, and where outputs go."""

    method: str
    chip_type: str
    layout: CdfLayout
    input_sha256: list[str]
    reference_id: str

    def output_path(
        self, settings: Settings, experiment: Experiment, samples: list[Sample], kind: str
    ) -> Path:
        """``expression/<experiment>/affy-<method>-<chip>-<version>-<sample set>.<kind>.parquet``."""
        digest = _sample_set_digest(samples, self.input_sha256, self.reference_id)
        name = f"affy-{self.method}-{cel_chip_stem(self.chip_type)}-{genemill.__version__}-{digest}"
        return settings.home / "expression" / experiment.accession / f"{name}.{kind}.parquet"

    @property
    def parameters(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "method": self.method,
            "chip_type": self.chip_type,
            "cdf_probe_sets": len(self.layout.probeset_ids),
        }
        return found | ({"rma_reference": self.reference_id} if self.reference_id else {})


def _process_group(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    group: _Group,
    method: str,
) -> dict[str, Any]:
    chip_type, layout, samples, reference = group.chip_type, group.layout, group.samples, group.reference
    paths = [_cel_path(s) for s in samples]
    scratch = settings.home / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    probe_values = _summarize(paths, layout, method, reference, scratch_dir=scratch)
    probe_values.columns = [s.accession for s in samples]
    platform = _platform_row(session, chip_type)
    for sample in samples:
        sample.platform = platform
    run = _Run(
        method=method,
        chip_type=chip_type,
        layout=layout,
        input_sha256=[_cel_sha256(s) for s in samples],
        reference_id=reference.reference_id if reference is not None else "",
    )
    detail: dict[str, Any] = {"platform": platform.accession, "n_probe_sets": len(probe_values)}
    if reference is not None:
        detail["rma_reference"] = reference.reference_id
    parameters = run.parameters
    files = _write_outputs(settings, experiment, samples, run, probe_values, parameters, detail)
    record_result(
        session,
        samples,
        experiment=experiment,
        processor=f"affymetrix-{method}",
        version=genemill.__version__,
        mode=MODES[method],
        parameters=parameters,
        input_sha256=run.input_sha256,
        files=files,
        annotations={
            "value_type": "log2",
            "platforms": {platform.accession: detail.get("mapping") or {}},
            "chip_type": chip_type,
        },
    )
    return detail


def _write_outputs(
    settings: Settings,
    experiment: Experiment,
    samples: list[Sample],
    run: _Run,
    probe_values: pd.DataFrame,
    parameters: dict[str, Any],
    detail: dict[str, Any],
) -> list[tuple[str, Path]]:
    """Write probe-set (and, when annotation covers them, gene) values; fill ``parameters``/``detail``."""
    meta = {
        "processor": f"affymetrix-{run.method}",
        "processor_version": genemill.__version__,
        "parameters": parameters,
        "value_type": "log2",
    }
    probe_path = run.output_path(settings, experiment, samples, "probesets")
    write_expression(probe_path, probe_values, metadata=meta | {"feature_type": "probeset"})
    files = [(PROBESET_KIND, probe_path)]
    try:
        table = best_platform_table(settings, list(probe_values.index), prefer=detail["platform"])
    except DownloadError as exc:
        if exc.status != httpx.codes.NOT_FOUND:
            raise  # a transient failure: the job is retried
        table = None
        detail["annotation_fetch"] = str(exc)
    if table is None:
        detail["mapping"] = None
        detail["note"] = "no probe annotation table covers these probe sets: probe-set values only"
        return files
    probe_map = probe_map_for(settings, table)
    genes = map_to_genes(probe_values, probe_map, multi_gene=DEFAULT_MULTI_GENE, collapse=DEFAULT_COLLAPSE)
    report = genes.report.as_dict() | {"annotation_table": table.accession}
    gene_path = run.output_path(settings, experiment, samples, "genes")
    write_expression(
        gene_path,
        genes.expression,
        metadata=meta | {"feature_type": "gene", "annotation_release": report["annotation_release"]},
        annotation=genes.genes,
    )
    parameters |= {"multi_gene": DEFAULT_MULTI_GENE.value, "collapse": DEFAULT_COLLAPSE.value}
    detail["mapping"] = report
    return [(EXPRESSION, gene_path), *files]


def process_affymetrix(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    *,
    method: str = "rma",
) -> AffyOutcome:
    """Process samples with CEL files on disk; refuse unreadable or unmatched arrays with reasons.

    ``method`` is one of :data:`METHODS`. With ``rma-reference`` a platform without a stored
    reference has its samples refused with the reason (how to build one).
    """
    if method not in MODES:
        msg = f"unknown Affymetrix method {method!r}: expected one of {', '.join(METHODS)}"
        raise InputError(msg)
    outcome = AffyOutcome()
    groups = _check_cels(CdfResolver(settings), samples, outcome)
    for chip_type, (layout, samples_of_chip) in sorted(groups.items()):
        reference = None
        if method == "rma-reference":
            try:
                reference = current_reference(settings, chip_type)
                affy.check_reference(reference, layout, cdf_label=layout.chip_type or chip_type)
            except (NotFoundError, InputError) as exc:  # none stored, or built on another CDF
                _refuse(outcome, samples_of_chip, str(exc))
                continue
        group = _Group(chip_type, layout, samples_of_chip, reference)
        outcome.details[chip_type] = _process_group(settings, session, experiment, group, method)
        outcome.processed.extend(s.accession for s in samples_of_chip)
    return outcome
