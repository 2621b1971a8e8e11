"""Serve searches from the in-memory index when it is current, from SQL otherwise.

One :class:`SearchEngine` per server process holds the :class:`~genemill.store.search_memory.MemoryIndex`
of the latest index *generation* (``search.index_generation``: the newest ``experiment_search``
row time, so every reindex, from any process, changes it). Each search reads the generation (one
indexed lookup); when it differs from the loaded one, a reload starts (in a background thread by
default) and, until it is ready, searches run on SQL, so answers are never stale. Queries the
memory index does not answer exactly as FTS5 (``field:value`` terms, words FTS5 splits) and every
non-SQLite database also run on SQL. The page's rows always come from the database.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import gc
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Date, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from genemill.store.search import (
    SearchResult,
    index_generation,
    search,
    sorted_facets,
    sqlite_driver_rows,
    summary_dict,
)
from genemill.store.search_memory import MemoryIndex, UnsupportedIndexError
from genemill.store.search_query import SUMMARY_COLUMNS, SearchQuery, check_query, parse_ordering, split_terms

__all__ = ["SearchEngine"]

logger = logging.getLogger("genemill.search")

_json_loads: Callable[[Any], Any]
try:
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - orjson is optional
    _json_loads = json.loads


class SearchEngine:
    """Searches answered from memory (SQLite, current generation) or by ``search.search``.

    ``background=False`` loads the index inside the request that finds it missing or stale (tests,
    one-shot tools); the default loads it in a thread while SQL answers.

    ``freeze_heap`` (servers, with ``background``): after a load, collect once and ``gc.freeze()``
    the process's heap (app, modules, index), so later cyclic collections skip it: one full
    collection of it took ~107 ms in a warmed bench server process (185,000 tracked objects),
    a pause longer than the p99 target. Frozen objects are still freed by reference counting.
    """

    def __init__(self, *, background: bool = True, freeze_heap: bool = True) -> None:
        self.background = background
        self.freeze_heap = freeze_heap and background
        self.index: MemoryIndex | None = None
        self.failed_generation: str | None = None
        self._loading = False
        self._lock = threading.Lock()

    def search(self, session: Session, query: SearchQuery, *, generation: str | None = None) -> SearchResult:
        """``search.search(session, query)``, from memory when possible (``engine`` says which)."""
        found = self._answer(session, query, generation, load=True)
        return found if found is not None else search(session, query)

    def search_in_memory(
        self, session: Session, query: SearchQuery, *, generation: str | None = None
    ) -> SearchResult | None:
        """The memory index's answer, or None when SQL must answer: never runs the SQL search or
        loads the index in the caller's thread (an async route calls this on the event loop and
        runs :meth:`search` in the thread pool on None). A stale index starts a background load."""
        return self._answer(session, query, generation, load=False)

    def _answer(
        self, session: Session, query: SearchQuery, generation: str | None, *, load: bool
    ) -> SearchResult | None:
        parse_ordering(query.ordering)
        check_query(query)
        if session.get_bind().dialect.name != "sqlite":
            return None
        current = generation if generation is not None else index_generation(session)
        index = self._current(session, current, load=load)
        if index is None:
            return None
        words, fields, accession = split_terms(query.text)
        if fields:
            return None
        pinned = index.resolve(accession) if accession is not None else None
        hits = index.run(query, words, pinned)
        if hits is None:
            return None
        rows = _summary_rows(session, hits.ids)
        if len(rows) != len(hits.ids):  # an experiment vanished without a reindex: trust SQL
            return None
        results = [
            summary_dict({**rows[i], "score": s}, scored=hits.scored)
            for i, s in zip(hits.ids, hits.scores, strict=True)
        ]
        return SearchResult(
            count=hits.count,
            results=results,
            facets=sorted_facets(hits.facets, hits.facet_experiments),
            facet_experiments=sorted_facets(hits.facet_experiments, hits.facet_experiments),
            engine="memory",
        )

    def _current(self, session: Session, generation: str, *, load: bool = True) -> MemoryIndex | None:
        index = self.index
        if index is not None and index.generation == generation:
            return index
        if generation == self.failed_generation:
            return None
        if not self.background:
            if not load:
                return None  # the caller's SQL path (search) loads it
            self._load(session, generation)
            index = self.index
            return index if index is not None and index.generation == generation else None
        self.start_loading(session.get_bind())
        return None

    @property
    def loading(self) -> bool:
        """True while a background load runs."""
        with self._lock:
            return self._loading

    def start_loading(self, bind: Any) -> None:
        """Load the current generation in a daemon thread (no-op when a load is running)."""
        if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
            return
        with self._lock:
            if self._loading:
                return
            self._loading = True
        threading.Thread(target=self._load_in_thread, args=(bind,), name="search-index", daemon=True).start()

    def _load_in_thread(self, bind: Engine) -> None:
        try:
            with Session(bind) as session:
                self._load(session, index_generation(session))
        except SQLAlchemyError as exc:  # e.g. tables not migrated yet: SQL answers, a later search retries
            logger.warning("the in-memory search index could not be loaded yet: %s", exc.__class__.__name__)
        except Exception:  # a failed load leaves SQL answering; the log says why
            logger.exception("loading the in-memory search index failed")
        finally:
            with self._lock:
                self._loading = False

    def _load(self, session: Session, generation: str) -> None:
        try:
            index = MemoryIndex.load(session, generation)
        except UnsupportedIndexError as exc:
            logger.warning("search index generation %s stays on SQL: %s", generation, exc)
            self.failed_generation = generation
            return
        if index_generation(session) != generation:
            return  # reindexed while loading: the next search loads the newer generation
        self.index = index
        if self.freeze_heap:
            _freeze_heap()
        _return_freed_memory()
        logger.info(
            "in-memory search index loaded: generation %s, %d experiments", generation, len(index.ids)
        )


def _freeze_heap() -> None:
    """Collect the loader's garbage, then move every tracked object out of the collector's reach."""
    gc.collect()
    gc.freeze()


def _return_freed_memory() -> None:
    """Hand the loader's freed heap back to the OS: glibc keeps it (about 40 MB at 50,000 experiments)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to do
        return
    libc.malloc_trim(0)


def _decoder(column: Any) -> Callable[[Any], Any] | None:
    """How a raw SQLite value of ``column`` becomes what SQLAlchemy would return (None: as is)."""
    if isinstance(column.type, JSON):
        return _json_loads
    if isinstance(column.type, Date):
        return dt.date.fromisoformat
    return None


_SUMMARY_NAMES = [column.name for column in SUMMARY_COLUMNS]
_SUMMARY_DECODERS = [(i, d) for i, column in enumerate(SUMMARY_COLUMNS) if (d := _decoder(column))]
_SUMMARY_SQL = (
    f"SELECT {', '.join(f'{c.table.name}.{c.name}' for c in SUMMARY_COLUMNS)} FROM experiment "
    "LEFT OUTER JOIN experiment_search ON experiment_search.experiment_id = experiment.id "
    "WHERE experiment.id IN ({})"
)


@functools.lru_cache(maxsize=64)
def _summary_sql(n_ids: int) -> str:
    return _SUMMARY_SQL.format(", ".join("?" * n_ids))


def _summary_rows(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Card columns of ``ids`` (SQLite), read with the driver: SQLAlchemy's row processing costs
    more than the query (the driver's cursor directly: even ``exec_driver_sql`` costs ~0.05 ms).
    Values decode as SQLAlchemy would (the parity tests compare both paths)."""
    if not ids:
        return {}
    sql = _summary_sql(len(ids))
    fetched = sqlite_driver_rows(session.connection(), sql, ids)
    out: dict[int, dict[str, Any]] = {}
    for raw in fetched:
        values = list(raw)
        for i, decode in _SUMMARY_DECODERS:
            if values[i] is not None:
                values[i] = decode(values[i])
        row = dict(zip(_SUMMARY_NAMES, values, strict=True))
        out[row["id"]] = row
    return out
