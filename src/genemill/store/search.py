"""Experiment search: full text with relevance, facet filters and facet counts, in the database.

Query language (refine.bio's): free words, all required (AND), each of 3+ characters also matching
as a prefix (``kidn`` finds *kidney*), English stemming; ``field:value`` or ``field:"two words"``
for ``accession_code``, ``alternate_accession_code``, ``title``, ``description``,
``submitter_institution`` and ``publication_authors`` (case-insensitive substring; other
``word:word`` text is searched as plain words). A query that
is exactly an accession (``GSE781``, ``E-GEOD-781``, ``SRP012345``…) pins that experiment first.

Ranking: SQLite FTS5 ``bm25`` with column weights accessions 5, title 10, authors 5, description 2,
institution 3, sample text 1; PostgreSQL ``ts_rank_cd`` over the weighted tsvector (title A,
authors/accessions B, description/institution C, sample text D). ``_score`` is higher-is-better
on both (bm25 is negated). Scores are not comparable across backends.

Facets (organism, technology, platform, has_publication) count **downloadable samples** per value,
as refine.bio does; ``facet_experiments`` gives the number of experiments per value. Counts for a
facet apply every filter except that facet's own (multi-select faceting).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    table,
    union_all,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.orm import Session

from genemill.errors import InputError
from genemill.store.catalog import resolve_experiment_id
from genemill.store.models import Experiment
from genemill.store.search_index import FACETS, reindex_all, reindex_experiment, reindex_missing
from genemill.store.search_models import ExperimentFacet, ExperimentSearch

__all__ = [
    "FACETS",
    "ORDERINGS",
    "SearchQuery",
    "SearchResult",
    "parse_ordering",
    "reindex_all",
    "reindex_experiment",
    "reindex_missing",
    "search",
    "summary_dict",
]

ORDERINGS = (
    "_score",
    "num_total_samples",
    "num_processed_samples",
    "num_downloadable_samples",
    "source_first_published",
    "title",
    "accession_code",
    "id",
)
_ORDER_COLUMNS = {
    "num_total_samples": Experiment.num_total_samples,
    "num_processed_samples": Experiment.num_processed_samples,
    "num_downloadable_samples": Experiment.num_downloadable_samples,
    "source_first_published": Experiment.source_first_published,
    "title": Experiment.title,
    "accession_code": Experiment.accession,
    "id": Experiment.id,
}
_FIELD_COLUMNS = {
    "title": Experiment.title,
    "description": Experiment.description,
    "submitter_institution": Experiment.submitter_institution,
    "publication_authors": cast(Experiment.publication_authors, String),
    "alternate_accession_code": cast(Experiment.alternate_accessions, String),
}
_ACCESSION = re.compile(r"^(?:GSE|GDS|ERP|SRP|DRP)\d+$|^E-[A-Z]{4}-\d+$", re.IGNORECASE)
_FIELD_TERM = re.compile(
    r"\b(accession_code|alternate_accession_code|title|description|submitter_institution|publication_authors)"
    r':(?:"([^"]*)"|(\S+))',
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of"}
    | {"on", "or", "that", "the", "their", "this", "to", "was", "were", "with"}
)
_BM25_WEIGHTS = (5.0, 10.0, 5.0, 2.0, 3.0, 1.0)
_PIN_SCORE = 1e9


@dataclass(frozen=True)
class SearchQuery:
    """A search request; empty tuples mean "no filter"."""

    text: str = ""
    organisms: tuple[str, ...] = ()
    technologies: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    has_publication: bool | None = None
    num_downloadable_samples_gt: int | None = None
    num_processed_samples_gt: int | None = None
    ordering: str = "_score"
    limit: int = 25
    offset: int = 0

    def facet_filters(self) -> dict[str, tuple[str, ...]]:
        """Facet name → accepted values (only facets that are filtered)."""
        publication = () if self.has_publication is None else (str(self.has_publication).lower(),)
        values = {
            "organism": tuple(_organism_name(v) for v in self.organisms),
            "technology": tuple(v.upper() for v in self.technologies),
            "platform": tuple(v.upper() for v in self.platforms),
            "has_publication": publication,
        }
        return {facet: vals for facet, vals in values.items() if vals}


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, the total, and the facet counts."""

    count: int
    results: list[dict[str, Any]]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    facet_experiments: dict[str, dict[str, int]] = field(default_factory=dict)


def _organism_name(value: str) -> str:
    # Accept refine.bio's HOMO_SAPIENS as well as the scientific name.
    words = value.replace("_", " ").strip().split()
    return " ".join([words[0].capitalize(), *(w.lower() for w in words[1:])]) if words else ""


def parse_ordering(value: str) -> tuple[str, bool]:
    """``"-num_total_samples"`` → ``("num_total_samples", True)``; InputError when unknown."""
    name = value.strip()
    descending = name.startswith("-")
    name = name.removeprefix("-")
    if name not in ORDERINGS:
        msg = (
            f"ordering: expected one of {', '.join(ORDERINGS)} (optionally prefixed by '-'), found {value!r}"
        )
        raise InputError(msg)
    return name, descending


@dataclass(frozen=True)
class _Terms:
    words: list[str]
    fields: list[tuple[str, str]]
    pinned_id: int | None


def _parse_text(session: Session, text: str) -> _Terms:
    fields = [(m.group(1).lower(), m.group(2) or m.group(3) or "") for m in _FIELD_TERM.finditer(text)]
    free = _FIELD_TERM.sub(" ", text)
    pinned = None
    stripped = text.strip()
    if _ACCESSION.match(stripped):
        pinned = resolve_experiment_id(session, stripped)
    words = [w.lower() for w in _WORD.findall(free)]
    return _Terms(words=words, fields=fields, pinned_id=pinned)


def _fts_query(words: list[str]) -> str:
    kept = [w for w in words if w not in _STOPWORDS] or words
    return " ".join(f'"{w}"*' if len(w) >= 3 else f'"{w}"' for w in kept)


def _pg_query(words: list[str]) -> str:
    return " & ".join(f"{w}:*" if len(w) >= 3 else w for w in words)


def _text_match(session: Session, terms: _Terms) -> Any:
    """Subquery (experiment_id, score) of text matches plus the pinned accession, or None."""
    if not terms.words:
        if terms.pinned_id is None:
            return None
        return select(literal(terms.pinned_id).label("experiment_id"), literal(_PIN_SCORE).label("score"))
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery(cast("english", REGCONFIG), _pg_query(terms.words))
        document = ExperimentSearch.document
        match: Select[Any] = select(
            ExperimentSearch.experiment_id.label("experiment_id"),
            cast(func.ts_rank_cd(document, query), Float).label("score"),
        ).where(document.op("@@")(query))
    else:
        fts = table("experiment_fts", literal_column("rowid"))
        score = -func.bm25(literal_column("experiment_fts"), *_BM25_WEIGHTS)
        match = select(
            literal_column("experiment_fts.rowid").label("experiment_id"), score.label("score")
        ).select_from(fts)
        match = match.where(literal_column("experiment_fts").op("MATCH")(_fts_query(terms.words)))
        # LIMIT -1 stops SQLite from flattening the FTS query into the join, where bm25() is refused.
        inner = match.limit(-1).subquery("fts")
        match = select(inner.c.experiment_id, inner.c.score)
    if terms.pinned_id is not None:
        pin = select(literal(terms.pinned_id).label("experiment_id"), literal(_PIN_SCORE).label("score"))
        return union_all(match, pin)
    return match


def _field_conditions(terms: _Terms) -> list[Any]:
    conditions = []
    for name, value in terms.fields:
        if name == "accession_code":
            conditions.append(Experiment.accession == value.strip().upper())
        else:
            conditions.append(_FIELD_COLUMNS[name].ilike(f"%{value}%"))
    return conditions


def _facet_condition(facet: str, values: tuple[str, ...]) -> Any:
    members = select(ExperimentFacet.experiment_id).where(
        ExperimentFacet.facet == facet, ExperimentFacet.value.in_(values)
    )
    return Experiment.id.in_(members)


def _conditions(query: SearchQuery, terms: _Terms, *, skip_facet: str | None = None) -> list[Any]:
    conditions = _field_conditions(terms)
    for facet, values in query.facet_filters().items():
        if facet != skip_facet:
            conditions.append(_facet_condition(facet, values))
    if query.num_downloadable_samples_gt is not None:
        conditions.append(Experiment.num_downloadable_samples > query.num_downloadable_samples_gt)
    if query.num_processed_samples_gt is not None:
        conditions.append(Experiment.num_processed_samples > query.num_processed_samples_gt)
    return conditions


def _matching(match: Any, conditions: list[Any]) -> Select[Any]:
    if match is None:
        return select(Experiment.id.label("id"), literal(0.0).label("score")).where(and_(True, *conditions))
    sub = match.subquery("text_match")
    stmt = select(Experiment.id.label("id"), func.max(sub.c.score).label("score"))
    stmt = stmt.join(sub, sub.c.experiment_id == Experiment.id).where(and_(True, *conditions))
    return stmt.group_by(Experiment.id)


def _order(query: SearchQuery, matching: Any, *, terms: _Terms, has_text: bool) -> list[Any]:
    name, descending = parse_ordering(query.ordering)
    # An exact accession match comes first whatever the ordering.
    keys: list[Any] = []
    if terms.pinned_id is not None:
        keys.append(case((Experiment.id == terms.pinned_id, 0), else_=1))
    if name == "_score" and has_text:
        keys.append(matching.c.score.desc())
    elif name == "_score":
        keys += [Experiment.num_downloadable_samples.desc(), Experiment.num_total_samples.desc()]
    else:
        column = _ORDER_COLUMNS[name]
        keys.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    return [*keys, Experiment.id]


def _check_text(query: SearchQuery) -> None:
    values = [query.text, *query.organisms, *query.technologies, *query.platforms, query.ordering]
    if any("\x00" in value for value in values):
        msg = "search: a search term or filter contains a NUL character, which no field can hold"
        raise InputError(msg)


def search(session: Session, query: SearchQuery) -> SearchResult:
    """Run ``query``: ranked page of experiment summaries, total count and facet counts."""
    _check_text(query)
    terms = _parse_text(session, query.text)
    match = _text_match(session, terms)
    matching = _matching(match, _conditions(query, terms)).subquery("matching")
    count = session.scalar(select(func.count()).select_from(matching)) or 0
    page = (
        select(matching.c.id, matching.c.score)
        .join(Experiment, Experiment.id == matching.c.id)
        .order_by(*_order(query, matching, terms=terms, has_text=match is not None))
        .limit(query.limit)
        .offset(query.offset)
    )
    hits = session.execute(page).all()
    facets, experiments = _facet_counts(session, query, terms, match)
    results = _summaries(session, [(row.id, row.score if match is not None else None) for row in hits])
    return SearchResult(count=count, results=results, facets=facets, facet_experiments=experiments)


def _facet_counts(
    session: Session, query: SearchQuery, terms: _Terms, match: Any
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    filtered = query.facet_filters()
    groups: list[tuple[str | None, tuple[str, ...]]] = [(None, tuple(f for f in FACETS if f not in filtered))]
    groups += [(facet, (facet,)) for facet in filtered]
    samples: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    experiments: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    for skip, facets in groups:
        if not facets:
            continue
        ids = _matching(match, _conditions(query, terms, skip_facet=skip)).with_only_columns(Experiment.id)
        stmt = (
            select(
                ExperimentFacet.facet,
                ExperimentFacet.value,
                func.sum(ExperimentFacet.downloadable_samples),
                func.count(ExperimentFacet.experiment_id),
            )
            .where(ExperimentFacet.facet.in_(facets), ExperimentFacet.experiment_id.in_(ids))
            .group_by(ExperimentFacet.facet, ExperimentFacet.value)
        )
        for facet, value, downloadable, n_experiments in session.execute(stmt):
            samples[facet][value] = int(downloadable or 0)
            experiments[facet][value] = int(n_experiments)
    return _sorted(samples, experiments), _sorted(experiments, experiments)


def _sorted(
    counts: dict[str, dict[str, int]], experiments: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    # Most samples first, then most experiments, then by name: stable and useful on the page.
    return {
        facet: dict(sorted(values.items(), key=lambda kv: (-kv[1], -experiments[facet].get(kv[0], 0), kv[0])))
        for facet, values in counts.items()
    }


def _summaries(session: Session, hits: list[tuple[int, float | None]]) -> list[dict[str, Any]]:
    ids = [experiment_id for experiment_id, _score in hits]
    experiments = {e.id: e for e in session.scalars(select(Experiment).where(Experiment.id.in_(ids)))}
    docs = {
        d.experiment_id: d
        for d in session.scalars(select(ExperimentSearch).where(ExperimentSearch.experiment_id.in_(ids)))
    }
    return [summary_dict(experiments[i], docs.get(i), score=score) for i, score in hits if i in experiments]


def summary_dict(
    experiment: Experiment, doc: ExperimentSearch | None, *, score: float | None = None
) -> dict[str, Any]:
    """An experiment as a search result, with the anchor's field names (no samples)."""
    published = experiment.source_first_published
    return {
        "id": experiment.id,
        "accession_code": experiment.accession,
        "alternate_accession_code": (experiment.alternate_accessions or [None])[0],
        "title": experiment.title,
        "description": experiment.description,
        "technology": experiment.technology,
        "submitter_institution": experiment.submitter_institution,
        "has_publication": experiment.has_publication,
        "publication_title": experiment.publication_title,
        "publication_doi": experiment.publication_doi,
        "publication_authors": experiment.publication_authors,
        "pubmed_id": experiment.pubmed_id,
        "source_database": experiment.source_database,
        "source_url": experiment.source_url,
        "sample_metadata_fields": doc.sample_metadata_fields if doc else [],
        "platform_names": doc.platform_names if doc else [],
        "platform_accession_codes": doc.platform_accession_codes if doc else [],
        "organism_names": doc.organism_names if doc else [],
        "downloadable_organism_names": doc.downloadable_organism_names if doc else [],
        "num_total_samples": experiment.num_total_samples,
        "num_processed_samples": experiment.num_processed_samples,
        "num_downloadable_samples": experiment.num_downloadable_samples,
        "source_first_published": published.isoformat() if published else None,
        "_score": None if score is None or score >= _PIN_SCORE else round(float(score), 6),
        "is_exact_match": score is not None and score >= _PIN_SCORE,
    }
