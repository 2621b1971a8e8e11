"""Delivery: join processed samples into gene × sample matrices and write them for users.

May import ``genemill.errors``, ``genemill.numerics``, ``genemill.genes`` and ``genemill.store`` only.
The path of a dataset, one module per step:

1. ``spec`` — ``DatasetSpec``: which samples, aggregation, join, collapse, QN, transform, formats;
2. ``plan`` — ``plan_dataset(session, spec)``: groups and ``exclusions`` (``ExclusionReason``, the
   sentence users read) decided from the database before any value is read;
3. ``build`` — ``build_matrices(plan)``: column-selective reads (``values``), one index join per
   file, quantile normalization per organism with ``targets`` (``normalize``), KS check, transforms;
4. ``writers`` — ``write_tsv_zip`` (refine.bio's layout, ``manifest`` texts and metadata),
   ``write_parquet``, ``write_h5ad``; all atomic;
5. ``job`` — ``build_dataset`` one-shot, and the stored ``Dataset`` flow (``models``; table created by
   Alembic revision 0002): ``create_dataset``, ``start_dataset``, ``run_dataset``, ``dataset_file``;
6. ``lifetime`` — built files expire after ``Settings.dataset_lifetime_days`` (``expire_datasets``,
   ``DatasetExpiredError``) and ``regenerate_dataset`` rebuilds them; ``details`` — the experiments
   and samples behind a request (``dataset_details``, the API's ``?details=true``); ``counts`` —
   datasets per state for the stats (``dataset_counts``).
"""

from __future__ import annotations

from genemill.datasets.build import BuiltDataset, GroupMatrix, build_matrices
from genemill.datasets.counts import dataset_counts
from genemill.datasets.details import dataset_details
from genemill.datasets.exclusions import Exclusion, ExclusionReason
from genemill.datasets.job import (
    DatasetOutcome,
    OutputFile,
    build_dataset,
    create_dataset,
    dataset_dict,
    dataset_file,
    get_dataset,
    run_dataset,
    run_dataset_job,
    start_dataset,
)
from genemill.datasets.lifetime import (
    DatasetExpiredError,
    expire_datasets,
    is_expired,
    regenerate_dataset,
)
from genemill.datasets.models import Dataset, DatasetState
from genemill.datasets.plan import DatasetPlan, PlannedGroup, PlannedSample, plan_dataset
from genemill.datasets.spec import (
    AggregateBy,
    CollapseRule,
    DatasetSpec,
    JoinKind,
    MissingTarget,
    OutputFormat,
    RnaseqValue,
    Transform,
)
from genemill.datasets.targets import TargetInfo, build_qn_target, find_qn_target
from genemill.datasets.writers import write_h5ad, write_parquet, write_tsv_zip

__all__ = [
    "AggregateBy",
    "BuiltDataset",
    "CollapseRule",
    "Dataset",
    "DatasetExpiredError",
    "DatasetOutcome",
    "DatasetPlan",
    "DatasetSpec",
    "DatasetState",
    "Exclusion",
    "ExclusionReason",
    "GroupMatrix",
    "JoinKind",
    "MissingTarget",
    "OutputFile",
    "OutputFormat",
    "PlannedGroup",
    "PlannedSample",
    "RnaseqValue",
    "TargetInfo",
    "Transform",
    "build_dataset",
    "build_matrices",
    "build_qn_target",
    "create_dataset",
    "dataset_counts",
    "dataset_details",
    "dataset_dict",
    "dataset_file",
    "expire_datasets",
    "find_qn_target",
    "get_dataset",
    "is_expired",
    "plan_dataset",
    "regenerate_dataset",
    "run_dataset",
    "run_dataset_job",
    "start_dataset",
    "write_h5ad",
    "write_parquet",
    "write_tsv_zip",
]
