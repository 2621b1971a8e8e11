"""Resolve a ``DatasetSpec`` against the database before any value is read: groups and exclusions.

``plan_dataset(session, spec)`` looks up every requested experiment (``NotFoundError`` when one is
unknown) and sample, and decides for each sample, in this order, whether it is excluded and why
(``ExclusionReason``): not a sample of the experiment, unprocessable, not processed, no organism,
no current values of the needed kind, submitter-processed when those are not wanted, a values file
that is missing or lacks the sample's column, a value type the dataset cannot use, or (QN with
``missing_qn_target = EXCLUDE``) no stored target for its organism. What is left is grouped by the
aggregation key. The result (``DatasetPlan``) holds plain values only, so the heavy part of the build
runs without a database session.

Which stored values a sample contributes (``genemill.store.results`` contract):

* microarray: the ``expression`` file, value type ``log2`` (kept) or ``linear`` (log2-transformed);
* RNA-seq: ``expression`` for ``lengthScaledTPM``, ``expression:tpm`` for TPM, ``expression:counts``
  for counts (the kind says the value type; for ``expression`` the result's ``value_type``
  annotation, else the file's ``value_type`` metadata). They are put on ``log2(x + 1)`` when
  their matrix also holds microarray samples, and for TPM / lengthScaledTPM when aggregating by
  species or all (as refine.bio); otherwise (one experiment's RNA-seq, or counts) they stay on
  their own scale, so counts remain counts;
* a result is submitter-processed when its ``mode`` is ``submitter`` or its annotations say
  ``submitter_processed: true``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from genemill.datasets.exclusions import Exclusion, ExclusionReason
from genemill.datasets.metadata import experiment_metadata, sample_metadata, submitter_fields
from genemill.datasets.spec import AggregateBy, DatasetSpec, MissingTarget, RnaseqValue
from genemill.datasets.targets import TargetInfo, find_qn_target, target_key
from genemill.datasets.values import ValueScaling
from genemill.errors import StoreError
from genemill.store import queries
from genemill.store.expression import read_expression_info
from genemill.store.models import Experiment, ProcessingResult, ProcessingState, Sample, Technology
from genemill.store.results import current_values

__all__ = ["DatasetPlan", "PlannedGroup", "PlannedSample", "is_submitter", "plan_dataset"]

RNASEQ_KINDS = {
    RnaseqValue.LENGTH_SCALED_TPM: "expression",
    RnaseqValue.TPM: "expression:tpm",
    RnaseqValue.COUNTS: "expression:counts",
}
KIND_TYPES = {"expression:tpm": RnaseqValue.TPM.value, "expression:counts": RnaseqValue.COUNTS.value}
MICROARRAY_TYPES = {"log2": ValueScaling.KEEP, "linear": ValueScaling.LOG2}
RNASEQ_TYPES = {v.value.lower(): v for v in RnaseqValue}


@dataclass(frozen=True)
class PlannedSample:
    """A sample that will be read: where its values are and how they were made."""

    accession: str
    experiment: str
    organism: str
    organism_code: str
    technology: Technology
    path: Path
    kind: str
    value_type: str
    scaling: ValueScaling = ValueScaling.KEEP
    provenance: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    submitter_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedGroup:
    """One output matrix: its key (``GSE781``, ``HOMO_SAPIENS``, ``ALL``) and samples, in order."""

    key: str
    samples: tuple[PlannedSample, ...]

    @property
    def organism_codes(self) -> list[str]:
        """Organisms of the group's samples, in first-seen order."""
        return list(dict.fromkeys(s.organism_code for s in self.samples))


@dataclass(frozen=True)
class DatasetPlan:
    """Everything the build needs, resolved: groups, exclusions, metadata, QN targets."""

    spec: DatasetSpec
    groups: tuple[PlannedGroup, ...]
    exclusions: tuple[Exclusion, ...]
    experiments: dict[str, dict[str, Any]]
    targets: dict[str, TargetInfo]
    excluded_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        """Distinct samples that will be read."""
        return len({s.accession for g in self.groups for s in g.samples})


def is_submitter(result: ProcessingResult) -> bool:
    """True when the result holds a submitter's processed table rather than genemill's own processing."""
    return result.mode == "submitter" or bool(result.annotations.get("submitter_processed"))


def _kind_for(sample: Sample, spec: DatasetSpec) -> str:
    return RNASEQ_KINDS[spec.rnaseq_value] if sample.technology == Technology.RNA_SEQ else "expression"


class _Planner:
    """Per-build caches (file schemas) and the collected exclusions."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.exclusions: list[Exclusion] = []
        self.metadata: dict[str, dict[str, Any]] = {}
        self._columns: dict[Path, set[str] | str] = {}
        self._types: dict[Path, str] = {}

    def exclude(self, sample: str, experiment: str, reason: ExclusionReason, *, detail: str = "") -> None:
        self.exclusions.append(Exclusion(sample, experiment, reason, detail))

    def exclude_sample(
        self, sample: Sample, experiment: str, reason: ExclusionReason, *, detail: str = ""
    ) -> None:
        self.metadata.setdefault(sample.accession, {**sample_metadata(sample), **submitter_fields(sample)})
        self.exclude(sample.accession, experiment, reason, detail=detail)

    def file_problem(self, path: Path, accession: str) -> str | None:
        if path not in self._columns:
            self._columns[path] = "missing"
            try:
                if path.is_file():
                    info = read_expression_info(path)
                    self._columns[path] = set(info.samples)
                    self._types[path] = str(info.metadata.get("value_type", ""))
            except StoreError as exc:
                self._columns[path] = str(exc)
        columns = self._columns[path]
        if isinstance(columns, str):
            return f"{path} is {columns}" if columns == "missing" else columns
        return None if accession in columns else f"{path} has no column {accession}"

    def resolve(self, sample: Sample, experiment: str) -> PlannedSample | None:
        reason, detail = _state_problem(sample)
        if reason is not None:
            self.exclude_sample(sample, experiment, reason, detail=detail)
            return None
        kind = _kind_for(sample, self.spec)
        values = current_values(sample, kind=kind)
        if values is None:
            found = current_values(sample)
            detail = f"no current {kind!r} file" + (
                f" (it has {found.value_type or 'untyped'} values)" if found else ""
            )
            reason = ExclusionReason.WRONG_VALUE_TYPE if found else ExclusionReason.FILE_MISSING
            self.exclude_sample(sample, experiment, reason, detail=detail)
            return None
        if is_submitter(values.result) and not self.spec.include_submitter:
            self.exclude_sample(sample, experiment, ExclusionReason.SUBMITTER_EXCLUDED)
            return None
        if (problem := self.file_problem(values.path, sample.accession)) is not None:
            self.exclude_sample(sample, experiment, ExclusionReason.FILE_MISSING, detail=problem)
            return None
        stored = KIND_TYPES.get(kind) or values.value_type or self._types.get(values.path, "")
        value_type, scaling, problem = self._value_type(sample, kind, stored)
        if problem:
            self.exclude_sample(sample, experiment, ExclusionReason.WRONG_VALUE_TYPE, detail=problem)
            return None
        return _planned(
            sample,
            experiment,
            values.path,
            kind=kind,
            value_type=value_type,
            scaling=scaling,
            result=values.result,
        )

    def _value_type(self, sample: Sample, kind: str, stored: str) -> tuple[str, ValueScaling, str]:
        if sample.technology == Technology.RNA_SEQ:
            wanted = self.spec.rnaseq_value
            found = RNASEQ_TYPES.get(stored.lower()) if stored else wanted
            if found != wanted:
                return (
                    stored,
                    ValueScaling.KEEP,
                    f"{kind!r} holds {stored!r} values, expected {wanted.value!r}",
                )
            return wanted.value, ValueScaling.KEEP, ""
        scaling = MICROARRAY_TYPES.get(stored.lower())
        if scaling is None:
            expected = " or ".join(repr(t) for t in MICROARRAY_TYPES)
            return stored, ValueScaling.KEEP, f"microarray values of type {stored!r}, expected {expected}"
        return stored.lower(), scaling, ""


def _state_problem(sample: Sample) -> tuple[ExclusionReason | None, str]:
    if sample.processing_state == ProcessingState.UNPROCESSABLE:
        return ExclusionReason.UNPROCESSABLE, sample.unprocessable_reason or "no reason recorded"
    if sample.processing_state != ProcessingState.PROCESSED:
        return ExclusionReason.NOT_PROCESSED, f"state {sample.processing_state.value}"
    if sample.organism is None:
        return ExclusionReason.NO_ORGANISM, ""
    return None, ""


def _planned(
    sample: Sample,
    experiment: str,
    path: Path,
    *,
    kind: str,
    value_type: str,
    scaling: ValueScaling,
    result: ProcessingResult,
) -> PlannedSample:
    assert sample.organism is not None
    output = next((f.sha256 for f in result.files if Path(f.path) == path), None)
    provenance = {
        "result_id": result.id,
        "processor": result.processor,
        "processor_version": result.processor_version,
        "mode": result.mode,
        "parameters": result.parameters,
        "input_sha256": result.input_sha256,
        "file_sha256": output,
        "file_kind": kind,
        "value_type": value_type,
        "submitter_processed": is_submitter(result),
    }
    processor = {"id": result.id, "name": result.processor, "version": result.processor_version}
    return PlannedSample(
        accession=sample.accession,
        experiment=experiment,
        organism=sample.organism.name,
        organism_code=sample.organism.code,
        technology=sample.technology,
        path=path,
        kind=kind,
        value_type=value_type,
        scaling=scaling,
        provenance=provenance,
        metadata=sample_metadata(sample, processor=processor),
        submitter_fields=submitter_fields(sample),
    )


def _requested(planner: _Planner, key: str, experiment: Experiment) -> list[Sample]:
    spec = planner.spec
    if spec.wants_all(key):
        return list(experiment.samples)
    by_code = {s.accession.upper(): s for s in experiment.samples}
    out = []
    for code in spec.data[key]:
        sample = by_code.get(code.upper())
        if sample is None:
            planner.exclude(code, experiment.accession, ExclusionReason.NOT_FOUND)
        else:
            out.append(sample)
    return out


def _group_key(spec: DatasetSpec, sample: PlannedSample, split: set[str]) -> str:
    if spec.aggregate_by == AggregateBy.SPECIES:
        return sample.organism_code
    if spec.aggregate_by == AggregateBy.ALL:
        return "ALL"
    if sample.experiment in split:
        return f"{sample.experiment}_{sample.organism_code}"
    return sample.experiment


def _with_scaling(spec: DatasetSpec, group: list[PlannedSample]) -> tuple[PlannedSample, ...]:
    mixes = len({s.technology == Technology.RNA_SEQ for s in group}) > 1
    pooled = spec.aggregate_by != AggregateBy.EXPERIMENT and spec.rnaseq_value != RnaseqValue.COUNTS
    out = []
    for sample in group:
        if sample.technology == Technology.RNA_SEQ and (mixes or pooled):
            sample = replace(sample, scaling=ValueScaling.LOG2P1)
        out.append(sample)
    return tuple(out)


def _groups(spec: DatasetSpec, planned: list[PlannedSample]) -> tuple[PlannedGroup, ...]:
    organisms: dict[str, set[str]] = {}
    for sample in planned:
        organisms.setdefault(sample.experiment, set()).add(sample.organism_code)
    split = {e for e, codes in organisms.items() if len(codes) > 1}
    grouped: dict[str, dict[str, PlannedSample]] = {}
    for sample in planned:
        members = grouped.setdefault(_group_key(spec, sample, split), {})
        members.setdefault(sample.accession, sample)
    keys = sorted(grouped) if spec.aggregate_by == AggregateBy.SPECIES else list(grouped)
    return tuple(PlannedGroup(key, _with_scaling(spec, list(grouped[key].values()))) for key in keys)


def _targets(session: Session, planner: _Planner, planned: list[PlannedSample]) -> dict[str, TargetInfo]:
    if not planner.spec.quantile_normalize:
        return {}
    targets: dict[str, TargetInfo] = {}
    for code in dict.fromkeys(s.organism_code for s in planned):
        info = find_qn_target(session, target_key(code))
        if info is not None:
            targets[code] = info
    return targets


def _exclude_untargeted(
    planner: _Planner, planned: list[PlannedSample], targets: dict[str, TargetInfo]
) -> list[PlannedSample]:
    for missing in [s for s in planned if s.organism_code not in targets]:
        detail = f"no stored target for {missing.organism_code}"
        planner.metadata.setdefault(missing.accession, {**missing.metadata, **missing.submitter_fields})
        planner.exclude(missing.accession, missing.experiment, ExclusionReason.NO_QN_TARGET, detail=detail)
    return [s for s in planned if s.organism_code in targets]


def plan_dataset(session: Session, spec: DatasetSpec) -> DatasetPlan:
    """Resolve ``spec``: which samples are read, in which groups, and why the others are not."""
    planner = _Planner(spec)
    planned: list[PlannedSample] = []
    experiments: dict[str, dict[str, Any]] = {}
    for accession in spec.data:
        experiment = queries.get_experiment(session, accession)
        used = []
        for sample in _requested(planner, accession, experiment):
            resolved = planner.resolve(sample, experiment.accession)
            if resolved is not None:
                planned.append(resolved)
                used.append(sample.accession)
        experiments[experiment.accession] = experiment_metadata(experiment, used)
    targets = _targets(session, planner, planned)
    if spec.quantile_normalize and spec.missing_qn_target == MissingTarget.EXCLUDE:
        planned = _exclude_untargeted(planner, planned, targets)
    return DatasetPlan(
        spec=spec,
        groups=_groups(spec, planned),
        exclusions=tuple(planner.exclusions),
        experiments=experiments,
        targets=targets,
        excluded_metadata=planner.metadata,
    )
