"""GEO SOFT reader: family, single-sample, single-platform, GDS and platform-annotation files.

SOFT (https://www.ncbi.nlm.nih.gov/geo/info/soft.html) is line oriented, UTF-8 (old records
latin-1, decoded per line as a fallback), LF or CRLF line ends, often gzip-compressed:

* ``^ENTITY = ID`` opens an entity: ``DATABASE``, ``SERIES``, ``PLATFORM``, ``SAMPLE``, or in GDS
  files ``DATASET`` and ``SUBSET``; ``.annot`` files open with a bare ``^Annotation``.
* ``!Key = value`` is an attribute of the open entity; keys repeat, one value per line.
* ``#COLUMN = text`` describes a column of the entity's data table.
* ``!sample_table_begin`` ... ``!sample_table_end`` (``platform``/``dataset`` likewise) enclose a
  tab-separated table whose first line names the columns (a repeated name gets a pandas-style
  ``.1`` suffix, as in ``.annot`` files' two ``GO:Function`` columns). Legacy records (2001-2003, e.g.
  Biopython's ``GSM645.txt``) have no markers: their table starts at the first unprefixed line
  after the ``#`` lines and runs to the next ``^`` line.

Mapping to :mod:`genemill.formats.records`: every ``!`` attribute is kept verbatim in ``fields``
(key without the ``!``); typed attributes follow :mod:`genemill.formats.geo_fields`
(``!Sample_characteristics_ch1 = tissue: kidney`` → ``("tissue", "kidney")``, channel 2 keys
prefixed ``"ch2:"``, a value without ``key:`` keyed ``"characteristics"``).
* Files without ``^SERIES`` (single sample / platform) get a series with accession ``""``.
* A GDS maps to a series ``GDSnnn`` (reference series in ``alternate_accessions``; each subset's
  raw fields in ``fields`` as ``"<subset id>:<key>"``, subset ids under ``"subset_id"``), one
  sample per GSM column with ``(subset_type, subset_description)`` characteristics and an
  ``ID_REF``/``VALUE`` table, and the platform with the ``ID_REF``/``IDENTIFIER`` table.

Tables stay raw bytes (LF line ends, no header line). The reader pulls large chunks (gzip is
detected by its magic bytes and inflated with zlib) and cuts each table out with a C-level
``bytes.find`` of its end marker, so only header lines are ever decoded or looped over in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from genemill.errors import SoftFormatError
from genemill.formats.geo_fields import (
    first_value,
    iso_date,
    platform_from_fields,
    sample_from_fields,
    series_from_fields,
    unique_values,
)
from genemill.formats.records import (
    DataTable,
    ExperimentMetadata,
    PlatformRecord,
    SampleRecord,
    SeriesRecord,
)
from genemill.formats.stream import ByteLines, count_newlines, decode_line, source_name, split_matrix

__all__ = [
    "SoftEntity",
    "iter_soft_entities",
    "read_soft",
    "read_soft_path",
    "unique_columns",
]

_KINDS = ("DATABASE", "SERIES", "PLATFORM", "SAMPLE", "DATASET", "SUBSET", "ANNOTATION")
_NEEDS_ID = ("SERIES", "PLATFORM", "SAMPLE", "DATASET", "SUBSET")
_ROW_COUNT_KEYS = ("Sample_data_row_count", "Platform_data_row_count")
_GDS_COLUMN = re.compile(r"Value for (\S+): (.*?)(?:; src: (.*))?$")


@dataclass
class SoftEntity:
    """One ``^ENTITY`` block: its kind (upper case), ID, raw attributes and data table."""

    kind: str
    accession: str
    line: int
    fields: dict[str, list[str]] = field(default_factory=dict)
    table: DataTable | None = None


def read_soft_path(path: Path) -> ExperimentMetadata:
    """Read a SOFT file from disk; gzip is recognised by its magic bytes, not the extension."""
    with Path(path).open("rb") as fh:
        return read_soft(fh, path_hint=str(path))


def read_soft(source: BinaryIO, *, path_hint: str | None = None) -> ExperimentMetadata:
    """Read a SOFT family, sample, platform, GDS or annotation file from a binary handle."""
    entities: dict[str, list[SoftEntity]] = {kind: [] for kind in _KINDS}
    for entity in iter_soft_entities(source, path_hint=path_hint):
        entities[entity.kind].append(entity)
    if entities["DATASET"]:
        return _gds_metadata(entities)
    database = {k: v for e in entities["DATABASE"] for k, v in e.fields.items()}
    platforms = [platform_from_fields(e.accession, e.fields, e.table) for e in entities["PLATFORM"]]
    for e in entities["ANNOTATION"]:
        accession = first_value(e.fields, "Annotation_platform")
        platforms.append(platform_from_fields(accession, e.fields, e.table, prefix="Annotation_platform_"))
    name = source_name(source, path_hint)
    samples = [sample_from_fields(e.accession, e.fields, e.table, path=name) for e in entities["SAMPLE"]]
    if entities["SERIES"]:
        head = entities["SERIES"][0]
        series = series_from_fields(head.accession, {**database, **head.fields})
    else:
        series = SeriesRecord(accession="", fields=database)
        series.sample_accessions = [s.accession for s in samples]
        series.platform_accessions = [p.accession for p in platforms]
    file_format = "soft-annot" if entities["ANNOTATION"] else "soft"
    return ExperimentMetadata("GEO", series, platforms, samples, file_format=file_format)


def iter_soft_entities(source: BinaryIO, *, path_hint: str | None = None) -> Iterator[SoftEntity]:
    """Yield the file's entities one at a time, in file order (streaming)."""
    lines = ByteLines(source, name=source_name(source, path_hint), error=SoftFormatError)
    current: SoftEntity | None = None
    descriptions: list[tuple[str, str]] = []
    while (raw := lines.next_line()) is not None:
        text = decode_line(raw).strip()
        if not text:
            continue
        if text[0] == "^":
            if current is not None:
                yield _close(current, descriptions)
            current, descriptions = _open_entity(text, lines), []
        elif current is None:
            msg = f"expected '^ENTITY = ID' before anything else, found {text[:60]!r}"
            raise SoftFormatError(msg, path=lines.name, line=lines.line)
        elif text[0] == "#":
            name, _, description = text[1:].partition("=")
            descriptions.append((name.strip(), description.strip()))
        elif text[0] == "!":
            _attribute(current, text, lines, descriptions)
        elif current.table is None and descriptions:
            current.table = _legacy_table(text, lines, descriptions)
        else:
            msg = (
                "expected a line starting with '^', '!' or '#' (tables belong between "
                f"'!<entity>_table_begin' and '!<entity>_table_end'), found {text[:60]!r}"
            )
            raise SoftFormatError(msg, path=lines.name, line=lines.line)
    if current is None:
        msg = "no SOFT entity found (expected a '^SERIES', '^PLATFORM', '^SAMPLE' or '^DATASET' line)"
        raise SoftFormatError(msg, path=lines.name)
    yield _close(current, descriptions)


def _open_entity(text: str, lines: ByteLines) -> SoftEntity:
    kind, _, accession = text[1:].partition("=")
    kind, accession = kind.strip().upper(), accession.strip()
    if kind not in _KINDS:
        msg = f"unknown entity '^{kind}' (expected one of {', '.join(_KINDS)})"
        raise SoftFormatError(msg, path=lines.name, line=lines.line)
    if kind in _NEEDS_ID and not accession:
        msg = f"'^{kind}' block has no ID (expected '^{kind} = <accession>')"
        raise SoftFormatError(msg, path=lines.name, line=lines.line)
    return SoftEntity(kind, accession, lines.line)


def _close(entity: SoftEntity, descriptions: list[tuple[str, str]]) -> SoftEntity:
    if entity.table is None:  # column descriptions without a table: keep them, losslessly
        for name, description in descriptions:
            entity.fields.setdefault("#" + name, []).append(description)
    return entity


def _attribute(entity: SoftEntity, text: str, lines: ByteLines, descriptions: list[tuple[str, str]]) -> None:
    key, sep, value = text[1:].partition("=")
    key = key.strip()
    if sep:
        entity.fields.setdefault(key, []).append(value.strip())
        return
    if key.lower().endswith("_table_begin") and entity.table is None:
        entity.table = _marked_table(entity, text, lines, descriptions)
        return
    msg = f"expected '!key = value' or '!{entity.kind.lower()}_table_begin', found {text[:60]!r}"
    raise SoftFormatError(msg, path=lines.name, line=lines.line)


def _marked_table(
    entity: SoftEntity, begin: str, lines: ByteLines, descriptions: list[tuple[str, str]]
) -> DataTable:
    """Cut the table that follows ``begin`` out of the stream as raw bytes."""
    opened_at, end = lines.line, begin[:-5] + "end"
    header = lines.next_line()
    if header is None:
        msg = f"'{begin}' at line {opened_at} has no matching '{end}' before the end of the file"
        raise SoftFormatError(msg, path=lines.name)
    if header.strip() == end.encode():
        return _table((), b"", descriptions, 0)
    columns = tuple(c.strip() for c in decode_line(header).rstrip("\r\n").split("\t"))
    first_row = lines.line + 1
    text, n_rows = lines.read_block(end.encode(), opened_at=opened_at, begin=begin)
    lines.next_line()  # the end marker itself
    declared = next((entity.fields[k][0] for k in _ROW_COUNT_KEYS if k in entity.fields), None)
    # A matching declared row count proves no '^' entity hides in the table; otherwise look.
    if declared != str(n_rows) and (text.startswith(b"^") or b"\n^" in text):
        hidden = 0 if text.startswith(b"^") else text.find(b"\n^") + 1
        where = first_row + text.count(b"\n", 0, hidden)
        msg = f"the table opened by '{begin}' at line {opened_at} runs into a '^' line (missing '{end}')"
        raise SoftFormatError(msg, path=lines.name, line=where)
    return _table(columns, text, descriptions, n_rows)


def _legacy_table(header: str, lines: ByteLines, descriptions: list[tuple[str, str]]) -> DataTable:
    """Read a marker-less table (legacy GEO records) up to the next ``^`` line or the end."""
    rows: list[bytes] = []
    while (raw := lines.next_line()) is not None:
        row = raw.rstrip(b"\r\n")
        if row.startswith(b"^"):
            lines.push_back(raw)
            break
        if row[:1] in (b"!", b"#"):
            msg = (
                f"expected a table row or '^' after a table without markers, found {decode_line(row)[:60]!r}"
            )
            raise SoftFormatError(msg, path=lines.name, line=lines.line)
        if row.strip():
            rows.append(row)
    columns = tuple(c.strip() for c in header.split("\t"))
    return _table(columns, b"\n".join(rows) + b"\n" if rows else b"", descriptions, len(rows))


def unique_columns(
    columns: tuple[str, ...], described: list[tuple[str, str]]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Suffix repeated column names pandas-style (``GO:Function``, ``GO:Function.1``) and match
    the ``#name = text`` descriptions to them in order of appearance."""
    names: list[str] = []
    for name in columns:
        names.append(name if name not in names else f"{name}.{columns[: len(names)].count(name)}")
    seen: dict[str, int] = {}
    descriptions = {}
    for name, text in described:
        descriptions[name if name not in seen else f"{name}.{seen[name]}"] = text
        seen[name] = seen.get(name, 0) + 1
    return tuple(names), descriptions


def _table(columns: tuple[str, ...], text: bytes, described: list[tuple[str, str]], n_rows: int) -> DataTable:
    """Normalise CRLF to LF and drop trailing blank lines (recounting rows only then)."""
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    if text.endswith(b"\n\n") or text == b"\n":
        text = text.rstrip(b"\n") + b"\n" if text.strip(b"\n") else b""
        n_rows = count_newlines(text)
    names, descriptions = unique_columns(columns, described)
    return DataTable(names, text, n_rows, descriptions)


# --- GDS ------------------------------------------------------------------------------------
def _gds_metadata(entities: dict[str, list[SoftEntity]]) -> ExperimentMetadata:
    dataset = entities["DATASET"][0]
    for extra in entities["DATASET"][1:]:  # GDS files repeat ^DATASET: attributes, then the table
        for key, values in extra.fields.items():
            dataset.fields.setdefault(key, []).extend(values)
        dataset.table = dataset.table or extra.table
    fields = {k: v for e in entities["DATABASE"] for k, v in e.fields.items()} | dataset.fields
    fields["subset_id"] = [s.accession for s in entities["SUBSET"]]
    for subset in entities["SUBSET"]:
        fields.update({f"{subset.accession}:{k}": v for k, v in subset.fields.items()})
    series = SeriesRecord(
        accession=dataset.accession,
        title=first_value(fields, "dataset_title"),
        description="\n".join(fields.get("dataset_description", [])),
        pubmed_ids=unique_values(fields, "dataset_pubmed_id"),
        last_update_date=iso_date(first_value(fields, "dataset_update_date")),
        alternate_accessions=unique_values(fields, "dataset_reference_series"),
        platform_accessions=unique_values(fields, "dataset_platform"),
        fields=fields,
    )
    samples, platform = _gds_samples(dataset, entities["SUBSET"], fields)
    series.sample_accessions = [s.accession for s in samples]
    return ExperimentMetadata("GEO", series, [platform], samples, file_format="soft-gds")


def _gds_samples(
    dataset: SoftEntity, subsets: list[SoftEntity], fields: dict[str, list[str]]
) -> tuple[list[SampleRecord], PlatformRecord]:
    table = dataset.table or DataTable(("ID_REF", "IDENTIFIER"), b"", 0)
    name = f"{dataset.accession} dataset table (rows numbered from 1)"
    columns = split_matrix(table.text, width=len(table.columns), name=name, error=SoftFormatError)
    platform = PlatformRecord(
        accession=first_value(fields, "dataset_platform"),
        technology=first_value(fields, "dataset_platform_technology_type"),
        organism=unique_values(fields, "dataset_platform_organism"),
        table=DataTable(table.columns[:2], columns[0], table.n_rows) if columns else None,
    )
    samples = []
    for column, values in zip(table.columns[2:], columns[1:], strict=True):
        described = table.descriptions.get(column, "")
        match = _GDS_COLUMN.match(described)
        characteristics = [
            (first_value(s.fields, "subset_type"), first_value(s.fields, "subset_description"))
            for s in subsets
            if column in ",".join(s.fields.get("subset_sample_id", [])).replace(" ", "").split(",")
        ]
        samples.append(
            SampleRecord(
                accession=column,
                title=match.group(2) if match else "",
                organism=unique_values(fields, "dataset_sample_organism"),
                platform=platform.accession or None,
                characteristics=characteristics,
                fields={"dataset_column_description": [described]} if described else {},
                table=DataTable(("ID_REF", "VALUE"), values, table.n_rows),
            )
        )
    return samples, platform
