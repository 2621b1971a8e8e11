"""NCBI Gene tables (``gene_info``, ``gene2ensembl``) by the file server's real URL layout."""

from __future__ import annotations

from pathlib import Path

import httpx

from genemill.config import Settings
from genemill.sources.fetch import fetch
from genemill.sources.http import DEFAULT_POLICY, RetryPolicy

__all__ = ["fetch_gene_tables", "gene2ensembl_url", "gene_info_url"]

_GROUPS = {
    9606: ("Mammalia", "Homo_sapiens"),
    10090: ("Mammalia", "Mus_musculus"),
    10116: ("Mammalia", "Rattus_norvegicus"),
    7955: ("Non-mammalian_vertebrates", "Danio_rerio"),
}


def gene_info_url(base: str, tax_id: int) -> str:
    """``{base}/gene/DATA/GENE_INFO/Mammalia/Homo_sapiens.gene_info.gz`` for 9606, etc."""
    group, species = _GROUPS[tax_id]
    return f"{base.rstrip('/')}/gene/DATA/GENE_INFO/{group}/{species}.gene_info.gz"


def gene2ensembl_url(base: str) -> str:
    """``{base}/gene/DATA/gene2ensembl.gz`` (all species)."""
    return f"{base.rstrip('/')}/gene/DATA/gene2ensembl.gz"


def fetch_gene_tables(
    client: httpx.Client,
    settings: Settings,
    tax_id: int,
    *,
    dest_dir: Path,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> tuple[Path, Path]:
    """Download (verified, resumable, atomic) the species' gene_info and gene2ensembl files."""
    base = settings.geo_base_url
    info = fetch(
        client, gene_info_url(base, tax_id), dest_dir / Path(gene_info_url(base, tax_id)).name, policy=policy
    )
    pairs = fetch(client, gene2ensembl_url(base), dest_dir / "gene2ensembl.gz", policy=policy)
    return info.path, pairs.path
