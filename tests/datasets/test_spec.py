"""DatasetSpec: validation messages, normalization, JSON round trip; exclusion sentences."""

from __future__ import annotations

import pytest

from genemill.datasets.exclusions import Exclusion, ExclusionReason
from genemill.datasets.spec import (
    AggregateBy,
    CollapseRule,
    DatasetSpec,
    JoinKind,
    OutputFormat,
    RnaseqValue,
    Transform,
)
from genemill.errors import DatasetSpecError


def test_defaults_are_refinebio_s() -> None:
    spec = DatasetSpec.from_dict({"data": {"GSE781": ["ALL"]}})
    assert spec.aggregate_by == AggregateBy.EXPERIMENT
    assert spec.join == JoinKind.INNER
    assert spec.collapse == CollapseRule.MEAN
    assert spec.transform == Transform.NONE
    assert spec.quantile_normalize is True
    assert spec.rnaseq_value == RnaseqValue.LENGTH_SCALED_TPM
    assert spec.formats == (OutputFormat.TSV_ZIP,)
    assert spec.wants_all("GSE781")


def test_normalizes_case_duplicates_and_round_trips() -> None:
    spec = DatasetSpec.from_dict(
        {
            "data": {" gse781 ": ["GSM11805", "GSM11805", "GSM11814"], "E-MTAB-1": ["all"]},
            "aggregate_by": "species",
            "join": "min_fraction",
            "min_fraction": 0.75,
            "transform": "zscore",
            "rnaseq_value": "COUNTS",
            "formats": ["H5AD", "parquet", "h5ad"],
        }
    )
    assert spec.data == {"GSE781": ("GSM11805", "GSM11814"), "E-MTAB-1": ("ALL",)}
    assert spec.rnaseq_value == RnaseqValue.COUNTS
    assert spec.formats == (OutputFormat.H5AD, OutputFormat.PARQUET)
    again = DatasetSpec.from_dict(spec.to_dict())
    assert again == spec
    assert spec.to_dict()["data"] == {"GSE781": ["GSM11805", "GSM11814"], "E-MTAB-1": ["ALL"]}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"data": {}}, r"data: expected a non-empty mapping"),
        ({"data": {"GSE1": "GSM1"}}, r"data\['GSE1'\]: expected a non-empty list .* found 'GSM1'"),
        ({"data": {"GSE1": []}}, r"data\['GSE1'\]: expected a non-empty list"),
        ({"data": {"GSE1": ["ALL", "GSM1"]}}, r"'ALL' cannot be combined with sample accessions"),
        ({"data": {"GSE1": ["GSM1", " "]}}, r"empty sample accession"),
        ({"data": {"GSE1": ["ALL"]}, "join": "left"}, r"join: Input should be 'INNER'.*found 'LEFT'"),
        ({"data": {"GSE1": ["ALL"]}, "min_fraction": 0.5}, r"only used with join=MIN_FRACTION"),
        ({"data": {"GSE1": ["ALL"]}, "join": "MIN_FRACTION", "min_fraction": 0}, r"min_fraction: expected"),
        ({"data": {"GSE1": ["ALL"]}, "formats": ["csv"]}, r"formats.0: Input should be 'tsv_zip'"),
        ({"data": {"GSE1": ["ALL"]}, "formats": []}, r"formats: expected at least one"),
        ({"data": {"GSE1": ["ALL"]}, "scale": "MINMAX"}, r"scale: Extra inputs are not permitted"),
    ],
    ids=[
        "empty",
        "string-samples",
        "no-samples",
        "all-plus",
        "blank",
        "join",
        "fraction-without-join",
        "fraction-zero",
        "format",
        "no-format",
        "unknown-key",
    ],
)
def test_invalid_specs_say_what_and_where(obj: dict, message: str) -> None:
    with pytest.raises(DatasetSpecError, match=message):
        DatasetSpec.from_dict(obj)


def test_spec_is_frozen() -> None:
    spec = DatasetSpec.from_dict({"data": {"GSE1": ["ALL"]}})
    with pytest.raises(ValueError, match="frozen"):
        spec.transform = Transform.MINMAX  # type: ignore[misc]


@pytest.mark.parametrize("reason", list(ExclusionReason), ids=lambda r: r.value)
def test_every_reason_has_a_sentence(reason: ExclusionReason) -> None:
    exclusion = Exclusion("GSM1", "GSE1", reason, "some detail")
    assert exclusion.sentence.startswith("GSM1 (GSE1) is missing because ")
    assert exclusion.sentence.endswith(": some detail.")
    assert exclusion.to_dict()["reason"] == reason.value


def test_unprocessable_sentence_carries_the_reason() -> None:
    exclusion = Exclusion("GSM2", "GSE9", ExclusionReason.UNPROCESSABLE, "CEL file truncated at byte 64.")
    assert (
        exclusion.sentence
        == "GSM2 (GSE9) is missing because it could not be processed: CEL file truncated at byte 64."
    )
