"""ArrayExpress MAGE-TAB reader: IDF (investigation) and SDRF (samples and data files).

MAGE-TAB 1.1 (https://www.fged.org/projects/mage-tab/): tab-separated text, cells optionally in
double quotes, ``#`` lines are comments. Files in the wild are UTF-8 or latin-1 (decoded per line,
so one mis-encoded line does not spoil the rest), LF or CRLF.

* **IDF**: one row per tag - ``Investigation Title``, ``Experiment Description``, ``PubMed ID``,
  ``Person Last Name`` / ``First Name`` / ``Mid Initials`` / ``Affiliation`` / ``Roles`` (one column
  per person), ``Public Release Date``, ``Comment[ArrayExpressAccession]``,
  ``Comment[SecondaryAccession]``, ``SDRF File``… Tags match case- and space-insensitively; the
  raw tag and its values (trailing empty cells dropped) are kept in ``SeriesRecord.fields``.
* **SDRF**: a header row, then one row per assay (per channel for two-colour arrays). Columns
  repeat (``Protocol REF``, ``Term Source REF``…): every column is kept in ``SampleRecord.fields``
  under its header as written, duplicates appending in column order. A repeated header row (same
  first column) starts a new table with its own columns (refine.bio's E-MTAB-3050 test SDRF has
  two). ``Characteristics[x]`` and ``Factor Value[x]`` give ``(x, value)`` characteristics (a
  following ``Unit[…]`` cell is appended to the value, ``"54 year"``; a factor value repeating a
  characteristic is not duplicated);
  ``Array Design REF`` is the platform; ``*File`` columns and ``Comment[…URI]`` /
  ``Comment[…FTP file]`` are the data files.

Sample accession: ArrayExpress has no per-sample accession, so, as refine.bio does
(``determine_sample_accession`` in its ArrayExpress surveyor), it is ``<experiment>-<name>`` where
the name is the Source Name or the Assay (Hybridization) Name: the one containing the data file's
name without its extension, else the one without spaces, else the longer (when only one of the
two exists, that one). Rows that resolve to
the same accession (channels, several files) are merged into one sample.
"""

from __future__ import annotations

import csv
import io
import re
from itertools import zip_longest
from pathlib import Path
from typing import BinaryIO

from genemill.errors import MageTabFormatError
from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
from genemill.formats.stream import Inflating, decode_line, source_name

__all__ = ["read_idf", "read_magetab", "read_sdrf", "sample_accession"]

_EXPERIMENT = re.compile(r"\b([AE]-[A-Z]{4}-\d+)", re.IGNORECASE)
_BRACKET = re.compile(r"\[(.*?)\]")
_NAME_COLUMNS = ("sourcename", "samplename", "extractname", "labeledextractname")
_ASSAY_COLUMNS = ("assayname", "hybridizationname")
_RAW_FILE_COLUMNS = (
    "arraydatafile",
    "derivedarraydatafile",
    "arraydatamatrixfile",
    "derivedarraydatamatrixfile",
)


def _norm(header: str) -> str:
    return "".join(header.split()).lower()


def _rows(source: BinaryIO, name: str) -> list[tuple[int, list[str]]]:
    """Non-comment, non-blank rows with their line numbers; cells unquoted and stripped."""
    stream = Inflating(source, name=name, error=MageTabFormatError)
    chunks = []
    while chunk := stream.read():
        chunks.append(chunk)
    text = "\n".join(decode_line(line) for line in b"".join(chunks).splitlines())
    if not text.strip():
        msg = "empty file: expected tab-separated MAGE-TAB rows"
        raise MageTabFormatError(msg, path=name)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter="\t", quotechar='"')
    rows = []
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells) and not cells[0].startswith("#"):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        msg = f"unreadable MAGE-TAB row ({exc})"
        raise MageTabFormatError(msg, path=name, line=reader.line_num) from exc
    if not rows:
        msg = "empty file: no rows besides comments"
        raise MageTabFormatError(msg, path=name)
    return rows


def read_idf(source: BinaryIO, *, path_hint: str | None = None) -> SeriesRecord:
    """Read an IDF into a :class:`SeriesRecord` (accession from ``Comment[ArrayExpressAccession]``,
    else from an ``E-XXXX-n`` in the file name, else ``""``)."""
    name = source_name(source, path_hint)
    fields: dict[str, list[str]] = {}
    for _, cells in _rows(source, name):
        values = cells[1:]
        while values and not values[-1]:
            values.pop()
        fields.setdefault(cells[0], []).extend(values)
    tags = {_norm(key): key for key in reversed(fields)}

    def get(tag: str) -> list[str]:
        return fields.get(tags.get(tag, ""), [])

    def first(tag: str) -> str:
        return next((v for v in get(tag) if v), "")

    from_name = _EXPERIMENT.search(Path(name).name)
    accession = first("comment[arrayexpressaccession]") or (from_name.group(1).upper() if from_name else "")
    names = zip_longest(get("personfirstname"), get("personmidinitials"), get("personlastname"), fillvalue="")
    roles, affiliations = get("personroles"), get("personaffiliation")
    submitter = next((i for i, role in enumerate(roles) if "submitter" in role.lower()), None)
    institution = affiliations[submitter] if submitter is not None and submitter < len(affiliations) else ""
    return SeriesRecord(
        accession=accession,
        title=first("investigationtitle"),
        description="\n".join(v for v in get("experimentdescription") if v),
        pubmed_ids=[v for v in get("pubmedid") if v],
        submitter_institution=institution or next((a for a in affiliations if a), ""),
        contributors=[" ".join(p for p in person if p) for person in names if any(person)],
        alternate_accessions=[v for v in get("comment[secondaryaccession]") if v],
        fields=fields,
    )


def sample_accession(experiment: str, *, source: str, assay: str, filename: str) -> str:
    """refine.bio's rule for an ArrayExpress sample accession (see the module docstring)."""
    prefix = f"{experiment}-" if experiment else ""
    if not source or not assay:  # refine.bio always had both (from the API); an SDRF may not
        return prefix + (source or assay)
    stem = filename.rsplit(".", 1)[0] if "." in filename else ""
    if stem and stem in source:
        return prefix + source
    if stem and stem in assay:
        return prefix + assay
    if " " in assay and " " not in source:
        return prefix + source
    if " " in source and " " not in assay:
        return prefix + assay
    return prefix + (source if len(source) >= len(assay) else assay)


def read_sdrf(
    source: BinaryIO, *, path_hint: str | None = None, experiment: str | None = None
) -> list[SampleRecord]:
    """Read an SDRF into samples (one per accession; see the module docstring).

    ``experiment`` prefixes the accessions; by default it is an ``E-XXXX-n`` found in the file
    name, or nothing.
    """
    name = source_name(source, path_hint)
    if experiment is None:
        found = _EXPERIMENT.search(Path(name).name)
        experiment = found.group(1).upper() if found else ""
    samples: dict[str, SampleRecord] = {}
    header: list[str] = []
    for line, cells in _rows(source, name):
        if not header or _norm(cells[0]) == _norm(header[0]):  # a header row starts a table
            header = cells[: max(i + 1 for i, c in enumerate(cells) if c)]  # drop empty trailing columns
            continue
        if len(cells) > len(header) and any(cells[len(header) :]):
            msg = f"row has {len(cells)} cells but the header names {len(header)} columns"
            raise MageTabFormatError(msg, path=name, line=line)
        cells = cells[: len(header)] + [""] * (len(header) - len(cells))
        record = _sample_row(header, cells, experiment, where=(name, line))
        if (known := samples.get(record.accession)) is None:
            samples[record.accession] = record
        else:
            _merge(known, record)
    return list(samples.values())


def _sample_row(
    header: list[str], cells: list[str], experiment: str, *, where: tuple[str, int]
) -> SampleRecord:
    norms = [_norm(h) for h in header]

    def first(*tags: str) -> str:
        return next((c for n, c in zip(norms, cells, strict=True) if n in tags and c), "")

    source = first("sourcename") or first(*_NAME_COLUMNS)
    assay = first(*_ASSAY_COLUMNS)
    if not source and not assay:
        msg = "row has no Source Name, Sample Name, Extract Name or Assay/Hybridization Name"
        raise MageTabFormatError(msg, path=where[0], line=where[1])
    fields: dict[str, list[str]] = {}
    for key, value in zip(header, cells, strict=True):
        fields.setdefault(key, []).append(value)
    characteristics = _characteristics(header, norms, cells)
    files = [c for n, c in zip(norms, cells, strict=True) if c and _is_file_column(n)]
    return SampleRecord(
        accession=sample_accession(
            experiment, source=source, assay=assay, filename=first(*_RAW_FILE_COLUMNS)
        ),
        title=source or assay,
        organism=list(dict.fromkeys(v for k, v in characteristics if k.lower() == "organism")),
        platform=first("arraydesignref") or None,
        characteristics=characteristics,
        fields=fields,
        supplementary_files=list(dict.fromkeys(files)),
    )


def _is_file_column(norm: str) -> bool:
    return norm.endswith("file") or (norm.startswith("comment[") and norm.endswith(("uri]", "file]")))


def _characteristics(header: list[str], norms: list[str], cells: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for index, (raw, norm, value) in enumerate(zip(header, norms, cells, strict=True)):
        if not value or not norm.startswith(("characteristics[", "factorvalue[")):
            continue
        bracket = _BRACKET.search(raw)
        key = bracket.group(1).strip() if bracket else raw
        unit = cells[index + 1] if index + 1 < len(norms) and norms[index + 1].startswith("unit[") else ""
        pair = (key, f"{value} {unit}" if unit else value)
        if not (
            norm.startswith("factorvalue[")
            and any(k.lower() == key.lower() and v == pair[1] for k, v in pairs)
        ):
            pairs.append(pair)
    return pairs


def _merge(into: SampleRecord, other: SampleRecord) -> None:
    for key, values in other.fields.items():
        into.fields.setdefault(key, []).extend(values)
    into.characteristics.extend(c for c in other.characteristics if c not in into.characteristics)
    into.organism.extend(o for o in other.organism if o not in into.organism)
    into.supplementary_files.extend(f for f in other.supplementary_files if f not in into.supplementary_files)
    into.platform = into.platform or other.platform


def read_magetab(idf_path: Path, sdrf_path: Path | None = None) -> ExperimentMetadata:
    """Read an IDF and its SDRF (found next to the IDF through its ``SDRF File`` row by default)."""
    idf_path = Path(idf_path)
    with idf_path.open("rb") as fh:
        series = read_idf(fh, path_hint=str(idf_path))
    if sdrf_path is None:
        named = next((v for k, vs in series.fields.items() if _norm(k) == "sdrffile" for v in vs if v), None)
        if named is None:
            msg = "no 'SDRF File' row: pass sdrf_path explicitly"
            raise MageTabFormatError(msg, path=str(idf_path))
        sdrf_path = idf_path.parent / named
        if not sdrf_path.is_file():
            msg = f"the SDRF named by the 'SDRF File' row was not found: expected {sdrf_path}"
            raise MageTabFormatError(msg, path=str(idf_path))
    with Path(sdrf_path).open("rb") as fh:
        samples = read_sdrf(fh, path_hint=str(sdrf_path), experiment=series.accession)
    platform_ids = list(dict.fromkeys(s.platform for s in samples if s.platform))
    series.sample_accessions = [s.accession for s in samples]
    series.platform_accessions = platform_ids
    platforms = [PlatformRecord(accession=p) for p in platform_ids]
    return ExperimentMetadata("ARRAY_EXPRESS", series, platforms, samples, file_format="mage-tab")
