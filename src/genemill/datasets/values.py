"""Read processed values for a dataset: only the needed columns, one gene id per row, on one scale.

Per expression-store file (``genemill.store.expression``: ``feature_id`` + one float32 column per
sample) the dataset builder reads ``feature_id`` once and then only the sample columns it uses.

Gene ids (as refine.bio's smasher): an Ensembl version suffix is dropped (``ENSG00000141510.16`` →
``ENSG00000141510``; any ``ENS…`` id ending in ``.<digits>``), Affymetrix control probe sets
(``AFFX-…``) are dropped. Ids stay Arrow strings until the final gene list.

Scale (``ValueScaling``), applied per sample before duplicate ids are collapsed:

* ``KEEP`` — microarray ``log2`` values, and RNA-seq values kept on their own scale;
* ``LOG2`` — microarray values on a linear scale (e.g. MAS5 signal): ``log2(x)``, ``x <= 0`` → NaN;
* ``LOG2P1`` — RNA-seq values put next to log2 data: ``log2(x + 1)``.

Duplicate gene ids left after that (two probe sets or versions of one gene) are merged per sample with
the spec's ``CollapseRule`` ignoring NaN: mean (default, refine.bio), median, max, or the first
non-missing value in file order. Collapsing after the log keeps the mean a mean of log values, which
is what ``genemill.genes.collapse`` does for probe sets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genemill.datasets.spec import CollapseRule
from genemill.errors import StoreError

__all__ = [
    "FileGenes",
    "ValueScaling",
    "normalize_gene_ids",
    "positions",
    "read_file_genes",
    "read_values",
    "sorted_unique",
]

ObjectArray = npt.NDArray[np.object_]


class ValueScaling(enum.StrEnum):
    """How a sample's stored values are put on the dataset's scale."""

    KEEP = "KEEP"
    LOG2 = "LOG2"
    LOG2P1 = "LOG2P1"


_VERSIONED = r"^(ENS\w*)\.\d+$"


def normalize_gene_ids(ids: pa.Array) -> pa.Array:
    """Drop Ensembl version suffixes; control probe sets (``AFFX-``) and empty ids become null."""
    ids = pc.cast(ids, pa.string())
    stripped = pc.replace_substring_regex(ids, pattern=_VERSIONED, replacement=r"\1")
    dropped = pc.or_kleene(pc.starts_with(stripped, "AFFX-"), pc.equal(stripped, ""))
    return pc.if_else(pc.fill_null(dropped, True), pa.scalar(None, pa.string()), stripped)


def sorted_unique(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Distinct non-null ids in byte order (the gene order of every matrix)."""
    distinct = pc.drop_null(pc.unique(ids))
    return pc.take(distinct, pc.array_sort_indices(distinct))


def positions(ids: pa.Array, index: pa.Array) -> npt.NDArray[np.int64]:
    """Row of each id in ``index`` (-1 when absent or null)."""
    found = pc.index_in(ids, value_set=index)
    rows: npt.NDArray[np.int64] = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return rows


@dataclass(frozen=True)
class FileGenes:
    """The unique gene ids of one file (Arrow strings, sorted) and each file row's gene (-1 = dropped).

    Ids stay in Arrow: a thousand files' worth of ids never become Python strings.
    """

    genes: pa.Array
    row_gene: npt.NDArray[np.int64]
    symbol: ObjectArray | None
    entrez_id: ObjectArray | None

    @property
    def n_genes(self) -> int:
        """Number of distinct genes."""
        return len(self.genes)

    @property
    def has_duplicates(self) -> bool:
        """True when two kept rows share a gene id."""
        kept = int(np.count_nonzero(self.row_gene >= 0))
        return kept != self.n_genes

    def gene_ids(self) -> ObjectArray:
        """The gene ids as a NumPy object array (Python strings)."""
        return np.asarray(self.genes.to_numpy(zero_copy_only=False), dtype=object)


def _optional_column(table: pa.Table, name: str) -> ObjectArray | None:
    if name not in table.column_names:
        return None
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)


def read_file_genes(path: Path) -> FileGenes:
    """Gene ids (and symbol / Entrez id where stored) of an expression-store file."""
    try:
        names = pq.read_schema(path).names
        wanted = [c for c in ("feature_id", "symbol", "entrez_id") if c in names]
        table = pq.read_table(path, columns=wanted)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"{path}: cannot read the feature_id column ({exc})"
        raise StoreError(msg) from exc
    if "feature_id" not in table.column_names:
        msg = f"{path}: expected a feature_id column, found {table.column_names}"
        raise StoreError(msg)
    ids = normalize_gene_ids(table.column("feature_id").combine_chunks())
    genes = sorted_unique(ids)
    row_gene = positions(ids, genes)
    symbol = _first_per_gene(_optional_column(table, "symbol"), row_gene, len(genes))
    entrez = _first_per_gene(_optional_column(table, "entrez_id"), row_gene, len(genes))
    return FileGenes(genes=genes, row_gene=row_gene, symbol=symbol, entrez_id=entrez)


def _first_per_gene(
    column: ObjectArray | None, row_gene: npt.NDArray[np.int64], n: int
) -> ObjectArray | None:
    if column is None:
        return None
    out = np.full(n, None, dtype=object)
    rows = np.flatnonzero((row_gene >= 0) & pd.notna(column))
    genes, first = np.unique(row_gene[rows], return_index=True)
    out[genes] = column[rows[first]]
    return out


def _scaled(values: npt.NDArray[np.float32], scaling: ValueScaling) -> npt.NDArray[np.float32]:
    if scaling == ValueScaling.LOG2:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log2(values)
        out[~(values > 0)] = np.nan
        return out
    if scaling == ValueScaling.LOG2P1:
        with np.errstate(invalid="ignore"):
            logged: npt.NDArray[np.float32] = np.log2(values + np.float32(1.0))
        return logged
    return values


def read_values(
    path: Path,
    genes: FileGenes,
    samples: list[str],
    *,
    scalings: list[ValueScaling],
    collapse: CollapseRule,
) -> npt.NDArray[np.float32]:
    """Values of ``samples`` (genes × samples, float32, Fortran order) aligned to ``genes.genes``.

    Rows of genes that occur once are copied straight into place; only the few rows of duplicated
    genes go through the collapse rule.
    """
    try:
        table = pq.read_table(path, columns=samples)
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        msg = f"{path}: cannot read sample columns {samples[:3]}… ({exc})"
        raise StoreError(msg) from exc
    rows = np.flatnonzero(genes.row_gene >= 0)
    targets = genes.row_gene[rows]
    single = np.bincount(targets, minlength=genes.n_genes)[targets] == 1
    out = np.empty((genes.n_genes, len(samples)), dtype=np.float32, order="F")
    repeated = np.empty((int(np.count_nonzero(~single)), len(samples)), dtype=np.float32, order="F")
    for j, (name, scaling) in enumerate(zip(samples, scalings, strict=True)):
        column = table.column(name).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        scaled = _scaled(column[rows], scaling)
        out[targets[single], j] = scaled[single]
        repeated[:, j] = scaled[~single]
    del table
    if repeated.shape[0]:
        genes_of_repeats = targets[~single]
        collapsed = (
            pd.DataFrame(repeated, copy=False)
            .groupby(genes_of_repeats, sort=True)
            .agg(_PANDAS_RULE[collapse])
        )
        out[collapsed.index.to_numpy()] = collapsed.to_numpy(dtype=np.float32)
    return out


_PANDAS_RULE: dict[CollapseRule, Any] = {
    CollapseRule.MEAN: "mean",
    CollapseRule.MEDIAN: "median",
    CollapseRule.MAX: "max",
    CollapseRule.FIRST: "first",
}
