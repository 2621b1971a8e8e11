"""Recognize a metadata file's format from its first bytes (after gunzip), not its name.

* GEO SOFT: first non-blank line starts with ``^`` (``^SERIES``, ``^SAMPLE``, ``^DATABASE``…)
* GEO series matrix: first line starts with ``!Series_``
* GEO MINiML: XML whose root element is ``MINiML``
* MAGE-TAB IDF: a line starting with ``MAGE-TAB Version`` or ``Investigation Title``
* MAGE-TAB SDRF: first line's first column is ``Source Name`` (or ``Sample Name`` / ``Extract Name``)
"""

from __future__ import annotations

import enum
import gzip
import zlib
from pathlib import Path

from genemill.errors import FormatError

__all__ = ["MetadataFormat", "read_head", "sniff_metadata_format"]

_GZIP_MAGIC = b"\x1f\x8b"


class MetadataFormat(enum.StrEnum):
    """Metadata file formats genemill imports."""

    SOFT = "soft"
    SERIES_MATRIX = "series_matrix"
    MINIML = "miniml"
    IDF = "idf"
    SDRF = "sdrf"


def read_head(path: Path, size: int = 65536) -> bytes:
    """First ``size`` bytes of a file, decompressed when it is gzip (by magic bytes)."""
    with path.open("rb") as fh:
        head = fh.read(size)
    if not head.startswith(_GZIP_MAGIC):
        return head
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        msg = f"corrupt or truncated gzip data: {exc}"
        raise FormatError(msg, path=str(path)) from exc


def sniff_metadata_format(head: bytes, *, path_hint: str | None = None) -> MetadataFormat:
    """Decide the format from the first bytes; FormatError naming the file when unknown."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        msg = "empty file: expected a GEO SOFT, series matrix, MINiML or MAGE-TAB file"
        raise FormatError(msg, path=path_hint)
    first = lines[0]
    if first.startswith("^"):
        return MetadataFormat.SOFT
    if first.startswith("!Series_"):
        return MetadataFormat.SERIES_MATRIX
    if first.startswith("<") and "<MINiML" in text:
        return MetadataFormat.MINIML
    unquoted = [line.lstrip('"') for line in lines[:50]]
    if any(line.startswith(("MAGE-TAB Version", "Investigation Title")) for line in unquoted):
        return MetadataFormat.IDF
    if first.split("\t", 1)[0].strip('"') in {"Source Name", "Sample Name", "Extract Name"}:
        return MetadataFormat.SDRF
    msg = (
        "unrecognized metadata format: expected '^' (GEO SOFT), '!Series_' (series matrix), "
        f"<MINiML> XML or a MAGE-TAB IDF/SDRF; first line is {first[:60]!r}"
    )
    raise FormatError(msg, path=path_hint, line=1)
