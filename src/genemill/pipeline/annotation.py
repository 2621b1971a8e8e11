"""Gene annotation for processing: org.Hs.eg.db tables and stored platform (GPL) probe tables.

Platform tables arrive inside GEO SOFT family files; on import their identifier columns are kept
as Parquet under ``$GENEMILL_HOME/annotation/platforms/<accession>.parquet`` with their source
(file sha256, GEO last-update date), so later processing (including a user's own CEL files on a
platform whose probe ids are a subset, e.g. HG-Focus within HG-U133A) can map probes to genes.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genemill.config import Settings
from genemill.errors import NotFoundError
from genemill.formats.records import ExperimentMetadata
from genemill.genes import GeneAnnotation, ProbeMap, load_org_hs_eg_db, probe_map_from_platform_table
from genemill.genes.ncbi import read_ncbi_gene_tables

__all__ = [
    "PlatformTable",
    "best_platform_table",
    "gene_annotation",
    "load_platform_table",
    "probe_map_for",
    "save_platform_tables",
]

ORG_HS_RELEASE = "org.Hs.eg.db 3.16.0"
_KEEP = re.compile(
    r"^(id|entrez|entrez_gene_id|gene id|gene|gene symbol|gene_symbol|symbol|ensembl.*|orf)$", re.I
)
_REPO_ANNOTATION = Path(__file__).resolve().parents[3] / "data" / "annotation-org-hs-eg-db"


@cache
def _load(directory: Path) -> GeneAnnotation:
    return load_org_hs_eg_db(directory, source=ORG_HS_RELEASE)


@cache
def _load_ncbi(gene_info: Path, gene2ensembl: Path) -> GeneAnnotation:
    with gzip.open(gene_info, "rt") as info, gzip.open(gene2ensembl, "rt") as pairs:
        return read_ncbi_gene_tables(info, pairs, tax_id=9606)


def _fetch_ncbi(settings: Settings) -> GeneAnnotation:
    from genemill.sources.http import make_client
    from genemill.sources.ncbi_gene import fetch_gene_tables

    with make_client(settings) as client:
        info, pairs = fetch_gene_tables(
            client, settings, 9606, dest_dir=settings.home / "annotation" / "ncbi"
        )
    return _load_ncbi(info, pairs)


def gene_annotation(settings: Settings) -> GeneAnnotation:
    """Entrez <-> Ensembl <-> symbol tables (cached per process).

    The org.Hs.eg.db extracts in ``annotation_dir`` (default: the repository's copy) when present;
    otherwise, with ``online``, NCBI Gene's gene_info + gene2ensembl, downloaded once.
    """
    directory = settings.annotation_dir or _REPO_ANNOTATION
    if (directory / "genes.tsv.gz").is_file():
        return _load(directory)
    if settings.online:
        return _fetch_ncbi(settings)
    msg = (
        f"gene annotation tables not found in {directory}: set GENEMILL_ANNOTATION_DIR to a folder "
        "with genes.tsv.gz and entrez_ensembl_gene.tsv.gz (org.Hs.eg.db extracts), or GENEMILL_ONLINE=1 "
        "to download NCBI Gene's tables"
    )
    raise NotFoundError(msg)


def _platform_dir(settings: Settings) -> Path:
    return settings.home / "annotation" / "platforms"


def save_platform_tables(
    settings: Settings, metadata: ExperimentMetadata, *, source_sha256: str
) -> list[str]:
    """Keep the identifier columns of every platform table in ``metadata``; return the accessions."""
    saved = []
    for platform in metadata.platforms:
        if platform.table is None or platform.table.n_rows == 0:
            continue
        frame = platform.table.to_frame()
        keep = [c for c in frame.columns if _KEEP.match(c.strip())]
        if not keep or keep[0].lower() != "id":
            keep = [frame.columns[0], *[c for c in keep if c != frame.columns[0]]]
        if len(keep) < 2:  # ids only (e.g. a GDS's ID_REF table): nothing to map with; keep what we have
            continue
        table = pa.Table.from_pandas(frame[keep], preserve_index=False)
        last_update = (platform.fields.get("Platform_last_update_date") or [""])[0]
        info = {
            "accession": platform.accession,
            "source": f"GEO {platform.accession} table (last update {last_update or 'unknown'})",
            "file_sha256": source_sha256,
        }
        table = table.replace_schema_metadata({b"genemill": json.dumps(info).encode()})
        target = _platform_dir(settings) / f"{platform.accession}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".parquet.part")
        pq.write_table(table, tmp)
        tmp.replace(target)
        saved.append(platform.accession)
    return saved


@dataclass(frozen=True)
class PlatformTable:
    """A stored platform probe table and where it came from."""

    accession: str
    table: pd.DataFrame
    source: str


def _fetch_platform(settings: Settings, accession: str) -> None:
    from genemill.formats.soft import read_soft_path
    from genemill.sources import geo
    from genemill.sources.http import make_client
    from genemill.store.files import sha256_file

    with make_client(settings) as client:
        path = geo.fetch_platform_soft(
            client, settings, accession, dest_dir=settings.home / "downloads" / accession
        )
    save_platform_tables(settings, read_soft_path(path), source_sha256=sha256_file(path))


def load_platform_table(settings: Settings, accession: str) -> PlatformTable | None:
    """The stored probe table of a platform (fetched from GEO first when ``online``), or None."""
    path = _platform_dir(settings) / f"{accession}.parquet"
    if not path.is_file() and settings.online and accession.upper().startswith("GPL"):
        _fetch_platform(settings, accession)
    if not path.is_file():
        return None
    table = pq.read_table(path)
    info = json.loads((table.schema.metadata or {}).get(b"genemill", b"{}"))
    return PlatformTable(accession, table.to_pandas(), str(info.get("source", accession)))


def best_platform_table(
    settings: Settings, probe_ids: list[str], *, prefer: str | None = None
) -> PlatformTable | None:
    """The stored table whose ids cover the most of ``probe_ids`` (>= 50%), ``prefer`` first."""
    wanted = set(probe_ids)
    if prefer:
        load_platform_table(settings, prefer)  # stored already, or fetched from GEO when online
    candidates = (
        sorted(p.stem for p in _platform_dir(settings).glob("*.parquet"))
        if _platform_dir(settings).is_dir()
        else []
    )
    if prefer in candidates:
        candidates.remove(prefer)
        candidates.insert(0, prefer)
    best: tuple[float, PlatformTable] | None = None
    for accession in candidates:
        loaded = load_platform_table(settings, accession)
        if loaded is None:
            continue
        overlap = len(wanted & set(loaded.table.iloc[:, 0].astype(str))) / max(1, len(wanted))
        if overlap >= 0.5 and (best is None or overlap > best[0]):
            best = (overlap, loaded)
        if best is not None and accession == prefer and overlap >= 0.99:
            break
    return best[1] if best else None


def probe_map_for(settings: Settings, platform: PlatformTable) -> ProbeMap:
    """Probe -> Ensembl map of a stored platform table."""
    return probe_map_from_platform_table(platform.table, gene_annotation(settings), source=platform.source)
