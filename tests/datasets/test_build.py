"""Dataset building: plans, exclusions, joins, log rules, collapse, QN, KS check, transforms.

Which values are real and which constructed is said in each test (see tests/datasets/conftest.py):
HG-Focus RMA values and zebrafish tximport values are REAL; small frames from ``constructed`` are
CONSTRUCTED with exact numbers so that joins and rules can be checked by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_lab import HUMAN, MOUSE, SEQUENCING, ZEBRAFISH_ORG, Lab, constructed

from genemill.datasets.build import BuiltDataset, build_matrices
from genemill.datasets.exclusions import ExclusionReason
from genemill.datasets.job import build_dataset
from genemill.datasets.normalize import quantile_normalize_columns
from genemill.datasets.plan import plan_dataset
from genemill.datasets.spec import DatasetSpec
from genemill.errors import DatasetSpecError, GenemillWarning, NotFoundError
from genemill.numerics.quantile import quantile_normalize, quantile_normalize_to_target


def build(lab: Lab, **spec: object) -> BuiltDataset:
    with lab.db.session() as session:
        plan = plan_dataset(session, DatasetSpec.from_dict(spec))
    return build_matrices(plan)


def frame(built: BuiltDataset, key: str) -> pd.DataFrame:
    matrix = next(m for m in built.matrices if m.key == key)
    return pd.DataFrame(matrix.values, index=matrix.genes, columns=list(matrix.samples))


def reasons(built: BuiltDataset) -> dict[str, tuple[ExclusionReason, str]]:
    return {e.sample: (e.reason, e.detail) for e in built.exclusions}


GENES = ["ENSG01", "ENSG02", "ENSG03", "ENSG04", "ENSG05", "ENSG06"]


def test_real_hg_focus_qn_equals_numerics_quantile(sqlite_lab: Lab, hg_focus_rma: pd.DataFrame) -> None:
    """REAL: two HG-Focus RMA arrays; no stored target, so QN to the matrix's own target."""
    sqlite_lab.add("GSE1001", hg_focus_rma)
    built = build(sqlite_lab, data={"GSE1001": ["ALL"]})
    result = frame(built, "GSE1001")
    expected_ids = sorted(i for i in hg_focus_rma.index if not i.startswith("AFFX-"))
    assert list(result.index) == expected_ids
    assert len(expected_ids) == 8746
    before = hg_focus_rma.loc[expected_ids].to_numpy(dtype=np.float64)
    assert np.array_equal(result.to_numpy(), quantile_normalize(before).astype(np.float32))
    matrix = built.matrices[0]
    assert matrix.quantile_normalization["HOMO_SAPIENS"]["source"] == "computed"
    # ties among the real values make the two columns' value sets differ very slightly
    assert matrix.ks is not None and matrix.ks.statistic is not None
    assert matrix.ks.statistic < 0.001 and matrix.ks.pvalue == 1.0 and not matrix.ks.warning
    assert matrix.value_scale == "quantile normalized (log2 before)"


def test_no_qn_passes_values_through(sqlite_lab: Lab, hg_focus_rma: pd.DataFrame) -> None:
    """REAL values, untouched when quantile_normalize is false."""
    sqlite_lab.add("GSE1001", hg_focus_rma)
    built = build(sqlite_lab, data={"GSE1001": ["GSM_HGF2"]}, quantile_normalize=False)
    result = frame(built, "GSE1001")
    assert list(result.columns) == ["GSM_HGF2"]
    assert np.array_equal(
        result["GSM_HGF2"].to_numpy(), hg_focus_rma.loc[result.index, "GSM_HGF2"].to_numpy()
    )
    assert built.matrices[0].ks is None


def test_exclusions_have_exact_reasons(lab: Lab) -> None:
    """CONSTRUCTED values; every planning exclusion reason, on SQLite and PostgreSQL."""
    values = constructed({"GSM1": [1, 2, 3], "GSM2": [2, 3, 4]}, GENES[:3])
    lab.add("GSE1", values, unprocessed={"GSM3": "NEW", "GSM4": "CEL file truncated at byte 64"})
    lab.add("GSE2", constructed({"GSM5": [1, 2, 3]}, GENES[:3]), submitter=True, has_raw=False)
    lab.add("GSE3", constructed({"GSM6": [5, 6, 7]}, GENES[:3]), value_type="rank")
    gone = lab.add("GSE4", constructed({"GSM7": [5, 6, 7]}, GENES[:3]))
    assert gone is not None
    gone.unlink()
    built = build(
        lab,
        data={
            "GSE1": ["GSM1", "GSM2", "GSM3", "GSM4", "GSM99"],
            "GSE2": ["ALL"],
            "GSE3": ["ALL"],
            "GSE4": ["ALL"],
        },
        include_submitter=False,
        quantile_normalize=False,
    )
    found = reasons(built)
    assert found["GSM3"] == (ExclusionReason.NOT_PROCESSED, "state NEW")
    assert found["GSM4"] == (ExclusionReason.UNPROCESSABLE, "CEL file truncated at byte 64")
    assert found["GSM99"] == (ExclusionReason.NOT_FOUND, "")
    assert found["GSM5"] == (ExclusionReason.SUBMITTER_EXCLUDED, "")
    assert found["GSM6"][0] == ExclusionReason.WRONG_VALUE_TYPE
    assert found["GSM6"][1] == "microarray values of type 'rank', expected 'log2' or 'linear'"
    assert found["GSM7"][0] == ExclusionReason.FILE_MISSING
    assert found["GSM7"][1].endswith("GSE4.parquet is missing")
    assert [m.key for m in built.matrices] == ["GSE1"]
    assert frame(built, "GSE1").columns.tolist() == ["GSM1", "GSM2"]
    sentence = next(e.sentence for e in built.exclusions if e.sample == "GSM4")
    assert (
        sentence == "GSM4 (GSE1) is missing because it could not be processed: CEL file truncated at byte 64."
    )
    with lab.db.session() as session, pytest.raises(NotFoundError, match="no experiment 'GSE404'"):
        plan_dataset(session, DatasetSpec.from_dict({"data": {"GSE404": ["ALL"]}}))


def test_submitter_samples_are_used_by_default(sqlite_lab: Lab) -> None:
    sqlite_lab.add("GSE2", constructed({"GSM5": [1, 2, 3]}, GENES[:3]), submitter=True, has_raw=False)
    built = build(sqlite_lab, data={"GSE2": ["ALL"]}, quantile_normalize=False)
    assert built.matrices[0].samples == ("GSM5",)
    assert built.planned("GSM5").provenance["submitter_processed"] is True  # type: ignore[union-attr]


@pytest.fixture
def three_platforms(sqlite_lab: Lab) -> Lab:
    """CONSTRUCTED: GSE1 measures ENSG01-05, GSE2 ENSG02-06, GSE3 ENSG01-03 with a gap."""
    sqlite_lab.add("GSE1", constructed({"GSM1": [1, 2, 3, 4, 5], "GSM2": [2, 3, 4, 5, 6]}, GENES[:5]))
    sqlite_lab.add("GSE2", constructed({"GSM3": [7, 8, 9, 10, 11]}, GENES[1:]))
    sqlite_lab.add("GSE3", constructed({"GSM4": [1, np.nan, 3]}, GENES[:3]))
    return sqlite_lab


def test_inner_join_keeps_genes_measured_everywhere(three_platforms: Lab) -> None:
    built = build(
        three_platforms,
        data={"GSE1": ["ALL"], "GSE2": ["ALL"], "GSE3": ["ALL"]},
        aggregate_by="ALL",
        quantile_normalize=False,
    )
    result = frame(built, "ALL")
    assert result.index.tolist() == ["ENSG03"]
    assert result.loc["ENSG03"].tolist() == [3.0, 4.0, 8.0, 3.0]
    assert not built.exclusions


def test_min_fraction_and_outer_joins(three_platforms: Lab) -> None:
    data = {"GSE1": ["ALL"], "GSE2": ["ALL"], "GSE3": ["ALL"]}
    half = build(
        three_platforms,
        data=data,
        aggregate_by="ALL",
        join="MIN_FRACTION",
        min_fraction=0.75,
        quantile_normalize=False,
    )
    # present counts: ENSG01 3, ENSG02 3, ENSG03 4, ENSG04 3, ENSG05 3, ENSG06 1 (of 4 samples)
    assert frame(half, "ALL").index.tolist() == GENES[:5]
    outer = build(three_platforms, data=data, aggregate_by="ALL", join="OUTER", quantile_normalize=False)
    result = frame(outer, "ALL")
    assert result.index.tolist() == GENES
    assert np.isnan(result.loc["ENSG06", "GSM1"]) and result.loc["ENSG06", "GSM3"] == 11.0
    assert np.isnan(result.loc["ENSG02", "GSM4"])
    assert int(result.isna().sum().sum()) == 3 + 1 + 3  # GSM1/2 lack ENSG06, GSM3 ENSG01, GSM4 three


def test_inner_join_skips_a_sample_that_would_empty_it(sqlite_lab: Lab) -> None:
    """CONSTRUCTED: refine.bio's rule — a sample sharing no gene with those before it is skipped."""
    sqlite_lab.add("GSE1", constructed({"GSM1": [1, 2], "GSM2": [3, 4]}, ["ENSG01", "ENSG02"]))
    sqlite_lab.add("GSE2", constructed({"GSM3": [5, 6]}, ["ENSG08", "ENSG09"]))
    sqlite_lab.add("GSE3", constructed({"GSM4": [np.nan, np.nan]}, ["ENSG01", "ENSG02"]))
    built = build(
        sqlite_lab,
        data={"GSE1": ["ALL"], "GSE2": ["ALL"], "GSE3": ["ALL"]},
        aggregate_by="ALL",
        quantile_normalize=False,
    )
    assert frame(built, "ALL").columns.tolist() == ["GSM1", "GSM2"]
    found = reasons(built)
    assert found["GSM3"] == (
        ExclusionReason.NOT_IN_JOIN,
        "it shares none of the 2 genes common to the samples before it",
    )
    assert found["GSM4"] == (ExclusionReason.NO_VALUES, "every value in GSE3.parquet is missing")


def test_duplicate_genes_collapse_by_rule(sqlite_lab: Lab) -> None:
    """CONSTRUCTED: two versions of ENSG01 in one file; AFFX controls dropped."""
    ids = ["ENSG01.1", "ENSG01.2", "ENSG02.7", "AFFX-BioB-5_at"]
    sqlite_lab.add("GSE1", constructed({"GSM1": [2, 6, 1, 99], "GSM2": [np.nan, 4, 1, 99]}, ids))
    expected = {"MEAN": [4.0, 4.0], "MEDIAN": [4.0, 4.0], "MAX": [6.0, 4.0], "FIRST": [2.0, 4.0]}
    for rule, row in expected.items():
        result = frame(
            build(sqlite_lab, data={"GSE1": ["ALL"]}, collapse=rule, quantile_normalize=False), "GSE1"
        )
        assert result.index.tolist() == ["ENSG01", "ENSG02"], rule
        assert result.loc["ENSG01"].tolist() == row, rule


def test_linear_microarray_values_are_log2(sqlite_lab: Lab) -> None:
    sqlite_lab.add("GSE1", constructed({"GSM1": [1, 8, 0, -3]}, GENES[:4]), value_type="linear")
    result = frame(build(sqlite_lab, data={"GSE1": ["ALL"]}, quantile_normalize=False, join="OUTER"), "GSE1")
    assert result["GSM1"].tolist()[:2] == [0.0, 3.0]
    assert result.index.tolist() == GENES[:2]  # log2 of 0 and -3 is missing, so those genes drop


def test_rnaseq_value_kinds_and_log_rule(sqlite_lab: Lab, zebrafish_genes: dict[str, pd.DataFrame]) -> None:
    """REAL zebrafish values: lengthScaledTPM kept by experiment, log2(x+1) by species; counts stay."""
    scaled, counts, tpm = (
        zebrafish_genes[k].astype(np.float32) for k in ("lengthScaledTPM", "counts", "tpm")
    )
    sqlite_lab.add(
        "SRP095529",
        scaled,
        organism=ZEBRAFISH_ORG,
        platform="GPL18413",
        technology=SEQUENCING,
        value_type="lengthScaledTPM",
        extra={"expression:counts": (counts, "counts"), "expression:tpm": (tpm, "tpm")},
        source="SRA",
    )
    data = {"SRP095529": ["ALL"]}
    kept = frame(build(sqlite_lab, data=data, quantile_normalize=False), "SRP095529")
    assert kept.shape == (scaled.shape[0], 6)
    assert np.array_equal(kept.to_numpy(), scaled.loc[kept.index].to_numpy())
    species = build(sqlite_lab, data=data, quantile_normalize=False, aggregate_by="SPECIES")
    logged = frame(species, "DANIO_RERIO")
    assert np.allclose(logged.to_numpy(), np.log2(scaled.loc[logged.index].to_numpy() + 1), rtol=1e-6)
    assert species.matrices[0].value_scale == "log2(lengthScaledTPM + 1)"
    raw_counts = frame(
        build(sqlite_lab, data=data, quantile_normalize=False, aggregate_by="SPECIES", rnaseq_value="counts"),
        "DANIO_RERIO",
    )
    assert np.array_equal(raw_counts.to_numpy(), counts.loc[raw_counts.index].to_numpy())
    by_tpm = frame(build(sqlite_lab, data=data, quantile_normalize=False, rnaseq_value="tpm"), "SRP095529")
    assert np.array_equal(by_tpm.to_numpy(), tpm.loc[by_tpm.index].to_numpy())


def test_rnaseq_without_requested_kind_is_wrong_value_type(sqlite_lab: Lab) -> None:
    sqlite_lab.add(
        "SRP1",
        constructed({"SRR1": [1, 2, 3]}, GENES[:3]),
        organism=ZEBRAFISH_ORG,
        technology=SEQUENCING,
        value_type="lengthScaledTPM",
    )
    with pytest.raises(DatasetSpecError, match="nothing to build"), sqlite_lab.db.session() as session:
        build_dataset(
            session,
            DatasetSpec.from_dict({"data": {"SRP1": ["ALL"]}, "rnaseq_value": "counts"}),
            outputs={},
        )
    built = build(sqlite_lab, data={"SRP1": ["ALL"]}, rnaseq_value="counts")
    assert reasons(built)["SRR1"] == (
        ExclusionReason.WRONG_VALUE_TYPE,
        "no current 'expression:counts' file (it has lengthScaledTPM values)",
    )


def test_species_are_never_normalized_with_each_other_s_target(sqlite_lab: Lab) -> None:
    """CONSTRUCTED: one experiment with human and mouse samples is split; each QN'd on its own."""
    human = constructed({"GSM1": [1, 5, 9, 2], "GSM2": [4, 3, 2, 1]}, GENES[:4])
    mouse = constructed({"GSM3": [10, 30, 20], "GSM4": [60, 40, 50]}, ["ENSMUSG1", "ENSMUSG2", "ENSMUSG3"])
    sqlite_lab.add("GSE1", human, organism=HUMAN)
    sqlite_lab.add("GSE2", mouse, organism=MOUSE, platform="GPL1261")
    with sqlite_lab.db.session() as session:  # put the mouse samples into GSE1 as well
        from genemill.store.models import Experiment, Sample

        gse1 = session.query(Experiment).filter_by(accession="GSE1").one()
        gse1.samples.extend(session.query(Sample).filter(Sample.accession.in_(["GSM3", "GSM4"])).all())
    built = build(sqlite_lab, data={"GSE1": ["ALL"]})
    assert [m.key for m in built.matrices] == ["GSE1_HOMO_SAPIENS", "GSE1_MUS_MUSCULUS"]
    assert np.array_equal(
        frame(built, "GSE1_HOMO_SAPIENS").to_numpy(),
        quantile_normalize(human.to_numpy(dtype=float)).astype(np.float32),
    )
    assert np.array_equal(
        frame(built, "GSE1_MUS_MUSCULUS").to_numpy(),
        quantile_normalize(mouse.to_numpy(dtype=float)).astype(np.float32),
    )
    everything = build(sqlite_lab, data={"GSE1": ["ALL"]}, aggregate_by="ALL", join="OUTER")
    result = frame(everything, "ALL")
    assert np.array_equal(
        result.loc[GENES[:4], ["GSM1", "GSM2"]].to_numpy(),
        quantile_normalize(human.to_numpy(dtype=float)).astype(np.float32),
    )
    assert set(everything.matrices[0].quantile_normalization) == {"HOMO_SAPIENS", "MUS_MUSCULUS"}


def test_qn_with_missing_values_warns_on_a_failed_ks_check(sqlite_lab: Lab) -> None:
    """CONSTRUCTED: after an outer join columns hold different numbers of values, so QN'd columns
    differ and refine.bio's (strict) KS check fails: a GenemillWarning, values still built."""
    rng = np.random.default_rng(5)
    genes = [f"ENSG{i:03d}" for i in range(40)]
    full = pd.DataFrame(rng.normal(8, 2, (40, 3)), index=genes, columns=["GSM1", "GSM2", "GSM3"])
    full.iloc[:25, 2] = np.nan
    full = full.astype(np.float32)
    sqlite_lab.add("GSE1", full)
    failed = r"GSE1: KS check after quantile normalization failed \(largest statistic \S+ above 0\.001"
    with pytest.warns(GenemillWarning, match=failed):
        built = build(sqlite_lab, data={"GSE1": ["ALL"]}, join="OUTER")
    ks = built.matrices[0].ks
    assert ks is not None and ks.warning and ks.statistic is not None and ks.statistic > 0.001
    result = frame(built, "GSE1")
    assert np.isnan(result["GSM3"]).sum() == 25
    before = full.loc[result.index].to_numpy(dtype=np.float64)
    assert np.array_equal(result.to_numpy(), quantile_normalize(before).astype(np.float32), equal_nan=True)


@pytest.mark.parametrize("transform", ["MINMAX", "ZSCORE", "ROBUST"])
def test_transforms_are_row_wise(sqlite_lab: Lab, transform: str) -> None:
    """CONSTRUCTED; formulas of scikit-learn's MinMaxScaler / StandardScaler / RobustScaler per gene."""
    values = constructed(
        {"GSM1": [1, 5, 3], "GSM2": [2, 5, 9], "GSM3": [4, 5, 6], "GSM4": [8, 5, 0]}, GENES[:3]
    )
    sqlite_lab.add("GSE1", values)
    result = frame(
        build(sqlite_lab, data={"GSE1": ["ALL"]}, quantile_normalize=False, transform=transform), "GSE1"
    )
    x = values.to_numpy(dtype=np.float64)
    if transform == "MINMAX":
        span = x.max(axis=1, keepdims=True) - x.min(axis=1, keepdims=True)
        expected = (x - x.min(axis=1, keepdims=True)) / np.where(span == 0, 1, span)
    elif transform == "ZSCORE":
        std = x.std(axis=1, keepdims=True)
        expected = (x - x.mean(axis=1, keepdims=True)) / np.where(std == 0, 1, std)
    else:
        q75, q25 = np.percentile(x, [75, 25], axis=1, keepdims=True)
        expected = (x - np.median(x, axis=1, keepdims=True)) / np.where(q75 == q25, 1, q75 - q25)
    assert np.allclose(result.to_numpy(), expected, atol=1e-6)
    assert result.loc["ENSG02"].tolist() == [0.0, 0.0, 0.0, 0.0]  # a constant gene scales to 0


def test_fast_qn_equals_numerics_on_ties_and_gaps() -> None:
    """CONSTRUCTED random matrices with ties (rounded values) and missing values."""
    rng = np.random.default_rng(11)
    for rows, target_size, missing in [(300, 300, 0.0), (300, 300, 0.05), (120, 200, 0.2), (50, 30, 0.0)]:
        matrix = np.asfortranarray(np.round(rng.normal(8, 2, (rows, 12)), 1).astype(np.float32))
        matrix[rng.random(matrix.shape) < missing] = np.nan
        target = rng.normal(8, 2, target_size)
        expected = quantile_normalize_to_target(matrix, target).astype(np.float32)
        assert np.array_equal(quantile_normalize_columns(matrix, target), expected, equal_nan=True)


def test_stored_dataset_failure_is_recorded(sqlite_lab: Lab, sqlite_settings) -> None:
    """CONSTRUCTED: every requested sample is unprocessed, so the build fails and says why."""
    from genemill.datasets.job import create_dataset, get_dataset, run_dataset, start_dataset
    from genemill.datasets.models import DatasetState
    from genemill.errors import InputError

    sqlite_lab.add("GSE1", None, unprocessed={"GSM1": "NEW"})
    with sqlite_lab.db.session() as session:
        dataset_id = create_dataset(session, {"data": {"GSE1": ["ALL"]}}).id
        start_dataset(session, dataset_id)
    with pytest.raises(
        DatasetSpecError, match=r"nothing to build: .*GSM1 \(GSE1\) is missing because it has not"
    ):
        run_dataset(sqlite_lab.db, sqlite_settings, dataset_id)
    with sqlite_lab.db.session() as session:
        dataset = get_dataset(session, dataset_id)
        assert dataset.state == DatasetState.FAILED
        assert dataset.error_type == "DatasetSpecError" and "GSM1 (GSE1)" in (dataset.error or "")
        assert dataset.finished_at is not None and dataset.files == []
        dataset.state = DatasetState.RUNNING
    with sqlite_lab.db.session() as session, pytest.raises(InputError, match="is already being built"):
        start_dataset(session, dataset_id)
    with sqlite_lab.db.session() as session, pytest.raises(NotFoundError, match="no experiment 'GSE2'"):
        create_dataset(session, {"data": {"GSE2": ["ALL"]}})


REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "datasets"


@pytest.mark.parametrize("case", ["unequal", "equal"])
def test_fast_qn_matches_preprocesscore(case: str) -> None:
    """CONSTRUCTED matrix and targets of tests/scripts/datasets_qn_reference.R; reference values by
    preprocessCore 1.60.2 (tests/data/reference/datasets), including its single-value column."""
    matrix = np.array(
        [
            [5, 4, np.nan, 2],
            [2, 8, np.nan, 2],
            [2, 1, 4.2, 2],
            [7, 6, np.nan, 2],
            [np.nan, 2, np.nan, 5],
            [1, 7, np.nan, 5],
            [9, 3, np.nan, 1],
            [3, 5, np.nan, 1],
        ],
        dtype=np.float32,
    )
    targets = {
        "unequal": [3.1, 0.2, 5.5, 1.7, 9.9, 4.4, 2.8, 7.3, 6.6, 0.9, 8.8, 5.0],
        "equal": [1.1 * k for k in range(1, 9)],
    }
    reference = pd.read_csv(
        REFERENCE / f"qn_use_target_{case}.tsv",
        sep="\t",
        header=None,
        na_values=["NA"],
        skipinitialspace=True,
    ).to_numpy(dtype=np.float64)
    result = quantile_normalize_columns(np.asfortranarray(matrix), np.array(targets[case]))
    assert np.array_equal(np.isnan(result), np.isnan(reference))
    assert np.allclose(result, reference, rtol=1e-7, equal_nan=True)


def test_the_ks_warning_names_the_criterion_that_failed() -> None:
    from genemill.datasets.build import _ks_failure
    from genemill.datasets.normalize import KsResult

    p_only = _ks_failure(KsResult(statistic=0.0005, pvalue=0.5, n_pairs=7, warning=True))
    assert "smallest p-value 0.5 below 0.8" in p_only and "statistic" not in p_only
    assert "over 7 random column pairs" in p_only
    both = _ks_failure(KsResult(statistic=0.02, pvalue=0.1, n_pairs=3, warning=True))
    assert "largest statistic 0.02 above 0.001 and smallest p-value 0.1 below 0.8" in both
