"""What a user asks for: ``DatasetSpec``, a frozen, validated, JSON-round-trippable request.

A spec names samples per experiment (``{"GSE781": ["GSM11805", …]}`` or ``{"GSE781": ["ALL"]}``) and the
options of refine.bio's smasher, widened where its users asked (ANCHOR.md §7, refine.bio #704, #1232,
#2236, #1774):

* ``aggregate_by``: one matrix per experiment (``EXPERIMENT``, default), per species (``SPECIES``) or
  one for everything (``ALL``). An experiment whose samples come from several species is split into
  one matrix per species, ``<ACCESSION>_<SPECIES>``, because Ensembl ids of different species never
  join.
* ``join``: ``INNER`` keeps genes measured in every sample (refine.bio), ``MIN_FRACTION`` keeps genes
  measured in at least ``min_fraction`` of the samples, ``OUTER`` keeps every gene (missing cells empty).
* ``collapse``: how duplicate gene ids inside one processed file are merged (``MEAN`` as refine.bio).
* ``transform``: row-wise, per gene across the samples of a matrix, as refine.bio's scalers:
  ``MINMAX`` to [0, 1], ``ZSCORE`` (population standard deviation), ``ROBUST`` (median / IQR).
* ``quantile_normalize``: for every technology (refine.bio skips it only for RNA-seq by experiment).
* ``include_submitter``: whether samples whose only values are submitter-processed tables are used.
* ``rnaseq_value``: which RNA-seq values: ``lengthScaledTPM`` (refine.bio's), ``TPM`` or ``counts``.
* ``missing_qn_target``: when an organism has no stored QN target, ``COMPUTE`` one from the matrix's
  own samples (default; said in the metadata) or ``EXCLUDE`` its samples (``NO_QN_TARGET``).
* ``formats``: any of ``tsv_zip`` (refine.bio's zip layout), ``parquet``, ``h5ad``.
"""

from __future__ import annotations

import enum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from genemill.errors import DatasetSpecError

__all__ = [
    "ALL_SAMPLES",
    "AggregateBy",
    "CollapseRule",
    "DatasetSpec",
    "JoinKind",
    "MissingTarget",
    "OutputFormat",
    "RnaseqValue",
    "Transform",
]

ALL_SAMPLES = "ALL"


class AggregateBy(enum.StrEnum):
    """One matrix per experiment, per species, or one for all samples."""

    EXPERIMENT = "EXPERIMENT"
    SPECIES = "SPECIES"
    ALL = "ALL"


class JoinKind(enum.StrEnum):
    """Which genes a matrix keeps."""

    INNER = "INNER"
    MIN_FRACTION = "MIN_FRACTION"
    OUTER = "OUTER"


class CollapseRule(enum.StrEnum):
    """How duplicate gene ids within one sample's values are merged (NaN ignored)."""

    MEAN = "MEAN"
    MEDIAN = "MEDIAN"
    MAX = "MAX"
    FIRST = "FIRST"


class Transform(enum.StrEnum):
    """Row-wise (per gene) scaling applied last."""

    NONE = "NONE"
    MINMAX = "MINMAX"
    ZSCORE = "ZSCORE"
    ROBUST = "ROBUST"


class RnaseqValue(enum.StrEnum):
    """Which RNA-seq gene values a dataset uses; the value is the store's ``value_type``."""

    LENGTH_SCALED_TPM = "lengthScaledTPM"
    TPM = "tpm"
    COUNTS = "counts"


class MissingTarget(enum.StrEnum):
    """What to do when an organism has no stored quantile-normalization target."""

    COMPUTE = "COMPUTE"
    EXCLUDE = "EXCLUDE"


class OutputFormat(enum.StrEnum):
    """Files a dataset is written as."""

    TSV_ZIP = "tsv_zip"
    PARQUET = "parquet"
    H5AD = "h5ad"


class DatasetSpec(BaseModel):
    """A dataset request. Build with ``DatasetSpec.from_dict`` to get ``DatasetSpecError`` on bad input."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    data: dict[str, tuple[str, ...]]
    aggregate_by: AggregateBy = AggregateBy.EXPERIMENT
    join: JoinKind = JoinKind.INNER
    min_fraction: float = 1.0
    collapse: CollapseRule = CollapseRule.MEAN
    transform: Transform = Transform.NONE
    quantile_normalize: bool = True
    include_submitter: bool = True
    rnaseq_value: RnaseqValue = RnaseqValue.LENGTH_SCALED_TPM
    missing_qn_target: MissingTarget = MissingTarget.COMPUTE
    formats: tuple[OutputFormat, ...] = (OutputFormat.TSV_ZIP,)

    @field_validator("data", mode="before")
    @classmethod
    def _normalize_data(cls, value: Any) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, dict) or not value:
            msg = (
                "data: expected a non-empty mapping experiment accession -> sample accessions, "
                f"found {value!r}"
            )
            raise DatasetSpecError(msg)
        out: dict[str, tuple[str, ...]] = {}
        for experiment, samples in value.items():
            out[_experiment_code(experiment)] = _sample_codes(experiment, samples)
        return out

    @field_validator("formats", mode="before")
    @classmethod
    def _normalize_formats(cls, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else list(value or [])
        if not items:
            msg = "formats: expected at least one of tsv_zip, parquet, h5ad, found none"
            raise DatasetSpecError(msg)
        return tuple(dict.fromkeys(str(item).lower() for item in items))

    @field_validator("aggregate_by", "join", "collapse", "transform", "missing_qn_target", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rnaseq_value", mode="before")
    @classmethod
    def _rnaseq_value(cls, value: Any) -> Any:
        if isinstance(value, str):
            by_lower = {member.value.lower(): member for member in RnaseqValue}
            return by_lower.get(value.lower(), value)
        return value

    @model_validator(mode="after")
    def _check_fraction(self) -> Self:
        if not 0.0 < self.min_fraction <= 1.0:
            msg = f"min_fraction: expected a fraction in (0, 1], found {self.min_fraction}"
            raise DatasetSpecError(msg)
        if self.join != JoinKind.MIN_FRACTION and self.min_fraction != 1.0:
            msg = (
                f"min_fraction={self.min_fraction} is only used with join=MIN_FRACTION, "
                f"found join={self.join}"
            )
            raise DatasetSpecError(msg)
        return self

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> DatasetSpec:
        """Validate a JSON-like mapping; every problem becomes one ``DatasetSpecError`` message."""
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']} (found {err.get('input')!r})"
                for err in exc.errors()
            )
            msg = f"invalid dataset spec: {problems}"
            raise DatasetSpecError(msg) from exc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping that ``from_dict`` turns back into an equal spec."""
        out = self.model_dump(mode="json")
        out["data"] = {k: list(v) for k, v in self.data.items()}
        return out

    def wants_all(self, experiment: str) -> bool:
        """True when every sample of ``experiment`` was asked for."""
        return self.data[experiment] == (ALL_SAMPLES,)


def _experiment_code(accession: Any) -> str:
    code = str(accession).strip().upper() if isinstance(accession, str) else ""
    if not code:
        msg = f"data: expected experiment accessions as keys, found {accession!r}"
        raise DatasetSpecError(msg)
    return code


def _sample_codes(experiment: str, samples: Any) -> tuple[str, ...]:
    if isinstance(samples, str) or not isinstance(samples, list | tuple) or not samples:
        msg = (
            f"data[{experiment!r}]: expected a non-empty list of sample accessions or ['ALL'], "
            f"found {samples!r}"
        )
        raise DatasetSpecError(msg)
    codes = [str(s).strip() for s in samples]
    if any(not c for c in codes):
        msg = f"data[{experiment!r}]: empty sample accession in {samples!r}"
        raise DatasetSpecError(msg)
    if any(c.upper() == ALL_SAMPLES for c in codes):
        if len(codes) > 1:
            msg = f"data[{experiment!r}]: 'ALL' cannot be combined with sample accessions, found {samples!r}"
            raise DatasetSpecError(msg)
        return (ALL_SAMPLES,)
    return tuple(dict.fromkeys(codes))
