"""Keep the experiment search index in step with the catalog.

For each experiment we write, in the caller's transaction:

* the ``experiment_search`` summary row (organisms, downloadable organisms, platforms, harmonized
  fields present);
* its ``experiment_facet`` rows: for each organism, technology, platform and has_publication value,
  the number of downloadable (processed) and total samples carrying it;
* the text index: on SQLite one ``experiment_fts`` row (rowid = experiment id) with the columns
  accessions, title, authors, description, institution, sample_text; on PostgreSQL the weighted
  ``experiment_search.document`` tsvector (title A; authors and accessions B; description and
  institution C; sample text D) built by ``to_tsvector('english', …)``.

Sample text is the distinct sample titles, harmonized values, characteristic values and source
names. Documents are built with Core queries in chunks, so ``reindex_all`` over a million samples
reads each table once per chunk instead of walking ORM relationships.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Update, bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session

from genemill.store.models import (
    HARMONIZED_FIELDS,
    Experiment,
    Organism,
    Platform,
    ProcessingState,
    Sample,
    experiment_sample,
    utcnow,
)
from genemill.store.search_models import ExperimentFacet, ExperimentSearch

__all__ = [
    "ExperimentDocument",
    "experiment_document",
    "reindex_all",
    "reindex_experiment",
    "reindex_missing",
]

FACETS = ("organism", "technology", "platform", "has_publication")
_CHUNK = 500
_MAX_SAMPLE_TEXT = 200_000
_PG_DOCUMENT = """
UPDATE experiment_search SET document =
    setweight(to_tsvector('english', :title), 'A')
 || setweight(to_tsvector('english', :accessions || ' ' || :authors), 'B')
 || setweight(to_tsvector('english', :description || ' ' || :institution), 'C')
 || setweight(to_tsvector('english', :sample_text), 'D')
WHERE experiment_id = :experiment_id
"""
_FTS_DELETE = "DELETE FROM experiment_fts WHERE rowid = :experiment_id"
_FTS_INSERT = (
    "INSERT INTO experiment_fts (rowid, accessions, title, authors, description, institution, sample_text) "
    "VALUES (:experiment_id, :accessions, :title, :authors, :description, :institution, :sample_text)"
)


@dataclass
class ExperimentDocument:
    """Everything the index holds about one experiment."""

    experiment_id: int
    accessions: str
    title: str
    authors: str
    description: str
    institution: str
    has_publication: bool
    sample_words: dict[str, None] = field(default_factory=dict)
    organisms: dict[str, list[int]] = field(default_factory=dict)
    technologies: dict[str, list[int]] = field(default_factory=dict)
    platforms: dict[str, list[int]] = field(default_factory=dict)
    platform_names: dict[str, str] = field(default_factory=dict)
    fields_present: set[str] = field(default_factory=set)
    counts: list[int] = field(default_factory=lambda: [0, 0])

    @property
    def sample_text(self) -> str:
        """Distinct sample strings, bounded so one huge experiment cannot bloat the index."""
        return " ".join(self.sample_words)[:_MAX_SAMPLE_TEXT]

    def text_params(self) -> dict[str, Any]:
        """Bind parameters for the FTS insert and the tsvector update."""
        return {
            "experiment_id": self.experiment_id,
            "accessions": self.accessions,
            "title": self.title,
            "authors": self.authors,
            "description": self.description,
            "institution": self.institution,
            "sample_text": self.sample_text,
        }


def reindex_experiment(
    session: Session,
    experiment: Experiment,
    *,
    document: ExperimentDocument | None = None,
    with_text: bool = True,
) -> None:
    """Rebuild the search row, facet rows and text index of one experiment (caller commits).

    ``document`` is one built ahead (:func:`experiment_document`), written as it is. With
    ``with_text=False`` the text index is left as it is: the caller knows only sample states changed,
    and they count samples but add no words; the experiment must have its search row.
    """
    session.flush()
    documents = [document] if document is not None else _documents(session, [experiment.id])
    _write(session, documents, with_text=with_text)


def experiment_document(
    session: Session, experiment_id: int, *, states: Mapping[int, ProcessingState] | None = None
) -> ExperimentDocument | None:
    """The index document of one experiment as stored, or with the sample states ``states`` (by
    sample id) in place of the stored ones: built ahead, e.g. while a tool runs, for the states
    processing is expected to give (:func:`reindex_experiment` writes it)."""
    documents = _documents(session, [experiment_id], states=states)
    return documents[0] if documents else None


@functools.cache
def _update_summary_statement() -> Update:
    """Update one summary row's columns but its text (executemany by ``experiment_id``)."""
    table = ExperimentSearch.__table__
    columns = [c.name for c in table.columns if c.name not in ("experiment_id", "document")]
    return (
        update(table)
        .where(table.c.experiment_id == bindparam("b_experiment_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )


def reindex_all(session: Session) -> int:
    """Rebuild the whole index (e.g. after a bulk load); returns the number of experiments."""
    ids = list(session.scalars(select(Experiment.id).order_by(Experiment.id)))
    for start in range(0, len(ids), _CHUNK):
        _write(session, _documents(session, ids[start : start + _CHUNK]))
    return len(ids)


def reindex_missing(session: Session) -> int:
    """Index experiments that have no search row yet (e.g. stored before the index existed)."""
    indexed = select(ExperimentSearch.experiment_id)
    ids = list(session.scalars(select(Experiment.id).where(Experiment.id.not_in(indexed))))
    for start in range(0, len(ids), _CHUNK):
        _write(session, _documents(session, ids[start : start + _CHUNK]))
    return len(ids)


def _documents(
    session: Session, ids: list[int], *, states: Mapping[int, ProcessingState] | None = None
) -> list[ExperimentDocument]:
    docs: dict[int, ExperimentDocument] = {}
    rows = session.execute(
        select(
            Experiment.id,
            Experiment.accession,
            Experiment.alternate_accessions,
            Experiment.title,
            Experiment.description,
            Experiment.submitter_institution,
            Experiment.publication_authors,
            Experiment.pubmed_id,
            Experiment.publication_doi,
        ).where(Experiment.id.in_(ids))
    )
    for row in rows:
        docs[row.id] = ExperimentDocument(
            experiment_id=row.id,
            accessions=" ".join([row.accession, *(row.alternate_accessions or [])]),
            title=row.title or "",
            authors=" ".join(str(a) for a in row.publication_authors or []),
            description=row.description or "",
            institution=row.submitter_institution or "",
            has_publication=bool(row.pubmed_id or row.publication_doi),
        )
    for row in _sample_rows(session, ids):
        state = row.processing_state if states is None else states.get(row.sample_id, row.processing_state)
        _add_sample(docs[row.experiment_id], row, state)
    return [docs[i] for i in ids if i in docs]


def _sample_rows(session: Session, ids: list[int]) -> Iterable[Any]:
    harmonized = [getattr(Sample, name) for name in HARMONIZED_FIELDS]
    return session.execute(
        select(
            experiment_sample.c.experiment_id,
            Sample.id.label("sample_id"),
            Sample.title,
            Sample.technology,
            Sample.processing_state,
            Sample.annotations,
            Organism.name.label("organism"),
            Platform.accession.label("platform"),
            Platform.title.label("platform_title"),
            *harmonized,
        )
        .join(Sample, Sample.id == experiment_sample.c.sample_id)
        .outerjoin(Organism, Organism.id == Sample.organism_id)
        .outerjoin(Platform, Platform.id == Sample.platform_id)
        .where(experiment_sample.c.experiment_id.in_(ids))
    )


def _bump(bucket: dict[str, list[int]], key: str | None, *, downloadable: bool) -> None:
    if key:
        counts = bucket.setdefault(key, [0, 0])
        counts[0] += int(downloadable)
        counts[1] += 1


def _add_sample(doc: ExperimentDocument, row: Any, state: ProcessingState) -> None:
    downloadable = state == ProcessingState.PROCESSED
    doc.counts[0] += int(downloadable)
    doc.counts[1] += 1
    _bump(doc.organisms, row.organism, downloadable=downloadable)
    technology = getattr(row.technology, "value", row.technology)
    _bump(doc.technologies, technology, downloadable=downloadable)
    _bump(doc.platforms, row.platform, downloadable=downloadable)
    if row.platform:
        doc.platform_names[row.platform] = row.platform_title or row.platform
    words = doc.sample_words
    if row.title:
        words[row.title] = None
    for name in HARMONIZED_FIELDS:
        value = getattr(row, name)
        if value not in (None, ""):
            doc.fields_present.add(name)
            words[str(value)] = None
    annotations = row.annotations or {}
    for pair in annotations.get("characteristics", []):
        if len(pair) == 2 and pair[1]:  # a [key, value] pair
            words[str(pair[1])] = None
    for value in (annotations.get("fields") or {}).get("Sample_source_name_ch1", []):
        words[str(value)] = None


def _summary_row(doc: ExperimentDocument) -> dict[str, Any]:
    platforms = sorted(doc.platforms)
    return {
        "experiment_id": doc.experiment_id,
        "organism_names": sorted(doc.organisms),
        "downloadable_organism_names": sorted(k for k, v in doc.organisms.items() if v[0] > 0),
        "platform_accession_codes": platforms,
        "platform_names": [doc.platform_names.get(p, p) for p in platforms],
        "sample_metadata_fields": [f for f in HARMONIZED_FIELDS if f in doc.fields_present],
        "document": None,
        "updated_at": utcnow(),
    }


def _facet_rows(doc: ExperimentDocument) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    publication = {"true" if doc.has_publication else "false": doc.counts}
    buckets = zip(FACETS, (doc.organisms, doc.technologies, doc.platforms, publication), strict=True)
    for facet, bucket in buckets:
        for value, (downloadable, total) in bucket.items():
            rows.append(
                {
                    "experiment_id": doc.experiment_id,
                    "facet": facet,
                    "value": value[:200],
                    "downloadable_samples": downloadable,
                    "total_samples": total,
                }
            )
    return rows


def _write(session: Session, docs: list[ExperimentDocument], *, with_text: bool = True) -> None:
    """Write the summary, facet and (``with_text``) text rows of ``docs``; without, the summary
    rows are updated in place, which keeps PostgreSQL's tsvector (a column of that row)."""
    if not docs:
        return
    ids = [d.experiment_id for d in docs]
    session.execute(delete(ExperimentFacet).where(ExperimentFacet.experiment_id.in_(ids)))
    facets = [row for d in docs for row in _facet_rows(d)]
    if facets:
        session.execute(insert(ExperimentFacet), facets)
    summaries = [_summary_row(d) for d in docs]
    if not with_text:
        session.connection().execute(
            _update_summary_statement(),
            [{f"b_{name}": value for name, value in row.items() if name != "document"} for row in summaries],
        )
        return
    session.execute(delete(ExperimentSearch).where(ExperimentSearch.experiment_id.in_(ids)))
    session.execute(insert(ExperimentSearch), summaries)
    params = [d.text_params() for d in docs]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_PG_DOCUMENT), params)
    else:
        session.execute(text(_FTS_DELETE), [{"experiment_id": i} for i in ids])
        session.execute(text(_FTS_INSERT), params)
