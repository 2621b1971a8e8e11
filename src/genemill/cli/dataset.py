"""`genemill dataset build | create | start | status | download`: gene × sample matrices for users.

``build`` is one-shot (no stored request): plan, build and write to ``--out``. ``create`` stores a
request and prints its id; ``start`` builds it now (``--wait``, default) or queues a ``dataset`` job
for ``genemill jobs``-style runners (``--no-wait``); ``status`` shows state, files and exclusions;
``download`` copies a finished file (sha256 checked) to a path of your choosing.
"""

from __future__ import annotations

import enum
import json
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from genemill.cli.common import open_database, settings_of
from genemill.datasets import job as dataset_job
from genemill.datasets.build import Progress as ProgressCallback
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
from genemill.errors import DatasetSpecError, GenemillWarning

__all__ = ["app"]

app = typer.Typer(help="Build gene × sample datasets (TSV zip, Parquet, AnnData).", no_args_is_help=True)
console = Console()


def _choices(name: str, spec_enum: type[enum.StrEnum], spellings: dict[str, str] | None = None) -> Any:
    """The CLI spelling of a spec enum: same member names in lower case, values lower-case with
    dashes (``MIN_FRACTION`` -> ``min-fraction``) unless ``spellings`` gives one; the spec enum
    stays the single source of the choices."""
    spellings = spellings or {}
    members = {m.name.lower(): spellings.get(m.name, m.value.lower().replace("_", "-")) for m in spec_enum}
    return enum.StrEnum(name, members)


def _to_spec(choice: enum.StrEnum, spec_enum: type[enum.StrEnum]) -> str:
    """The spec value behind a CLI choice (members share their names)."""
    return spec_enum[choice.name.upper()].value


Aggregate = _choices("Aggregate", AggregateBy)
TransformChoice = _choices("TransformChoice", Transform)
JoinChoice = _choices("JoinChoice", JoinKind)
CollapseChoice = _choices("CollapseChoice", CollapseRule)
FormatChoice = _choices("FormatChoice", OutputFormat, {"TSV_ZIP": "zip"})
ValueChoice = _choices("ValueChoice", RnaseqValue, {m.name: m.value for m in RnaseqValue})
MissingChoice = _choices("MissingChoice", MissingTarget)

ExperimentOpt = Annotated[
    list[str] | None,
    typer.Option("--experiment", "-e", help="Experiment accession; repeat for several."),
]
SamplesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--samples",
        "-s",
        help="Comma-separated sample accessions of the matching --experiment (n-th to n-th); "
        "experiments without --samples contribute all their samples.",
    ),
]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="A JSON dataset spec (instead of the options).")]
AggregateOpt = Annotated[Aggregate, typer.Option("--aggregate", help="One matrix per …")]
TransformOpt = Annotated[TransformChoice, typer.Option("--transform", help="Per-gene scaling.")]
QnOpt = Annotated[bool, typer.Option("--qn/--no-qn", help="Quantile-normalize (every technology).")]
JoinOpt = Annotated[JoinChoice, typer.Option("--join", help="Genes kept.")]
FractionOpt = Annotated[float, typer.Option("--min-fraction", help="With --join min-fraction.")]
CollapseOpt = Annotated[CollapseChoice, typer.Option("--collapse", help="Duplicate gene ids.")]
SubmitterOpt = Annotated[
    bool, typer.Option("--submitter/--no-submitter", help="Use submitter-processed samples.")
]
ValueOpt = Annotated[ValueChoice, typer.Option("--rnaseq-value", help="RNA-seq values.")]
MissingOpt = Annotated[
    MissingChoice, typer.Option("--missing-target", help="No stored QN target: compute one, or exclude.")
]
FormatOpt = Annotated[list[FormatChoice] | None, typer.Option("--format", "-f", help="Output format(s).")]


def _data(experiments: list[str], samples: list[str]) -> dict[str, list[str]]:
    if not experiments:
        msg = "give at least one --experiment (or --spec FILE)"
        raise DatasetSpecError(msg)
    if samples and len(experiments) > 1 and len(samples) != len(experiments):
        msg = (
            f"--samples given {len(samples)} times for {len(experiments)} experiments: "
            "give it once per --experiment, in the same order (or not at all)"
        )
        raise DatasetSpecError(msg)
    data: dict[str, list[str]] = {}
    for index, experiment in enumerate(experiments):
        chosen = samples[index] if index < len(samples) else ""
        names = [s.strip() for s in chosen.split(",") if s.strip()]
        data[experiment] = names or ["ALL"]
    return data


def _spec(options: dict[str, Any]) -> DatasetSpec:
    if options["spec_file"] is not None:
        return DatasetSpec.from_dict(json.loads(options["spec_file"].read_text()))
    formats = options["formats"] or [FormatChoice.tsv_zip]
    return DatasetSpec.from_dict(
        {
            "data": _data(options["experiments"] or [], options["samples"] or []),
            "aggregate_by": _to_spec(options["aggregate"], AggregateBy),
            "join": _to_spec(options["join"], JoinKind),
            "min_fraction": options["min_fraction"] if options["join"] == JoinChoice.min_fraction else 1.0,
            "collapse": _to_spec(options["collapse"], CollapseRule),
            "transform": _to_spec(options["transform"], Transform),
            "quantile_normalize": options["qn"],
            "include_submitter": options["submitter"],
            "rnaseq_value": _to_spec(options["value"], RnaseqValue),
            "missing_qn_target": _to_spec(options["missing"], MissingTarget),
            "formats": [_to_spec(f, OutputFormat) for f in formats],
        }
    )


@contextmanager
def _progress() -> Iterator[ProgressCallback]:
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(phase, total=max(total, 1))
        bars.update(tasks[phase], completed=done)

    with bars:
        yield report


def _outputs(spec: DatasetSpec, out: Path) -> dict[OutputFormat, Path]:
    if len(spec.formats) == 1:
        return {spec.formats[0]: out}
    return {fmt: out.with_suffix(dataset_job.EXTENSIONS[fmt]) for fmt in spec.formats}


def _print_outcome(files: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    table = Table("Matrix", "Samples", "Genes", "Values")
    for key, info in summary.get("matrices", {}).items():
        table.add_row(key, str(info["samples"]), str(info["genes"]), info["value_scale"])
    console.print(table)
    for exclusion in summary.get("exclusions", []):
        console.print(f"[yellow]left out[/] {exclusion['sentence']}", soft_wrap=True, highlight=False)
    for file in files:
        console.print(
            f"[green]wrote[/] {file['path']} ({file['size_in_bytes']:,} bytes, sha256 {file['sha256'][:12]}…)"
        )


@app.command("build")
def build_command(
    ctx: typer.Context,
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (several formats: its stem).")],
    experiments: ExperimentOpt = None,
    samples: SamplesOpt = None,
    spec_file: SpecOpt = None,
    aggregate: AggregateOpt = Aggregate.experiment,
    transform: TransformOpt = TransformChoice.none,
    qn: QnOpt = True,
    join: JoinOpt = JoinChoice.inner,
    min_fraction: FractionOpt = 1.0,
    collapse: CollapseOpt = CollapseChoice.mean,
    submitter: SubmitterOpt = True,
    value: ValueOpt = ValueChoice.length_scaled_tpm,
    missing: MissingOpt = MissingChoice.compute,
    formats: FormatOpt = None,
) -> None:
    """Build a dataset now and write it to --out (nothing stored in the database)."""
    spec = _spec(locals())
    db = open_database(ctx)
    with warnings.catch_warnings(record=True) as caught, _progress() as report, db.session() as session:
        warnings.simplefilter("always", GenemillWarning)
        outcome = dataset_job.build_dataset(session, spec, outputs=_outputs(spec, out), progress=report)
    for warning in caught:
        console.print(f"[yellow]warning[/] {warning.message}", soft_wrap=True, highlight=False)
    _print_outcome([f.to_dict() for f in outcome.files], outcome.summary())


@app.command("create")
def create_command(
    ctx: typer.Context,
    *,
    experiments: ExperimentOpt = None,
    samples: SamplesOpt = None,
    spec_file: SpecOpt = None,
    aggregate: AggregateOpt = Aggregate.experiment,
    transform: TransformOpt = TransformChoice.none,
    qn: QnOpt = True,
    join: JoinOpt = JoinChoice.inner,
    min_fraction: FractionOpt = 1.0,
    collapse: CollapseOpt = CollapseChoice.mean,
    submitter: SubmitterOpt = True,
    value: ValueOpt = ValueChoice.length_scaled_tpm,
    missing: MissingOpt = MissingChoice.compute,
    formats: FormatOpt = None,
) -> None:
    """Store a dataset request; prints its id (build it with `genemill dataset start ID`)."""
    spec = _spec(locals())
    db = open_database(ctx)
    with db.session() as session:
        dataset = dataset_job.create_dataset(session, spec)
        typer.echo(dataset.id)


@app.command("start")
def start_command(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(help="Dataset id from `genemill dataset create`.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Build now, or queue a job.")] = True,
) -> None:
    """Build a stored dataset (again, if it was built before)."""
    db = open_database(ctx)
    with db.session() as session:
        dataset_job.start_dataset(session, dataset_id)
    if not wait:
        from genemill.pipeline.jobs import JobKind, enqueue

        with db.session() as session:
            enqueue(session, JobKind.DATASET, dataset_id, force=True)
        console.print(f"queued dataset {dataset_id}")
        return
    with _progress() as report:
        dataset = dataset_job.run_dataset(db, settings_of(ctx), dataset_id, progress=report)
    _print_outcome(dataset.files, dataset.summary)


@app.command("status")
def status_command(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a stored dataset's state, files and left-out samples."""
    db = open_database(ctx)
    with db.session() as session:
        data = dataset_job.dataset_dict(dataset_job.get_dataset(session, dataset_id))
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console.print(f"[bold]{data['id']}[/] {data['state']}", highlight=False)
    if data["error"]:
        console.print(f"[red]{data['error_type']}[/]: {data['error']}", soft_wrap=True, highlight=False)
    _print_outcome(data["files"], data["summary"])


@app.command("download")
def download_command(
    ctx: typer.Context,
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    dest: Annotated[Path, typer.Argument(help="Where to copy the file.")],
    *,
    fmt: Annotated[FormatChoice | None, typer.Option("--format", "-f", help="Which file.")] = None,
) -> None:
    """Copy a finished dataset file (its sha256 checked first) to DEST."""
    db = open_database(ctx)
    with db.session() as session:
        wanted = OutputFormat(_to_spec(fmt, OutputFormat)) if fmt else None
        source = dataset_job.dataset_file(session, dataset_id, fmt=wanted)
    target = dest / source.name if dest.is_dir() else dest
    shutil.copyfile(source, target)
    typer.echo(str(target))
