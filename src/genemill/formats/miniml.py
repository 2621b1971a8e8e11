"""GEO MINiML reader (``GSEnnn_family.xml``, MINiML schema 0.5, namespace
``http://www.ncbi.nlm.nih.gov/geo/info/MINiML``).

The root ``MINiML`` holds ``Contributor`` (``iid``; ``Person/First|Middle|Last``,
``Organization``), ``Database``, then ``Platform``, ``Sample`` and ``Series`` elements (``iid`` =
accession). A ``Sample`` has ``Title``, ``Channel position="n"`` (``Source``,
``Organism taxid=""``, ``Characteristics tag="key"``…), ``Platform-Ref ref=""``,
``Supplementary-Data``, ``Relation type="" target=""`` and a ``Data-Table``: ``Column
position=""`` (``Name``, ``Description``) plus either ``Internal-Data`` (tab-separated rows, no
header line - columns are defined by position) or ``External-Data rows=""`` naming a file shipped
next to the XML in GEO's ``_family.xml.tgz``. A ``Series`` references samples (``Sample-Ref``),
contributors (``Contributor-Ref``) and its contact (``Contact-Ref``).

Mapping: every leaf element is kept in ``fields`` under its path below the record, with
``Channel<n>/`` for channels, ``[tag]`` for characteristics and ``@attr`` for attributes
(``Channel1/Organism@taxid``, ``Channel1/Characteristics[tissue]``, ``Relation@target``).
Characteristics become ``(tag, text)`` (``"characteristics"`` without a tag; channel 2 keys are
prefixed ``"ch2:"`` as in the SOFT reader). External tables are read from ``external_dir`` when the
file is there; otherwise ``table`` is ``None`` and ``fields["Data-Table/External-Data"]`` names it.

Parsing streams with ``xml.etree.ElementTree.iterparse``: each top-level record is converted and
freed as soon as it ends.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from genemill.errors import MinimlFormatError
from genemill.formats.records import (
    DataTable,
    ExperimentMetadata,
    PlatformRecord,
    SampleRecord,
    SeriesRecord,
)
from genemill.formats.soft import unique_columns
from genemill.formats.stream import Inflating, source_name

__all__ = ["read_miniml", "read_miniml_path"]

_ACCESSION_TAIL = re.compile(r"(?:term=|/)([A-Za-z]+\d+)/?$")
Fields = dict[str, list[str]]


def read_miniml_path(path: Path) -> ExperimentMetadata:
    """Read a MINiML file; ``External-Data`` tables are looked up next to it."""
    with Path(path).open("rb") as fh:
        return read_miniml(fh, path_hint=str(path), external_dir=Path(path).parent)


def read_miniml(
    source: BinaryIO, *, path_hint: str | None = None, external_dir: Path | None = None
) -> ExperimentMetadata:
    """Read a MINiML document (plain or gzip) from a binary handle."""
    name = source_name(source, path_hint)
    contributors: dict[str, Fields] = {}
    samples: list[SampleRecord] = []
    platforms: list[PlatformRecord] = []
    series: SeriesRecord | None = None
    for element in _top_level(source, name):
        tag = _local(element.tag)
        fields: Fields = {}
        _flatten(element, "", fields)
        accession = element.get("iid") or _first(fields, "Accession")
        if tag == "Contributor":
            contributors[element.get("iid", "")] = fields
        elif tag == "Sample":
            table = _data_table(element, fields, name=name, external_dir=external_dir)
            samples.append(_sample(accession, fields, table, element))
        elif tag == "Platform":
            table = _data_table(element, fields, name=name, external_dir=external_dir)
            platforms.append(_platform(accession, fields, table))
        elif tag == "Series" and series is None:  # the schema puts Contributors first
            series = _series(accession, fields, element, contributors)
    if series is None:
        series = SeriesRecord(accession="", sample_accessions=[s.accession for s in samples])
    if not series.platform_accessions:
        platform_ids = [p.accession for p in platforms] + [s.platform for s in samples if s.platform]
        series.platform_accessions = list(dict.fromkeys(platform_ids))
    return ExperimentMetadata("GEO", series, platforms, samples, file_format="miniml")


def _top_level(source: BinaryIO, name: str) -> Iterator[ET.Element]:
    """Parse incrementally, yielding each child of the root once complete, then freeing it."""
    stream = Inflating(source, name=name, error=MinimlFormatError)
    depth, root = 0, None
    try:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = element
                    if _local(element.tag) != "MINiML":
                        msg = f"expected the root element 'MINiML', found {_local(element.tag)!r}"
                        raise MinimlFormatError(msg, path=name, line=1)
                continue
            depth -= 1
            if depth == 1 and root is not None:
                yield element
                element.clear()
                root.remove(element)
    except ET.ParseError as exc:
        msg = f"not well-formed MINiML XML ({exc})"
        raise MinimlFormatError(msg, path=name, line=exc.position[0]) from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _first(fields: Fields, key: str) -> str:
    return next((v for v in fields.get(key, []) if v), "")


def _child_text(element: ET.Element, name: str) -> str:
    child = element.find(f"./{{*}}{name}")
    return _text(child) if child is not None else ""


def _flatten(element: ET.Element, prefix: str, fields: Fields) -> None:
    for child in element:
        tag = _local(child.tag)
        if tag == "Data-Table":
            continue
        key = prefix + (f"Channel{child.get('position', '1')}" if tag == "Channel" else tag)
        if tag == "Characteristics" and child.get("tag"):
            key += f"[{child.get('tag')}]"
        for attribute, value in child.attrib.items():
            if not (tag == "Characteristics" and attribute == "tag"):
                fields.setdefault(f"{key}@{attribute}", []).append(value)
        if len(child):
            _flatten(child, key + "/", fields)
        elif _text(child) or not child.attrib:
            fields.setdefault(key, []).append(_text(child))


def _data_table(
    element: ET.Element, fields: Fields, *, name: str, external_dir: Path | None
) -> DataTable | None:
    table = next((c for c in element if _local(c.tag) == "Data-Table"), None)
    if table is None:
        return None
    columns = sorted(
        (int(c.get("position") or i + 1), _child_text(c, "Name"), _child_text(c, "Description"))
        for i, c in enumerate(table.findall("./{*}Column"))
    )
    fields["Data-Table/Column"] = [n for _, n, _ in columns]
    names, descriptions = unique_columns(
        tuple(n for _, n, _ in columns), [(n, d) for _, n, d in columns if d]
    )
    internal, external = table.find("./{*}Internal-Data"), table.find("./{*}External-Data")
    if internal is not None:
        raw = (internal.text or "").encode("utf-8")
    elif external is not None:
        fields["Data-Table/External-Data"] = [_text(external)]
        fields["Data-Table/External-Data@rows"] = [external.get("rows", "")]
        target = external_dir / _text(external) if external_dir is not None else None
        if target is None or not target.is_file():
            return None
        raw = _read_external(target)
    else:
        msg = f"{element.get('iid')}: Data-Table has neither Internal-Data nor External-Data"
        raise MinimlFormatError(msg, path=name)
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    last = next((i for i in range(len(lines), first, -1) if lines[i - 1].strip()), first)
    text = b"\n".join(lines[first:last]) + b"\n" if last > first else b""
    return DataTable(names, text, last - first, descriptions)


def _read_external(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = zlib.decompress(data, 31)
        except zlib.error as exc:
            msg = f"corrupt gzip data ({exc})"
            raise MinimlFormatError(msg, path=str(path)) from exc
    return data


def _characteristics(element: ET.Element) -> list[tuple[str, str]]:
    pairs = []
    for channel in element.findall("./{*}Channel"):
        label = "" if channel.get("position", "1") == "1" else f"ch{channel.get('position')}:"
        for item in channel.findall("./{*}Characteristics"):
            if _text(item):
                pairs.append((label + (item.get("tag") or "characteristics").strip(), _text(item)))
    return pairs


def _supplementary(fields: Fields) -> list[str]:
    return [v for v in dict.fromkeys(fields.get("Supplementary-Data", [])) if v and v.upper() != "NONE"]


def _sample(accession: str, fields: Fields, table: DataTable | None, element: ET.Element) -> SampleRecord:
    organisms = element.findall("./{*}Channel/{*}Organism")
    return SampleRecord(
        accession=accession,
        title=_first(fields, "Title"),
        organism=list(dict.fromkeys(_text(o) for o in organisms if _text(o))),
        taxon_ids=list(
            dict.fromkeys(int(o.get("taxid", "")) for o in organisms if o.get("taxid", "").isdigit())
        ),
        platform=_first(fields, "Platform-Ref@ref") or None,
        characteristics=_characteristics(element),
        fields=fields,
        supplementary_files=_supplementary(fields),
        table=table,
    )


def _platform(accession: str, fields: Fields, table: DataTable | None) -> PlatformRecord:
    return PlatformRecord(
        accession=accession,
        title=_first(fields, "Title"),
        technology=_first(fields, "Technology"),
        manufacturer=_first(fields, "Manufacturer"),
        organism=list(dict.fromkeys(fields.get("Organism", []))),
        fields=fields,
        table=table,
    )


def _person(fields: Fields) -> str:
    parts = (_first(fields, f"Person/{p}") for p in ("First", "Middle", "Last"))
    return " ".join(p for p in parts if p) or _first(fields, "Organization") or _first(fields, "Company")


def _series(
    accession: str, fields: Fields, element: ET.Element, contributors: dict[str, Fields]
) -> SeriesRecord:
    refs = sorted(
        (int(r.get("position") or i), r.get("ref", ""))
        for i, r in enumerate(element.findall("./{*}Contributor-Ref"))
    )
    contact = contributors.get(_first(fields, "Contact-Ref@ref"), {})
    alternates = []
    for relation in element.findall("./{*}Relation"):
        if relation.get("type") in ("SRA", "BioProject", "Alternative to"):
            match = _ACCESSION_TAIL.search(relation.get("target", ""))
            alternates.append(match.group(1) if match else relation.get("target", ""))
    summary = "\n".join(v for v in (_first(fields, "Summary"), _first(fields, "Overall-Design")) if v)
    return SeriesRecord(
        accession=accession,
        title=_first(fields, "Title"),
        description=summary,
        pubmed_ids=list(dict.fromkeys(fields.get("Pubmed-ID", []))),
        submitter_institution=_first(contact, "Organization"),
        contributors=[_person(contributors[r]) for _, r in refs if r in contributors],
        submission_date=_first(fields, "Status/Submission-Date") or None,
        last_update_date=_first(fields, "Status/Last-Update-Date") or None,
        alternate_accessions=alternates,
        sample_accessions=fields.get("Sample-Ref@ref", []),
        supplementary_files=_supplementary(fields),
        fields=fields,
    )
