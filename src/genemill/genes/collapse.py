"""Collapse probe-level values to one value per Ensembl gene, under recorded policies.

Input: ``values``, probe ids × samples (float; log2 expected — the mean of log2 values is the log2 of
the geometric mean), and a ``ProbeMap``. Output: a ``GeneMatrix`` — genes × samples (float64, index
``gene_id``, sorted), the gene table and a ``MappingReport`` to be stored with the result.

Algorithm: the map's (probe, gene) pairs are restricted to the input's ids, controls are never
present, multi-gene probes are handled by ``MultiGenePolicy``; the pairs are sorted by gene, then by
platform-table order, so each gene is one contiguous block reduced with ``np.add.reduceat`` (means),
one integer-keyed ``argsort`` over all columns (medians) or a ``lexsort`` (max-mean).

Multi-gene probes (``MultiGenePolicy``)
    ``DROP`` (default) leaves them out. Their signal mixes cross-hybridising transcripts; copying it
    (``COPY``, refine.bio's choice) gives unrelated genes identical values and inflates their
    correlation; and Brainarray custom CDFs — which refine.bio itself uses for raw Affymetrix data —
    keep only probes specific to one gene, so ``DROP`` puts submitter-processed samples on the same
    footing as raw-processed ones. The price is coverage (GPL96: 805 of 15,172 genes are reached
    only by multi-gene probes; ``ProbeMapStats.n_genes_only_multi``). ``FALLBACK`` is the compromise:
    a multi-gene probe is copied only to those of its genes that have no single-gene probe among the
    input ids.

Collapse rules (``CollapseRule``)
    ``MEAN`` (default): per-sample mean of the gene's probes, as limma ``avereps``. It depends only on
    the sample itself, so a sample's gene vector does not change with the samples processed with it.
    ``MEDIAN``: per-sample median (mean of the two middle values for an even count).
    ``MAX_MEAN``: for every gene, the one probe with the highest mean across the columns of
    ``values`` (WGCNA ``collapseRows`` "MaxMean"), ties to the first in platform order; for a
    single sample that is simply its highest value — biased upwards, and for matrices dependent on
    which samples are processed together. ``FIRST``: the gene's first probe in platform-table order
    (the same probe for every sample, whatever its values). ``MEAN`` and ``MEDIAN`` ignore NaN
    (NaN only when all of a gene's probes are NaN in that sample); ``FIRST`` and ``MAX_MEAN`` pass
    the chosen probe's NaN through.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from genemill.errors import InputError
from genemill.genes.probes import CONTROL_PREFIX

if TYPE_CHECKING:
    from genemill.genes.probes import ProbeMap

__all__ = [
    "DEFAULT_COLLAPSE",
    "DEFAULT_MULTI_GENE",
    "CollapseRule",
    "GeneMatrix",
    "MappingReport",
    "MultiGenePolicy",
    "map_to_genes",
]


class MultiGenePolicy(StrEnum):
    """What to do with a probe that maps to several genes."""

    COPY = "copy"  # give the probe's value to each of its genes (refine.bio)
    DROP = "drop"  # leave the probe out
    FALLBACK = "fallback"  # copy only to genes that have no single-gene probe


class CollapseRule(StrEnum):
    """How the probes of one gene become one value per sample (see the module docstring)."""

    MEAN = "mean"
    MEDIAN = "median"
    MAX_MEAN = "max_mean"
    FIRST = "first"


DEFAULT_MULTI_GENE = MultiGenePolicy.DROP
DEFAULT_COLLAPSE = CollapseRule.MEAN


@dataclass(frozen=True)
class MappingReport:
    """What happened to the input ids of one ``map_to_genes`` call; stored with every result.

    ``n_control``: ``AFFX-`` ids. Of the other ids, ``n_unmapped`` have no gene (``n_unknown_ids``
    of them are not even on the platform), ``n_ambiguous`` are multi-gene and ``n_mapped`` contribute
    to at least one gene under the policy: all ambiguous ids under COPY, none under DROP, so
    ``n_input_ids`` = ``n_control`` + ``n_unmapped`` + ``n_mapped`` (+ ``n_ambiguous`` under DROP).
    ``fraction_mapped`` = ``n_mapped`` / non-control ids.
    """

    n_input_ids: int
    n_mapped: int
    n_unmapped: int
    n_ambiguous: int
    n_control: int
    n_unknown_ids: int
    n_genes: int
    fraction_mapped: float
    multi_gene: str
    collapse: str
    probe_map_source: str
    annotation_release: str

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, eq=False)
class GeneMatrix:
    """Gene-level values: ``expression`` (genes × samples, float64, index ``gene_id`` sorted, the
    input's columns), ``genes`` (index ``gene_id``; ``symbol``, ``entrez_id``, ``n_probes`` used) and
    the ``report``."""

    expression: pd.DataFrame
    genes: pd.DataFrame
    report: MappingReport


class _Groups(NamedTuple):
    values: np.ndarray  # (n_pairs, n_samples) rows grouped by gene, platform order inside a gene
    starts: np.ndarray  # (n_genes,) first row of each gene
    sizes: np.ndarray  # (n_genes,)
    counts: np.ndarray  # (n_genes, n_samples) non-NaN values per gene and sample


def _block_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    # reduceat along axis 0 is several times faster on a Fortran-ordered (column-major) array.
    return np.add.reduceat(np.asfortranarray(values), starts, axis=0)


def _group_sums(groups: _Groups) -> np.ndarray:
    return _block_sums(np.where(np.isnan(groups.values), 0.0, groups.values), groups.starts)


def _collapse_mean(groups: _Groups) -> np.ndarray:
    out = np.full(groups.counts.shape, np.nan)
    np.divide(_group_sums(groups), groups.counts, out=out, where=groups.counts > 0)
    return out


def _collapse_median(groups: _Groups) -> np.ndarray:
    # The median of one or two values is their mean, so only blocks of three or more probes are
    # sorted: rank each column (NaN last), then sort by (block, rank) with one integer key for all
    # columns at once, so there is no Python loop over genes or samples.
    result = _collapse_mean(groups)
    large = np.flatnonzero(groups.sizes > 2)
    if large.size == 0:
        return result
    in_large = np.repeat(groups.sizes > 2, groups.sizes)
    values, sizes, counts = groups.values[in_large], groups.sizes[large], groups.counts[large]
    n_rows = values.shape[0]
    ranks = np.empty((n_rows, values.shape[1]), dtype=np.int64)
    np.put_along_axis(ranks, np.argsort(values, axis=0), np.arange(n_rows)[:, None], axis=0)
    block = np.repeat(np.arange(len(large)), sizes)
    ordered = np.take_along_axis(values, np.argsort(block[:, None] * n_rows + ranks, axis=0), axis=0)
    starts = (np.cumsum(sizes) - sizes)[:, None]
    low = np.take_along_axis(ordered, starts + np.maximum(counts - 1, 0) // 2, axis=0)
    high = np.take_along_axis(ordered, starts + counts // 2, axis=0)
    result[large] = np.where(counts > 0, (low + high) / 2, np.nan)
    return result


def _collapse_first(groups: _Groups) -> np.ndarray:
    return np.asarray(groups.values[groups.starts])


def _collapse_max_mean(groups: _Groups) -> np.ndarray:
    finite = ~np.isnan(groups.values)
    n_finite = finite.sum(axis=1)
    sums = np.where(finite, groups.values, 0.0).sum(axis=1)
    row_mean = np.full(len(sums), -np.inf)
    np.divide(sums, n_finite, out=row_mean, where=n_finite > 0)
    block = np.repeat(np.arange(len(groups.starts)), groups.sizes)
    # lexsort keys, last is primary: gene block, then highest mean, then platform order (ties).
    order = np.lexsort((np.arange(len(block)), -row_mean, block))
    return np.asarray(groups.values[order[groups.starts]])


_COLLAPSE = {
    CollapseRule.MEAN: _collapse_mean,
    CollapseRule.MEDIAN: _collapse_median,
    CollapseRule.FIRST: _collapse_first,
    CollapseRule.MAX_MEAN: _collapse_max_mean,
}


def _input_matrix(values: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    ids = pd.Index(values.index.astype(str).str.strip())
    if not ids.is_unique:
        duplicated = ids[ids.duplicated()]
        msg = f"values: {len(duplicated)} duplicated probe ids, e.g. {duplicated[0]!r}"
        raise InputError(msg)
    not_numeric = [str(c) for c, dtype in values.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if not_numeric:
        msg = f"values: columns {not_numeric} are not numeric; parse them with parse_numeric_column first"
        raise InputError(msg)
    matrix = values.to_numpy(dtype=np.float64)
    if np.isinf(matrix).any():
        msg = f"values: {int(np.isinf(matrix).sum())} infinite cells; expected finite numbers or NaN"
        raise InputError(msg)
    return ids, matrix


def _collapse(matrix: np.ndarray, rows: np.ndarray, genes: np.ndarray, rule: CollapseRule) -> _Groups:
    """Return ``rule`` applied per gene block as a ``_Groups`` whose ``values`` are the result."""
    starts = np.flatnonzero(np.r_[True, genes[1:] != genes[:-1]]) if len(genes) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(genes)]).astype(np.int64)
    if len(genes) == 0:
        empty = np.zeros((0, matrix.shape[1]))
        return _Groups(empty, starts, sizes, empty.astype(np.int64))
    grouped = matrix[rows]
    missing = np.isnan(grouped)
    if missing.any():
        counts = _block_sums((~missing).astype(np.int64), starts)
    else:
        counts = np.repeat(sizes[:, None], grouped.shape[1], axis=1)
    collapsed = _COLLAPSE[rule](_Groups(grouped, starts, sizes, counts))
    return _Groups(collapsed, starts, sizes, counts)


def _usable_pairs(present: np.ndarray, probe_map: ProbeMap, policy: MultiGenePolicy) -> np.ndarray:
    """Return which (probe, gene) pairs to use, given which pairs' probes are in the input."""
    multi: np.ndarray = probe_map.is_multi_gene[probe_map.pair_probe]
    if policy is MultiGenePolicy.COPY:
        return present
    specific: np.ndarray = present & ~multi
    if policy is MultiGenePolicy.DROP:
        return specific
    covered = np.zeros(len(probe_map.genes), dtype=bool)
    covered[probe_map.pair_gene[specific]] = True
    return np.asarray(specific | (present & multi & ~covered[probe_map.pair_gene]))


def map_to_genes(
    values: pd.DataFrame,
    probe_map: ProbeMap,
    *,
    multi_gene: MultiGenePolicy = DEFAULT_MULTI_GENE,
    collapse: CollapseRule = DEFAULT_COLLAPSE,
) -> GeneMatrix:
    """Map probe-level values (probe ids × samples, float, log2 expected) to Ensembl genes.

    Restricts the (probe, gene) pairs of ``probe_map`` to the input's ids (controls never have
    pairs), applies ``multi_gene`` and reduces each gene's block with ``collapse``. Genes without a
    usable probe are absent from the result; ids not on the platform are counted, not an error.
    Raises ``InputError`` for duplicated ids, non-numeric columns or infinite values.
    """
    multi_gene, collapse = MultiGenePolicy(multi_gene), CollapseRule(collapse)
    ids, matrix = _input_matrix(values)
    position = probe_map.probe_ids.get_indexer(ids)
    row_of_probe = np.full(len(probe_map.probe_ids), -1)
    row_of_probe[position[position >= 0]] = np.flatnonzero(position >= 0)
    rows = row_of_probe[probe_map.pair_probe]
    keep = _usable_pairs(rows >= 0, probe_map, multi_gene)
    rows, genes = rows[keep], probe_map.pair_gene[keep]  # pairs are sorted by gene, then probe
    result = _collapse(matrix, rows, genes, collapse)
    gene_table = probe_map.genes.iloc[genes[result.starts]].assign(n_probes=result.sizes)
    expression = pd.DataFrame(result.values, index=gene_table.index, columns=values.columns)
    report = _report(
        ids,
        position,
        probe_map,
        n_used=int(np.bincount(rows, minlength=len(ids)).astype(bool).sum()),
        n_genes=len(gene_table),
        policies=(multi_gene, collapse),
    )
    return GeneMatrix(expression=expression, genes=gene_table, report=report)


def _report(
    ids: pd.Index,
    position: np.ndarray,
    probe_map: ProbeMap,
    *,
    n_used: int,
    n_genes: int,
    policies: tuple[MultiGenePolicy, CollapseRule],
) -> MappingReport:
    on_platform = position >= 0
    control = np.zeros(len(ids), dtype=bool)
    control[on_platform] = probe_map.is_control[position[on_platform]]
    unknown = ids[~on_platform]
    control[~on_platform] = np.asarray(unknown.str.upper().str.startswith(CONTROL_PREFIX), dtype=bool)
    n_genes_of = np.zeros(len(ids), dtype=np.int64)
    n_genes_of[on_platform] = np.bincount(probe_map.pair_probe, minlength=len(probe_map.probe_ids))[
        position[on_platform]
    ]
    ambiguous = np.zeros(len(ids), dtype=bool)
    ambiguous[on_platform] = probe_map.is_multi_gene[position[on_platform]]
    n_control = int(control.sum())
    return MappingReport(
        n_input_ids=len(ids),
        n_mapped=n_used,
        n_unmapped=int((~control & (n_genes_of == 0)).sum()),
        n_ambiguous=int((ambiguous & ~control).sum()),
        n_control=n_control,
        n_unknown_ids=int((~on_platform & ~control).sum()),
        n_genes=n_genes,
        fraction_mapped=n_used / max(len(ids) - n_control, 1),
        multi_gene=policies[0].value,
        collapse=policies[1].value,
        probe_map_source=probe_map.source,
        annotation_release=probe_map.annotation_release,
    )
