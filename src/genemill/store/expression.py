"""The columnar expression store: one Parquet file per experiment, processing run and value type.

Layout of a file (float32 values, genes or probe sets x samples, never one TSV per sample):

* column ``feature_id`` (string): Ensembl gene id (``ENSG…``) for gene-level files, probe-set id
  for probe-level files; then optional annotation columns ``symbol`` and ``entrez_id`` (string);
* one float32 column per sample, named by the sample accession, NaN where a sample lacks a feature;
* Parquet key/value metadata ``genemill`` (JSON): ``feature_type`` (``gene`` | ``probeset``),
  ``value_type`` (e.g. ``log2``, ``counts``, ``tpm``, ``lengthScaledTPM``), ``processor``,
  ``processor_version``, ``parameters`` and ``annotation_release``.

Readers ask for the sample columns they need; Parquet reads only those columns from disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genemill.errors import StoreError

__all__ = [
    "ANNOTATION_COLUMNS",
    "EncodedExpression",
    "ExpressionInfo",
    "encode_expressions",
    "feature_columns",
    "read_expression",
    "read_expression_info",
    "write_encoded",
    "write_expression",
]

ANNOTATION_COLUMNS = ("symbol", "entrez_id")
_KEY = b"genemill"
# Values (cells) from which several files are written in threads rather than one after the other.
PARALLEL_CELLS = 200_000


@dataclass(frozen=True)
class ExpressionInfo:
    """What an expression file holds, without reading its values."""

    path: Path
    samples: list[str]
    n_features: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _text_array(column: pd.Series) -> pa.Array:
    """An annotation column as Arrow strings (null where missing), without a Python call per value
    when it already holds strings (gene symbols); other values are written as ``str(value)``."""
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is not None and (pa.types.is_string(array.type) or pa.types.is_null(array.type)):
        return array.cast(pa.string())
    present = column.astype(object).where(column.notna(), None)
    return pa.array(present.map(lambda v: None if v is None else str(v)), pa.string())


def write_expression(
    path: Path,
    values: pd.DataFrame,
    *,
    metadata: dict[str, Any],
    annotation: pd.DataFrame | None = None,
) -> str:
    """Write ``values`` (features x samples) to ``path`` atomically as float32 Parquet.

    ``annotation`` (indexed like ``values``) may carry ``symbol`` / ``entrez_id`` columns.
    Returns the SHA-256 (hex) of the file's bytes, computed while writing, for provenance.
    """
    return write_encoded(encode_expressions([(path, values, metadata)], annotation=annotation))[0]


def write_encoded(files: Sequence[EncodedExpression]) -> list[str]:
    """Write encoded files (:func:`encode_expressions`) one after the other; return their SHA-256s."""
    for file in files:
        file.write()
    return [file.sha256 for file in files]


@dataclass(frozen=True)
class EncodedExpression:
    """An expression file's final bytes, in memory: its digest and size are known before it is
    written, so a caller may record them while :meth:`write` runs in another thread."""

    path: Path
    data: pa.Buffer
    sha256: str

    @property
    def size(self) -> int:
        return int(self.data.size)

    def write(self) -> None:
        """Write the bytes to ``path`` atomically: a temporary file beside it, then a rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, suffix=".part")
        tmp_path = Path(name)
        try:
            with os.fdopen(handle, "wb") as fh:
                fh.write(self.data)
            tmp_path.replace(self.path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


def encode_expressions(
    files: Sequence[tuple[Path, pd.DataFrame, dict[str, Any]]],
    *,
    annotation: pd.DataFrame | None = None,
    parallel_cells: int = PARALLEL_CELLS,
    features: tuple[pd.Index, dict[str, pa.Array]] | None = None,
) -> list[EncodedExpression]:
    """Encode ``(path, values, metadata)`` files as :func:`write_expression` would write them.

    Files over the same features (e.g. one experiment's counts, TPM and lengthScaledTPM) share
    their ``feature_id`` and annotation columns, built once. Together holding ``parallel_cells``
    values or more, they are encoded side by side in threads (Arrow encodes and compresses without
    the GIL); smaller ones one after the other, which is faster than starting threads for them.
    ``features`` is ``(index, feature_columns(index, annotation))`` made ahead by the caller (with
    this ``annotation``), used for the files over that index.
    """
    built = [features] if features is not None else []  # feature columns by the index they fit
    tables = []
    for path, values, metadata in files:
        if values.index.has_duplicates:
            msg = f"{path}: duplicate feature ids (e.g. {values.index[values.index.duplicated()][0]!r})"
            raise StoreError(msg)
        shared = next((columns for index, columns in built if index.equals(values.index)), None)
        if shared is None:
            shared = feature_columns(values.index, annotation)
            built.append((values.index, shared))
        arrays = dict(shared)
        for sample in values.columns:
            arrays[str(sample)] = pa.array(values[sample].to_numpy(dtype=np.float32), pa.float32())
        table = pa.table(arrays)
        tables.append(table.replace_schema_metadata({_KEY: json.dumps(metadata, default=str).encode()}))
    paths = [path for path, _, _ in files]
    if len(files) > 1 and sum(values.size for _, values, _ in files) >= parallel_cells:
        with ThreadPoolExecutor(max_workers=len(files), thread_name_prefix="parquet") as pool:
            return list(pool.map(_encode_table, paths, tables))
    return [_encode_table(path, table) for path, table in zip(paths, tables, strict=True)]


def feature_columns(index: pd.Index, annotation: pd.DataFrame | None) -> dict[str, pa.Array]:
    """The ``feature_id`` column and the annotation columns present, aligned to ``index`` (the
    columns every file over these features begins with)."""
    arrays: dict[str, pa.Array] = {"feature_id": pa.array(index.astype(str), pa.string())}
    if annotation is not None:
        aligned = annotation if annotation.index.equals(index) else annotation.reindex(index)
        for name in ANNOTATION_COLUMNS:
            if name in aligned:
                arrays[name] = _text_array(aligned[name])
    return arrays


def _encode_table(path: Path, table: pa.Table) -> EncodedExpression:
    """The Parquet bytes of ``table`` and their SHA-256: encoded to memory (one buffer no larger
    than the file) and hashed there, so the file is never read back for its digest and no Python
    call is made per Parquet page as a hashing file object would."""
    # Dictionary encoding helps the string id columns only; on float columns it costs time and space.
    text_columns = [name for name in table.column_names if name == "feature_id" or name in ANNOTATION_COLUMNS]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=text_columns)
    data = sink.getvalue()
    return EncodedExpression(path, data, hashlib.sha256(data).hexdigest())


def read_expression_info(path: Path) -> ExpressionInfo:
    """Sample names, feature count and genemill metadata of an expression file."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"{path}: not a readable expression Parquet file ({exc})"
        raise StoreError(msg) from exc
    names = meta.schema.names
    extra = json.loads((meta.metadata or {}).get(_KEY, b"{}"))
    samples = [n for n in names if n != "feature_id" and n not in ANNOTATION_COLUMNS]
    return ExpressionInfo(path=path, samples=samples, n_features=meta.num_rows, metadata=extra)


def read_expression(
    path: Path, *, samples: list[str] | None = None, with_annotation: bool = False
) -> pd.DataFrame:
    """Read features x samples (float32) for ``samples`` (all when None), indexed by feature_id."""
    info = read_expression_info(path)
    wanted = info.samples if samples is None else samples
    missing = [s for s in wanted if s not in info.samples]
    if missing:
        msg = f"{path}: samples {missing[:5]} are not in this expression file"
        raise StoreError(msg)
    extra = [c for c in ANNOTATION_COLUMNS if with_annotation and c in pq.read_schema(path).names]
    table = pq.read_table(path, columns=["feature_id", *extra, *wanted])
    frame = table.to_pandas()
    return frame.set_index("feature_id")
