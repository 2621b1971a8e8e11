from __future__ import annotations

import pytest

from genemill.harmonize import harmonize, normalize_key, parse_age, parse_sex


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Characteristics[Cell_Line]", "cell line"),
        ("characteristics_ch1: tissue", "characteristics ch1: tissue"),
        ("Factor Value[disease state]", "disease state"),
        ("age (months)", "age months"),
        ("sample_tissue", "tissue"),
        ("Tissue-Type", "tissue type"),
    ],
    ids=["sdrf-brackets", "unmatched-kept", "factor-value", "unit-in-key", "sample-prefix", "hyphen"],
)
def test_normalize_key(raw: str, expected: str) -> None:
    assert normalize_key(raw) == expected


@pytest.mark.parametrize(
    ("value", "key", "years", "unit"),
    [
        ("45", "age", 45.0, "year"),
        ("45 years old", "age", 45.0, "year"),
        ("12 weeks", "age", 12 * 7 / 365.25, "week"),
        ("6", "age (months)", 0.5, "month"),
        ("3 mo", "age", 0.25, "month"),
        ("10 days", "age", 10 / 365.25, "day"),
        ("E14.5", "age", None, None),
        ("50-60", "age", None, None),
    ],
)
def test_parse_age_normalizes_to_years_keeping_unit(
    value: str, key: str, years: float | None, unit: str | None
) -> None:
    age = parse_age(value, key=key)
    if years is None:
        assert age.years is None
        assert age.raw == value
    else:
        assert age.years == pytest.approx(years)
        assert age.unit == unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("F", "female"),
        ("Male", "male"),
        ("woman", "female"),
        ("pooled male and female", "mixed"),
        ("N/A", "unknown"),
        ("hermaphrodite", "hermaphrodite"),
    ],
)
def test_parse_sex(value: str, expected: str) -> None:
    assert parse_sex(value) == expected


def test_harmonize_traces_sources_and_keeps_lists() -> None:
    result = harmonize(
        [
            ("tissue", "Kidney"),
            ("cell type", "epithelial"),
            ("Sex", "F"),
            ("gender", "female"),
            ("age (months)", "6"),
            ("disease state", "RCC"),
            ("unrelated", "x"),
            ("cell line", ""),
        ]
    )
    assert result.fields["specimen_part"].values == ("kidney", "epithelial")
    assert result.fields["specimen_part"].sources == ("tissue", "cell type")
    assert result.fields["sex"].values == ("female",)
    assert result.fields["sex"].sources == ("Sex", "gender")
    assert result.age is not None
    assert result.age.years == pytest.approx(0.5)
    assert result.age.source == "age (months)"
    assert "cell_line" not in result.fields
    flat = result.flat()
    assert flat["specimen_part"] == "kidney; epithelial"
    assert flat["disease"] == "rcc"
    assert flat["treatment"] is None
