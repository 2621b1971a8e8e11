"""Why a requested sample is not in a dataset: ``ExclusionReason`` and the sentence users read.

Exclusions are data, not exceptions (ARCHITECTURE.md §D): every requested sample ends up either in a
matrix or in ``Dataset.exclusions`` with one reason, written to ``aggregated_metadata.json`` and
``filtered_samples_metadata.json`` / ``.tsv`` of the zip. refine.bio's single phrase ("did not have a
processed file…") is split into the reasons below so that "why is GSM… missing" has one answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["Exclusion", "ExclusionReason"]


class ExclusionReason(enum.StrEnum):
    """Why a requested sample is not in the dataset's matrices."""

    NOT_FOUND = "NOT_FOUND"
    NOT_PROCESSED = "NOT_PROCESSED"
    UNPROCESSABLE = "UNPROCESSABLE"
    SUBMITTER_EXCLUDED = "SUBMITTER_EXCLUDED"
    WRONG_VALUE_TYPE = "WRONG_VALUE_TYPE"
    FILE_MISSING = "FILE_MISSING"
    NO_ORGANISM = "NO_ORGANISM"
    NO_VALUES = "NO_VALUES"
    NOT_IN_JOIN = "NOT_IN_JOIN"
    NO_QN_TARGET = "NO_QN_TARGET"

    @property
    def explanation(self) -> str:
        """The reason as the end of a sentence "GSM… is missing because …"."""
        return _EXPLANATIONS[self]


_EXPLANATIONS: dict[ExclusionReason, str] = {
    ExclusionReason.NOT_FOUND: "it is not a sample of the requested experiment in this genemill database",
    ExclusionReason.NOT_PROCESSED: "it has not been processed yet",
    ExclusionReason.UNPROCESSABLE: "it could not be processed",
    ExclusionReason.SUBMITTER_EXCLUDED: (
        "its only values are the submitter's processed table and the dataset asked for samples processed "
        "from raw data only (include_submitter = false)"
    ),
    ExclusionReason.WRONG_VALUE_TYPE: "it has no values of the kind this dataset needs",
    ExclusionReason.FILE_MISSING: "its processed values file is missing or unreadable",
    ExclusionReason.NO_ORGANISM: "its organism is unknown, so it cannot be grouped or normalized",
    ExclusionReason.NO_VALUES: "its processed values are all missing",
    ExclusionReason.NOT_IN_JOIN: "none of its genes are among the genes the join kept",
    ExclusionReason.NO_QN_TARGET: (
        "quantile normalization was asked for, its organism has no stored reference distribution and "
        "the dataset asked to exclude such samples (missing_qn_target = EXCLUDE)"
    ),
}


@dataclass(frozen=True)
class Exclusion:
    """One requested sample left out, under which experiment, why, and the specifics (``detail``)."""

    sample: str
    experiment: str
    reason: ExclusionReason
    detail: str = ""

    @property
    def sentence(self) -> str:
        """E.g. ``GSM1 (GSE1) is missing because it could not be processed: CEL file truncated.``"""
        text = f"{self.sample} ({self.experiment}) is missing because {self.reason.explanation}"
        if self.detail:
            text += f": {self.detail}"
        return text.rstrip(".") + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the dataset's metadata."""
        return {
            "accession_code": self.sample,
            "experiment_accession": self.experiment,
            "reason": self.reason.value,
            "detail": self.detail,
            "sentence": self.sentence,
        }
