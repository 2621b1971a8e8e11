"""Affymetrix Command Console ("Calvin", AGCC) generic data container, big endian.

Layout (Affymetrix "Generic file format", used by Calvin CEL and CHP files)::

    file header      uint8 magic (59), uint8 version (1), int32 data-group count,
                     uint32 offset of the first data group
    generic header   string data-type id, string file id, wstring date, wstring locale,
                     int32 n, n x parameter, int32 m, m x parent generic header (recursive)
    parameter        wstring name, bytes value (int32 length + raw), wstring MIME type
    data group       uint32 next-group offset, uint32 first-data-set offset, int32 data-set count,
                     wstring name
    data set         uint32 first-element offset, uint32 next-set offset, wstring name,
                     int32 n, n x parameter, uint32 column count,
                     column x (wstring name, int8 value type, int32 type size), uint32 row count,
                     then rows x columns values at the first-element offset

``string`` is an int32 byte count + ASCII; ``wstring`` an int32 character count + UTF-16BE.
Column value types: 0 int8, 1 uint8, 2 int16, 3 uint16, 4 int32, 5 uint32, 6 float32,
7 float64, 8 string, 9 wstring (strings are stored with their length prefix in a fixed-size cell).
Parameter values are decoded from their MIME type: ``text/plain`` UTF-16BE, ``text/ascii``,
``text/x-calvin-integer-{8,16,32}``, ``text/x-calvin-unsigned-integer-{8,16,32}`` and
``text/x-calvin-float``; numbers are big endian at the start of a (possibly padded) buffer.
Parameters of parent headers are merged after the file's own (the first occurrence wins).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from genemill.errors import CelFormatError

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAGIC = 59
_VALUE_TYPES = {0: ">i1", 1: ">u1", 2: ">i2", 3: ">u2", 4: ">i4", 5: ">u4", 6: ">f4", 7: ">f8"}
_INT_MIME = {
    "text/x-calvin-integer-8": ">i",
    "text/x-calvin-integer-16": ">i",
    "text/x-calvin-integer-32": ">i",
    "text/x-calvin-unsigned-integer-8": ">I",
    "text/x-calvin-unsigned-integer-16": ">I",
    "text/x-calvin-unsigned-integer-32": ">I",
}


@dataclass(frozen=True)
class DataSet:
    """One data set: its name, parameters and the rows as a structured big-endian array."""

    name: str
    parameters: dict[str, str]
    rows: NDArray[np.void]


@dataclass(frozen=True)
class GenericFile:
    """The parsed container: the data-type id, merged header parameters and all data sets."""

    data_type: str
    date: str
    parameters: dict[str, str]
    datasets: dict[str, DataSet] = field(default_factory=dict)

    def table(self, name: str) -> NDArray[np.void] | None:
        """Return the rows of data set ``name`` (first data group that has it), or None."""
        found = self.datasets.get(name)
        return None if found is None else found.rows

    def column(self, name: str, expected_rows: int) -> NDArray[Any] | None:
        """Return the first column of data set ``name`` (a big-endian view), or None."""
        rows = self.table(name)
        if rows is None:
            return None
        first = (rows.dtype.names or ("",))[0]
        values = rows[first]
        if values.shape[0] != expected_rows:
            msg = f"Calvin data set {name!r} has {values.shape[0]} rows, expected {expected_rows}"
            raise CelFormatError(msg)
        return values


class _Cursor:
    """A bounds-checked big-endian cursor; truncation errors name expected vs found bytes."""

    def __init__(self, data: memoryview, name: str, pos: int = 0) -> None:
        self.data, self.name, self.pos = data, name, pos

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            msg = f"truncated file: expected at least {end} bytes, found {len(self.data)}"
            raise CelFormatError(msg, path=self.name, offset=self.pos)
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("i")
        return bytes(self.take(n)).decode("latin-1").rstrip("\x00")

    def wstring(self) -> str:
        (n,) = self.unpack("i")
        return bytes(self.take(2 * n)).decode("utf-16-be", errors="replace").split("\x00", 1)[0]

    def blob(self) -> bytes:
        (n,) = self.unpack("i")
        return bytes(self.take(n))

    def parameters(self) -> dict[str, str]:
        (count,) = self.unpack("i")
        found: dict[str, str] = {}
        for _ in range(count):
            key, value, mime = self.wstring(), self.blob(), self.wstring()
            found.setdefault(key, decode_value(value, mime))
        return found


def decode_value(value: bytes, mime: str) -> str:
    """Decode one typed parameter value to text."""
    if mime == "text/plain":
        return value.decode("utf-16-be", errors="replace").split("\x00", 1)[0].strip()
    if mime == "text/ascii":
        return value.decode("latin-1").split("\x00", 1)[0].strip()
    if mime in _INT_MIME and value:
        width = 4 if len(value) >= 4 else (2 if len(value) >= 2 else 1)
        code = {4: "i", 2: "h", 1: "b"}[width]
        code = code.upper() if _INT_MIME[mime] == ">I" else code
        return str(struct.unpack(">" + code, value[:width])[0])
    if mime == "text/x-calvin-float" and len(value) >= 4:
        return str(np.frombuffer(value[:4], dtype=">f4")[0])  # float32's shortest repr: 1.004
    return value.hex()


def parse_generic(data: memoryview, *, name: str) -> GenericFile:
    """Parse a Calvin generic file: header, parent headers and every data set."""
    cursor = _Cursor(data, name)
    magic, version, n_groups, first_group = cursor.unpack("BBiI")
    if magic != MAGIC or version != 1:
        msg = f"Calvin header: expected magic 59 version 1, found {magic} version {version}"
        raise CelFormatError(msg, path=name, offset=0)
    data_type, date, parameters = _generic_header(cursor)
    datasets: dict[str, DataSet] = {}
    position = first_group
    for _ in range(n_groups):
        group = _Cursor(data, name, position)
        position, first_set, n_sets = group.unpack("IIi")
        group.wstring()
        for dataset in _datasets(data, name, first_set, n_sets):
            datasets.setdefault(dataset.name, dataset)
    return GenericFile(data_type=data_type, date=date, parameters=parameters, datasets=datasets)


def _generic_header(cursor: _Cursor) -> tuple[str, str, dict[str, str]]:
    data_type = cursor.string()
    cursor.string()  # unique file id
    date = cursor.wstring()
    cursor.wstring()  # locale
    parameters = cursor.parameters()
    (n_parents,) = cursor.unpack("i")
    for _ in range(n_parents):
        parent_type, parent_date, parent_parameters = _generic_header(cursor)
        for key, value in parent_parameters.items():
            parameters.setdefault(key, value)
        if parent_date:
            parameters.setdefault(f"{parent_type}:date", parent_date)
    return data_type, date, parameters


def _datasets(data: memoryview, name: str, position: int, count: int) -> list[DataSet]:
    found = []
    for _ in range(count):
        cursor = _Cursor(data, name, position)
        first_element, position = cursor.unpack("II")
        set_name = cursor.wstring()
        parameters = cursor.parameters()
        (n_columns,) = cursor.unpack("I")
        fields: list[tuple[str, str]] = []
        for k in range(n_columns):
            column_name = cursor.wstring()
            if not column_name or column_name in dict(fields):
                column_name = f"{column_name}{k}"
            value_type, size = cursor.unpack("bi")
            fields.append((column_name, _VALUE_TYPES.get(value_type, f"V{size}")))
        (n_rows,) = cursor.unpack("I")
        dtype = np.dtype(fields)
        cursor.pos = first_element
        rows = np.frombuffer(cursor.take(n_rows * dtype.itemsize), dtype=dtype)
        found.append(DataSet(name=set_name, parameters=parameters, rows=rows))
    return found
