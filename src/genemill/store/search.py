"""Experiment search: full text with relevance, facet filters and facet counts, in the database.

The query language, ranking and SQL are in :mod:`genemill.store.search_query`; the index is kept by
:mod:`genemill.store.search_index` (``reindex_experiment`` after every import or processing run).

Facets (organism, technology, platform, has_publication) count **downloadable samples** per value,
as refine.bio does; ``facet_experiments`` gives the number of experiments per value. Counts for a
facet apply every filter except that facet's own (multi-select faceting).

``SearchCache`` runs searches through a :class:`~genemill.store.search_engine.SearchEngine` when
given one (the in-memory index on SQLite) and keeps recent results per process, keyed by the
query and the index *generation* (the latest ``experiment_search.updated_at``, one indexed
lookup), so any reindex — from any process — makes older entries unreachable; entries also expire
after ``ttl`` seconds, which bounds staleness after deletions.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from genemill.store.search_engine import SearchEngine

from genemill.store.search_index import FACETS, reindex_all, reindex_experiment, reindex_missing
from genemill.store.search_models import ExperimentSearch
from genemill.store.search_query import (
    ORDERINGS,
    PIN_SCORE,
    SearchQuery,
    check_query,
    counts_statement,
    page_statement,
    parse_ordering,
    parse_terms,
    text_match,
)

__all__ = [
    "FACETS",
    "ORDERINGS",
    "SearchCache",
    "SearchQuery",
    "SearchResult",
    "index_generation",
    "parse_ordering",
    "reindex_all",
    "reindex_experiment",
    "reindex_missing",
    "search",
    "sorted_facets",
    "sqlite_driver_rows",
    "summary_dict",
]


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, the total, the facet counts, and what answered (sql, memory or cache)."""

    count: int
    results: list[dict[str, Any]]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    facet_experiments: dict[str, dict[str, int]] = field(default_factory=dict)
    engine: str = "sql"


def search(session: Session, query: SearchQuery) -> SearchResult:
    """Run ``query``: ranked page of experiment summaries, total count and facet counts."""
    parse_ordering(query.ordering)
    check_query(query)
    terms = parse_terms(session, query.text)
    match = text_match(session, terms)
    membership = text_match(session, terms, scored=False)
    samples: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    experiments: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    count = 0
    for facet, value, downloadable, n_experiments in session.execute(
        counts_statement(query, terms, membership)
    ):
        if facet == "":
            count = int(downloadable)
            continue
        samples[facet][value] = int(downloadable or 0)
        experiments[facet][value] = int(n_experiments)
    rows = session.execute(page_statement(query, terms, match)).mappings()
    results = [summary_dict(row, scored=match is not None) for row in rows]
    return SearchResult(
        count=count,
        results=results,
        facets=sorted_facets(samples, experiments),
        facet_experiments=sorted_facets(experiments, experiments),
    )


def sorted_facets(
    counts: dict[str, dict[str, int]], experiments: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Facet values ordered most samples first, then most experiments, then by name (stable, useful)."""
    return {
        facet: dict(sorted(values.items(), key=lambda kv: (-kv[1], -experiments[facet].get(kv[0], 0), kv[0])))
        for facet, values in counts.items()
    }


def summary_dict(row: Mapping[Any, Any], *, scored: bool = True) -> dict[str, Any]:
    """An experiment as a search result, with the anchor's field names (no samples)."""
    published = row["source_first_published"]
    score = row["score"] if scored else None
    return {
        "id": row["id"],
        "accession_code": row["accession"],
        "alternate_accession_code": (row["alternate_accessions"] or [None])[0],
        "title": row["title"],
        "description": row["description"],
        "technology": row["technology"],
        "submitter_institution": row["submitter_institution"],
        "has_publication": bool(row["pubmed_id"] or row["publication_doi"]),
        "publication_title": row["publication_title"],
        "publication_doi": row["publication_doi"],
        "publication_authors": row["publication_authors"],
        "pubmed_id": row["pubmed_id"],
        "source_database": row["source_database"],
        "source_url": row["source_url"],
        "sample_metadata_fields": row["sample_metadata_fields"] or [],
        "platform_names": row["platform_names"] or [],
        "platform_accession_codes": row["platform_accession_codes"] or [],
        "organism_names": row["organism_names"] or [],
        "downloadable_organism_names": row["downloadable_organism_names"] or [],
        "num_total_samples": row["num_total_samples"],
        "num_processed_samples": row["num_processed_samples"],
        "num_downloadable_samples": row["num_downloadable_samples"],
        "source_first_published": published.isoformat() if published else None,
        "_score": None if score is None or score >= PIN_SCORE else float(f"{score:.6g}"),
        "is_exact_match": score is not None and score >= PIN_SCORE,
    }


def index_generation(session: Session) -> str:
    """A value that changes whenever any experiment is (re)indexed: the latest search-row time.

    On SQLite the stored text, read with the driver (SQLAlchemy's statement layer costs several
    times this indexed lookup, once per search); elsewhere the column's value as text. Each
    backend always gives the same form, so generations compare within a process.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return str(sqlite_driver_rows(connection, _LATEST_UPDATE_SQL, ())[0][0])
    return str(connection.scalar(_LATEST_UPDATE))


def sqlite_driver_rows(connection: Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` from the sqlite3 connection under ``connection`` (same transaction).

    Why: ``exec_driver_sql`` costs ~0.03 ms a statement, the driver's own cursor ~0.006 ms.
    """
    driver = connection.connection.driver_connection
    if driver is None:  # not reachable on a checked-out connection; SQLAlchemy's way then
        return list(connection.exec_driver_sql(sql, tuple(parameters)).fetchall())
    cursor = driver.execute(sql, parameters)
    try:
        return list(cursor.fetchall())
    finally:
        cursor.close()


_LATEST_UPDATE = select(func.max(ExperimentSearch.updated_at))
_LATEST_UPDATE_SQL = f"SELECT max(updated_at) FROM {ExperimentSearch.__tablename__}"


class SearchCache:
    """A per-process LRU of search results keyed by (index generation, query), with a time to live.

    ``engine`` answers the misses (``search`` when None); ``size=0`` turns caching off.
    """

    def __init__(self, *, size: int = 512, ttl: float = 60.0, engine: SearchEngine | None = None) -> None:
        self.size = size
        self.ttl = ttl
        self.engine = engine
        self._entries: OrderedDict[tuple[str, SearchQuery], tuple[float, SearchResult]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _run(self, session: Session, query: SearchQuery, generation: str | None) -> SearchResult:
        if self.engine is None:
            return search(session, query)
        return self.engine.search(session, query, generation=generation)

    def search_in_memory(self, session: Session, query: SearchQuery) -> SearchResult | None:
        """The cached or in-memory answer, or None when only SQL answers (cheap: the event loop may
        call this; on None, run :meth:`search` in a thread so SQL never blocks the loop).
        Off SQLite always None: even the generation lookup is a network round trip there."""
        if self.engine is None or session.get_bind().dialect.name != "sqlite":
            return None
        if self.size <= 0 or self.ttl <= 0:
            return self.engine.search_in_memory(session, query)
        generation = index_generation(session)
        key, now = (generation, query), time.monotonic()
        cached = self._cached(key, now)
        if cached is not None:
            return cached
        result = self.engine.search_in_memory(session, query, generation=generation)
        if result is not None:
            self._store(key, now, result)
        return result

    def _cached(self, key: tuple[str, SearchQuery], now: float) -> SearchResult | None:
        """The stored result for ``key`` while it is younger than the time to live, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now - entry[0] >= self.ttl:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return replace(entry[1], engine="cache")

    def _store(self, key: tuple[str, SearchQuery], now: float, result: SearchResult) -> None:
        with self._lock:
            self.misses += 1
            self._entries[key] = (now, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def search(self, session: Session, query: SearchQuery) -> SearchResult:
        """``search(session, query)``, answered from the cache when the index has not changed."""
        if self.size <= 0 or self.ttl <= 0:
            return self._run(session, query, None)
        generation = index_generation(session)
        key, now = (generation, query), time.monotonic()
        cached = self._cached(key, now)
        if cached is not None:
            return cached
        result = self._run(session, query, generation)
        self._store(key, now, result)
        return result
