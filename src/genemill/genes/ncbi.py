"""NCBI Gene's own tables as a gene space: ``gene_info`` + ``gene2ensembl`` -> GeneAnnotation.

Pure. Formats (tab-separated, header line starting with ``#``), as published under
``https://ftp.ncbi.nlm.nih.gov/gene/DATA/``:

* ``GENE_INFO/<group>/<Species>.gene_info.gz``: ``#tax_id GeneID Symbol LocusTag Synonyms dbXrefs
  chromosome map_location description type_of_gene … Modification_date Feature_type``;
* ``gene2ensembl.gz``: ``#tax_id GeneID Ensembl_gene_identifier RNA_nucleotide_accession.version
  Ensembl_rna_identifier protein_accession.version Ensembl_protein_identifier`` (one row per
  transcript; all species in one file, filtered here by ``tax_id``).

The release string names both files and the newest ``Modification_date`` in ``gene_info``.
"""

from __future__ import annotations

import io

import pandas as pd

from genemill.errors import FormatError
from genemill.genes.annotation import GeneAnnotation, Readable, load_gene_annotation

__all__ = ["read_ncbi_gene_tables"]


def _table(handle: Readable, columns: list[str], what: str) -> pd.DataFrame:
    frame = pd.read_csv(handle, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.lstrip("#") for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{what}: expected NCBI columns {columns}, missing {missing} (found {list(frame.columns)[:8]})"
        raise FormatError(msg, path=getattr(handle, "name", None))
    return frame


def read_ncbi_gene_tables(
    gene_info: Readable, gene2ensembl: Readable, *, tax_id: int = 9606
) -> GeneAnnotation:
    """Build the gene space of one species from NCBI ``gene_info`` and ``gene2ensembl`` handles."""
    info = _table(gene_info, ["tax_id", "GeneID", "Symbol", "Modification_date"], "gene_info")
    info = info[info["tax_id"] == str(tax_id)]
    pairs = _table(gene2ensembl, ["tax_id", "GeneID", "Ensembl_gene_identifier"], "gene2ensembl")
    pairs = pairs[(pairs["tax_id"] == str(tax_id)) & (pairs["Ensembl_gene_identifier"] != "-")]
    if info.empty or pairs.empty:
        msg = f"no rows for tax_id {tax_id} in gene_info ({len(info)}) or gene2ensembl ({len(pairs)})"
        raise FormatError(msg)
    genes_tsv = info.rename(columns={"GeneID": "entrez_id", "Symbol": "symbol"})[["entrez_id", "symbol"]]
    pairs_tsv = pairs.rename(columns={"GeneID": "entrez_id", "Ensembl_gene_identifier": "ensembl_gene_id"})
    pairs_tsv = pairs_tsv[["entrez_id", "ensembl_gene_id"]].drop_duplicates()
    newest = info["Modification_date"].max()
    source = f"NCBI Gene gene_info + gene2ensembl (tax_id {tax_id}, modified up to {newest})"
    return load_gene_annotation(
        io.StringIO(genes_tsv.to_csv(sep="\t", index=False)),
        io.StringIO(pairs_tsv.to_csv(sep="\t", index=False)),
        source=source,
    )
