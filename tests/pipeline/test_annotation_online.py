"""Missing annotation fetched online (GEO platform SOFT, NCBI gene tables) from a local server.

Served files are derived from real data at test time, in the archives' real layouts: the GPL96
family SOFT is the ^PLATFORM block of the real GSE781 family file; gene_info / gene2ensembl are the
real org.Hs.eg.db rows (data/annotation-org-hs-eg-db) rewritten in NCBI's column layout.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from fixture_server import FixtureServer

from genemill.config import Settings
from genemill.pipeline.process import process_experiment
from genemill.pipeline.survey import import_metadata
from genemill.store.db import Database

DATA = Path(__file__).resolve().parents[2] / "data"
GSE781 = DATA / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
ORG = DATA / "annotation-org-hs-eg-db"


def _split_family(tmp_path: Path) -> tuple[Path, Path]:
    """(series + samples without platform blocks, GPL96 platform family) from the real GSE781 file."""
    series, platform, keep = [], [], "series"
    with gzip.open(GSE781, "rt", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("^PLATFORM"):
                keep = "gpl96" if "GPL96" in line else "drop"
            elif line.startswith("^"):
                keep = "series"
            if keep == "series":
                series.append(line)
            elif keep == "gpl96":
                platform.append(line)
    series_path = tmp_path / "GSE781_without_platforms.soft"
    series_path.write_text("".join(series), encoding="latin-1")
    platform_path = tmp_path / "GPL96_family.soft.gz"
    platform_path.write_bytes(gzip.compress("".join(platform).encode("latin-1")))
    return series_path, platform_path


def _ncbi_tables(tmp_path: Path) -> tuple[Path, Path]:
    genes = pd.read_csv(ORG / "genes.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    info = pd.DataFrame(
        {
            "#tax_id": "9606",
            "GeneID": genes["entrez_id"],
            "Symbol": genes["symbol"],
            "LocusTag": "-",
            "Synonyms": "-",
            "dbXrefs": "-",
            "chromosome": genes["chromosome"],
            "map_location": "-",
            "description": genes["gene_name"],
            "type_of_gene": genes["gene_type"],
            "Modification_date": "20220912",
            "Feature_type": "-",
        }
    )
    pairs = pd.read_csv(ORG / "entrez_ensembl_gene.tsv.gz", sep="\t", dtype=str)
    g2e = pd.DataFrame(
        {
            "#tax_id": "9606",
            "GeneID": pairs["entrez_id"],
            "Ensembl_gene_identifier": pairs["ensembl_gene_id"],
            "RNA_nucleotide_accession.version": "-",
            "Ensembl_rna_identifier": "-",
            "protein_accession.version": "-",
            "Ensembl_protein_identifier": "-",
        }
    )
    info_path, g2e_path = tmp_path / "Homo_sapiens.gene_info.gz", tmp_path / "gene2ensembl.gz"
    info_path.write_bytes(gzip.compress(info.to_csv(sep="\t", index=False).encode()))
    g2e_path.write_bytes(gzip.compress(g2e.to_csv(sep="\t", index=False).encode()))
    return info_path, g2e_path


@pytest.mark.slow
def test_platform_and_gene_tables_are_fetched_when_missing(tmp_path) -> None:
    series, platform = _split_family(tmp_path)
    info, g2e = _ncbi_tables(tmp_path)
    with FixtureServer() as server:
        server.add_file("/geo/platforms/GPLnnn/GPL96/soft/GPL96_family.soft.gz", platform)
        server.add_file("/gene/DATA/GENE_INFO/Mammalia/Homo_sapiens.gene_info.gz", info)
        server.add_file("/gene/DATA/gene2ensembl.gz", g2e)
        settings = Settings(
            home=tmp_path / "home",
            online=True,
            annotation_dir=tmp_path / "no-annotation",
            geo_base_url=server.base_url,
        )
        db = Database(settings.resolved_database_url)
        db.migrate()
        import_metadata(settings, db, series)
        report = process_experiment(settings, db, "GSE781")
        fetched = {r.path for r in server.requests}
    gpl96 = report.details["submitter"]["GPL96"]
    assert gpl96["annotation_table"] == "GPL96"
    assert gpl96["annotation_release"].startswith("NCBI Gene gene_info + gene2ensembl (tax_id 9606")
    assert gpl96["n_mapped"] == 20018  # same mapping as with the org.Hs.eg.db files
    assert "/geo/platforms/GPLnnn/GPL97/soft/GPL97_family.soft.gz" in fetched  # tried, 404 -> refused
    assert all("GPL97" in report.refused[a] for a in report.refused)
    assert len(report.processed) == 17
    db.dispose()
