"""Probe id → Ensembl genes for one platform, resolved from a platform annotation table.

A platform table (GEO GPL table or ``.annot`` file, as a DataFrame of strings) gives each probe id
zero or more gene keys in one cell, several joined by ``///`` (GEO's ``DELIMIT:" /// "``; ``.annot``
files omit the spaces). Keys are resolved through a ``GeneAnnotation``, never trusted as final ids:

1. Entrez ids (column ``ENTREZ_GENE_ID``, ``Gene ID``, ``GENE``, ``ENTREZ…``) → Ensembl genes. One
   Entrez id may give several Ensembl ids — org.Hs.eg.db lists genes on alternate haplotypes and
   patches too (DDR1 → 7 ids) — and all are kept, because the tables carry no coordinates to tell
   the primary-assembly gene; ``ProbeMapStats.n_split`` counts such probes (GPL96: 1,216).
2. For probes still unmapped, an ``ENSEMBL…`` column (version suffix dropped), if present; only ids
   known to the annotation are kept, so every gene is in the annotation's gene space.
3. Only when the table has neither column: official symbols (``Gene Symbol``, ``SYMBOL``); a symbol
   shared by several Entrez genes is ignored, aliases are never used (they are ambiguous).

``AFFX-`` probe sets (Affymetrix spike-in, hybridisation and housekeeping controls) never map, even
when annotated (GPL96 annotates ``AFFX-HUMGAPDH/M33197_3_at`` to GAPDH). A probe is *multi-gene* when
its genes come from two or more of its keys and are two or more Ensembl ids: ``"6233 /// 7314 ///
7316"`` is; one Entrez id with two Ensembl ids is not, nor is ``"2621 /// 100133684"`` when the
retired ``100133684`` no longer resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from genemill.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from genemill.genes.annotation import GeneAnnotation

__all__ = ["CONTROL_PREFIX", "ProbeMap", "ProbeMapStats", "probe_map_from_platform_table"]

CONTROL_PREFIX = "AFFX-"
_ID_NAMES = ("id", "idref", "probeid", "probesetid", "probeset")
_ENTREZ_NAMES = ("entrezgeneid", "geneid", "gene", "entrezid", "entrez", "locuslinkid")
_SYMBOL_NAMES = ("genesymbol", "symbol")


@dataclass(frozen=True)
class ProbeMapStats:
    """Counts over the platform table's probe ids; controls are not counted as mapped or unmapped."""

    n_probes: int
    n_mapped: int
    n_unmapped: int
    n_multi_gene: int
    n_control: int
    n_genes: int
    n_genes_only_multi: int  # genes reached only through multi-gene probes (lost under DROP)
    n_split: int  # single-gene probes with several Ensembl ids (one Entrez id, several Ensembl genes)

    @property
    def fraction_mapped(self) -> float:
        """Mapped share of the non-control probe ids."""
        return self.n_mapped / max(self.n_probes - self.n_control, 1)


@dataclass(frozen=True, eq=False)
class ProbeMap:
    """Probe id → Ensembl genes for one platform, as (probe, gene) index pairs.

    ``probe_ids`` (n_probes,) in platform-table order; ``pair_probe`` / ``pair_gene`` (n_pairs,)
    index ``probe_ids`` and the rows of ``genes`` (index ``gene_id``, sorted; ``symbol``,
    ``entrez_id``), sorted by gene then platform order; ``is_multi_gene`` and ``is_control`` are
    (n_probes,) booleans. ``key_column`` names the table column(s) the genes came from.
    """

    probe_ids: pd.Index
    pair_probe: np.ndarray
    pair_gene: np.ndarray
    is_multi_gene: np.ndarray
    is_control: np.ndarray
    genes: pd.DataFrame
    key_column: str
    source: str
    annotation_release: str
    stats: ProbeMapStats

    def genes_of(self, probe_id: str) -> list[str]:
        """Return the Ensembl gene ids of one probe id ([] when unmapped or unknown)."""
        if probe_id not in self.probe_ids:
            return []
        where = self.probe_ids.get_loc(probe_id)
        return [str(g) for g in self.genes.index[self.pair_gene[self.pair_probe == where]]]


def _normalized(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _find_column(table: pd.DataFrame, names: Sequence[str], *, prefix: str = "") -> str | None:
    by_name = {_normalized(str(c)): str(c) for c in table.columns}
    for name in names:
        if name in by_name:
            return by_name[name]
    matches = [c for n, c in by_name.items() if prefix and n.startswith(prefix)]
    return matches[0] if matches else None


def _mostly_numeric(cells: pd.Series) -> bool:
    """Say whether most non-empty cells start with a number, as Entrez id cells do."""
    first = cells.fillna("").astype(str).str.split("///").str[0].str.strip()
    first = first[first != ""]
    return len(first) > 0 and bool(first.str.fullmatch(r"\d+").mean() >= 0.5)


def _keys(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return (probe position, key) rows for the ``///``-joined keys of ``column``."""
    cells = table[column].fillna("").astype(str).str.split("///")
    keys = pd.DataFrame({"probe": np.arange(len(table)), "key": cells}).explode("key")
    keys["key"] = keys["key"].str.strip()
    return keys[keys["key"].notna() & (keys["key"] != "")].drop_duplicates()


def _resolve_entrez(keys: pd.DataFrame, annotation: GeneAnnotation) -> pd.DataFrame:
    keys = keys[keys["key"].str.fullmatch(r"\d+")]
    keys = keys.assign(entrez_id=keys["key"].astype(np.int64))
    return keys.merge(annotation.entrez_to_ensembl, on="entrez_id")[["probe", "key", "gene_id"]]


def _resolve_ensembl(keys: pd.DataFrame, annotation: GeneAnnotation) -> pd.DataFrame:
    gene_ids = keys["key"].str.upper().str.replace(r"\.\d+$", "", regex=True)
    known = gene_ids.isin(annotation.genes.index)
    return keys.assign(gene_id=gene_ids)[known][["probe", "key", "gene_id"]]


def _resolve_symbol(keys: pd.DataFrame, annotation: GeneAnnotation) -> pd.DataFrame:
    entrez = keys["key"].map(annotation.symbol_to_entrez)
    keys = keys.assign(key=entrez.astype("Int64").astype(str))[entrez.notna()]
    return _resolve_entrez(keys, annotation)


def _resolved_pairs(
    table: pd.DataFrame, annotation: GeneAnnotation, columns: dict[str, str | None]
) -> tuple[pd.DataFrame, str]:
    """Return (probe, key, gene_id) rows by Entrez, then Ensembl for the rest, else by symbol."""
    entrez, ensembl, symbol = columns["entrez"], columns["ensembl"], columns["symbol"]
    if entrez is None and ensembl is None:
        if symbol is None:
            msg = f"platform table: no Entrez, Ensembl or symbol column among {list(table.columns)}"
            raise InputError(msg)
        return _resolve_symbol(_keys(table, symbol), annotation), symbol
    parts, used = [], []
    if entrez is not None:
        parts.append(_resolve_entrez(_keys(table, entrez), annotation))
        used.append(entrez)
    if ensembl is not None:
        by_ensembl = _resolve_ensembl(_keys(table, ensembl), annotation)
        done = parts[0]["probe"].unique() if parts else []
        parts.append(by_ensembl[~by_ensembl["probe"].isin(done)])
        used.append(ensembl)
    return pd.concat(parts, ignore_index=True), " then ".join(used)


def _probe_ids(table: pd.DataFrame, id_column: str | None) -> np.ndarray:
    column = id_column or _find_column(table, _ID_NAMES) or str(table.columns[0])
    if column not in table.columns:
        msg = f"platform table: no id column {column!r} among {list(table.columns)}"
        raise InputError(msg)
    ids = table[column].astype(str).str.strip()
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        example = duplicated.iloc[0]
        msg = f"platform table: {len(duplicated)} duplicated probe ids in {column!r}, e.g. {example!r}"
        raise InputError(msg)
    return np.asarray(ids.to_numpy(dtype=object))


def probe_map_from_platform_table(
    table: pd.DataFrame,
    annotation: GeneAnnotation,
    *,
    id_column: str | None = None,
    entrez_column: str | None = None,
    ensembl_column: str | None = None,
    source: str = "platform table",
) -> ProbeMap:
    """Resolve a platform table (one row per probe id, string cells) to Ensembl genes.

    Columns not given are detected by name (case and punctuation ignored): the id column
    (``ID``, ``ID_REF``, ``Probe Set ID``… else the first), Entrez (``ENTREZ_GENE_ID``, ``Gene ID``,
    ``GENE``, ``ENTREZ…``; used only if most non-empty cells are numbers), Ensembl (``ENSEMBL…``),
    symbol (``Gene Symbol``, ``SYMBOL``). Raises ``InputError`` for duplicated probe ids or a table
    without any usable gene column.
    ``source`` names the table in reports (e.g. ``"GEO GPL96 table, last update Jun 03 2009"``).
    """
    probe_ids = _probe_ids(table, id_column)
    detected_entrez = _find_column(table, _ENTREZ_NAMES, prefix="entrez")
    if detected_entrez is not None and not _mostly_numeric(table[detected_entrez]):
        detected_entrez = None  # e.g. a "GENE" column of symbols
    columns = {
        "entrez": entrez_column or detected_entrez,
        "ensembl": ensembl_column or _find_column(table, (), prefix="ensembl"),
        "symbol": _find_column(table, _SYMBOL_NAMES),
    }
    resolved, key_column = _resolved_pairs(table, annotation, columns)
    is_control = np.char.startswith(np.char.upper(probe_ids.astype(str)), CONTROL_PREFIX)
    resolved = resolved[~is_control[resolved["probe"].to_numpy()]]
    n_keys = resolved.groupby("probe")["key"].nunique()
    pairs = resolved.drop_duplicates(["probe", "gene_id"]).sort_values(["gene_id", "probe"])
    gene_ids = np.unique(pairs["gene_id"].to_numpy(dtype=str))
    pair_probe = pairs["probe"].to_numpy(dtype=np.int64)
    n_genes = np.bincount(pair_probe, minlength=len(probe_ids))
    is_multi = (n_genes > 1) & (n_keys.reindex(np.arange(len(probe_ids)), fill_value=0).to_numpy() > 1)
    pair_gene = np.searchsorted(gene_ids, pairs["gene_id"].to_numpy(dtype=str))
    return ProbeMap(
        probe_ids=pd.Index(probe_ids, name="probe_id"),
        pair_probe=pair_probe,
        pair_gene=pair_gene,
        is_multi_gene=is_multi,
        is_control=is_control,
        genes=annotation.genes.loc[gene_ids],
        key_column=key_column,
        source=source,
        annotation_release=annotation.release,
        stats=_stats(n_genes, is_multi, is_control, pairs=(pair_probe, pair_gene)),
    )


def _stats(
    n_genes: np.ndarray, is_multi: np.ndarray, is_control: np.ndarray, *, pairs: tuple[np.ndarray, np.ndarray]
) -> ProbeMapStats:
    pair_probe, pair_gene = pairs
    n_mapped = int(np.count_nonzero(n_genes > 0))
    all_genes = np.unique(pair_gene)
    unique_genes = np.unique(pair_gene[~is_multi[pair_probe]])
    return ProbeMapStats(
        n_probes=len(n_genes),
        n_mapped=n_mapped,
        n_unmapped=int(np.count_nonzero(~is_control)) - n_mapped,
        n_multi_gene=int(np.count_nonzero(is_multi)),
        n_control=int(np.count_nonzero(is_control)),
        n_genes=len(all_genes),
        n_genes_only_multi=len(all_genes) - len(unique_genes),
        n_split=int(np.count_nonzero((n_genes > 1) & ~is_multi)),
    )
