"""SQLite FTS5's own tokenizer, callable from Python, for the in-memory search index.

The in-memory index (:mod:`genemill.store.search_memory`) must split text into exactly the terms
``experiment_fts`` holds, or its answers would differ from the FTS5 query. Rather than re-implement
``porter unicode61 remove_diacritics 2`` (and its case folding and diacritic tables), we ask SQLite:
an in-memory FTS5 table with the same ``tokenize`` option, whose ``fts5vocab`` 'instance' table
lists the terms of each row.

Text is first cut at ASCII characters that are not letters or digits (always separators for
unicode61 without ``tokenchars``), so only distinct *chunks* go through SQLite, once each, and a
chunk's terms are the same whether it is tokenized alone or inside its text.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable

__all__ = ["CHUNK", "Fts5Tokenizer", "tokenize_option"]

# Maximal runs of ASCII letters/digits and non-ASCII characters: the pieces unicode61 may join.
CHUNK = re.compile(r"[0-9A-Za-z\x80-\U0010ffff]+")
_TOKENIZE = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_BATCH = 20_000
_MEMO_LIMIT = 2_000_000  # chunks remembered; cleared past this (query words come from clients)


def tokenize_option(create_sql: str) -> str | None:
    """The ``tokenize = '…'`` option of a ``CREATE VIRTUAL TABLE … USING fts5(…)`` statement."""
    found = _TOKENIZE.search(create_sql)
    return found.group(1).replace("''", "'") if found else None


class Fts5Tokenizer:
    """Terms of strings as an FTS5 table with ``tokenize`` would index them (memoized per chunk)."""

    def __init__(self, tokenize: str) -> None:
        self._connection = sqlite3.connect(":memory:", check_same_thread=False)
        quoted = tokenize.replace("'", "''")
        self._connection.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{quoted}')")
        self._connection.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        self._memo: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def chunk_terms(self, chunks: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Terms of each chunk (a chunk may give none, one or several terms)."""
        wanted = set(chunks)
        with self._lock:
            missing = [c for c in wanted if c not in self._memo]
            if len(self._memo) + len(missing) > _MEMO_LIMIT:
                self._memo.clear()
                missing = list(wanted)
            for start in range(0, len(missing), _BATCH):
                self._tokenize(missing[start : start + _BATCH])
            return {c: self._memo[c] for c in wanted}

    def terms(self, text: str) -> list[str]:
        """Terms of ``text`` in order of their chunks (order within a chunk is FTS5's)."""
        chunks = CHUNK.findall(text)
        found = self.chunk_terms(chunks)
        return [term for chunk in chunks for term in found[chunk]]

    def _tokenize(self, chunks: list[str]) -> None:
        db = self._connection
        db.execute("DELETE FROM t")
        db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", enumerate(chunks))
        out: dict[int, list[tuple[int, str]]] = {}
        for doc, offset, term in db.execute("SELECT doc, offset, term FROM v"):
            out.setdefault(doc, []).append((offset, term))
        for index, chunk in enumerate(chunks):
            self._memo[chunk] = tuple(term for _, term in sorted(out.get(index, [])))
        db.execute("DELETE FROM t")

    def forget(self) -> None:
        """Drop the memoized chunks (after indexing a corpus, before serving queries)."""
        with self._lock:
            self._memo.clear()

    def close(self) -> None:
        """Close the in-memory database."""
        self._connection.close()
