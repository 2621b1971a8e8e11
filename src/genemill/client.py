"""Read genemill datasets: the TSV zip (refine.bio's layout), the Parquet file and the ``.h5ad`` file.

Needs only pandas for zips (and pandas with its Parquet engine for ``.parquet``); ``anndata`` only for
``.h5ad`` files and ``as_anndata=True``. Imports nothing from genemill but its errors, so it works
from a plain ``pip install genemill`` without a database or settings.

``load_dataset(path)`` returns genes × samples (float32, index ``Gene``, NaN = not measured). A
dataset with several matrices (one per experiment or species) comes back as one frame whose columns
are a MultiIndex ``(matrix, sample)`` over the union of the matrices' genes; ``key="GSE781"`` picks
one matrix with plain sample columns. ``as_anndata=True`` gives samples × genes AnnData with the
sample metadata as ``obs`` (zip: ``metadata_<KEY>.tsv``; h5ad: as stored) and ``symbol`` /
``entrez_id`` in ``var`` when the file has them.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genemill.errors import FormatError, InputError, NotFoundError

__all__ = ["load_dataset", "load_metadata"]

_MATRIX = re.compile(r"^([^/]+)/\1\.tsv$")


def _zip_keys(archive: zipfile.ZipFile, path: Path) -> list[str]:
    keys = [m.group(1) for name in archive.namelist() if (m := _MATRIX.match(name))]
    if not keys:
        msg = "expected <KEY>/<KEY>.tsv matrices (a genemill or refine.bio dataset zip), found none"
        raise FormatError(msg, path=str(path))
    return keys


def _read_tsv_matrix(archive: zipfile.ZipFile, key: str) -> pd.DataFrame:
    with archive.open(f"{key}/{key}.tsv") as fh:
        header = fh.readline().decode("utf-8").rstrip("\n").split("\t")
    dtypes: dict[str, Any] = dict.fromkeys(header[1:], np.float32)
    dtypes[header[0]] = str
    with archive.open(f"{key}/{key}.tsv") as fh:
        frame = pd.read_csv(fh, sep="\t", dtype=dtypes, keep_default_na=False, na_values=[""])
    frame = frame.set_index(header[0])
    frame.index.name = "Gene"
    return frame


def _pick(keys: list[str], key: str | None, path: Path) -> list[str]:
    if key is None:
        return keys
    if key not in keys:
        msg = f"{path}: no matrix {key!r} (it has: {', '.join(keys)})"
        raise NotFoundError(msg)
    return [key]


def _combine(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return next(iter(frames.values()))
    combined = pd.concat(frames, axis=1, join="outer", names=["matrix", "sample"]).sort_index()
    combined.index.name = "Gene"
    return combined.astype(np.float32)


def _split_columns(frame: pd.DataFrame, key: str | None, path: Path) -> pd.DataFrame:
    """``KEY/SAMPLE`` columns (several matrices) → MultiIndex, or one matrix's plain columns."""
    if not len(frame.columns) or not all("/" in str(c) for c in frame.columns):
        if key is not None:
            msg = f"{path}: holds one matrix with plain sample columns; do not pass key={key!r}"
            raise InputError(msg)
        return frame
    pairs = [str(c).split("/", 1) for c in frame.columns]
    frame.columns = pd.MultiIndex.from_tuples([(a, b) for a, b in pairs], names=["matrix", "sample"])
    keys = list(dict.fromkeys(a for a, _ in pairs))
    if key is None:
        return frame
    chosen = frame[_pick(keys, key, path)[0]].dropna(how="all")
    chosen.columns.name = None
    return chosen


def _from_zip(path: Path, key: str | None) -> pd.DataFrame:
    with zipfile.ZipFile(path) as archive:
        keys = _pick(_zip_keys(archive, path), key, path)
        return _combine({k: _read_tsv_matrix(archive, k) for k in keys})


def _from_parquet(path: Path, key: str | None) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if "Gene" not in frame.columns:
        msg = f"expected a 'Gene' column in a genemill dataset Parquet file, found {list(frame.columns)[:5]}"
        raise FormatError(msg, path=str(path))
    frame = frame.set_index("Gene").drop(columns=["symbol", "entrez_id"], errors="ignore")
    return _split_columns(frame, key, path)


def _read_h5ad(path: Path) -> Any:
    try:
        import anndata
    except ImportError as exc:
        msg = f"{path}: reading .h5ad files needs the anndata package (pip install anndata)"
        raise InputError(msg) from exc
    return anndata.read_h5ad(path)


def _to_anndata(frame: pd.DataFrame, obs: pd.DataFrame | None, var: pd.DataFrame | None) -> Any:
    import anndata

    matrix = frame.copy()
    if isinstance(matrix.columns, pd.MultiIndex):
        matrix.columns = [f"{a}/{b}" for a, b in matrix.columns]
    names = pd.Index([str(c) for c in matrix.columns], dtype=str)
    observations = obs.reindex(names) if obs is not None else pd.DataFrame(index=names)
    genes = pd.Index([str(g) for g in matrix.index], dtype=str)
    variables = var.reindex(genes) if var is not None else pd.DataFrame(index=genes)
    values = np.ascontiguousarray(matrix.to_numpy(dtype=np.float32).T)
    return anndata.AnnData(X=values, obs=observations, var=variables)


def _zip_annotations(path: Path, keys: list[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    obs, var = [], []
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for key in keys:
            prefix = "" if len(keys) == 1 else f"{key}/"
            if f"{key}/metadata_{key}.tsv" in names:
                table = pd.read_csv(archive.open(f"{key}/metadata_{key}.tsv"), sep="\t", dtype=str)
                table.index = pd.Index([prefix + a for a in table["refinebio_accession_code"]], dtype=str)
                obs.append(table.fillna(""))
            if f"{key}/genes_{key}.tsv" in names:
                genes = pd.read_csv(archive.open(f"{key}/genes_{key}.tsv"), sep="\t", dtype=str)
                var.append(genes.set_index("Gene").fillna(""))
    merged_var = pd.concat(var)[lambda d: ~d.index.duplicated()] if var else None
    return (pd.concat(obs) if obs else None), merged_var


def load_dataset(path: str | Path, *, key: str | None = None, as_anndata: bool = False) -> Any:
    """Read a genemill dataset file (``.zip``, ``.parquet`` or ``.h5ad``); see the module docstring.

    Returns a ``pandas.DataFrame`` (genes × samples), or an ``anndata.AnnData`` (samples × genes)
    when ``as_anndata`` is true.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".h5ad":
        adata = _read_h5ad(path)
        frame = _split_columns(adata.to_df().T.astype(np.float32), key, path)
        frame.index.name = "Gene"
        if as_anndata:
            return adata if key is None else _to_anndata(frame, adata.obs, adata.var)
        return frame
    if suffix == ".zip":
        frame = _from_zip(path, key)
        if not as_anndata:
            return frame
        with zipfile.ZipFile(path) as archive:
            keys = _pick(_zip_keys(archive, path), key, path)
        return _to_anndata(frame, *_zip_annotations(path, keys))
    if suffix == ".parquet":
        frame = _from_parquet(path, key)
        return _to_anndata(frame, None, _parquet_var(path)) if as_anndata else frame
    msg = f"{path}: expected a .zip, .parquet or .h5ad genemill dataset, found suffix {suffix!r}"
    raise InputError(msg)


def _parquet_var(path: Path) -> pd.DataFrame:
    table = pd.read_parquet(path, columns=["Gene", "symbol", "entrez_id"])
    return table.set_index("Gene").fillna("").astype(str)


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The dataset's ``aggregated_metadata.json`` (zip), or the same dict stored in Parquet / h5ad."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return dict(json.loads(archive.read("aggregated_metadata.json")))
    if suffix == ".h5ad":
        return dict(json.loads(_read_h5ad(path).uns["genemill_metadata_json"]))
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # pandas' Parquet engine; the metadata needs pyarrow itself

        raw = (pq.read_schema(path).metadata or {}).get(b"genemill")
        if raw is None:
            msg = "no 'genemill' key/value metadata: not a genemill dataset Parquet file"
            raise FormatError(msg, path=str(path))
        return dict(json.loads(io.BytesIO(raw).read())["aggregated_metadata"])
    msg = f"{path}: expected a .zip, .parquet or .h5ad genemill dataset, found suffix {suffix!r}"
    raise InputError(msg)
