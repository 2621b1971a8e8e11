"""An experiment's current gene-level values in one frame, for plots and previews.

Each processed sample's values live in the Parquet file of its current result (``store.results``);
samples sharing a file are read together, column-selectively. Values are returned on a log2 scale:
files whose ``value_type`` is already ``log2`` are kept, linear ones (counts, TPM,
lengthScaledTPM) become ``log2(x + 1)``. At most ``max_samples`` samples are read (the first
by accession) so a 2,000-sample series cannot stall a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genemill.store.expression import read_expression
from genemill.store.models import Experiment
from genemill.store.results import current_values

__all__ = ["ExperimentValues", "read_experiment_values"]

_LOG2_TYPES = frozenset({"log2", "log2_rma", "log2_mas5"})


@dataclass(frozen=True)
class ExperimentValues:
    """Genes x samples (log2 scale, float64, NaN where a sample lacks a gene) and what was read."""

    values: pd.DataFrame
    value_types: dict[str, str] = field(default_factory=dict)
    transformed: bool = False
    n_processed: int = 0


def read_experiment_values(experiment: Experiment, *, max_samples: int = 200) -> ExperimentValues | None:
    """The experiment's processed samples' values, or None when none is processed."""
    by_path: dict[Path, list[str]] = {}
    value_types: dict[str, str] = {}
    processed = [s for s in experiment.samples if s.is_processed]
    for sample in sorted(processed, key=lambda s: s.accession)[:max_samples]:
        values = current_values(sample)
        if values is None or not values.path.is_file():
            continue
        by_path.setdefault(values.path, []).append(sample.accession)
        value_types[sample.accession] = values.value_type
    if not by_path:
        return None
    frames = [read_expression(path, samples=samples) for path, samples in by_path.items()]
    frame = pd.concat(frames, axis=1, join="outer").astype(np.float64)
    linear = [s for s, kind in value_types.items() if kind and kind not in _LOG2_TYPES]
    if linear:
        frame[linear] = np.log2(frame[linear].clip(lower=0) + 1.0)
    return ExperimentValues(
        values=frame, value_types=value_types, transformed=bool(linear), n_processed=len(processed)
    )
