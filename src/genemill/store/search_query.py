"""Search requests: parsing the query language and building the SQL (SQLite FTS5 or PostgreSQL).

Query language (refine.bio's): free words, all required (AND), each of 3+ characters also matching
as a prefix (``kidn`` finds *kidney*), English stemming; ``field:value`` or ``field:"two words"``
for ``accession_code``, ``alternate_accession_code``, ``title``, ``description``,
``submitter_institution`` and ``publication_authors`` (case-insensitive substring; other
``word:word`` text is searched as plain words). A query that is exactly an accession (``GSE781``,
``E-GEOD-781``, ``SRP012345``…) pins that experiment first.

Ranking: SQLite FTS5 ``bm25`` with column weights accessions 5, title 10, authors 5, description 2,
institution 3, sample text 1; PostgreSQL ``ts_rank_cd`` over the weighted tsvector (title A,
authors/accessions B, description/institution C, sample text D). ``_score`` is higher-is-better
on both (bm25 is negated). Scores are not comparable across backends.

Two statements answer a search: ``counts_statement`` (total and facet counts in one UNION ALL over
a ``matching`` CTE, plus one CTE per filtered facet for multi-select counts) and
``page_statement`` (the ordered page with every column a result card needs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
from genemill.store.search_index import FACETS
from genemill.store.search_models import ExperimentFacet, ExperimentSearch

__all__ = [
    "BM25_WEIGHTS",
    "ORDERINGS",
    "PIN_SCORE",
    "SUMMARY_COLUMNS",
    "SearchQuery",
    "Terms",
    "check_query",
    "counts_statement",
    "fts_phrases",
    "page_statement",
    "parse_ordering",
    "parse_terms",
    "split_terms",
    "text_match",
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
BM25_WEIGHTS = (5.0, 10.0, 5.0, 2.0, 3.0, 1.0)
PIN_SCORE = 1e9


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
class Terms:
    """A parsed query: free words, ``field:value`` terms, the pinned experiment id."""

    words: list[str]
    fields: list[tuple[str, str]]
    pinned_id: int | None


def split_terms(text: str) -> tuple[list[str], list[tuple[str, str]], str | None]:
    """Free words (lower case), ``field:value`` terms and the accession the whole text is, if any."""
    fields = [(m.group(1).lower(), m.group(2) or m.group(3) or "") for m in _FIELD_TERM.finditer(text)]
    free = _FIELD_TERM.sub(" ", text)
    stripped = text.strip()
    accession = stripped if _ACCESSION.match(stripped) else None
    return [w.lower() for w in _WORD.findall(free)], fields, accession


def parse_terms(session: Session, text: str) -> Terms:
    """Free words, field terms and the experiment an exact accession pins."""
    words, fields, accession = split_terms(text)
    pinned = resolve_experiment_id(session, accession) if accession is not None else None
    return Terms(words=words, fields=fields, pinned_id=pinned)


def fts_phrases(words: list[str]) -> list[tuple[str, bool]]:
    """The FTS5 phrases of the free words: (word, is_prefix); stop words dropped unless all are."""
    kept = [w for w in words if w not in _STOPWORDS] or words
    return [(w, len(w) >= 3) for w in kept]


def _fts_query(words: list[str]) -> str:
    return " ".join(f'"{w}"*' if prefix else f'"{w}"' for w, prefix in fts_phrases(words))


def _pg_query(words: list[str]) -> str:
    return " & ".join(f"{w}:*" if len(w) >= 3 else w for w in words)


def text_match(session: Session, terms: Terms, *, scored: bool = True) -> Any:
    """Subquery (experiment_id, score) of text matches plus the pinned accession, or None.

    ``scored=False`` skips the relevance computation (score 0) where only membership counts.
    """
    if not terms.words:
        if terms.pinned_id is None:
            return None
        return select(literal(terms.pinned_id).label("experiment_id"), literal(PIN_SCORE).label("score"))
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery(cast("english", REGCONFIG), _pg_query(terms.words))
        document = ExperimentSearch.document
        rank = cast(func.ts_rank_cd(document, query), Float) if scored else literal(0.0)
        match: Select[Any] = select(
            ExperimentSearch.experiment_id.label("experiment_id"), rank.label("score")
        ).where(document.op("@@")(query))
    else:
        fts = table("experiment_fts", literal_column("rowid"))
        score = -func.bm25(literal_column("experiment_fts"), *BM25_WEIGHTS) if scored else literal(0.0)
        match = select(
            literal_column("experiment_fts.rowid").label("experiment_id"), score.label("score")
        ).select_from(fts)
        match = match.where(literal_column("experiment_fts").op("MATCH")(_fts_query(terms.words)))
        # LIMIT -1 stops SQLite from flattening the FTS query into the join, where bm25() is refused.
        inner = match.limit(-1).subquery("fts")
        match = select(inner.c.experiment_id, inner.c.score)
    if terms.pinned_id is not None:
        pin = select(literal(terms.pinned_id).label("experiment_id"), literal(PIN_SCORE).label("score"))
        return union_all(match, pin)
    return match


def _field_conditions(terms: Terms) -> list[Any]:
    conditions = []
    for name, value in terms.fields:
        if name == "accession_code":
            conditions.append(Experiment.accession == value.strip().upper())
        else:
            conditions.append(_FIELD_COLUMNS[name].ilike(f"%{value}%"))
    return conditions


def _facet_condition(facet: str, values: tuple[str, ...]) -> Any:
    # Correlated EXISTS: one primary-key probe (experiment_id, facet, value) per candidate, instead
    # of materializing every experiment of that facet value first.
    probe = select(ExperimentFacet.experiment_id).where(
        ExperimentFacet.experiment_id == Experiment.id,
        ExperimentFacet.facet == facet,
        ExperimentFacet.value.in_(values),
    )
    return probe.exists()


def _conditions(query: SearchQuery, terms: Terms, *, skip_facet: str | None = None) -> list[Any]:
    conditions = _field_conditions(terms)
    for facet, values in query.facet_filters().items():
        if facet != skip_facet:
            conditions.append(_facet_condition(facet, values))
    if query.num_downloadable_samples_gt is not None:
        conditions.append(Experiment.num_downloadable_samples > query.num_downloadable_samples_gt)
    if query.num_processed_samples_gt is not None:
        conditions.append(Experiment.num_processed_samples > query.num_processed_samples_gt)
    return conditions


def _matching(match: Any, conditions: list[Any], *, unique: bool) -> Any:
    """(id, score) of experiments passing the text match (if any) and every condition.

    ``unique``: the text match yields each experiment once (no pinned accession added to it).
    """
    if match is None:
        return select(Experiment.id.label("id"), literal(0.0).label("score")).where(and_(True, *conditions))
    sub = match.subquery("text_match")
    if unique and not conditions:
        return select(sub.c.experiment_id.label("id"), sub.c.score.label("score"))
    if unique:
        stmt = select(Experiment.id.label("id"), sub.c.score.label("score"))
        return stmt.join(sub, sub.c.experiment_id == Experiment.id).where(and_(True, *conditions))
    # A pinned accession can also be a text match: keep its best (pinned) score once.
    stmt = select(Experiment.id.label("id"), func.max(sub.c.score).label("score"))
    stmt = stmt.join(sub, sub.c.experiment_id == Experiment.id).where(and_(True, *conditions))
    return stmt.group_by(Experiment.id)


def _order(query: SearchQuery, source: Any, *, terms: Terms, has_text: bool) -> tuple[list[Any], bool]:
    """Sort keys over ``source`` (columns ``id``, ``score``) and whether they need ``experiment``."""
    name, descending = parse_ordering(query.ordering)
    # An exact accession match comes first whatever the ordering.
    keys: list[Any] = []
    if terms.pinned_id is not None:
        keys.append(case((source.c.id == terms.pinned_id, 0), else_=1))
    needs_experiment = True
    if name == "_score" and has_text:
        keys.append(source.c.score.desc())
        needs_experiment = False
    elif name == "_score":
        keys += [Experiment.num_downloadable_samples.desc(), Experiment.num_total_samples.desc()]
    else:
        column = _ORDER_COLUMNS[name]
        keys.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    return [*keys, source.c.id], needs_experiment


def check_query(query: SearchQuery) -> None:
    """InputError for values no database field can hold (NUL characters)."""
    values = [query.text, *query.organisms, *query.technologies, *query.platforms, query.ordering]
    if any("\x00" in value for value in values):
        msg = "search: a search term or filter contains a NUL character, which no field can hold"
        raise InputError(msg)


def _facet_names(facets: tuple[str, ...]) -> list[Any]:
    # The facet filter must not drive the plan: with it, SQLite walks every row of the facet through
    # ix_experiment_facet_value instead of looking up the matching experiments by primary key.
    # All facets: no filter needed. Some: compare an expression (coalesce) that no index serves.
    if set(facets) == set(FACETS):
        return []
    return [func.coalesce(ExperimentFacet.facet, "").in_(facets)]


def counts_statement(query: SearchQuery, terms: Terms, match: Any) -> Any:
    """Rows (facet, value, downloadable samples, experiments); the row with facet ``""`` is the total."""
    unique = terms.pinned_id is None
    matching = _matching(match, _conditions(query, terms), unique=unique).cte("matching")
    filtered = query.facet_filters()
    parts: list[Any] = [
        select(literal("").label("facet"), literal("").label("value"), func.count(), literal(0)).select_from(
            matching
        )
    ]
    groups: list[tuple[str | None, tuple[str, ...]]] = [(None, tuple(f for f in FACETS if f not in filtered))]
    groups += [(facet, (facet,)) for facet in filtered]
    for skip, facets in groups:
        if not facets:
            continue
        source = matching
        if skip is not None:
            conditions = _conditions(query, terms, skip_facet=skip)
            source = _matching(match, conditions, unique=unique).cte(f"matching_{skip}")
        parts.append(
            select(
                ExperimentFacet.facet,
                ExperimentFacet.value,
                func.sum(ExperimentFacet.downloadable_samples),
                func.count(ExperimentFacet.experiment_id),
            )
            # "+ 0": look facet rows up by experiment id for each match, not matches for each facet row.
            .join(source, source.c.id + 0 == ExperimentFacet.experiment_id)
            .where(*_facet_names(facets))
            .group_by(ExperimentFacet.facet, ExperimentFacet.value)
        )
    return union_all(*parts)


SUMMARY_COLUMNS = (
    Experiment.id,
    Experiment.accession,
    Experiment.alternate_accessions,
    Experiment.title,
    Experiment.description,
    Experiment.technology,
    Experiment.submitter_institution,
    Experiment.pubmed_id,
    Experiment.publication_title,
    Experiment.publication_doi,
    Experiment.publication_authors,
    Experiment.source_database,
    Experiment.source_url,
    Experiment.num_total_samples,
    Experiment.num_processed_samples,
    Experiment.num_downloadable_samples,
    Experiment.source_first_published,
    ExperimentSearch.sample_metadata_fields,
    ExperimentSearch.platform_names,
    ExperimentSearch.platform_accession_codes,
    ExperimentSearch.organism_names,
    ExperimentSearch.downloadable_organism_names,
)


def page_statement(query: SearchQuery, terms: Terms, match: Any) -> Select[Any]:
    """The ordered page: every column of a result card plus ``score``.

    The page is chosen on narrow rows (id, score, sort key) first and only its rows are joined to
    the wide card columns, so sorting thousands of matches never carries their descriptions.
    """
    has_text = match is not None
    matching = _matching(match, _conditions(query, terms), unique=terms.pinned_id is None).cte("matching")
    keys, needs_experiment = _order(query, matching, terms=terms, has_text=has_text)
    inner = select(matching.c.id, matching.c.score)
    if needs_experiment:
        inner = inner.join(Experiment, Experiment.id == matching.c.id)
    top = inner.order_by(*keys).limit(query.limit).offset(query.offset).subquery("top")
    outer_keys, _ = _order(query, top, terms=terms, has_text=has_text)
    return (
        select(*SUMMARY_COLUMNS, top.c.score)
        .select_from(top)
        .join(Experiment, Experiment.id == top.c.id)
        .outerjoin(ExperimentSearch, ExperimentSearch.experiment_id == Experiment.id)
        .order_by(*outer_keys)
    )
