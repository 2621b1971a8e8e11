from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from genemill.errors import StoreError
from genemill.store.expression import (
    encode_expressions,
    read_expression,
    read_expression_info,
    write_encoded,
    write_expression,
)


def test_expression_round_trip_reads_only_requested_samples(tmp_path) -> None:
    values = pd.DataFrame(
        {"GSM1": [1.5, 2.25, np.nan], "GSM2": [3.0, 4.0, 5.0]},
        index=pd.Index(["ENSG01", "ENSG02", "ENSG03"], name="feature_id"),
    )
    annotation = pd.DataFrame({"symbol": ["A", None, "C"], "entrez_id": ["1", "2", None]}, index=values.index)
    path = tmp_path / "x.parquet"
    write_expression(
        path, values, metadata={"value_type": "log2", "feature_type": "gene"}, annotation=annotation
    )
    info = read_expression_info(path)
    assert info.samples == ["GSM1", "GSM2"]
    assert info.n_features == 3
    assert info.metadata["value_type"] == "log2"
    frame = read_expression(path, samples=["GSM2"])
    assert list(frame.columns) == ["GSM2"]
    assert frame["GSM2"].dtype == np.float32
    assert frame.loc["ENSG03", "GSM2"] == 5.0
    full = read_expression(path, with_annotation=True)
    assert full.loc["ENSG01", "symbol"] == "A"
    assert full.loc["ENSG02", "symbol"] is None
    assert np.isnan(full.loc["ENSG03", "GSM1"])
    assert not list(tmp_path.glob("*.part"))


def test_expression_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "x.parquet"
    dup = pd.DataFrame({"GSM1": [1.0, 2.0]}, index=["A", "A"])
    with pytest.raises(StoreError, match="duplicate feature ids"):
        write_expression(path, dup, metadata={})
    path.write_bytes(b"not parquet")
    with pytest.raises(StoreError, match=r"x\.parquet: not a readable expression Parquet file"):
        read_expression_info(path)
    write_expression(path, pd.DataFrame({"GSM1": [1.0]}, index=["A"]), metadata={})
    with pytest.raises(StoreError, match=r"samples \['GSM9'\] are not in this expression file"):
        read_expression(path, samples=["GSM9"])


def test_write_expression_returns_the_sha256_of_the_final_file(tmp_path) -> None:
    values = pd.DataFrame({"GSM1": np.arange(5000, dtype=float)}, index=[f"ENSG{i:05d}" for i in range(5000)])
    path = tmp_path / "x.parquet"
    first = write_expression(path, values, metadata={"value_type": "log2"})
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    again = write_expression(path, values * 2, metadata={"value_type": "log2"})  # replaced atomically
    assert again == hashlib.sha256(path.read_bytes()).hexdigest() != first
    assert not list(tmp_path.glob("*.part"))


def test_annotation_columns_keep_strings_and_stringify_other_values(tmp_path) -> None:
    index = pd.Index(["ENSG1", "ENSG2", "ENSG3", "ENSG4"])
    values = pd.DataFrame({"GSM1": [1.0, 2.0, 3.0, 4.0]}, index=index)
    annotation = pd.DataFrame(
        # out of order and with one gene too many: aligned to ``values`` by id
        {"symbol": ["D", np.nan, None, "A", "X"], "entrez_id": [4, np.nan, 2, 1, 9]},
        index=["ENSG4", "ENSG3", "ENSG2", "ENSG1", "ENSG9"],
    )
    path = tmp_path / "x.parquet"
    write_expression(path, values, metadata={}, annotation=annotation)
    frame = read_expression(path, with_annotation=True)
    assert frame["symbol"].tolist() == ["A", None, None, "D"]
    assert frame["entrez_id"].tolist() == ["1.0", "2.0", None, "4.0"]  # str() of each float value
    ints = pd.DataFrame({"entrez_id": [7, 8, 9, 10]}, index=index)
    write_expression(path, values, metadata={}, annotation=ints)
    assert read_expression(path, with_annotation=True)["entrez_id"].tolist() == ["7", "8", "9", "10"]


@pytest.mark.parametrize("parallel_cells", [0, 10**9], ids=["threads", "one-after-the-other"])
def test_files_encoded_together_are_the_files_write_expression_gives(tmp_path, parallel_cells: int) -> None:
    index = pd.Index([f"ENSG{i:05d}" for i in range(300)], name="gene_id")
    rng = np.random.default_rng(7)
    frames = [
        pd.DataFrame(rng.random((300, 2)) * scale, index=index, columns=["S1", "S2"]) for scale in (1, 50)
    ]
    frames.append(frames[0].iloc[::-1])  # other features: its own feature columns
    annotation = pd.DataFrame({"symbol": [f"G{i}" if i % 4 else None for i in range(300)]}, index=index)
    one_by_one = [
        write_expression(tmp_path / f"one{i}.parquet", frame, metadata={"n": i}, annotation=annotation)
        for i, frame in enumerate(frames)
    ]
    together = write_encoded(
        encode_expressions(
            [(tmp_path / f"all{i}.parquet", frame, {"n": i}) for i, frame in enumerate(frames)],
            annotation=annotation,
            parallel_cells=parallel_cells,
        )
    )
    assert together == one_by_one
    for number, digest in enumerate(together):
        data = (tmp_path / f"all{number}.parquet").read_bytes()
        assert data == (tmp_path / f"one{number}.parquet").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
    assert read_expression(tmp_path / "all2.parquet", with_annotation=True).index[0] == "ENSG00299"
    assert not list(tmp_path.glob("*.part"))


def test_encoding_refuses_duplicate_ids_before_any_file_is_written(tmp_path) -> None:
    good = pd.DataFrame({"S1": [1.0, 2.0]}, index=["A", "B"])
    dup = pd.DataFrame({"S1": [1.0, 2.0]}, index=["A", "A"])
    with pytest.raises(StoreError, match=r"bad\.parquet: duplicate feature ids \(e\.g\. 'A'\)"):
        write_encoded(
            encode_expressions([(tmp_path / "good.parquet", good, {}), (tmp_path / "bad.parquet", dup, {})])
        )
    assert list(tmp_path.iterdir()) == []
