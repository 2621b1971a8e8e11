"""Write a built dataset: refine.bio's TSV zip, Parquet, AnnData ``.h5ad`` — atomically, streaming.

Every writer writes to a temporary file beside the destination and renames it into place only when
complete, so a failed build never leaves a partial file.

``write_tsv_zip`` — refine.bio's layout (ANCHOR.md §3), members in this order::

    README.md  LICENSE.TXT  aggregated_metadata.json
    filtered_samples_metadata.json  filtered_samples_metadata.tsv      (only when samples were left out)
    <KEY>/<KEY>.tsv             genes × samples, header "Gene", empty cell = not measured
    <KEY>/genes_<KEY>.tsv       genemill: Gene, symbol, entrez_id
    <KEY>/metadata_<KEY>.tsv    refinebio_* columns, genemill_* columns, submitter fields
    <KEY>/metadata_<KEY>.json   SPECIES aggregation only: {"species": …, "samples": […]}

The matrix TSV is never held in memory as text: rows are formatted in chunks of 512 genes by
Arrow's CSV writer (float32 shortest round-trip text) in a background thread while the previous
chunk is being deflated into the zip entry (zlib releases the GIL, so the two overlap on two cores).
Deflate level 1: about 10 % larger than level 6 and four times faster.

``write_parquet`` — one Parquet file: ``Gene``, ``symbol``, ``entrez_id`` and one float32 column per
sample (NaN = not measured; zstd, byte-stream-split, no dictionary for floats). With several
matrices the rows are the union of their genes and the columns are named ``<KEY>/<SAMPLE>``.
Key/value metadata ``genemill`` holds ``{"format": "genemill-dataset", "format_version": 1,
"matrices": {KEY: [columns]}, "aggregated_metadata": …}``.

``write_h5ad`` — AnnData (needs ``anndata``): ``X`` samples × genes float32, ``obs`` the metadata TSV
columns (text) plus ``matrix``, ``var`` ``symbol`` / ``entrez_id`` indexed by gene id, ``uns
["genemill_metadata_json"]`` the aggregated metadata as JSON text. Several matrices as for Parquet.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from genemill.datasets.build import BuiltDataset, GroupMatrix
from genemill.datasets.manifest import LICENSE_TEXT, aggregated_metadata, excluded_rows, readme_text
from genemill.datasets.metadata import metadata_tsv_columns
from genemill.datasets.spec import AggregateBy

__all__ = ["FORMAT_VERSION", "write_h5ad", "write_parquet", "write_tsv_zip"]

FORMAT_VERSION = 1
ZIP_LEVEL = 1
_ROWS_PER_CHUNK = 512
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it on success and removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".part{path.suffix}")
    os.close(handle)
    staged = Path(name)
    try:
        yield staged
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _write_rows(fh: IO[bytes], columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)).replace("\t", " ").replace("\n", " ") for c in columns])
    text.flush()
    text.detach()


def _header(matrix: GroupMatrix) -> bytes:
    return ("\t".join(["Gene", *matrix.samples]) + "\n").encode()


@dataclass(frozen=True)
class _ArrowMatrix:
    """The matrix as Arrow arrays over the same memory (zero-copy; NaN marked null, so written empty)."""

    schema: pa.Schema
    genes: pa.Array
    columns: list[pa.Array]

    @classmethod
    def of(cls, matrix: GroupMatrix) -> _ArrowMatrix:
        columns = []
        for j in range(matrix.values.shape[1]):
            values = matrix.values[:, j]
            missing = np.isnan(values)
            columns.append(pa.array(values, mask=missing) if missing.any() else pa.array(values))
        schema = pa.schema([("Gene", pa.string())] + [(s, pa.float32()) for s in matrix.samples])
        return cls(schema, pa.array(matrix.genes, pa.string()), columns)


def _format_rows(arrow: _ArrowMatrix, start: int) -> bytes:
    """TSV text of genes ``start`` … ``start + 511`` (Arrow releases the GIL while formatting)."""
    arrays = [arrow.genes.slice(start, _ROWS_PER_CHUNK)]
    arrays += [column.slice(start, _ROWS_PER_CHUNK) for column in arrow.columns]
    sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.record_batch(arrays, schema=arrow.schema), sink, write_options=_CSV_OPTIONS)
    text: bytes = sink.getvalue().to_pybytes()
    return text


def _write_matrix(fh: IO[bytes], matrix: GroupMatrix, *, ahead: int = 1) -> None:
    """Stream the matrix as TSV: format chunk n + 1 in a worker thread while chunk n is deflated."""
    fh.write(_header(matrix))
    arrow = _ArrowMatrix.of(matrix)
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genemill-tsv") as pool:
        for start in range(0, matrix.genes.shape[0], _ROWS_PER_CHUNK):
            pending.append(pool.submit(_format_rows, arrow, start))
            if len(pending) > ahead:
                fh.write(pending.popleft().result())
        while pending:
            fh.write(pending.popleft().result())


def _metadata_rows(built: BuiltDataset, matrix: GroupMatrix) -> list[dict[str, Any]]:
    rows = []
    for accession in matrix.samples:
        planned = built.planned(accession, key=matrix.key)
        if planned is not None:
            extra = {"experiment_accession": planned.experiment, "genemill_value_type": planned.value_type}
            rows.append({**planned.metadata, **extra, **planned.submitter_fields})
    return rows


def _write_group(archive: zipfile.ZipFile, built: BuiltDataset, matrix: GroupMatrix) -> None:
    key = matrix.key
    with archive.open(f"{key}/{key}.tsv", "w", force_zip64=True) as fh:
        _write_matrix(fh, matrix)
    genes = [
        {"Gene": g, "symbol": s, "entrez_id": e}
        for g, s, e in zip(matrix.genes, matrix.symbols, matrix.entrez_ids, strict=True)
    ]
    with archive.open(f"{key}/genes_{key}.tsv", "w") as fh:
        _write_rows(fh, ["Gene", "symbol", "entrez_id"], genes)
    rows = _metadata_rows(built, matrix)
    with archive.open(f"{key}/metadata_{key}.tsv", "w") as fh:
        _write_rows(fh, metadata_tsv_columns(rows), rows)
    if built.plan.spec.aggregate_by == AggregateBy.SPECIES:
        species = {"species": key, "samples": [r["refinebio_accession_code"] for r in rows]}
        archive.writestr(f"{key}/metadata_{key}.json", json.dumps(species, indent=2))


def write_tsv_zip(built: BuiltDataset, path: Path, *, metadata: dict[str, Any] | None = None) -> None:
    """Write the dataset as a zip in refine.bio's layout (see the module docstring)."""
    aggregated = metadata if metadata is not None else aggregated_metadata(built)
    with (
        _atomic(path) as staged,
        zipfile.ZipFile(staged, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf,
    ):
        zf.writestr("README.md", readme_text(built))
        zf.writestr("LICENSE.TXT", LICENSE_TEXT)
        zf.writestr("aggregated_metadata.json", json.dumps(aggregated, indent=2, default=str))
        if built.exclusions:
            filtered = excluded_rows(built)
            zf.writestr("filtered_samples_metadata.json", json.dumps(filtered, indent=2, default=str))
            rows = list(filtered.values())
            columns = ["refinebio_accession_code", "experiment_accession", "reason_code", "reason"]
            columns += [c for c in metadata_tsv_columns(rows) if c not in columns]
            with zf.open("filtered_samples_metadata.tsv", "w") as fh:
                _write_rows(fh, columns, rows)
        for matrix in built.matrices:
            _write_group(zf, built, matrix)


def _combined(built: BuiltDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, list[str]]]:
    """Union gene index (sorted) with symbol / Entrez id, and the column names per matrix."""
    single = len(built.matrices) == 1
    names = {m.key: [s if single else f"{m.key}/{s}" for s in m.samples] for m in built.matrices}
    if single:
        only = built.matrices[0]
        return only.genes, only.symbols, only.entrez_ids, names
    genes = np.unique(np.concatenate([m.genes.astype(str) for m in built.matrices])).astype(object)
    symbols = np.full(genes.shape[0], None, dtype=object)
    entrez = np.full(genes.shape[0], None, dtype=object)
    for matrix in reversed(built.matrices):
        rows = np.searchsorted(genes, matrix.genes.astype(str))
        symbols[rows] = matrix.symbols
        entrez[rows] = matrix.entrez_ids
    return genes, symbols, entrez, names


def _columns(built: BuiltDataset, genes: np.ndarray) -> Iterator[np.ndarray]:
    """Each matrix column aligned to ``genes`` (views when there is one matrix)."""
    for matrix in built.matrices:
        if matrix.genes.shape[0] == genes.shape[0]:
            yield from (matrix.values[:, j] for j in range(matrix.values.shape[1]))
            continue
        rows = np.searchsorted(genes, matrix.genes.astype(str))
        for j in range(matrix.values.shape[1]):
            column = np.full(genes.shape[0], np.nan, dtype=np.float32)
            column[rows] = matrix.values[:, j]
            yield column


def _strings(values: np.ndarray) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def write_parquet(built: BuiltDataset, path: Path, *, metadata: dict[str, Any] | None = None) -> None:
    """Write all matrices as one genes × samples Parquet file (see the module docstring)."""
    genes, symbols, entrez, names = _combined(built)
    arrays = {"Gene": _strings(genes), "symbol": _strings(symbols), "entrez_id": _strings(entrez)}
    flat = [name for key in names for name in names[key]]
    for name, column in zip(flat, _columns(built, genes), strict=True):
        arrays[name] = pa.array(column, pa.float32())
    info = {
        "format": "genemill-dataset",
        "format_version": FORMAT_VERSION,
        "matrices": names,
        "aggregated_metadata": metadata if metadata is not None else aggregated_metadata(built),
    }
    table = pa.table(arrays).replace_schema_metadata({b"genemill": json.dumps(info, default=str).encode()})
    text = ["Gene", "symbol", "entrez_id"]
    with _atomic(path) as staged:
        # Dictionary encoding is for the id columns only: on float columns Arrow would build and then
        # discard a dictionary per column (4x slower); byte-stream-split makes floats compress better.
        pq.write_table(
            table, staged, compression="zstd", use_dictionary=text, use_byte_stream_split=flat or False
        )


def _obs(built: BuiltDataset, names: dict[str, list[str]]) -> pd.DataFrame:
    records, index = [], []
    for matrix in built.matrices:
        for name, row in zip(names[matrix.key], _metadata_rows(built, matrix), strict=True):
            records.append({"matrix": matrix.key, **row})
            index.append(name)
    columns = ["matrix", *metadata_tsv_columns(records)]
    frame = pd.DataFrame({c: [_text(r.get(c)) for r in records] for c in columns})
    frame.index = pd.Index(index, dtype=str)
    return frame


def write_h5ad(built: BuiltDataset, path: Path, *, metadata: dict[str, Any] | None = None) -> None:
    """Write all matrices as one AnnData file, samples × genes (see the module docstring)."""
    import anndata  # optional dependency: only this writer needs it

    genes, symbols, entrez, names = _combined(built)
    if len(built.matrices) == 1:
        matrix = built.matrices[0].values.T
    else:
        matrix = np.vstack([c[None, :] for c in _columns(built, genes)])
    var = pd.DataFrame(
        {"symbol": [_text(s) for s in symbols], "entrez_id": [_text(e) for e in entrez]},
        index=pd.Index([str(g) for g in genes], dtype=str),
    )
    aggregated = metadata if metadata is not None else aggregated_metadata(built)
    adata = anndata.AnnData(X=np.ascontiguousarray(matrix, dtype=np.float32), obs=_obs(built, names), var=var)
    adata.uns["genemill_metadata_json"] = json.dumps(aggregated, default=str)
    with _atomic(path) as staged:
        adata.write_h5ad(staged)
