from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genemill.errors import StoreError
from genemill.store.expression import read_expression, read_expression_info, write_expression


def test_expression_round_trip_reads_only_requested_samples(tmp_path) -> None:
    values = pd.DataFrame(
        {"GSM1": [1.5, 2.25, np.nan], "GSM2": [3.0, 4.0, 5.0]},
        index=pd.Index(["ENSG01", "ENSG02", "ENSG03"], name="feature_id"),
    )
    annotation = pd.DataFrame({"symbol": ["A", None, "C"], "entrez_id": ["1", "2", None]}, index=values.index)
    path = tmp_path / "x.parquet"
    write_expression(path, values, metadata={"value_type": "log2", "feature_type": "gene"}, annotation=annotation)
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
