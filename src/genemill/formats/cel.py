"""Read Affymetrix CEL files (probe-level intensities) into a :class:`CelFile`.

Three on-disk variants are read; any of them may be gzip-compressed (detected by the magic bytes
``1f 8b``, never by the file name):

* **Text v3** (GCOS/MAS5 "ASCII"). Sections ``[CEL]``, ``[HEADER]``, ``[INTENSITY]``, ``[MASKS]``,
  ``[OUTLIERS]``, ``[MODIFIED]``, ``key=value`` lines, CRLF or LF line ends. ``[INTENSITY]`` holds
  ``NumberCells=``, ``CellHeader=X Y MEAN STDV NPIXELS`` and one whitespace-separated line per cell.
  Cells are placed by their X/Y (a later line for the same cell wins, as Biopython does).
* **Binary XDA v4** (little endian). ``int32`` magic 64, version 4, rows, cols (the Fusion SDK order;
  Affymetrix's web page says cols first), number of cells; ``int32``-length-prefixed header text
  (the v3 ``[HEADER]`` lines), algorithm name and algorithm parameters; ``int32`` cell margin,
  ``uint32`` outlier and mask counts, ``int32`` sub-grid count; then per cell ``float32`` mean,
  ``float32`` stdev, ``int16`` pixel count (10 bytes); then masked and outlier cells as
  ``int16`` X, Y pairs.
* **Command Console / Calvin "generic"** (big endian): ``uint8`` magic 59, version 1, ``int32``
  number of data groups, ``uint32`` offset of the first group; a generic data header (data-type
  id ``affymetrix-calvin-intensity``, file id, UTF-16BE date and locale, typed name/value/MIME
  parameters, parent headers recursively); then data groups of data sets ``Intensity`` (float32),
  ``StdDev``, ``Pixel`` (int16), ``Outlier`` and ``Mask`` (int16 X, Y). Parameter values are typed
  by MIME: ``text/plain`` (UTF-16BE), ``text/ascii``, ``text/x-calvin-integer-32`` etc., and
  ``text/x-calvin-float``, stored big endian at the start of a padded buffer. The array type is
  ``affymetrix-array-type``, the size ``affymetrix-cel-rows`` / ``affymetrix-cel-cols``. The parsing
  of this container lives in :mod:`genemill.formats._calvin`.

Cell index is ``x + y * cols``. Text v3 intensities are kept as the decimal numbers written
(float64, as affyio reads them); binary intensities keep their stored float32 values.
APT's compact ``BCEL``/``CCEL`` files and multi-channel Calvin files are refused.
"""

from __future__ import annotations

import enum
import gzip
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from genemill.errors import CelFormatError
from genemill.formats import _calvin

if TYPE_CHECKING:
    import mmap

    from numpy.typing import NDArray

    Buffer = bytes | bytearray | memoryview | mmap.mmap

__all__ = ["CelFile", "CelFormat", "parse_cel", "read_cel"]

_GZIP_MAGIC = b"\x1f\x8b"
_V4_CELL = np.dtype([("mean", "<f4"), ("stdev", "<f4"), ("npixels", "<i2")])
_V4_XY = np.dtype([("x", "<i2"), ("y", "<i2")])
_CHIP_RE = re.compile(r"([^\s\x14]+)\.1sq", re.IGNORECASE)
_DATE_RE = re.compile(r"(\d\d/\d\d/[\d ]\d \d\d:\d\d:\d\d)")
_SECTION_RE = re.compile(rb"^\[([A-Za-z]+)\][ \t]*\r?$", re.MULTILINE)


class CelFormat(enum.Enum):
    """The on-disk CEL variant."""

    TEXT_V3 = "text-v3"
    XDA_V4 = "xda-v4"
    CALVIN = "calvin"


@dataclass(frozen=True, eq=False)
class CelFile:
    """One scanned array.

    ``intensities``, ``stdev`` and ``npixels`` have shape ``(rows * cols,)`` in cell-index order
    ``x + y * cols``; ``masks`` and ``outliers`` are cell indices. ``intensities`` is a contiguous
    array: float64 for text v3 (the decimals written), float32 for binary files (the values
    stored). ``stdev`` and ``npixels`` of binary files are read-only views into the file's bytes
    (big-endian for Calvin). ``header`` holds the ``[CEL]``/``[HEADER]`` keys (v3, v4) or the
    Calvin parameters, parents' included, values as text.
    """

    path: str
    format: CelFormat
    chip_type: str
    rows: int
    cols: int
    intensities: NDArray[np.floating]
    stdev: NDArray[np.floating] | None = None
    npixels: NDArray[np.integer] | None = None
    masks: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    outliers: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    scan_date: str | None = None
    algorithm: str | None = None
    header: dict[str, str] = field(default_factory=dict)


def read_cel(fh: BinaryIO, *, name: str | None = None) -> CelFile:
    """Read a CEL file (any supported variant, gzip or not) from a binary handle."""
    label = name if name is not None else str(getattr(fh, "name", "<stream>"))
    return parse_cel(fh.read(), name=label)


def parse_cel(data: Buffer, *, name: str = "<bytes>") -> CelFile:
    """Parse the bytes of a CEL file; ``name`` is used in error messages and ``CelFile.path``.

    ``data`` may be any buffer (bytes, memoryview, mmap); binary files are read without copying,
    so ``stdev`` and ``npixels`` of XDA and Calvin files are read-only views into it.
    """
    view = memoryview(data).cast("B")
    if not view.nbytes:
        msg = "empty file (0 bytes); expected a CEL file"
        raise CelFormatError(msg, path=name)
    if bytes(view[:2]) == _GZIP_MAGIC:
        view = memoryview(_gunzip(view, name))
    head = bytes(view[:64])
    if head[:4] in (b"BCEL", b"CCEL"):
        msg = f"unsupported CEL variant: APT compact {head[:4].decode()!r} file; convert it to v4 or Calvin"
        raise CelFormatError(msg, path=name, offset=0)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[CEL]"):
        return _parse_text(bytes(view), name)
    if head[0] == 64:
        return _parse_xda(view, name)
    if head[0] == _calvin.MAGIC:
        return _parse_calvin(view, name)
    msg = f"expected '[CEL]' (v3), byte 64 (v4) or 59 (Calvin) at offset 0, found 0x{head[0]:02x}"
    raise CelFormatError(msg, path=name, offset=0)


def _gunzip(data: memoryview, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        msg = f"truncated or corrupt gzip stream ({exc})"
        raise CelFormatError(msg, path=name) from exc


# --------------------------------------------------------------------------- text v3


def _parse_text(data: bytes, name: str) -> CelFile:
    sections = _split_sections(data)
    header = _key_values(sections.get("CEL", b"")) | _key_values(sections.get("HEADER", b""))
    rows, cols = _header_int(header, "Rows", name), _header_int(header, "Cols", name)
    if "INTENSITY" not in sections:
        msg = "no [INTENSITY] section; the file is truncated or not a CEL file"
        raise CelFormatError(msg, path=name)
    table, _ = _cell_table(sections["INTENSITY"], name=name, section="INTENSITY")
    if table.shape[1] < 3:
        msg = f"[INTENSITY] CellHeader has {table.shape[1]} columns; expected X Y MEAN STDV NPIXELS"
        raise CelFormatError(msg, path=name)
    index = _cell_index(table[:, 0], table[:, 1], rows=rows, cols=cols, name=name)
    columns = [np.full(rows * cols, np.nan) for _ in range(min(table.shape[1] - 2, 3))]
    for k, column in enumerate(columns):
        column[index] = table[:, 2 + k]
    if np.isnan(columns[0]).any():
        missing = int(np.isnan(columns[0]).sum())
        msg = f"truncated [INTENSITY] section: expected {rows * cols} cells, {missing} missing"
        raise CelFormatError(msg, path=name)
    dat_header = header.get("DatHeader", "")
    return CelFile(
        path=name,
        format=CelFormat.TEXT_V3,
        chip_type=_chip_from_dat_header(dat_header),
        rows=rows,
        cols=cols,
        intensities=columns[0],
        stdev=columns[1] if len(columns) > 1 else None,
        npixels=columns[2].astype(np.int32) if len(columns) > 2 else None,
        masks=_xy_section(sections.get("MASKS"), rows=rows, cols=cols, name=name),
        outliers=_xy_section(sections.get("OUTLIERS"), rows=rows, cols=cols, name=name),
        scan_date=_date_from_dat_header(dat_header),
        algorithm=header.get("Algorithm"),
        header=header,
    )


def _split_sections(data: bytes) -> dict[str, bytes]:
    marks = list(_SECTION_RE.finditer(data))
    sections: dict[str, bytes] = {}
    for k, mark in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(data)
        sections.setdefault(mark.group(1).decode("ascii").upper(), data[mark.end() : end])
    return sections


def _key_values(body: bytes) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in body.splitlines():
        key, sep, value = raw.decode("latin-1").partition("=")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def _header_int(header: dict[str, str], key: str, name: str) -> int:
    try:
        return int(header[key])
    except KeyError:
        msg = f"[HEADER] has no {key}= line"
        raise CelFormatError(msg, path=name) from None
    except ValueError:
        msg = f"[HEADER] {key}= expected an integer, found {header[key]!r}"
        raise CelFormatError(msg, path=name) from None


def _cell_table(body: bytes, *, name: str, section: str) -> tuple[NDArray[np.float64], int]:
    """Return the numeric rows after ``CellHeader=`` as a 2-D array and the declared cell count."""
    head, sep, rest = body.partition(b"CellHeader=")
    declared = _key_values(head).get("NumberCells", "")
    if not sep or not declared.isdigit():
        msg = f"[{section}] lacks NumberCells= / CellHeader= lines"
        raise CelFormatError(msg, path=name)
    columns_line, _, numbers = rest.partition(b"\n")
    width = len(columns_line.split())
    values = _numbers(numbers.strip(), name=name, section=section)
    if values.size % width or not np.isfinite(values).all():
        header = columns_line.decode("latin-1").strip()
        msg = (
            f"[{section}] rows must hold {width} numbers each ({header}); an incomplete row means truncation"
        )
        raise CelFormatError(msg, path=name)
    table = values.reshape(-1, width)
    if table.shape[0] < int(declared):
        msg = f"truncated [{section}] section: NumberCells={declared}, found {table.shape[0]} cell lines"
        raise CelFormatError(msg, path=name)
    return table, int(declared)


def _numbers(text: bytes, *, name: str, section: str) -> NDArray[np.float64]:
    """Parse whitespace-separated decimal numbers.

    We aren't using np.loadtxt because it is ~20x slower on the 2 million numbers of a big array;
    np.fromstring returns [-1.] for blank input, hence the guard.
    """
    if not text:
        return np.empty(0, dtype=np.float64)
    try:
        return np.fromstring(text.decode("latin-1"), dtype=np.float64, sep=" ")
    except ValueError as exc:
        msg = f"[{section}] holds a value that is not a number ({exc})"
        raise CelFormatError(msg, path=name) from exc


def _cell_index(
    x: NDArray[np.floating], y: NDArray[np.floating], *, rows: int, cols: int, name: str
) -> NDArray[np.int64]:
    xi, yi = x.astype(np.int64), y.astype(np.int64)
    bad = (xi < 0) | (xi >= cols) | (yi < 0) | (yi >= rows)
    if bad.any():
        k = int(np.argmax(bad))
        msg = f"cell X={xi[k]} Y={yi[k]} lies outside the {cols}x{rows} array"
        raise CelFormatError(msg, path=name)
    return xi + yi * cols


def _xy_section(body: bytes | None, *, rows: int, cols: int, name: str) -> NDArray[np.int64]:
    if body is None or b"CellHeader=" not in body:
        return np.empty(0, dtype=np.int64)
    table, declared = _cell_table(body, name=name, section="MASKS/OUTLIERS")
    table = table[:declared]
    return _cell_index(table[:, 0], table[:, 1], rows=rows, cols=cols, name=name)


def _chip_from_dat_header(dat_header: str) -> str:
    found = _CHIP_RE.search(dat_header)
    return found.group(1) if found else ""


def _date_from_dat_header(dat_header: str) -> str | None:
    found = _DATE_RE.search(dat_header)
    return found.group(1) if found else None


# --------------------------------------------------------------------------- binary v4


def _parse_xda(data: memoryview, name: str) -> CelFile:
    reader = _LittleEndian(data, name)
    _magic, version, rows, cols, n_cells = reader.ints(5)
    if version != 4:
        msg = f"XDA CEL version: expected 4 after magic 64, found {version}"
        raise CelFormatError(msg, path=name, offset=4)
    if rows <= 0 or cols <= 0 or n_cells != rows * cols:
        msg = f"XDA CEL size: {rows} rows x {cols} cols does not match {n_cells} cells"
        raise CelFormatError(msg, path=name, offset=8)
    header = _key_values(reader.text().encode("latin-1"))
    algorithm, parameters = reader.text(), reader.text()
    _margin, n_outliers, n_masks, _subgrids = struct.unpack("<iIIi", reader.take(16))
    cells = np.frombuffer(reader.take(n_cells * _V4_CELL.itemsize), dtype=_V4_CELL)
    masks = np.frombuffer(reader.take(n_masks * 4), dtype=_V4_XY)
    outliers = np.frombuffer(reader.take(n_outliers * 4), dtype=_V4_XY)
    dat_header = header.get("DatHeader", "")
    header |= {"Algorithm": algorithm, "AlgorithmParameters": parameters}
    return CelFile(
        path=name,
        format=CelFormat.XDA_V4,
        chip_type=_chip_from_dat_header(dat_header),
        rows=rows,
        cols=cols,
        intensities=np.ascontiguousarray(cells["mean"], dtype=np.float32),
        stdev=cells["stdev"],
        npixels=cells["npixels"],
        masks=_cell_index(masks["x"], masks["y"], rows=rows, cols=cols, name=name),
        outliers=_cell_index(outliers["x"], outliers["y"], rows=rows, cols=cols, name=name),
        scan_date=_date_from_dat_header(dat_header),
        algorithm=algorithm or header.get("Algorithm"),
        header=header,
    )


class _LittleEndian:
    """A bounds-checked cursor over the bytes of an XDA file."""

    def __init__(self, data: memoryview, name: str) -> None:
        self.data, self.name, self.pos = data, name, 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            msg = f"truncated file: expected at least {end} bytes, found {len(self.data)}"
            raise CelFormatError(msg, path=self.name, offset=self.pos)
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def ints(self, n: int) -> tuple[int, ...]:
        return struct.unpack(f"<{n}i", self.take(4 * n))

    def text(self) -> str:
        (length,) = self.ints(1)
        return bytes(self.take(length)).decode("latin-1").rstrip("\x00")


# --------------------------------------------------------------------------- Calvin


def _parse_calvin(data: memoryview, name: str) -> CelFile:
    container = _calvin.parse_generic(data, name=name)
    if container.data_type == "affymetrix-calvin-multi-intensity":
        msg = "unsupported CEL variant: multi-channel Calvin file ('affymetrix-calvin-multi-intensity')"
        raise CelFormatError(msg, path=name)
    if container.data_type != "affymetrix-calvin-intensity":
        msg = f"Calvin data type: expected 'affymetrix-calvin-intensity', found {container.data_type!r}"
        raise CelFormatError(msg, path=name)
    header = container.parameters
    rows = _header_int(header, "affymetrix-cel-rows", name)
    cols = _header_int(header, "affymetrix-cel-cols", name)
    intensity = container.column("Intensity", rows * cols)
    if intensity is None:
        msg = "Calvin CEL has no 'Intensity' data set"
        raise CelFormatError(msg, path=name)
    stdev, pixels = container.column("StdDev", rows * cols), container.column("Pixel", rows * cols)
    return CelFile(
        path=name,
        format=CelFormat.CALVIN,
        chip_type=header.get("affymetrix-array-type", ""),
        rows=rows,
        cols=cols,
        intensities=intensity.astype(np.float32),
        stdev=stdev,
        npixels=pixels,
        masks=_calvin_xy(container, "Mask", rows=rows, cols=cols, name=name),
        outliers=_calvin_xy(container, "Outlier", rows=rows, cols=cols, name=name),
        scan_date=header.get("affymetrix-scan-date") or container.date or None,
        algorithm=header.get("affymetrix-algorithm-name"),
        header=header,
    )


def _calvin_xy(
    container: _calvin.GenericFile, dataset: str, *, rows: int, cols: int, name: str
) -> NDArray[np.int64]:
    table = container.table(dataset)
    if table is None or table.size == 0 or len(table.dtype.names or ()) < 2:
        return np.empty(0, dtype=np.int64)
    x_name, y_name = (table.dtype.names or ())[:2]
    return _cell_index(table[x_name], table[y_name], rows=rows, cols=cols, name=name)
