"""Affymetrix samples: CEL files on disk -> RMA (or MAS5) -> probe sets -> Ensembl genes, stored.

The CEL header's chip type decides the platform (it wins over the repository's label); the CDF is
found in ``$GENEMILL_HOME/cdf/`` by normalized chip type (``genemill import-cel --cdf`` puts it
there) and its parsed layout cached by checksum. Every CEL is checked first (readable, same chip
and dimensions as the CDF): a bad array is marked unprocessable with the reason and the others of
its experiment are processed. RMA normalizes the experiment's arrays of one platform together
(mode ``rma-experiment``); MAS5 is a single-array method (mode ``mas5-single-array``).
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

import genemill
from genemill import affy
from genemill.config import Settings
from genemill.errors import InputError, NotFoundError
from genemill.formats.cdf import CdfLayout
from genemill.genes import DEFAULT_COLLAPSE, DEFAULT_MULTI_GENE, map_to_genes
from genemill.numerics.mas5 import mas5 as mas5_kernel
from genemill.pipeline.annotation import best_platform_table, probe_map_for
from genemill.platforms import cel_chip_stem, gpl_for_stem
from genemill.store.expression import write_expression
from genemill.store.files import sha256_file
from genemill.store.models import Experiment, Platform, Sample
from genemill.store.results import EXPRESSION, mark_unprocessable, record_result

__all__ = ["AffyOutcome", "cdf_dir", "install_cdf", "process_affymetrix"]

PROBESET_KIND = "expression:probeset"


@dataclass
class AffyOutcome:
    """Samples processed and refused by one Affymetrix run, with per-platform details."""

    processed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def cdf_dir(settings: Settings) -> Path:
    """Where CDF files are kept, named by normalized chip type."""
    return settings.home / "cdf"


def _chip_key(chip_type: str) -> str:
    return re.sub(r"[^a-z0-9]", "", chip_type.lower())


def install_cdf(settings: Settings, path: Path) -> Path:
    """Copy a CDF into the CDF folder under its normalized chip type (parsed once to learn it)."""
    layout = affy.read_cdf(path, cache_dir=settings.home / "cdf-cache")
    suffix = ".CDF.gz" if path.name.lower().endswith(".gz") else ".CDF"
    target = cdf_dir(settings) / f"{_chip_key(layout.chip_type or path.name.split('.')[0])}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return target


def _find_cdf(settings: Settings, chip_type: str) -> CdfLayout:
    key = _chip_key(chip_type)
    for candidate in sorted(cdf_dir(settings).glob("*")) if cdf_dir(settings).is_dir() else []:
        if candidate.name.lower().split(".")[0] == key:
            return affy.read_cdf(candidate, cache_dir=settings.home / "cdf-cache")
    msg = (
        f"no CDF for chip type {chip_type!r}: add one with `genemill import-cel --cdf FILE` "
        f"(looked in {cdf_dir(settings)})"
    )
    raise NotFoundError(msg)


def _cel_path(sample: Sample) -> Path:
    return Path(next(f.local_path for f in sample.original_files if f.kind == "CEL" and f.local_path))


def _cel_name(sample: Sample) -> str:
    """The CEL file's own name (the stored copy is named by its hash)."""
    return next(f.filename for f in sample.original_files if f.kind == "CEL" and f.local_path)


def _check_cels(settings: Settings, samples: list[Sample], outcome: AffyOutcome) -> dict[str, list[Sample]]:
    """Read every CEL header; group readable ones by chip type; refuse the others with the reason."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        path = _cel_path(sample)
        try:
            cel = affy.read_cel(path)
            layout = _find_cdf(settings, cel.chip_type)
            affy.check_platform(cel, layout, cdf_label=layout.chip_type)
        except (InputError, NotFoundError, OSError) as exc:
            name = _cel_name(sample)
            reason = f"{name}: " + str(exc).replace(f"{path}: ", "").replace(str(path), name)
            outcome.refused[sample.accession] = reason
            mark_unprocessable(sample, reason)
            continue
        groups[cel.chip_type].append(sample)
    return groups


def _summarize(paths: list[Path], layout: CdfLayout, method: str) -> pd.DataFrame:
    if method == "rma":
        return affy.rma(paths, cdf=layout)
    intensities = np.column_stack([affy.read_cel(p).intensities for p in paths])
    result = mas5_kernel(
        intensities,
        layout.pm_index,
        layout.mm_index,
        offsets=layout.offsets,
        n_cols=layout.cols,
        n_rows=layout.rows,
    )
    keep = np.diff(layout.offsets) > 0
    ids = [pid for pid, k in zip(layout.probeset_ids, keep, strict=True) if k]
    return pd.DataFrame(
        np.log2(result.signal[keep]),
        index=pd.Index(ids, name="probe_set_id"),
        columns=[affy.sample_name(p) for p in paths],
    )


def _platform_row(session: Session, chip_type: str) -> Platform:
    from sqlalchemy import select

    stem = cel_chip_stem(chip_type)
    accession = gpl_for_stem(stem) or stem
    platform = session.scalar(select(Platform).where(Platform.accession == accession))
    if platform is None:
        from genemill.platforms import describe_platform
        from genemill.store.models import Technology

        name = describe_platform(accession, title=chip_type)
        platform = Platform(
            accession=accession,
            internal_name=stem,
            title=name.pretty,
            technology=Technology.MICROARRAY,
            manufacturer="Affymetrix",
        )
        session.add(platform)
        session.flush()
    return platform


def _process_group(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    chip_type: str,
    samples: list[Sample],
    method: str,
) -> dict[str, Any]:
    layout = _find_cdf(settings, chip_type)
    paths = [_cel_path(s) for s in samples]
    probe_values = _summarize(paths, layout, method)
    probe_values.columns = [s.accession for s in samples]
    platform = _platform_row(session, chip_type)
    for sample in samples:
        sample.platform = platform
    table = best_platform_table(settings, list(probe_values.index), prefer=platform.accession)
    version = genemill.__version__
    digest = sha256_file(paths[0])[:12]
    base = settings.home / "expression" / experiment.accession
    parameters: dict[str, Any] = {
        "method": method,
        "chip_type": chip_type,
        "cdf_probe_sets": len(layout.probeset_ids),
    }
    meta = {
        "processor": f"affymetrix-{method}",
        "processor_version": version,
        "parameters": parameters,
        "value_type": "log2",
    }
    probe_path = base / f"affy-{method}-{chip_type}-{version}-{digest}.probesets.parquet"
    write_expression(probe_path, probe_values, metadata=meta | {"feature_type": "probeset"})
    files = [(PROBESET_KIND, probe_path)]
    detail: dict[str, Any] = {"platform": platform.accession, "n_probe_sets": len(probe_values)}
    if table is not None:
        probe_map = probe_map_for(settings, table)
        genes = map_to_genes(
            probe_values, probe_map, multi_gene=DEFAULT_MULTI_GENE, collapse=DEFAULT_COLLAPSE
        )
        gene_path = base / f"affy-{method}-{chip_type}-{version}-{digest}.genes.parquet"
        report = genes.report.as_dict() | {"annotation_table": table.accession}
        write_expression(
            gene_path,
            genes.expression,
            metadata=meta | {"feature_type": "gene", "annotation_release": report["annotation_release"]},
            annotation=genes.genes,
        )
        files.insert(0, (EXPRESSION, gene_path))
        parameters |= {"multi_gene": DEFAULT_MULTI_GENE.value, "collapse": DEFAULT_COLLAPSE.value}
        detail["mapping"] = report
    else:
        detail["mapping"] = None
        detail["note"] = "no probe annotation table covers these probe sets: probe-set values only"
    record_result(
        session,
        samples,
        experiment=experiment,
        processor=f"affymetrix-{method}",
        version=version,
        mode="rma-experiment" if method == "rma" else "mas5-single-array",
        parameters=parameters,
        input_sha256=[sha256_file(p) for p in paths],
        files=files,
        annotations={
            "value_type": "log2",
            "platforms": {platform.accession: detail.get("mapping") or {}},
            "chip_type": chip_type,
        },
    )
    return detail


def process_affymetrix(
    settings: Settings,
    session: Session,
    experiment: Experiment,
    samples: list[Sample],
    *,
    method: str = "rma",
) -> AffyOutcome:
    """Process samples with CEL files on disk; refuse unreadable or unmatched arrays with reasons."""
    outcome = AffyOutcome()
    for chip_type, group in sorted(_check_cels(settings, samples, outcome).items()):
        outcome.details[chip_type] = _process_group(settings, session, experiment, chip_type, group, method)
        outcome.processed.extend(s.accession for s in group)
    return outcome
