"""Read Affymetrix CDF (chip description) files into probe-set index arrays.

Two variants are read (either may be gzip-compressed; detected by magic bytes):

* **ASCII** (``Version=GC2.0`` / ``GC3.0``, CRLF or LF). ``[CDF]``, ``[Chip]`` (``Name``, ``Rows``,
  ``Cols``, ``NumberOfUnits``, ``NumQCUnits``), ``[QCn]`` sections (skipped), ``[Unitn]`` sections
  (``NumberBlocks``) each followed by ``[Unitn_Blockm]`` sections with ``Name`` (the probe-set id),
  ``NumCells`` and ``CellHeader=`` naming the tab-separated columns of the ``Celln=`` lines:
  ``X Y PROBE FEAT QUAL EXPOS POS CBASE PBASE TBASE ATOM INDEX CODONIND CODON REGIONTYPE REGION``.
  GC2.0 numbers atoms/positions from 1, GC3.0 from 0, and older files may lack the trailing
  columns, so columns are looked up by name, never by position.
* **Binary XDA** (little endian). ``int32`` magic 67, version 1; ``uint16`` cols, rows; ``int32``
  unit, QC-unit and reference-sequence counts; the reference sequence; ``char[64]`` per unit
  name; ``int32`` file offsets of QC units and units. A unit is ``uint16`` type, ``uint8``
  direction, ``int32`` atoms, blocks, cells, unit number, ``uint8`` cells per atom; each block
  ``int32`` atoms, cells, ``uint8`` cells per atom, direction, ``int32`` first atom, unused,
  ``char[64]`` name; each cell ``int32`` atom, ``uint16`` x, y, ``int32`` index, ``char`` probe
  base, target base (14 bytes). XDA stores bases in lower case, so bases compare case-insensitively.

PM versus MM follows Bioconductor ``makecdfenv::pmormm``: a cell is PM when its probe base is the
Watson-Crick complement of the target base (A/T, T/A, G/C, C/G), otherwise MM. Within a probe set
PM cells and MM cells are each ordered by atom (then cell index) and paired by rank, as
``make.cdf.env`` does; a probe set without MM cells gets ``mm_index`` -1, and unequal PM/MM counts
are recycled to the longer one as R's ``cbind`` does. Cell index is ``x + y * cols``.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from genemill.errors import CdfFormatError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from numpy.typing import NDArray

__all__ = ["CdfLayout", "load_cdf_cache", "parse_cdf", "read_cdf", "save_cdf_cache"]

_XDA_CELL = np.dtype(
    [("atom", "<i4"), ("x", "<u2"), ("y", "<u2"), ("index", "<i4"), ("pbase", "S1"), ("tbase", "S1")]
)
_COMPLEMENT = {(b"A", b"T"), (b"T", b"A"), (b"G", b"C"), (b"C", b"G")}
_SECTION_RE = re.compile(rb"^\[(?P<name>[^\]\r\n]+)\][ \t]*\r?$", re.MULTILINE)
_CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class CdfLayout:
    """Where each probe set's PM and MM probes lie on the array.

    ``pm_index`` and ``mm_index`` have shape ``(n_probes,)`` (cell indices ``x + y * cols``; ``mm_index``
    is -1 where a probe set has no MM); probes of probe set ``k`` are ``offsets[k]:offsets[k + 1]``,
    probe sets in CDF unit order. ``aliases`` are extra accepted chip-type names (e.g. the file stem).
    """

    chip_type: str
    rows: int
    cols: int
    probeset_ids: tuple[str, ...]
    pm_index: NDArray[np.int64]
    mm_index: NDArray[np.int64]
    offsets: NDArray[np.int64]
    n_qc_units: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def probeset_of_probe(self) -> NDArray[np.int64]:
        """Return the probe-set number (position in ``probeset_ids``) of every probe."""
        return np.repeat(np.arange(len(self.probeset_ids), dtype=np.int64), np.diff(self.offsets))


def read_cdf(fh: BinaryIO, *, name: str | None = None) -> CdfLayout:
    """Read an ASCII or XDA CDF (gzip or not) from a binary handle."""
    label = name if name is not None else str(getattr(fh, "name", "<stream>"))
    return parse_cdf(fh.read(), name=label)


def parse_cdf(data: bytes, *, name: str = "<bytes>") -> CdfLayout:
    """Parse the bytes of a CDF file; ``name`` is used in error messages."""
    if not data:
        msg = "empty file (0 bytes); expected a CDF file"
        raise CdfFormatError(msg, path=name)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"truncated or corrupt gzip stream ({exc})"
            raise CdfFormatError(msg, path=name) from exc
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[CDF]"):
        return _parse_ascii(data, name)
    if data[:4] == b"C\x00\x00\x00":
        return _parse_xda(data, name)
    msg = f"expected '[CDF]' (ASCII) or int32 67 (XDA) at offset 0, found 0x{data[0]:02x}"
    raise CdfFormatError(msg, path=name, offset=0)


# --------------------------------------------------------------------------- layout building


def _build_layout(
    cells: _UnitCells, *, chip: tuple[str, int, int], probeset_ids: list[str], n_qc_units: int
) -> CdfLayout:
    """Turn per-cell arrays (unit number, cell index, atom, is-PM) into the paired CSR layout."""
    chip_type, rows, cols = chip
    order = np.lexsort((cells.cell, cells.atom, ~cells.is_pm, cells.unit))
    unit, cell, is_pm = cells.unit[order], cells.cell[order], cells.is_pm[order]
    n_units = len(probeset_ids)
    n_pm = np.bincount(unit[is_pm], minlength=n_units)
    n_mm = np.bincount(unit[~is_pm], minlength=n_units)
    pm_cells, mm_cells = cell[is_pm], cell[~is_pm]
    if np.array_equal(n_pm, n_mm):
        pm_index, mm_index, counts = pm_cells, mm_cells, n_pm
    else:
        pm_index, mm_index, counts = _pair_unequal(pm_cells, mm_cells, n_pm=n_pm, n_mm=n_mm)
    offsets = np.zeros(n_units + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return CdfLayout(
        chip_type=chip_type,
        rows=rows,
        cols=cols,
        probeset_ids=tuple(probeset_ids),
        pm_index=pm_index.astype(np.int64),
        mm_index=mm_index.astype(np.int64),
        offsets=offsets,
        n_qc_units=n_qc_units,
    )


def _pair_unequal(
    pm_cells: NDArray[np.int64],
    mm_cells: NDArray[np.int64],
    *,
    n_pm: NDArray[np.intp],
    n_mm: NDArray[np.intp],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.intp]]:
    """Pair PM and MM per unit like R's ``cbind(pm=pm, mm=mm)`` (recycling; no MM gives -1)."""
    pm_start = np.concatenate([[0], np.cumsum(n_pm)])
    mm_start = np.concatenate([[0], np.cumsum(n_mm)])
    pm_parts, mm_parts, counts = [], [], np.zeros_like(n_pm)
    for k in range(len(n_pm)):
        pms = pm_cells[pm_start[k] : pm_start[k + 1]]
        mms = mm_cells[mm_start[k] : mm_start[k + 1]]
        if pms.size == 0:
            continue  # R would put MM cells in the PM column; we leave the unit without probes
        if mms.size == 0:
            mms = np.full(pms.size, -1, dtype=np.int64)
        size = max(pms.size, mms.size)
        pm_parts.append(np.resize(pms, size))
        mm_parts.append(np.resize(mms, size))
        counts[k] = size
    empty = np.empty(0, dtype=np.int64)
    return np.concatenate(pm_parts or [empty]), np.concatenate(mm_parts or [empty]), counts


@dataclass(frozen=True)
class _UnitCells:
    unit: NDArray[np.int64]
    cell: NDArray[np.int64]
    atom: NDArray[np.int64]
    is_pm: NDArray[np.bool_]


def _is_pm(pbase: NDArray[np.bytes_], tbase: NDArray[np.bytes_]) -> NDArray[np.bool_]:
    p, t = np.char.upper(pbase.astype("S1")), np.char.upper(tbase.astype("S1"))
    result = np.zeros(p.shape, dtype=bool)
    for probe, target in _COMPLEMENT:
        result |= (p == probe) & (t == target)
    return result


# --------------------------------------------------------------------------- ASCII


def _parse_ascii(data: bytes, name: str) -> CdfLayout:
    sections = list(_sections(data))
    chip = _chip_section(sections, name)
    units: list[str] = []
    columns: dict[str, list[bytes]] = {key: [] for key in ("X", "Y", "PBASE", "TBASE", "ATOM")}
    unit_of_cell: list[int] = []
    n_qc, last_unit = 0, ""
    for title, body in sections:
        n_qc += title.startswith("QC")
        unit_key, is_block, _ = title.partition("_Block")
        if not (unit_key.startswith("Unit") and is_block):
            continue
        block_name, block_cells = _block_cells(body, title=title, name=name)
        if unit_key != last_unit:
            units.append(block_name)
            last_unit = unit_key
        for key, values in block_cells.items():
            columns[key].extend(values)
        unit_of_cell.extend([len(units) - 1] * len(block_cells["X"]))
    declared = int(chip.get("NumberOfUnits", len(units)))
    if len(units) != declared:
        msg = f"[Chip] NumberOfUnits={declared}, found {len(units)} units with blocks (truncated file?)"
        raise CdfFormatError(msg, path=name)
    cols, rows = int(chip["Cols"]), int(chip["Rows"])
    cells = _ascii_cells(columns, unit_of_cell, cols=cols, rows=rows, name=name)
    return _build_layout(cells, chip=(chip.get("Name", ""), rows, cols), probeset_ids=units, n_qc_units=n_qc)


def _sections(data: bytes) -> Iterator[tuple[str, bytes]]:
    marks = list(_SECTION_RE.finditer(data))
    for k, mark in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(data)
        yield mark.group("name").decode("latin-1"), data[mark.end() : end]


def _key_values(body: bytes) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in body.splitlines():
        key, sep, value = raw.decode("latin-1").partition("=")
        if sep and not key.startswith("Cell"):
            pairs[key.strip()] = value.strip()
    return pairs


def _chip_section(sections: list[tuple[str, bytes]], name: str) -> dict[str, str]:
    for title, body in sections:
        if title == "Chip":
            chip = _key_values(body)
            for key in ("Rows", "Cols"):
                if not chip.get(key, "").isdigit():
                    msg = f"[Chip] {key}= expected an integer, found {chip.get(key)!r}"
                    raise CdfFormatError(msg, path=name)
            return chip
    msg = "no [Chip] section"
    raise CdfFormatError(msg, path=name)


def _block_cells(body: bytes, *, title: str, name: str) -> tuple[str, dict[str, list[bytes]]]:
    """Return the block's probe-set name and its X, Y, PBASE, TBASE, ATOM columns (as bytes)."""
    head, sep, rest = body.partition(b"CellHeader=")
    info = _key_values(head)
    header_line, _, lines = rest.partition(b"\n")
    header = header_line.strip().split(b"\t")
    try:
        wanted = [header.index(key.encode()) for key in ("X", "Y", "PBASE", "TBASE", "ATOM")]
    except ValueError:
        msg = f"[{title}] CellHeader lacks one of X Y PBASE TBASE ATOM: {header_line.strip()!r}"
        raise CdfFormatError(msg, path=name) from None
    rows = [line.partition(b"=")[2].split(b"\t") for line in lines.splitlines() if line.startswith(b"Cell")]
    declared = int(info.get("NumCells", len(rows)))
    if not sep or len(rows) != declared or any(len(row) <= max(wanted) for row in rows):
        msg = f"[{title}] NumCells={declared}, found {len(rows)} complete Cell lines (truncated file?)"
        raise CdfFormatError(msg, path=name)
    keys = ("X", "Y", "PBASE", "TBASE", "ATOM")
    return info.get("Name", ""), {key: [row[i] for row in rows] for key, i in zip(keys, wanted, strict=True)}


def _ascii_cells(
    columns: dict[str, list[bytes]], unit_of_cell: list[int], *, cols: int, rows: int, name: str
) -> _UnitCells:
    try:
        x = np.array(columns["X"], dtype=np.int64)
        y = np.array(columns["Y"], dtype=np.int64)
        atom = np.array(columns["ATOM"], dtype=np.int64)
    except ValueError as exc:
        msg = f"Cell line with a non-integer X, Y or ATOM ({exc})"
        raise CdfFormatError(msg, path=name) from exc
    _check_xy(x, y, cols=cols, rows=rows, name=name)
    is_pm = _is_pm(np.array(columns["PBASE"], dtype="S1"), np.array(columns["TBASE"], dtype="S1"))
    return _UnitCells(unit=np.array(unit_of_cell, dtype=np.int64), cell=x + y * cols, atom=atom, is_pm=is_pm)


def _check_xy(x: NDArray[np.int64], y: NDArray[np.int64], *, cols: int, rows: int, name: str) -> None:
    bad = (x < 0) | (x >= cols) | (y < 0) | (y >= rows)
    if bad.any():
        k = int(np.argmax(bad))
        msg = f"cell X={x[k]} Y={y[k]} lies outside the {cols}x{rows} array"
        raise CdfFormatError(msg, path=name)


# --------------------------------------------------------------------------- XDA


def _parse_xda(data: bytes, name: str) -> CdfLayout:
    _need(data, 24, name)
    _magic, version, cols, rows, n_units, n_qc, ref_len = struct.unpack_from("<iiHHiii", data, 0)
    if version != 1:
        msg = f"XDA CDF version: expected 1, found {version}"
        raise CdfFormatError(msg, path=name, offset=4)
    pos = 24 + ref_len
    _need(data, pos + 64 * n_units + 4 * (n_qc + n_units), name)
    raw_names = np.frombuffer(data, dtype="S64", count=n_units, offset=pos)
    ids = [raw.split(b"\x00", 1)[0].decode("latin-1") for raw in raw_names]
    pos += 64 * n_units + 4 * n_qc
    unit_starts = np.frombuffer(data, dtype="<i4", count=n_units, offset=pos)
    parts = [_xda_unit(data, int(start), unit=k, name=name) for k, start in enumerate(unit_starts)]
    cells = np.concatenate(parts) if parts else np.empty(0, dtype=_XDA_CELL)
    unit = np.repeat(np.arange(n_units, dtype=np.int64), [part.size for part in parts])
    x, y = cells["x"].astype(np.int64), cells["y"].astype(np.int64)
    _check_xy(x, y, cols=cols, rows=rows, name=name)
    unit_cells = _UnitCells(
        unit=unit,
        cell=x + y * cols,
        atom=cells["atom"].astype(np.int64),
        is_pm=_is_pm(cells["pbase"], cells["tbase"]),
    )
    return _build_layout(unit_cells, chip=("", rows, cols), probeset_ids=ids, n_qc_units=n_qc)


def _xda_unit(data: bytes, pos: int, *, unit: int, name: str) -> NDArray[np.void]:
    _need(data, pos + 20, name)
    n_blocks = struct.unpack_from("<i", data, pos + 7)[0]
    pos += 20
    blocks = []
    for _ in range(n_blocks):
        _need(data, pos + 82, name)
        n_cells = struct.unpack_from("<i", data, pos + 4)[0]
        pos += 82
        _need(data, pos + n_cells * _XDA_CELL.itemsize, name)
        blocks.append(np.frombuffer(data, dtype=_XDA_CELL, count=n_cells, offset=pos))
        pos += n_cells * _XDA_CELL.itemsize
    if not blocks:
        return np.empty(0, dtype=_XDA_CELL)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _need(data: bytes, end: int, name: str) -> None:
    if end > len(data):
        msg = f"truncated file: expected at least {end} bytes, found {len(data)}"
        raise CdfFormatError(msg, path=name)


# --------------------------------------------------------------------------- cache


def save_cdf_cache(layout: CdfLayout, path: Path) -> None:
    """Write ``layout`` to an uncompressed ``.npz`` (loads in milliseconds, no pickle)."""
    meta = {
        "version": _CACHE_VERSION,
        "chip_type": layout.chip_type,
        "rows": layout.rows,
        "cols": layout.cols,
        "n_qc_units": layout.n_qc_units,
        "aliases": list(layout.aliases),
    }
    with path.open("wb") as fh:
        np.savez(
            fh,
            meta=np.array(json.dumps(meta)),
            probeset_ids=np.array(layout.probeset_ids, dtype=str),
            pm_index=layout.pm_index,
            mm_index=layout.mm_index,
            offsets=layout.offsets,
        )


def load_cdf_cache(path: Path) -> CdfLayout:
    """Read a layout written by :func:`save_cdf_cache`."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        if meta.get("version") != _CACHE_VERSION:
            msg = f"CDF cache version: expected {_CACHE_VERSION}, found {meta.get('version')}"
            raise CdfFormatError(msg, path=str(path))
        return CdfLayout(
            chip_type=meta["chip_type"],
            rows=meta["rows"],
            cols=meta["cols"],
            probeset_ids=tuple(npz["probeset_ids"].tolist()),
            pm_index=npz["pm_index"],
            mm_index=npz["mm_index"],
            offsets=npz["offsets"],
            n_qc_units=meta["n_qc_units"],
            aliases=tuple(meta["aliases"]),
        )
