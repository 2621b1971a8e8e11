"""Build a dataset's matrices from a ``DatasetPlan``: read, join, normalize, scale — in bounded memory.

For each group (``PlannedGroup``) of the plan, with no database session needed:

1. **read** — per expression-store file, the gene ids once, then only the group's sample columns, at
   most 64 at a time (``genemill.datasets.values``: version suffixes dropped, log2 rule, duplicate
   genes collapsed); each block is scattered into one float32 genes × samples matrix (Fortran order,
   genes = the sorted union of the files' ids). No per-sample data frames, no successive merges:
   refine.bio's 1,000 pandas merges become one index lookup per file.
2. **drop empty samples** — a sample with no value at all is excluded (``NO_VALUES``).
3. **join** — ``INNER``: refine.bio's successive inner join, vectorized: samples are taken in order
   and a sample that would leave no gene in common is skipped (``NOT_IN_JOIN``); ``MIN_FRACTION``:
   genes measured in at least that fraction of the samples (samples none of whose genes are kept
   are excluded, and the fraction re-evaluated); ``OUTER``: every gene measured somewhere. The matrix
   is compacted in place.
4. **quantile normalization** (``spec.quantile_normalize``) — per organism of the group, with that
   organism's stored target (``genemill.datasets.targets``) or, when it has none and the spec says
   ``COMPUTE``, a target determined from the group's own samples of that organism (recorded as
   ``"source": "computed"`` — such values are comparable within the matrix only). Never one species'
   target on another. Then refine.bio's KS check (``genemill.datasets.normalize.ks_check``); a failed
   check is recorded and reported as a ``GenemillWarning``, never an error.
5. **transform** — row-wise (per gene) MINMAX / ZSCORE / ROBUST scaling, in place.

Peak memory is about one float32 matrix (union of genes × samples) plus one file block.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from genemill.datasets.exclusions import Exclusion, ExclusionReason
from genemill.datasets.normalize import (
    KS_MAX_STATISTIC,
    KS_MIN_PVALUE,
    KsResult,
    ScaleMethod,
    determine_target,
    ks_check,
    quantile_normalize_columns,
    scale_rows,
)
from genemill.datasets.plan import DatasetPlan, PlannedGroup, PlannedSample
from genemill.datasets.spec import CollapseRule, JoinKind, Transform
from genemill.datasets.targets import load_qn_target
from genemill.datasets.values import (
    FileGenes,
    ValueScaling,
    positions,
    read_file_genes,
    read_values,
    sorted_unique,
)
from genemill.errors import GenemillWarning

__all__ = ["BuiltDataset", "GroupMatrix", "Progress", "build_matrices"]

Progress = Callable[[str, int, int], None]
ObjectArray = npt.NDArray[np.object_]
Matrix = npt.NDArray[np.float32]
_COLUMNS_PER_READ = 64


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


@dataclass(frozen=True)
class GroupMatrix:
    """One output matrix: genes × samples float32 (NaN = not measured) and what was done to it."""

    key: str
    genes: ObjectArray
    symbols: ObjectArray
    entrez_ids: ObjectArray
    samples: tuple[str, ...]
    values: Matrix
    organisms: dict[str, list[str]]
    value_scale: str
    quantile_normalization: dict[str, Any] = field(default_factory=dict)
    ks: KsResult | None = None
    n_genes_read: int = 0


@dataclass(frozen=True)
class BuiltDataset:
    """The plan, its matrices, and every exclusion (from planning and from building)."""

    plan: DatasetPlan
    matrices: tuple[GroupMatrix, ...]
    exclusions: tuple[Exclusion, ...]
    created_at: dt.datetime

    def planned(self, accession: str, *, key: str | None = None) -> PlannedSample | None:
        """The planned sample with this accession in group ``key`` (default: the first holding it)."""
        for group in self.plan.groups:
            if key is not None and group.key != key:
                continue
            for sample in group.samples:
                if sample.accession == accession:
                    return sample
        return None


@dataclass
class _Assembly:
    """A group's matrix while it is being assembled."""

    group: PlannedGroup
    genes: pa.Array
    symbols: ObjectArray
    entrez_ids: ObjectArray
    matrix: Matrix
    columns: list[int]
    exclusions: list[Exclusion]

    def exclude(self, column: int, reason: ExclusionReason, detail: str = "") -> None:
        sample = self.group.samples[column]
        self.exclusions.append(Exclusion(sample.accession, sample.experiment, reason, detail))


def _release_arrow_memory() -> None:
    # Arrow's allocator keeps freed Parquet read buffers for reuse; hand them back so that reading
    # many files does not ratchet up the resident memory (about 1 MB per file otherwise).
    pa.default_memory_pool().release_unused()


def _files(group: PlannedGroup) -> dict[Path, list[int]]:
    by_file: dict[Path, list[int]] = {}
    for index, sample in enumerate(group.samples):
        by_file.setdefault(sample.path, []).append(index)
    return by_file


def _annotate(universe: pa.Array, file_genes: dict[Path, FileGenes], attribute: str) -> ObjectArray:
    """First known value per gene over the files, in file order (None when no file has one)."""
    out = np.full(len(universe), None, dtype=object)
    for genes in reversed(list(file_genes.values())):
        column = getattr(genes, attribute)
        if column is not None:
            rows = positions(genes.genes, universe)
            known = pd.notna(column)
            out[rows[known]] = column[known]
    return out


def _read_group(group: PlannedGroup, collapse: CollapseRule, progress: Progress) -> _Assembly:
    by_file = _files(group)
    file_genes = {}
    for path in by_file:
        file_genes[path] = read_file_genes(path)
        _release_arrow_memory()
    universe = sorted_unique(pa.chunked_array([g.genes for g in file_genes.values()], pa.string()))
    matrix = np.full((len(universe), len(group.samples)), np.nan, dtype=np.float32, order="F")
    done = 0
    for path, columns in by_file.items():
        genes = file_genes[path]
        rows = positions(genes.genes, universe)
        for start in range(0, len(columns), _COLUMNS_PER_READ):
            chunk = columns[start : start + _COLUMNS_PER_READ]
            block = read_values(
                path,
                genes,
                [group.samples[c].accession for c in chunk],
                scalings=[group.samples[c].scaling for c in chunk],
                collapse=collapse,
            )
            for j, column in enumerate(chunk):
                matrix[rows, column] = block[:, j]
            _release_arrow_memory()
            done += len(chunk)
            progress(f"read {group.key}", done, len(group.samples))
    return _Assembly(
        group=group,
        genes=universe,
        symbols=_annotate(universe, file_genes, "symbol"),
        entrez_ids=_annotate(universe, file_genes, "entrez_id"),
        matrix=matrix,
        columns=list(range(len(group.samples))),
        exclusions=[],
    )


def _present(matrix: Matrix, column: int) -> npt.NDArray[np.bool_]:
    return ~np.isnan(matrix[:, column])


def _drop_empty(assembly: _Assembly) -> None:
    kept = []
    for column in assembly.columns:
        if _present(assembly.matrix, column).any():
            kept.append(column)
        else:
            path = assembly.group.samples[column].path
            assembly.exclude(column, ExclusionReason.NO_VALUES, f"every value in {path.name} is missing")
    assembly.columns = kept


def _inner_join(assembly: _Assembly) -> npt.NDArray[np.bool_]:
    running = np.ones(assembly.matrix.shape[0], dtype=bool)
    kept = []
    for column in assembly.columns:
        joined = running & _present(assembly.matrix, column)
        if joined.any():
            running = joined
            kept.append(column)
        else:
            n_common = int(running.sum())
            detail = f"it shares none of the {n_common} genes common to the samples before it"
            assembly.exclude(column, ExclusionReason.NOT_IN_JOIN, detail)
    assembly.columns = kept
    return running


def _fraction_join(assembly: _Assembly, fraction: float) -> npt.NDArray[np.bool_]:
    while True:
        counts = np.zeros(assembly.matrix.shape[0], dtype=np.int64)
        for column in assembly.columns:
            counts += _present(assembly.matrix, column)
        needed = max(1, math.ceil(fraction * len(assembly.columns) - 1e-9))
        keep = counts >= needed
        orphans = [c for c in assembly.columns if not (keep & _present(assembly.matrix, c)).any()]
        if not orphans:
            return keep
        for column in orphans:
            detail = f"none of its genes is measured in at least {fraction:.0%} of the samples"
            assembly.exclude(column, ExclusionReason.NOT_IN_JOIN, detail)
        assembly.columns = [c for c in assembly.columns if c not in set(orphans)]


def _join(assembly: _Assembly, kind: JoinKind, fraction: float) -> None:
    if not assembly.columns:
        rows = np.zeros(assembly.matrix.shape[0], dtype=bool)
    elif kind == JoinKind.INNER:
        rows = _inner_join(assembly)
    else:
        rows = _fraction_join(assembly, fraction if kind == JoinKind.MIN_FRACTION else 0.0)
    keep_rows = np.flatnonzero(rows)
    for new, old in enumerate(assembly.columns):
        assembly.matrix[: keep_rows.size, new] = assembly.matrix[keep_rows, old]
    assembly.matrix = assembly.matrix[: keep_rows.size, : len(assembly.columns)]
    assembly.genes = assembly.genes.take(pa.array(keep_rows, pa.int64()))
    assembly.symbols = assembly.symbols[keep_rows]
    assembly.entrez_ids = assembly.entrez_ids[keep_rows]


def _target(
    plan: DatasetPlan, organism: str, values: Matrix
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    info = plan.targets.get(organism)
    if info is not None:
        return load_qn_target(info), info.to_dict()
    target = determine_target(values)
    note = {
        "source": "computed",
        "organism": organism,
        "n_samples": int(values.shape[1]),
        "n_genes": int(values.shape[0]),
        "note": "no stored target for this organism: the mean of this matrix's sorted columns was used",
    }
    return target, note


def _ks_failure(ks: KsResult) -> str:
    """Which of refine.bio's two KS criteria failed, with the worst pair's figures."""
    reasons = []
    if ks.statistic is not None and ks.statistic > KS_MAX_STATISTIC:
        reasons.append(f"largest statistic {ks.statistic:.4g} above {KS_MAX_STATISTIC:g}")
    if ks.pvalue is not None and ks.pvalue < KS_MIN_PVALUE:
        reasons.append(f"smallest p-value {ks.pvalue:.4g} below {KS_MIN_PVALUE:g}")
    return (
        f"KS check after quantile normalization failed ({' and '.join(reasons)}, over {ks.n_pairs} "
        "random column pairs); the columns' distributions still differ: recorded in the metadata"
    )


def _normalize(
    plan: DatasetPlan, assembly: _Assembly, organisms: dict[str, list[int]]
) -> tuple[dict[str, Any], KsResult | None]:
    notes: dict[str, Any] = {}
    checks = []
    for organism, columns in organisms.items():
        whole = len(columns) == assembly.matrix.shape[1]
        values = assembly.matrix if whole else assembly.matrix[:, columns]
        target, notes[organism] = _target(plan, organism, values)
        normalized = quantile_normalize_columns(values, target, out=values if whole else None)
        if not whole:
            assembly.matrix[:, columns] = normalized
        checks.append(ks_check(normalized))
    return notes, _worst(checks)


def _worst(checks: list[KsResult]) -> KsResult | None:
    done = [c for c in checks if c.statistic is not None and c.pvalue is not None]
    if not done:
        return checks[0] if checks else None
    return KsResult(
        statistic=max(c.statistic for c in done if c.statistic is not None),
        pvalue=min(c.pvalue for c in done if c.pvalue is not None),
        n_pairs=sum(c.n_pairs for c in done),
        warning=any(c.warning for c in done),
    )


def _value_scale(samples: list[PlannedSample], *, normalized: bool, transform: Transform) -> str:
    parts = []
    for sample in samples:
        if sample.scaling == ValueScaling.LOG2P1:
            parts.append(f"log2({sample.value_type} + 1)")
        elif sample.scaling == ValueScaling.LOG2 or sample.value_type == "log2":
            parts.append("log2")
        else:
            parts.append(sample.value_type)
    text = " + ".join(dict.fromkeys(parts))
    if normalized:
        text = f"quantile normalized ({text} before)"
    if transform != Transform.NONE:
        text += f", then {transform.value} per gene"
    return text


def _build_group(
    plan: DatasetPlan, group: PlannedGroup, progress: Progress
) -> tuple[GroupMatrix | None, list[Exclusion]]:
    spec = plan.spec
    assembly = _read_group(group, spec.collapse, progress)
    n_read = len(assembly.genes)
    _drop_empty(assembly)
    _join(assembly, spec.join, spec.min_fraction)
    if assembly.matrix.shape[0] == 0 or assembly.matrix.shape[1] == 0:
        for column in assembly.columns:
            assembly.exclude(column, ExclusionReason.NOT_IN_JOIN, f"matrix {group.key} kept no genes")
        return None, assembly.exclusions
    samples = [group.samples[c] for c in assembly.columns]
    organisms: dict[str, list[int]] = {}
    for position, sample in enumerate(samples):
        organisms.setdefault(sample.organism_code, []).append(position)
    qn: dict[str, Any] = {}
    ks = None
    if spec.quantile_normalize:
        progress(f"normalize {group.key}", 0, 1)
        qn, ks = _normalize(plan, assembly, organisms)
        if ks is not None and ks.warning:
            warnings.warn(f"{group.key}: {_ks_failure(ks)}", GenemillWarning, stacklevel=3)
    if spec.transform != Transform.NONE:
        scale_rows(assembly.matrix, ScaleMethod(spec.transform.value), out=assembly.matrix)
    matrix = GroupMatrix(
        key=group.key,
        genes=np.asarray(assembly.genes.to_numpy(zero_copy_only=False), dtype=object),
        symbols=assembly.symbols,
        entrez_ids=assembly.entrez_ids,
        samples=tuple(s.accession for s in samples),
        values=assembly.matrix,
        organisms={code: [samples[p].accession for p in pos] for code, pos in organisms.items()},
        value_scale=_value_scale(samples, normalized=spec.quantile_normalize, transform=spec.transform),
        quantile_normalization=qn,
        ks=ks,
        n_genes_read=n_read,
    )
    return matrix, assembly.exclusions


def build_matrices(plan: DatasetPlan, *, progress: Progress | None = None) -> BuiltDataset:
    """Build every group's matrix (see the module docstring); exclusions of plan and build combined."""
    report = progress or _no_progress
    matrices = []
    exclusions = list(plan.exclusions)
    for group in plan.groups:
        matrix, excluded = _build_group(plan, group, report)
        exclusions.extend(excluded)
        if matrix is not None:
            matrices.append(matrix)
    return BuiltDataset(
        plan=plan,
        matrices=tuple(matrices),
        exclusions=tuple(exclusions),
        created_at=dt.datetime.now(dt.UTC),
    )
