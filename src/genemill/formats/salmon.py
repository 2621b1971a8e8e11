"""Transcript-level quantification tables (Salmon, kallisto, RSEM) and Salmon's JSON side files.

All tables are tab-separated with one header line and one row per transcript; the files may be
gzip-compressed (detected by the magic bytes ``1f 8b``, not by the file name):

* Salmon ``quant.sf``: ``Name Length EffectiveLength TPM NumReads``.
* kallisto ``abundance.tsv``: ``target_id length eff_length est_counts tpm``.
* RSEM ``*.isoforms.results``: ``transcript_id gene_id length effective_length expected_count TPM
  FPKM IsoPct``.

The header must be exactly the documented one (Salmon has written it unchanged since 0.x). Every
numeric cell must be a finite, non-negative decimal number; transcript names must be non-empty and
unique (tximport would silently accept duplicates and sum them into the wrong gene rows). A file
whose last line is cut short, a gzip stream without its trailer, and a file with a header but no
rows are reported as truncated.

Salmon also writes ``aux_info/meta_info.json`` (run statistics), ``lib_format_counts.json`` (library
type detection) and ``cmd_info.json`` (the command line); fields differ between Salmon versions, so
the typed attributes below are ``None`` when absent and every key is kept in ``raw``.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from genemill.errors import SalmonFormatError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "LibFormatCounts",
    "SalmonCmdInfo",
    "SalmonMetaInfo",
    "SourceFormat",
    "TranscriptQuant",
    "read_kallisto_abundance",
    "read_quant",
    "read_rsem_isoforms",
    "read_salmon_cmd_info",
    "read_salmon_lib_format_counts",
    "read_salmon_meta_info",
    "read_salmon_quant",
]

FloatArray = npt.NDArray[np.float64]
SourceFormat = Literal["salmon", "kallisto", "rsem"]

_GZIP_MAGIC = b"\x1f\x8b"
# Header of each format, and which header column feeds each TranscriptQuant field.
_HEADERS: dict[str, tuple[str, ...]] = {
    "salmon": ("Name", "Length", "EffectiveLength", "TPM", "NumReads"),
    "kallisto": ("target_id", "length", "eff_length", "est_counts", "tpm"),
    "rsem": ("transcript_id", "gene_id", "length", "effective_length", "expected_count", "TPM", "FPKM",
             "IsoPct"),
}  # fmt: skip
# The header column behind TranscriptQuant's names, length, effective_length, tpm and num_reads.
_FIELDS: dict[str, tuple[str, str, str, str, str]] = {
    "salmon": ("Name", "Length", "EffectiveLength", "TPM", "NumReads"),
    "kallisto": ("target_id", "length", "eff_length", "tpm", "est_counts"),
    "rsem": ("transcript_id", "length", "effective_length", "TPM", "expected_count"),
}
_TEXT_COLUMNS = frozenset({"Name", "target_id", "transcript_id", "gene_id"})
_NON_SPACE = re.compile(rb"\S")
_NUMBER = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Numbers as quantifiers write them, read alike by Arrow and float(); others go to Arrow.
_PLAIN_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
# Rows (bytes) parsed in Python: ~1,000 transcripts. Arrow's reader has a fixed cost of 0.1-0.5 ms
# a call, more than splitting a few hundred lines takes.
_SMALL_BODY = 1 << 16


@dataclass(frozen=True)
class TranscriptQuant:
    """One sample's transcript-level estimates, in file order.

    ``names`` is an object array of ``str`` (shape ``(t,)``); the four numeric arrays are float64
    of shape ``(t,)``: ``length`` and ``effective_length`` in bases, ``tpm`` in transcripts per
    million, ``num_reads`` the estimated number of fragments (Salmon ``NumReads``, kallisto
    ``est_counts``, RSEM ``expected_count``). ``gene_ids`` is filled for RSEM only.
    """

    names: npt.NDArray[np.object_]
    length: FloatArray
    effective_length: FloatArray
    tpm: FloatArray
    num_reads: FloatArray
    source_format: SourceFormat
    gene_ids: npt.NDArray[np.object_] | None = None

    def __len__(self) -> int:
        return int(self.names.shape[0])


def read_salmon_quant(fh: IO[Any]) -> TranscriptQuant:
    """Read a Salmon ``quant.sf`` (plain or gzip) from an open handle."""
    return read_quant(fh, source_format="salmon")


def read_kallisto_abundance(fh: IO[Any]) -> TranscriptQuant:
    """Read a kallisto ``abundance.tsv`` (plain or gzip) from an open handle."""
    return read_quant(fh, source_format="kallisto")


def read_rsem_isoforms(fh: IO[Any]) -> TranscriptQuant:
    """Read an RSEM ``*.isoforms.results`` (plain or gzip); ``gene_ids`` holds its gene column."""
    return read_quant(fh, source_format="rsem")


def read_quant(fh: IO[Any], *, source_format: SourceFormat) -> TranscriptQuant:
    """Read a transcript quantification table of the given format from an open handle.

    Raises
    ------
    SalmonFormatError
        Wrong header, a row with the wrong number of columns, a non-numeric, negative or
        non-finite cell (line and column named), empty or duplicate names, or a truncated file.
    """
    if source_format not in _HEADERS:
        msg = f"source_format must be one of {sorted(_HEADERS)}, found {source_format!r}"
        raise ValueError(msg)
    path = _name_of(fh)
    data = _read_bytes(fh, path)
    header = _HEADERS[source_format]
    start = _check_header(data, header, path)
    columns = _parse_body(data, start, header, path)
    numeric = {name: columns[name] for name in header if name not in _TEXT_COLUMNS}
    _check_numbers(numeric, header, path)
    name_column, length, effective_length, tpm, num_reads = _FIELDS[source_format]
    names = columns[name_column]
    _check_names(names, name_column, path)
    gene_ids = columns["gene_id"] if source_format == "rsem" else None
    return TranscriptQuant(
        names=names,
        length=numeric[length],
        effective_length=numeric[effective_length],
        tpm=numeric[tpm],
        num_reads=numeric[num_reads],
        source_format=source_format,
        gene_ids=gene_ids,
    )


def _name_of(fh: IO[Any]) -> str:
    """Return the handle's file name, or ``<stream>`` so messages still carry the line number."""
    name = getattr(fh, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _read_bytes(fh: IO[Any], path: str | None) -> bytes:
    """Return the whole content of ``fh``, gunzipped when it starts with the gzip magic."""
    data = fh.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data.startswith(_GZIP_MAGIC):
        return bytes(data)
    try:
        return gzip.decompress(data)
    except EOFError as exc:
        msg = f"truncated gzip stream (no end-of-stream marker): {exc}"
        raise SalmonFormatError(msg, path=path) from exc
    except (OSError, zlib.error) as exc:
        msg = f"corrupt gzip stream: {exc}"
        raise SalmonFormatError(msg, path=path) from exc


def _check_header(data: bytes, header: tuple[str, ...], path: str | None) -> int:
    """Check the first line against ``header``; return the offset where the rows start."""
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    found = first.rstrip(b"\r").decode("utf-8", errors="replace")
    if found.split("\t") != list(header):
        msg = f"expected header {chr(9).join(header)!r}, found {found[:200]!r}"
        raise SalmonFormatError(msg, path=path, line=1)
    if end < 0 or _NON_SPACE.search(data, end) is None:
        msg = "truncated file: a header but no transcript rows"
        raise SalmonFormatError(msg, path=path, line=2)
    return end + 1


def _parse_body(data: bytes, start: int, header: tuple[str, ...], path: str | None) -> dict[str, np.ndarray]:
    """The columns of the rows in ``data[start:]``: text as object arrays of ``str``, numbers as
    float64 (correctly rounded). Up to ``_SMALL_BODY`` bytes of plain rows are split in Python
    (:func:`_parse_small`), faster there than Arrow's CSV reader; the rest, and anything unusual,
    is Arrow's, which also reports the errors."""
    if len(data) - start <= _SMALL_BODY:
        columns = _parse_small(data[start:], header)
        if columns is not None:
            return columns
    table = _parse_arrow(data, start, header, path)
    return {
        name: np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)
        if name in _TEXT_COLUMNS
        else table.column(name).to_numpy().astype(np.float64, copy=False)
        for name in header
    }


def _parse_small(body: bytes, header: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Rows split on ``\\n`` and tabs, or None when any line, cell or byte is not of the plain kind
    every quantifier writes (a number is ``-?digits[.digits][e±digits]``, which Arrow and
    :func:`float` read to the same double): Arrow then parses, or names the first bad line."""
    if b"\r" in body:
        return None
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rows = [line.split(b"\t") for line in lines]
    if not rows or any(len(row) != len(header) for row in rows):
        return None
    columns: dict[str, np.ndarray] = {}
    for name, cells in zip(header, zip(*rows, strict=True), strict=True):
        if name in _TEXT_COLUMNS:
            try:
                columns[name] = np.array([cell.decode("utf-8") for cell in cells], dtype=object)
            except UnicodeDecodeError:
                return None
        elif all(_PLAIN_NUMBER.fullmatch(cell) for cell in cells):
            columns[name] = np.array([float(cell) for cell in cells], dtype=np.float64)
        else:
            return None
    return columns


def _parse_arrow(data: bytes, start: int, header: tuple[str, ...], path: str | None) -> pa.Table:
    """Parse the rows from ``data[start:]`` with Arrow's CSV reader (correctly rounded floats).

    pyarrow is imported here, not with the module, so ``import genemill.rnaseq`` stays light.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {name: pa.string() if name in _TEXT_COLUMNS else pa.float64() for name in header}
    try:
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data).slice(start)),  # a view: no copy of the rows
            read_options=pacsv.ReadOptions(column_names=list(header), use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        # Arrow's message names the column but not the line: find the line ourselves.
        _diagnose_rows(data[start:], header, path)
        msg = f"cannot parse rows: {exc}"
        raise SalmonFormatError(msg, path=path) from exc


def _diagnose_rows(body: bytes, header: tuple[str, ...], path: str | None) -> None:
    """Raise a SalmonFormatError naming the first malformed line of ``body``."""
    lines = body.split(b"\n")
    ends_with_newline = lines[-1] == b""
    if ends_with_newline:
        lines.pop()
    numeric = [(i, name) for i, name in enumerate(header) if name not in _TEXT_COLUMNS]
    for index, raw in enumerate(lines):
        line_no = index + 2
        cells = raw.rstrip(b"\r").split(b"\t")
        if len(cells) != len(header):
            last = index == len(lines) - 1 and not ends_with_newline
            hint = " (the file appears truncated)" if last else ""
            msg = f"expected {len(header)} tab-separated columns, found {len(cells)}{hint}"
            raise SalmonFormatError(msg, path=path, line=line_no)
        for column, name in numeric:
            if _NUMBER.fullmatch(cells[column]) is None:
                found = cells[column][:60].decode("utf-8", errors="replace")
                msg = f"column {column + 1} ({name}): expected a number, found {found!r}"
                raise SalmonFormatError(msg, path=path, line=line_no)


def _check_numbers(numeric: Mapping[str, FloatArray], header: tuple[str, ...], path: str | None) -> None:
    for name, values in numeric.items():
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            row = int(bad[0])
            msg = (
                f"column {header.index(name) + 1} ({name}): expected a finite non-negative number, "
                f"found {float(values[row])!r} ({bad.size} such cells)"
            )
            raise SalmonFormatError(msg, path=path, line=row + 2)


def _check_names(names: npt.NDArray[np.object_], name: str, path: str | None) -> None:
    """Reject empty or repeated transcript names (a set of the names; a loop only to locate them)."""
    empty = np.flatnonzero(names == "")
    if empty.size:
        msg = f"column 1 ({name}): empty transcript name"
        raise SalmonFormatError(msg, path=path, line=int(empty[0]) + 2)
    distinct = len(set(names.tolist()))
    if distinct == len(names):
        return
    seen: dict[str, int] = {}
    for row, value in enumerate(names.tolist()):
        if value in seen:
            msg = (
                f"duplicate transcript name {value!r} (first on line {seen[value] + 2}; "
                f"{len(names) - distinct} duplicate rows in total)"
            )
            raise SalmonFormatError(msg, path=path, line=row + 2)
        seen[value] = row


# --------------------------------------------------------------------------- Salmon JSON files


@dataclass(frozen=True)
class SalmonMetaInfo:
    """``aux_info/meta_info.json``: what Salmon saw during one quantification run.

    ``num_targets`` is the number of rows quant.sf should have: ``num_valid_targets`` (Salmon
    >= 1.0, decoys excluded) or, in older versions, ``num_targets``.
    """

    salmon_version: str | None
    library_types: tuple[str, ...]
    num_targets: int | None
    num_decoy_targets: int | None
    num_processed: int | None
    num_mapped: int | None
    percent_mapped: float | None
    num_bootstraps: int | None
    samp_type: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class LibFormatCounts:
    """``lib_format_counts.json``: the expected library type and fragments per observed type."""

    expected_format: str | None
    compatible_fragment_ratio: float | None
    num_compatible_fragments: int | None
    num_assigned_fragments: int | None
    strand_mapping_bias: float | None
    format_counts: Mapping[str, int]
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class SalmonCmdInfo:
    """``cmd_info.json``: the Salmon command line, one key per option."""

    salmon_version: str | None
    index: str | None
    lib_type: str | None
    mates1: tuple[str, ...]
    mates2: tuple[str, ...]
    unmated_reads: tuple[str, ...]
    output: str | None
    aux_dir: str
    raw: Mapping[str, Any] = field(repr=False)


# Salmon's library format codes (https://salmon.readthedocs.io/en/latest/library_type.html).
_LIB_FORMATS = ("MSF", "OSF", "ISF", "MSR", "OSR", "ISR", "SF", "SR", "MU", "OU", "IU", "U")


def read_salmon_meta_info(fh: IO[Any]) -> SalmonMetaInfo:
    """Read Salmon's ``aux_info/meta_info.json`` from an open handle."""
    path = _name_of(fh)
    obj = _json_object(fh, path)
    return SalmonMetaInfo(
        salmon_version=_typed(obj, "salmon_version", str, path),
        library_types=_strings(obj, "library_types", path),
        num_targets=_typed(obj, "num_valid_targets", int, path) or _typed(obj, "num_targets", int, path),
        num_decoy_targets=_typed(obj, "num_decoy_targets", int, path),
        num_processed=_typed(obj, "num_processed", int, path),
        num_mapped=_typed(obj, "num_mapped", int, path),
        percent_mapped=_typed(obj, "percent_mapped", float, path),
        num_bootstraps=_typed(obj, "num_bootstraps", int, path),
        samp_type=_typed(obj, "samp_type", str, path),
        raw=obj,
    )


def read_salmon_lib_format_counts(fh: IO[Any]) -> LibFormatCounts:
    """Read Salmon's ``lib_format_counts.json`` from an open handle."""
    path = _name_of(fh)
    obj = _json_object(fh, path)
    counts = {code: _typed(obj, code, int, path) for code in _LIB_FORMATS}
    return LibFormatCounts(
        expected_format=_typed(obj, "expected_format", str, path),
        compatible_fragment_ratio=_typed(obj, "compatible_fragment_ratio", float, path),
        num_compatible_fragments=_typed(obj, "num_compatible_fragments", int, path),
        num_assigned_fragments=_typed(obj, "num_assigned_fragments", int, path),
        strand_mapping_bias=_typed(obj, "strand_mapping_bias", float, path),
        format_counts={code: value for code, value in counts.items() if value is not None},
        raw=obj,
    )


def read_salmon_cmd_info(fh: IO[Any]) -> SalmonCmdInfo:
    """Read Salmon's ``cmd_info.json`` from an open handle (``auxDir`` defaults to ``aux_info``)."""
    path = _name_of(fh)
    obj = _json_object(fh, path)
    return SalmonCmdInfo(
        salmon_version=_typed(obj, "salmon_version", str, path),
        index=_typed(obj, "index", str, path),
        lib_type=_typed(obj, "libType", str, path),
        mates1=_strings(obj, "mates1", path),
        mates2=_strings(obj, "mates2", path),
        unmated_reads=_strings(obj, "unmatedReads", path),
        output=_typed(obj, "output", str, path),
        aux_dir=_typed(obj, "auxDir", str, path) or "aux_info",
        raw=obj,
    )


def _json_object(fh: IO[Any], path: str | None) -> dict[str, Any]:
    text = _read_bytes(fh, path).decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON: {exc.msg} (column {exc.colno})"
        raise SalmonFormatError(msg, path=path, line=exc.lineno) from exc
    if not isinstance(obj, dict):
        msg = f"expected a JSON object at the top level, found {type(obj).__name__}"
        raise SalmonFormatError(msg, path=path)
    return obj


def _typed(obj: Mapping[str, Any], key: str, kind: type, path: str | None) -> Any:
    """Return ``obj[key]`` checked against ``kind`` (ints accepted for floats), or None."""
    value = obj.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        msg = f"field {key!r}: expected {kind.__name__}, found {value!r}"
        raise SalmonFormatError(msg, path=path)
    return value


def _strings(obj: Mapping[str, Any], key: str, path: str | None) -> tuple[str, ...]:
    """Return a string or list-of-strings field as a tuple (empty when absent)."""
    value = obj.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    msg = f"field {key!r}: expected a string or a list of strings, found {value!r}"
    raise SalmonFormatError(msg, path=path)
