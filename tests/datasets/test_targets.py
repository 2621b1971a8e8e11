"""QN targets: built from processed raw-data samples, versioned, used per organism by datasets.

Values: the two REAL HG-Focus RMA arrays, plus CONSTRUCTED arrays derived from them (shifted or with
genes removed) so that one platform has enough samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dataset_lab import MOUSE, Lab, constructed

from genemill.datasets.build import build_matrices
from genemill.datasets.exclusions import ExclusionReason
from genemill.datasets.plan import plan_dataset
from genemill.datasets.spec import DatasetSpec
from genemill.datasets.targets import build_qn_target, find_qn_target, load_qn_target
from genemill.errors import InputError, NotFoundError, StoreError
from genemill.numerics.quantile import quantile_normalize_to_target, quantile_target
from genemill.store.models import ProcessingResult


def _without_controls(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[sorted(i for i in frame.index if not i.startswith("AFFX-"))]


@pytest.fixture
def arrays(hg_focus_rma: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """GSE1: the 2 REAL arrays; GSE2: 2 CONSTRUCTED (real + 0.5, real * 0.9); GSE3: 1 CONSTRUCTED
    array lacking 100 probe sets; GSE4: REAL values but submitter-processed, no raw data."""
    shifted = pd.DataFrame(
        {"GSM_C1": hg_focus_rma["GSM_HGF1"] + 0.5, "GSM_C2": hg_focus_rma["GSM_HGF2"] * 0.9}, dtype=np.float32
    )
    partial = hg_focus_rma[["GSM_HGF1"]].rename(columns={"GSM_HGF1": "GSM_P1"}).iloc[100:]
    submitted = hg_focus_rma.rename(columns={"GSM_HGF1": "GSM_S1", "GSM_HGF2": "GSM_S2"})
    return {"GSE1": hg_focus_rma, "GSE2": shifted, "GSE3": partial, "GSE4": submitted}


def _store(lab: Lab, arrays: dict[str, pd.DataFrame]) -> None:
    lab.add("GSE1", arrays["GSE1"])
    lab.add("GSE2", arrays["GSE2"])
    lab.add("GSE3", arrays["GSE3"])
    lab.add("GSE4", arrays["GSE4"], submitter=True, has_raw=False)
    lab.add("GSE5", constructed({"GSM_O1": [1, 2, 3]}, ["A", "B", "C"]), platform="GPL999")


def test_target_is_the_mean_of_sorted_columns_of_eligible_samples(
    lab: Lab, arrays: dict[str, pd.DataFrame], settings
) -> None:
    _store(lab, arrays)
    with lab.db.session() as session:
        info = build_qn_target(session, settings, "Homo sapiens", min_samples=4)
    used = pd.concat([arrays["GSE1"], arrays["GSE2"]], axis=1)
    expected = quantile_target(_without_controls(used).to_numpy(dtype=np.float64))
    target = load_qn_target(info)
    assert np.allclose(target, expected, rtol=1e-15, atol=0)
    assert (info.key, info.version, info.n_samples, info.n_genes, info.platform) == (
        "HOMO_SAPIENS",
        1,
        4,
        8746,
        "GPL201",
    )
    with lab.db.session() as session:
        result = session.get(ProcessingResult, info.result_id)
        assert result is not None
        assert result.processor == "qn_target" and result.mode == "HOMO_SAPIENS"
        assert result.annotations["samples"] == ["GSM_C1", "GSM_C2", "GSM_HGF1", "GSM_HGF2"]
        assert result.annotations["skipped"] == {
            "GSM_P1": "measures 8646 genes, not the reference set of 8746"
        }
        assert result.files[0].kind == "qn_target" and result.files[0].sha256 == info.sha256
        assert not result.samples  # targets are never linked as a sample's processing result
        assert len(result.input_sha256) == 2


def test_rebuilding_makes_a_new_current_version(sqlite_lab: Lab, arrays, sqlite_settings) -> None:
    _store(sqlite_lab, arrays)
    with sqlite_lab.db.session() as session:
        first = build_qn_target(session, sqlite_settings, "HOMO_SAPIENS", min_samples=2)
        second = build_qn_target(session, sqlite_settings, "9606", min_samples=2)
        assert second.version == 2 and np.array_equal(load_qn_target(first), load_qn_target(second))
        current = find_qn_target(session, "HOMO_SAPIENS")
        assert current is not None and current.version == 2
        assert session.get(ProcessingResult, first.result_id).is_current is False  # type: ignore[union-attr]
        per_platform = build_qn_target(
            session, sqlite_settings, "Homo sapiens", platform="gpl201", min_samples=2
        )
        assert per_platform.key == "HOMO_SAPIENS:GPL201" and per_platform.version == 1


def test_target_errors(sqlite_lab: Lab, arrays, sqlite_settings) -> None:
    _store(sqlite_lab, arrays)
    with sqlite_lab.db.session() as session:
        with pytest.raises(
            InputError, match=r"Homo sapiens \(platform GPL201\): 4 usable .* need at least 100"
        ):
            build_qn_target(session, sqlite_settings, "Homo sapiens")
        with pytest.raises(NotFoundError, match="no organism 'Pan troglodytes'"):
            build_qn_target(session, sqlite_settings, "Pan troglodytes")
        info = build_qn_target(session, sqlite_settings, "Homo sapiens", min_samples=2)
    info.path.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="changed: expected sha256"):
        load_qn_target(info)


def test_datasets_use_the_stored_target_of_each_organism(sqlite_lab: Lab, arrays, sqlite_settings) -> None:
    _store(sqlite_lab, arrays)
    sqlite_lab.add(
        "GSE9",
        constructed({"GSM_M1": [3, 1, 2], "GSM_M2": [1, 1, 5]}, ["ENSMUSG1", "ENSMUSG2", "ENSMUSG3"]),
        organism=MOUSE,
        platform="GPL1261",
    )
    with sqlite_lab.db.session() as session:
        info = build_qn_target(session, sqlite_settings, "Homo sapiens", min_samples=4)
        plan = plan_dataset(
            session,
            DatasetSpec.from_dict({"data": {"GSE1": ["ALL"], "GSE9": ["ALL"]}, "aggregate_by": "SPECIES"}),
        )
    built = build_matrices(plan)
    human = next(m for m in built.matrices if m.key == "HOMO_SAPIENS")
    before = _without_controls(arrays["GSE1"]).to_numpy(dtype=np.float64)
    expected = quantile_normalize_to_target(before, load_qn_target(info)).astype(np.float32)
    assert np.array_equal(human.values, expected)
    assert human.quantile_normalization["HOMO_SAPIENS"] == info.to_dict()
    mouse = next(m for m in built.matrices if m.key == "MUS_MUSCULUS")
    assert mouse.quantile_normalization["MUS_MUSCULUS"]["source"] == "computed"
    with sqlite_lab.db.session() as session:
        strict = plan_dataset(
            session,
            DatasetSpec.from_dict(
                {"data": {"GSE1": ["ALL"], "GSE9": ["ALL"]}, "missing_qn_target": "exclude"}
            ),
        )
    assert [g.key for g in strict.groups] == ["GSE1"]
    assert {e.sample: (e.reason, e.detail) for e in strict.exclusions} == {
        "GSM_M1": (ExclusionReason.NO_QN_TARGET, "no stored target for MUS_MUSCULUS"),
        "GSM_M2": (ExclusionReason.NO_QN_TARGET, "no stored target for MUS_MUSCULUS"),
    }
