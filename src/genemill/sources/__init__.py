"""genemill.sources: the only code that opens sockets.

Rule: modules here may import only :mod:`genemill.errors`, :mod:`genemill.config` and
:mod:`genemill.accessions` from genemill; they return paths and small dataclasses, never parsed
file contents (parsing lives in :mod:`genemill.formats`).

* :mod:`~genemill.sources.http` — ``make_client``, ``RetryPolicy`` / ``with_retries``, ``RateLimiter``
* :mod:`~genemill.sources.fetch` — ``fetch``: verified, resumable, atomic downloads
* :mod:`~genemill.sources.geo` — NCBI GEO file-server layout, listings and fetchers
* :mod:`~genemill.sources.eutils` — NCBI E-utilities (GEO DataSets, PubMed summaries)
* :mod:`~genemill.sources.arrayexpress` — ArrayExpress/BioStudies IDF, SDRF and study files
* :mod:`~genemill.sources.ena` — ENA read runs and FASTQ downloads
* :mod:`~genemill.sources.ncbi_gene` — NCBI gene_info and gene2ensembl tables
* :mod:`~genemill.sources.affy_library` — Affymetrix CDFs by chip type from a CDF repository
"""

from __future__ import annotations

from genemill.sources import arrayexpress, ena, eutils, geo
from genemill.sources.fetch import FetchedFile, fetch
from genemill.sources.http import RateLimiter, RetryPolicy, make_client

__all__ = [
    "FetchedFile",
    "RateLimiter",
    "RetryPolicy",
    "arrayexpress",
    "ena",
    "eutils",
    "fetch",
    "geo",
    "make_client",
]
