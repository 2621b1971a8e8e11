"""The gene space: Ensembl gene ids with Entrez ids and symbols, from one dated annotation release.

Input tables (tab-separated, header line; as extracted from Bioconductor ``org.Hs.eg.db``):
``genes`` (``entrez_id``, ``symbol``, …), ``entrez_ensembl_gene`` (``entrez_id``, ``ensembl_gene_id``;
many-to-many) and ``metadata`` (``name``, ``value``; ``EGSOURCEDATE`` and ``ENSOURCEDATE`` date the
Entrez Gene and Ensembl sources). The ``release`` string built from them is copied into every
``MappingReport``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from genemill.errors import FormatError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["GeneAnnotation", "Readable", "load_gene_annotation", "load_org_hs_eg_db"]

_GENE_COLUMNS = ["symbol", "entrez_id"]


class Readable(Protocol):
    """An open handle of decompressed text, read as bytes or str (file, ``gzip.open``, ``io.BytesIO``)."""

    def read(self, size: int = -1, /) -> bytes | str:
        """Read at most ``size`` bytes or characters (all when negative)."""
        ...


@dataclass(frozen=True, eq=False)
class GeneAnnotation:
    """One release of the gene space.

    ``entrez_to_ensembl``: columns ``entrez_id`` (int64), ``gene_id`` (str), one row per pair.
    ``genes``: index ``gene_id`` (sorted), columns ``symbol`` and ``entrez_id`` (str; several joined
    by ``|`` when one Ensembl gene has several Entrez ids). ``symbol_to_entrez``: unique official
    symbols → Entrez id. ``release`` names the source and its dates.
    """

    entrez_to_ensembl: pd.DataFrame
    genes: pd.DataFrame
    symbol_to_entrez: pd.Series
    source: str
    release: str


def _read_tsv(handle: Readable, columns: Sequence[str], what: str) -> pd.DataFrame:
    table = pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False, usecols=lambda c: c in columns)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"{what}: expected columns {list(columns)}, found {list(table.columns)}"
        raise FormatError(msg, path=getattr(handle, "name", None))
    return table[list(columns)]


def _release(metadata: pd.DataFrame, source: str) -> str:
    values = dict(zip(metadata["name"], metadata["value"], strict=True))
    keys = {"EGSOURCEDATE": "Entrez Gene", "ENSOURCEDATE": "Ensembl"}
    missing = [k for k in keys if k not in values]
    if missing:
        msg = f"annotation metadata: expected names {list(keys)}, missing {missing}"
        raise FormatError(msg)
    dates = ", ".join(f"{label} {values[key]}" for key, label in keys.items())
    return f"{source} ({dates})"


def load_gene_annotation(
    genes_tsv: Readable,
    entrez_ensembl_tsv: Readable,
    metadata_tsv: Readable | None = None,
    *,
    source: str = "org.Hs.eg.db",
) -> GeneAnnotation:
    """Build a ``GeneAnnotation`` from open, decompressed tab-separated handles (text or bytes).

    ``genes_tsv`` needs columns ``entrez_id``, ``symbol``; ``entrez_ensembl_tsv`` needs ``entrez_id``,
    ``ensembl_gene_id``; ``metadata_tsv`` (``name``, ``value`` with ``EGSOURCEDATE`` and
    ``ENSOURCEDATE``, as org.Hs.eg.db's ``metadata`` table) dates the release.
    """
    genes = _read_tsv(genes_tsv, ["entrez_id", "symbol"], "genes table")
    pairs = _read_tsv(entrez_ensembl_tsv, ["entrez_id", "ensembl_gene_id"], "Entrez-Ensembl table")
    pairs = pairs.rename(columns={"ensembl_gene_id": "gene_id"}).drop_duplicates()
    pairs["entrez_id"] = pairs["entrez_id"].astype(np.int64)
    pairs = pairs.sort_values(["gene_id", "entrez_id"], ignore_index=True)
    genes["entrez_id"] = genes["entrez_id"].astype(np.int64)
    symbol_of = genes.set_index("entrez_id")["symbol"]
    named = pairs.assign(symbol=pairs["entrez_id"].map(symbol_of).fillna(""))
    named = named.astype({"entrez_id": str}).set_index("gene_id")[_GENE_COLUMNS]
    shared = named.index.duplicated(keep=False)  # few genes: join their ids without a slow groupby
    joined = named[shared].groupby(level=0)[_GENE_COLUMNS].agg("|".join)
    table = pd.concat([named[~shared], joined]).sort_index()
    unique = genes.drop_duplicates("symbol", keep=False)
    release = source
    if metadata_tsv is not None:
        release = _release(_read_tsv(metadata_tsv, ["name", "value"], "metadata table"), source)
    return GeneAnnotation(
        entrez_to_ensembl=pairs,
        genes=table,
        symbol_to_entrez=unique.set_index("symbol")["entrez_id"],
        source=source,
        release=release,
    )


def load_org_hs_eg_db(directory: Path, *, source: str = "org.Hs.eg.db") -> GeneAnnotation:
    """Load the tables extracted from org.Hs.eg.db (``genes.tsv.gz``, ``entrez_ensembl_gene.tsv.gz``,
    ``metadata.tsv``) from ``directory``; the caller-side convenience around ``load_gene_annotation``.
    """
    with (
        gzip.open(directory / "genes.tsv.gz", "rb") as genes,
        gzip.open(directory / "entrez_ensembl_gene.tsv.gz", "rb") as pairs,
        (directory / "metadata.tsv").open("rb") as metadata,
    ):
        return load_gene_annotation(genes, pairs, metadata, source=source)
