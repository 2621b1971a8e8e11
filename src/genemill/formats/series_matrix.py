"""GEO series matrix reader (``GSEnnn[-GPLnnn]_series_matrix.txt[.gz]``).

Layout (https://www.ncbi.nlm.nih.gov/geo/info/matrix.html), tab-separated, values in double
quotes, blank lines between sections:

* ``!Series_<key>`` rows: one or more quoted values (``!Series_sample_id`` is a single value of
  space-separated GSM accessions).
* ``!Sample_<key>`` rows: one quoted value per sample, in the order of ``!Sample_geo_accession``;
  keys repeat (``!Sample_characteristics_ch1`` once per characteristic).
* ``!series_matrix_table_begin``, a header ``"ID_REF"  "GSM1" … "GSMn"``, one row per probe
  (``"1007_s_at"  7.1 … 6.8``; identifiers quoted, numbers not), ``!series_matrix_table_end``.

Mapping: ``!Series_*`` and ``!Sample_*`` rows become the same records as their SOFT counterparts
(:mod:`genemill.formats.geo_fields`; raw keys without the
``!`` are kept in ``fields``). The matrix is split into one ``(ID_REF, VALUE)``
:class:`~genemill.formats.records.DataTable` per sample (``SampleRecord.table``), which is what the
rest of genemill consumes; the combined matrix is not kept. Platforms carry only their accession
(a series matrix does not describe them).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from genemill.errors import SeriesMatrixFormatError
from genemill.formats.geo_fields import sample_from_fields, series_from_fields
from genemill.formats.records import DataTable, ExperimentMetadata, PlatformRecord
from genemill.formats.stream import ByteLines, decode_line, source_name, split_matrix

__all__ = ["read_series_matrix", "read_series_matrix_path"]

_BEGIN = "!series_matrix_table_begin"
_END = b"!series_matrix_table_end"


def read_series_matrix_path(path: Path) -> ExperimentMetadata:
    """Read a series matrix file from disk; gzip is recognised by its magic bytes."""
    with Path(path).open("rb") as fh:
        return read_series_matrix(fh, path_hint=str(path))


def read_series_matrix(source: BinaryIO, *, path_hint: str | None = None) -> ExperimentMetadata:
    """Read a GEO series matrix from a binary handle (plain or gzip)."""
    lines = ByteLines(source, name=source_name(source, path_hint), error=SeriesMatrixFormatError)
    series_fields: dict[str, list[str]] = {}
    sample_rows: list[tuple[str, list[str], int]] = []
    tables: dict[str, DataTable] | None = None
    while (raw := lines.next_line()) is not None:
        text = decode_line(raw).rstrip("\r\n")
        if not text.strip():
            continue
        if text.strip() == _BEGIN:
            tables = _read_matrix(lines)
            continue
        if not text.startswith("!"):
            msg = f"expected a '!Series_…' or '!Sample_…' row or '{_BEGIN}', found {text[:60]!r}"
            raise SeriesMatrixFormatError(msg, path=lines.name, line=lines.line)
        key, *cells = text.split("\t")
        values = [_unquote(cell) for cell in cells]
        if key.startswith("!Sample_"):
            sample_rows.append((key[1:], values, lines.line))
        else:
            series_fields.setdefault(key[1:], []).extend(values)
    if not series_fields and not sample_rows:
        msg = "empty series matrix: expected '!Series_…' rows"
        raise SeriesMatrixFormatError(msg, path=lines.name)
    return _metadata(series_fields, sample_rows, tables, name=lines.name)


def _unquote(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        return cell[1:-1]
    return cell


def _read_matrix(lines: ByteLines) -> dict[str, DataTable]:
    """Cut the matrix out of the stream and split it into per-sample ID_REF/VALUE tables."""
    opened_at = lines.line
    header = lines.next_line()
    if header is None or header.strip() == _END:
        msg = f"'{_BEGIN}' at line {opened_at} is not followed by an '\"ID_REF\"  \"GSM…\"' header"
        raise SeriesMatrixFormatError(msg, path=lines.name, line=opened_at + 1)
    columns = [_unquote(c) for c in decode_line(header).rstrip("\r\n").split("\t")]
    if columns[0] != "ID_REF" or len(set(columns)) != len(columns):
        msg = f"expected the matrix header 'ID_REF' + distinct sample accessions, found {columns[:4]!r}…"
        raise SeriesMatrixFormatError(msg, path=lines.name, line=lines.line)
    first_row = lines.line + 1
    text, n_rows = lines.read_block(_END, opened_at=opened_at, begin=_BEGIN)
    lines.next_line()  # the end marker
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    values = split_matrix(
        text, width=len(columns), name=lines.name, error=SeriesMatrixFormatError, first_line=first_row
    )
    return {
        accession: DataTable(("ID_REF", "VALUE"), column, n_rows)
        for accession, column in zip(columns[1:], values, strict=True)
    }


def _metadata(
    series_fields: dict[str, list[str]],
    sample_rows: list[tuple[str, list[str], int]],
    tables: dict[str, DataTable] | None,
    *,
    name: str,
) -> ExperimentMetadata:
    accessions = next((values for key, values, _ in sample_rows if key == "Sample_geo_accession"), None)
    if accessions is None:
        msg = "no '!Sample_geo_accession' row: cannot tell which column is which sample"
        raise SeriesMatrixFormatError(msg, path=name)
    per_sample: list[dict[str, list[str]]] = [{} for _ in accessions]
    for key, values, line in sample_rows:
        if len(values) != len(accessions):
            msg = f"'!{key}' has {len(values)} values, expected one per sample ({len(accessions)})"
            raise SeriesMatrixFormatError(msg, path=name, line=line)
        for fields, value in zip(per_sample, values, strict=True):
            fields.setdefault(key, []).append(value)
    tables = tables or {}
    if unknown := sorted(set(tables) - set(accessions)):
        msg = f"matrix columns {unknown} are not in '!Sample_geo_accession'"
        raise SeriesMatrixFormatError(msg, path=name)
    samples = [
        sample_from_fields(accession, fields, tables.get(accession), error=SeriesMatrixFormatError, path=name)
        for accession, fields in zip(accessions, per_sample, strict=True)
    ]
    accession = next((v for v in series_fields.get("Series_geo_accession", []) if v), "")
    series = series_from_fields(accession, series_fields)
    if not series.sample_accessions:
        series.sample_accessions = list(accessions)
    platform_ids = dict.fromkeys(s.platform for s in samples if s.platform)
    platforms = [PlatformRecord(accession=p) for p in platform_ids]
    if not series.platform_accessions:
        series.platform_accessions = list(platform_ids)
    return ExperimentMetadata("GEO", series, platforms, samples, file_format="series-matrix")
