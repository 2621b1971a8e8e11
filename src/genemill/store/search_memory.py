"""An in-memory copy of the SQLite search index that answers searches with NumPy, not SQL.

Why: on SQLite one FTS5 search with facet counts costs ~10-15 ms of CPU over 50,000 experiments,
which caps a 2-core server far below the request rates the API must sustain. The same answer from
arrays costs well under a millisecond. :class:`MemoryIndex` is an immutable snapshot of one index
*generation*; :mod:`genemill.store.search_engine` decides when to use it and when to reload.

It gives the FTS5 path's answers, not approximations of them:

* terms are FTS5's own (:class:`~genemill.store.search_tokens.Fts5Tokenizer` tokenizes with the
  ``tokenize`` option of ``experiment_fts``), and after loading, every term's document and instance
  counts are checked against ``fts5vocab`` of the real table; any difference refuses the snapshot;
* scores are FTS5's ``bm25`` (k1 = 1.2, b = 0.75, the column weights of
  :data:`~genemill.store.search_query.BM25_WEIGHTS`, IDF floored at 1e-6), computed in the same
  order of double operations, so results, ties and ``_score`` are identical;
* a query word is a phrase of one term (a prefix match when the word has 3+ characters);
  ``run`` returns None for what it does not do the same way (a word FTS5 splits into several terms
  or none, ``field:value`` terms), and the caller uses SQL.

Arrays are indexed by *position*: experiments sorted by id, so position order is id order.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from genemill.store.models import Experiment
from genemill.store.search_index import FACETS
from genemill.store.search_models import ExperimentFacet
from genemill.store.search_query import (
    BM25_WEIGHTS,
    PIN_SCORE,
    SearchQuery,
    fts_phrases,
    parse_ordering,
)
from genemill.store.search_tokens import Fts5Tokenizer, tokenize_option

__all__ = ["MemoryHits", "MemoryIndex", "UnsupportedIndexError"]

_K1 = 1.2
_B = 0.75
_ORDER_FIELDS = {
    "num_total_samples": "num_total",
    "num_processed_samples": "num_processed",
    "num_downloadable_samples": "num_downloadable",
    "source_first_published": "published",
    "title": "title",
    "accession_code": "accession",
    "id": "id",
}
_PREFIX_END = "\U0010ffff"
_MAX_COLUMNS = 8  # FTS columns packed into 3 bits of a posting key
# ASCII characters other than letters and digits: always separators for unicode61 (no tokenchars).
_SEPARATORS = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def _chunks(value: Any) -> list[str]:
    """Pieces of a cell that only unicode61 may split further (ASCII case folded, as FTS5 does).

    ``str.split`` also splits at Unicode spaces, which unicode61 treats as separators too.
    """
    content = str(value or "")
    if content.isascii():
        content = content.lower()
    return content.translate(_SEPARATORS).split()


class UnsupportedIndexError(Exception):
    """The stored index cannot be mirrored exactly (not SQLite FTS5, or a verification mismatch)."""


@dataclass(frozen=True)
class MemoryHits:
    """What a search needs besides the page's rows: ids and scores of the page, counts."""

    count: int
    ids: list[int]
    scores: list[float]
    scored: bool
    facets: dict[str, dict[str, int]]
    facet_experiments: dict[str, dict[str, int]]


@dataclass(frozen=True)
class _Facet:
    values: list[str]
    codes: dict[str, int]
    # Each experiment's first row of this facet, dense by position (code -1: none) ...
    first_code: NDArray[np.int64]
    first_downloadable: NDArray[np.float64]
    # ... and the rows after the first (experiments with several organisms or platforms).
    extra_positions: NDArray[np.int64]
    extra_codes: NDArray[np.int64]
    extra_downloadable: NDArray[np.float64]
    by_code: list[NDArray[np.int64]]  # positions of the experiments carrying each value


def _dense_rank(values: Sequence[Any]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Rank of each value among the distinct non-null values (ties share a rank), and null flags."""
    distinct = sorted({v for v in values if v is not None})
    rank = {v: i for i, v in enumerate(distinct)}
    ranks = np.array([rank.get(v, 0) if v is not None else 0 for v in values], dtype=np.int64)
    nulls = np.array([v is None for v in values], dtype=np.bool_)
    return ranks, nulls


class MemoryIndex:
    """One generation of the search index, in arrays (build with :meth:`load`)."""

    def __init__(self, generation: str, tokenizer: Fts5Tokenizer) -> None:
        self.generation = generation
        self.tokenizer = tokenizer
        self.ids: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.accessions: dict[str, int] = {}
        self.alternates: dict[str, int] = {}
        self.columns: dict[str, NDArray[Any]] = {}
        self.order_ranks: dict[str, tuple[NDArray[np.int64], NDArray[np.bool_]]] = {}
        self.facets: dict[str, _Facet] = {}
        self.terms: list[str] = []
        self.term_offsets: NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self.posting_docs: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.posting_freq: NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self.doc_length: NDArray[np.float64] = np.zeros(0, dtype=np.float64)
        self.doc_position: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.n_docs = 0
        self.avgdl = 1.0
        self._key_cache: dict[tuple[str, bool], NDArray[np.int64]] = {}
        self.facet_offsets: NDArray[np.int64] = np.zeros(len(FACETS) + 1, dtype=np.int64)
        self.facet_first: NDArray[np.int64] = np.zeros((0, len(FACETS)), dtype=np.int64)
        self.facet_first_downloadable: NDArray[np.float64] = np.zeros((0, len(FACETS)))
        self.facet_extra = False
        self.instance_counts: NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, session: Session, generation: str) -> MemoryIndex:
        """Read the index of ``generation`` (call inside one transaction); UnsupportedIndexError."""
        bind = session.get_bind()
        if bind.dialect.name != "sqlite":
            msg = "the in-memory search index mirrors SQLite FTS5 only"
            raise UnsupportedIndexError(msg)
        create_sql = session.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'experiment_fts'"))
        option = tokenize_option(create_sql or "")
        if option is None:
            msg = "experiment_fts has no tokenize option to mirror"
            raise UnsupportedIndexError(msg)
        index = cls(generation, Fts5Tokenizer(option))
        index._load_experiments(session)
        index._load_facets(session)
        index._load_text(session)
        index._verify(session)
        index.tokenizer.forget()  # the corpus's chunks; queries memoize their own words
        return index

    def _load_experiments(self, session: Session) -> None:
        rows = session.execute(
            select(
                Experiment.id,
                Experiment.accession,
                Experiment.alternate_accessions,
                Experiment.title,
                Experiment.num_total_samples,
                Experiment.num_processed_samples,
                Experiment.num_downloadable_samples,
                Experiment.source_first_published,
            ).order_by(Experiment.id)
        ).all()
        self.ids = np.array([r.id for r in rows], dtype=np.int64)
        for r in rows:
            self.accessions.setdefault(r.accession, r.id)
            for alternate in r.alternate_accessions or []:
                self.alternates.setdefault(str(alternate).upper(), r.id)
        raw: dict[str, list[Any]] = {
            "id": [r.id for r in rows],
            "accession": [r.accession for r in rows],
            "title": [r.title for r in rows],
            "num_total": [r.num_total_samples for r in rows],
            "num_processed": [r.num_processed_samples for r in rows],
            "num_downloadable": [r.num_downloadable_samples for r in rows],
            "published": [_date_key(r.source_first_published) for r in rows],
        }
        for name in ("num_processed", "num_downloadable"):
            values = raw[name]
            # NULL fails every ">" filter: -inf does too.
            self.columns[name] = np.array([-math.inf if v is None else v for v in values], dtype=np.float64)
        for name, values in raw.items():
            self.order_ranks[name] = _dense_rank(values)
        # Default order without text: most downloadable, then most samples (NULL is smallest in SQLite).
        pairs = [
            (-(d if d is not None else -math.inf), -(t if t is not None else -math.inf))
            for d, t in zip(raw["num_downloadable"], raw["num_total"], strict=True)
        ]
        self.order_ranks["_default"] = _dense_rank(pairs)

    def position(self, experiment_id: int) -> int | None:
        """Position of an experiment id, or None."""
        at = int(np.searchsorted(self.ids, experiment_id))
        return at if at < len(self.ids) and int(self.ids[at]) == experiment_id else None

    def _positions(self, ids: Sequence[int]) -> NDArray[np.int64]:
        array = np.asarray(ids, dtype=np.int64)
        at = np.searchsorted(self.ids, array)
        at = np.minimum(at, max(len(self.ids) - 1, 0))
        if len(array) and (len(self.ids) == 0 or not np.array_equal(self.ids[at], array)):
            msg = "index rows name experiments that do not exist"
            raise UnsupportedIndexError(msg)
        return at.astype(np.int64)

    def _load_facets(self, session: Session) -> None:
        rows = session.execute(
            select(
                ExperimentFacet.experiment_id,
                ExperimentFacet.facet,
                ExperimentFacet.value,
                ExperimentFacet.downloadable_samples,
            )
        ).all()
        for facet in FACETS:
            mine = [r for r in rows if r.facet == facet]
            values = sorted({r.value for r in mine})
            codes = {v: i for i, v in enumerate(values)}
            positions = self._positions([r.experiment_id for r in mine])
            value_codes = np.array([codes[r.value] for r in mine], dtype=np.int64)
            downloadable = np.array([r.downloadable_samples or 0 for r in mine], dtype=np.float64)
            order = np.argsort(value_codes, kind="stable")
            bounds = np.searchsorted(value_codes[order], np.arange(len(values) + 1))
            by_code = [positions[order[bounds[i] : bounds[i + 1]]] for i in range(len(values))]
            first_code = np.full(len(self.ids), -1, dtype=np.int64)
            first_downloadable = np.zeros(len(self.ids), dtype=np.float64)
            seen = np.zeros(len(self.ids), dtype=np.bool_)
            is_first = np.zeros(len(positions), dtype=np.bool_)
            for row, position in enumerate(positions.tolist()):
                if not seen[position]:
                    seen[position] = is_first[row] = True
            first_code[positions[is_first]] = value_codes[is_first]
            first_downloadable[positions[is_first]] = downloadable[is_first]
            extra = ~is_first
            self.facets[facet] = _Facet(
                values,
                codes,
                first_code,
                first_downloadable,
                positions[extra],
                value_codes[extra],
                downloadable[extra],
                by_code,
            )

        self._stack_facets()

    def _load_text(self, session: Session) -> None:
        names = [row[1] for row in session.execute(text("PRAGMA table_info(experiment_fts)"))]
        if len(names) > _MAX_COLUMNS:
            msg = f"experiment_fts has {len(names)} columns; the in-memory index packs at most {_MAX_COLUMNS}"
            raise UnsupportedIndexError(msg)
        weights = np.array([BM25_WEIGHTS[i] if i < len(BM25_WEIGHTS) else 1.0 for i in range(len(names))])
        columns = ", ".join(f'"{n}"' for n in names)
        rows = (
            session.connection()
            .exec_driver_sql(f"SELECT rowid, {columns} FROM experiment_fts ORDER BY rowid")
            .fetchall()
        )
        n_docs, n_columns = len(rows), len(names)
        # Pass 1: distinct chunks, tokenized by FTS5 once each. Pass 2 (below) maps every chunk of
        # every cell to term ids; splitting twice costs less memory than keeping millions of strings.
        distinct: set[str] = set()
        for row in rows:
            for value in row[1:]:
                distinct.update(_chunks(value))
        chunk_terms = self.tokenizer.chunk_terms(distinct)
        self.terms = sorted({term for terms in chunk_terms.values() for term in terms})
        rank = {
            term: i for i, term in enumerate(self.terms)
        }  # sorted = UTF-8 byte order: prefixes are ranges
        single = {c: rank[terms[0]] for c, terms in chunk_terms.items() if len(terms) == 1}
        tokens = array("q")
        lengths = array("q")
        odd_terms: list[int] = []  # chunks of zero or several terms (rare): their terms and cells
        odd_cells: list[int] = []
        cell = 0
        for row in rows:
            for value in row[1:]:
                chunks = _chunks(value)
                ids = list(map(single.get, chunks, repeat(-1)))
                if -1 in ids:
                    for chunk, term in zip(chunks, ids, strict=True):
                        if term == -1:
                            odd_terms += [rank[t] for t in chunk_terms[chunk]]
                            odd_cells += [cell] * len(chunk_terms[chunk])
                tokens.extend(ids)
                lengths.append(len(ids))
                cell += 1
        term_of = np.frombuffer(tokens, dtype=np.int64)
        cell_of = np.repeat(np.arange(cell, dtype=np.int64), np.frombuffer(lengths, dtype=np.int64))
        keep = term_of >= 0
        term_of = np.concatenate([term_of[keep], np.array(odd_terms, dtype=np.int64)])
        cell_of = np.concatenate([cell_of[keep], np.array(odd_cells, dtype=np.int64)])
        del tokens, lengths, keep
        self.instance_counts = np.bincount(term_of, minlength=len(self.terms))
        column_of = cell_of % max(n_columns, 1)
        doc_of = np.floor_divide(cell_of, max(n_columns, 1), out=cell_of)
        self.doc_length = np.bincount(doc_of, minlength=n_docs).astype(np.float64)
        # One sort of (term, doc, column) packed in an int64 groups the postings (in place: the
        # arrays have one entry per token, millions of them).
        packed = np.multiply(term_of, max(n_docs, 1), out=term_of)
        packed += doc_of
        packed *= _MAX_COLUMNS
        packed += column_of
        del doc_of, column_of
        packed.sort()
        token_weight = weights[packed % _MAX_COLUMNS] if len(packed) else np.zeros(0)
        key = np.floor_divide(packed, _MAX_COLUMNS, out=packed)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        self.posting_freq = np.add.reduceat(token_weight, starts) if len(key) else np.zeros(0)
        unique_keys = key[starts]
        del key, packed, token_weight, starts
        self.posting_docs = unique_keys % max(n_docs, 1)
        posting_terms = unique_keys // max(n_docs, 1)
        self.term_offsets = np.searchsorted(posting_terms, np.arange(len(self.terms) + 1)).astype(np.int64)
        self.n_docs = n_docs
        total = int(self.doc_length.sum())
        self.avgdl = total / n_docs if n_docs else 1.0
        self.doc_position = self._positions([int(r[0]) for r in rows])

    def _verify(self, session: Session) -> None:
        """Every term's document and instance counts must equal FTS5's own (fts5vocab 'row')."""
        session.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.genemill_fts_rows "
                "USING fts5vocab(main, experiment_fts, 'row')"
            )
        )
        stored = session.execute(text("SELECT term, doc, cnt FROM temp.genemill_fts_rows")).all()
        if len(stored) != len(self.terms):
            msg = f"FTS5 holds {len(stored)} terms, the in-memory index {len(self.terms)}"
            raise UnsupportedIndexError(msg)
        doc_counts = np.diff(self.term_offsets)
        for term, n_doc, count in stored:
            at = bisect.bisect_left(self.terms, term)
            if at >= len(self.terms) or self.terms[at] != term:
                msg_0 = f"FTS5 term {term!r} is missing from the in-memory index"
                raise UnsupportedIndexError(msg_0)
            if int(doc_counts[at]) != n_doc or int(self.instance_counts[at]) != count:
                mine = f"{doc_counts[at]} / {self.instance_counts[at]}"
                msg = f"FTS5 term {term!r}: {n_doc} rows / {count} instances, in memory {mine}"
                raise UnsupportedIndexError(msg)

    # ------------------------------------------------------------------ querying

    def resolve(self, accession: str) -> int | None:
        """``catalog.resolve_experiment_id`` on the snapshot: accession, then alternate accession."""
        code = accession.strip().upper()
        found = self.accessions.get(code)
        return found if found is not None else self.alternates.get(code)

    def _phrase_range(self, word: str, prefix: bool) -> tuple[int, int] | None:
        terms = self.tokenizer.terms(word)
        if len(terms) != 1:
            return None  # FTS5 would make a multi-term phrase (or none): leave it to SQL
        term = terms[0]
        lo = bisect.bisect_left(self.terms, term)
        if not prefix:
            return (lo, lo + 1) if lo < len(self.terms) and self.terms[lo] == term else (lo, lo)
        hi = bisect.bisect_left(self.terms, term + _PREFIX_END, lo)
        while hi < len(self.terms) and self.terms[hi].startswith(term):
            hi += 1
        return lo, hi

    def _text(self, words: list[str]) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        """Matching FTS rows and their bm25 scores (higher is better), or None if unsupported."""
        phrases = []  # per phrase: the rows holding it (ascending) and its weighted frequency there
        for word, prefix in fts_phrases(words):
            bounds = self._phrase_range(word, prefix)
            if bounds is None:
                return None
            start, end = int(self.term_offsets[bounds[0]]), int(self.term_offsets[bounds[1]])
            docs, freq = self.posting_docs[start:end], self.posting_freq[start:end]
            if bounds[1] - bounds[0] > 1:  # a prefix of several terms: sum per row
                dense = np.bincount(docs, weights=freq, minlength=self.n_docs).astype(np.float64, copy=False)
                docs = np.flatnonzero(dense)
                freq = dense[docs]
            phrases.append((docs, freq))
        rows = phrases[0][0]
        for docs, _ in phrases[1:]:
            rows = _intersect_sorted(rows, docs)
        length = self.doc_length[rows]
        score = np.zeros(len(rows), dtype=np.float64)
        for docs, freq in phrases:
            n_hit = len(docs)
            idf = math.log((self.n_docs - n_hit + 0.5) / (n_hit + 0.5))
            if idf <= 0.0:
                idf = 1e-6
            f = freq[np.searchsorted(docs, rows)]
            score += idf * ((f * (_K1 + 1.0)) / (f + _K1 * (1 - _B + _B * length / self.avgdl)))
        return rows, score

    def _facet_mask(self, facet: str, values: tuple[str, ...]) -> NDArray[np.bool_]:
        info = self.facets[facet]
        mask = np.zeros(len(self.ids), dtype=np.bool_)
        for value in values:
            code = info.codes.get(value)
            if code is not None:
                mask[info.by_code[code]] = True
        return mask

    def _conditions(self, query: SearchQuery, skip: str | None = None) -> NDArray[np.bool_]:
        mask = np.ones(len(self.ids), dtype=np.bool_)
        for facet, values in query.facet_filters().items():
            if facet != skip:
                mask &= self._facet_mask(facet, values)
        if query.num_downloadable_samples_gt is not None:
            mask &= self.columns["num_downloadable"] > query.num_downloadable_samples_gt
        if query.num_processed_samples_gt is not None:
            mask &= self.columns["num_processed"] > query.num_processed_samples_gt
        return mask

    def _stack_facets(self) -> None:
        """All facets' first rows in one (position, facet) array of global codes, for one bincount.

        An experiment without a value for a facet gets the spare code ``total`` (the last bin,
        dropped), so no mask is needed; rows after the first are kept apart (usually none).
        """
        self.facet_offsets = np.cumsum([0, *(len(self.facets[f].values) for f in FACETS)])
        spare = int(self.facet_offsets[-1])
        self.facet_first = np.ascontiguousarray(
            np.stack(
                [
                    np.where(info.first_code >= 0, info.first_code + self.facet_offsets[row], spare)
                    for row, info in enumerate(self.facets[f] for f in FACETS)
                ],
                axis=1,
            )
        )
        self.facet_first_downloadable = np.ascontiguousarray(
            np.stack([self.facets[f].first_downloadable for f in FACETS], axis=1)
        )
        self.facet_extra = any(len(self.facets[f].extra_positions) for f in FACETS)

    def _counts(
        self, facets: list[str], members: NDArray[np.int64], matched: NDArray[np.bool_] | None
    ) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """Downloadable samples and experiments per value of ``facets`` over ``members``.

        ``matched``: the same set as a mask, if at hand (only needed for multi-valued facets).
        """
        rows = [FACETS.index(f) for f in facets]
        codes = self.facet_first.take(members, axis=0)
        weights = self.facet_first_downloadable.take(members, axis=0)
        if len(rows) != len(FACETS):
            codes, weights = codes[:, rows], weights[:, rows]
        codes, weights = codes.ravel(), weights.ravel()
        if self.facet_extra:
            if matched is None:
                matched = np.zeros(len(self.ids), dtype=np.bool_)
                matched[members] = True
            code_parts, weight_parts = [codes], [weights]
            for row, facet in zip(rows, facets, strict=True):
                info = self.facets[facet]
                extra = matched[info.extra_positions]
                code_parts.append(info.extra_codes[extra] + self.facet_offsets[row])
                weight_parts.append(info.extra_downloadable[extra])
            codes, weights = np.concatenate(code_parts), np.concatenate(weight_parts)
        bins = int(self.facet_offsets[-1]) + 1
        experiments = np.bincount(codes, minlength=bins)
        samples = np.bincount(codes, weights=weights, minlength=bins)
        out = {}
        for row, facet in zip(rows, facets, strict=True):
            values, start = self.facets[facet].values, int(self.facet_offsets[row])
            present = np.flatnonzero(experiments[start : start + len(values)])
            out[facet] = (
                {values[i]: int(samples[start + i]) for i in present},
                {values[i]: int(experiments[start + i]) for i in present},
            )
        return out

    def _order_key(self, name: str, descending: bool) -> NDArray[np.int64]:
        """One int64 per experiment whose ascending order is the SQL order (NULLs last, then id)."""
        cached = self._key_cache.get((name, descending))
        if cached is not None:
            return cached
        ranks, nulls = self.order_ranks[name]
        n = len(self.ids)
        top = int(ranks.max()) + 1 if n else 1
        ranks = top - 1 - ranks if descending else ranks
        key = (nulls.astype(np.int64) * top + ranks) * max(n, 1) + np.arange(n, dtype=np.int64)
        self._key_cache[(name, descending)] = key
        return key

    def run(self, query: SearchQuery, words: list[str], pinned_id: int | None) -> MemoryHits | None:
        """The search's counts and page ids, or None when only SQL answers it the FTS5 way."""
        name, descending = parse_ordering(query.ordering)
        n = len(self.ids)
        pinned = self.position(pinned_id) if pinned_id is not None else None
        scored = bool(words) or pinned_id is not None
        filtered = query.facet_filters()
        conditions = bool(filtered) or (
            query.num_downloadable_samples_gt is not None or query.num_processed_samples_gt is not None
        )
        found = self._text(words) if words else None
        if words and found is None:
            return None
        if found is not None and not conditions:
            # Text only (the usual search): stay on the matching rows, no per-experiment arrays.
            chosen, chosen_score = self.doc_position[found[0]], found[1]
            if pinned is not None:
                chosen, chosen_score = _with_pinned(chosen, chosen_score, pinned)
            matched = None
            text_mask = None
        else:
            score = np.zeros(n, dtype=np.float64)
            if found is not None:
                text_mask = np.zeros(n, dtype=np.bool_)
                positions = self.doc_position[found[0]]
                text_mask[positions] = True
                score[positions] = found[1]
            else:
                text_mask = (
                    np.zeros(n, dtype=np.bool_) if pinned_id is not None else np.ones(n, dtype=np.bool_)
                )
            if pinned is not None:
                text_mask[pinned] = True
                score[pinned] = PIN_SCORE
            matched = text_mask & self._conditions(query) if conditions else text_mask
            chosen = np.flatnonzero(matched)
            chosen_score = score[chosen]
        counts = self._counts([f for f in FACETS if f not in filtered], chosen, matched)
        for facet in filtered:  # multi-select: a filtered facet counts without its own filter
            assert text_mask is not None
            source = text_mask & self._conditions(query, skip=facet)
            counts |= self._counts([facet], np.flatnonzero(source), source)
        samples = {facet: counts[facet][0] for facet in FACETS}
        experiments = {facet: counts[facet][1] for facet in FACETS}
        ids, scores = self._page(chosen, chosen_score, query, name, descending, scored=scored, pinned=pinned)
        return MemoryHits(
            count=len(chosen),
            ids=ids,
            scores=scores,
            scored=scored,
            facets=samples,
            facet_experiments=experiments,
        )

    def _page(
        self,
        chosen: NDArray[np.int64],
        chosen_score: NDArray[np.float64],
        query: SearchQuery,
        name: str,
        descending: bool,
        *,
        scored: bool,
        pinned: int | None,
    ) -> tuple[list[int], list[float]]:
        """Ids and scores of the page: the pinned experiment first, then the ordering."""
        first_ids: list[int] = []
        first_scores: list[float] = []
        if pinned is not None and len(chosen):
            others = chosen != pinned
            if not others.all():
                first_ids, first_scores = [int(self.ids[pinned])], [PIN_SCORE]
                chosen, chosen_score = chosen[others], chosen_score[others]
        wanted = max(query.offset + query.limit - len(first_ids), 0)
        if name == "_score" and scored:
            top = _top_by_score(chosen, chosen_score, wanted)
        else:
            # Without text, "_score" (either sign) means most downloadable samples first.
            default = name == "_score"
            key = self._order_key("_default" if default else _ORDER_FIELDS[name], descending and not default)
            top = _top_by_key(key[chosen], wanted)
        ids = [*first_ids, *self.ids[chosen[top]].tolist()]
        scores = [*first_scores, *chosen_score[top].tolist()]
        window = slice(query.offset, query.offset + query.limit)
        return ids[window], scores[window]


def _intersect_sorted(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Values in both ascending unique arrays (binary search of the shorter in the longer, no sort)."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    if len(small) == 0 or len(large) == 0:
        return small[:0]
    at = np.minimum(np.searchsorted(large, small), len(large) - 1)
    found: NDArray[np.int64] = small[large[at] == small]
    return found


def _with_pinned(
    chosen: NDArray[np.int64], score: NDArray[np.float64], pinned: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Add the pinned experiment (score PIN_SCORE) to ascending ``chosen``, or raise its score."""
    at = int(np.searchsorted(chosen, pinned))
    if at < len(chosen) and int(chosen[at]) == pinned:
        score = score.copy()
        score[at] = PIN_SCORE
        return chosen, score
    return np.insert(chosen, at, pinned), np.insert(score, at, PIN_SCORE)


def _top_by_key(values: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """Indices of the ``k`` smallest (unique) keys, in order."""
    if k <= 0 or len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(values):
        part = np.argpartition(values, k - 1)[:k]
        return part[np.argsort(values[part])]
    return np.argsort(values)


def _top_by_score(chosen: NDArray[np.int64], score: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Indices of the best ``k`` by score (descending), ties by position (= id) ascending."""
    if k <= 0 or len(chosen) == 0:
        return np.zeros(0, dtype=np.int64)
    negative = -score
    candidates = np.arange(len(chosen))
    if k < len(chosen):
        threshold = np.partition(negative, k - 1)[k - 1]
        candidates = np.flatnonzero(negative <= threshold)  # every tie with the k-th stays
    order = np.lexsort((chosen[candidates], negative[candidates]))
    return candidates[order[:k]]


def _date_key(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
