"""Benchmark: building a 1,000-sample dataset with genemill vs a refine.bio-style smasher, in one run.

    .venv/bin/python bench/datasets.py [--samples 1000] [--genes 20000] [--keep]

All inputs are GENERATED (random log2-like values, labelled so in every file name and here): 90 % of
the samples on platform "GENERATED-A" measuring every gene, 10 % on "GENERATED-B" lacking a fixed
15 % of the genes; 1 % of platform A's genes appear twice with Ensembl version suffixes (``.1``,
``.2``), so both sides must strip versions and average duplicates. They are written to a temporary
directory, never to the repository:

* for genemill: a SQLite database (20 experiments of 50 samples, ingested through
  ``store_experiment``) and one expression-store Parquet file per experiment, results recorded with
  ``record_result``; QN target: none stored, so each side normalizes to the mean of the sorted
  columns of the joined matrix;
* for the baseline: one two-column TSV per sample (refine.bio's per-sample computed files).

Each side then runs in its own fresh process (peak memory = that process's VmHWM):

* **genemill** — ``build_dataset(spec, outputs={tsv_zip, parquet})`` with aggregation ALL, inner
  join, quantile normalization; phases: plan (database), build (read, join, QN, KS check), write zip,
  write Parquet.
* **baseline** — what refine.bio's smasher does: read each per-sample TSV with pandas, strip version
  suffixes and average duplicate ids, successive pandas inner merges, QN to the mean of the sorted
  columns (NumPy ranks; refine.bio calls preprocessCore through rpy2), ``DataFrame.to_csv`` of the
  TSV, then zip it (``shutil.make_archive``, deflate level 6).

Printed: wall time per phase, end-to-end wall and CPU time (user + system, all threads — steadier
than wall time on a shared machine), peak memory, genes kept, and the ratios (of the
median runs with ``--repeat N``; the sides alternate so that both see the same machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu() -> float:
    """User + system CPU seconds of this process, all threads (less sensitive to machine load)."""
    times = os.times()
    return times.user + times.system


def _genes(n_genes: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Gene ids of platform A (with versioned duplicates), the mask of genes on B, and B's ids."""
    base = [f"ENSGGEN{i:08d}" for i in range(n_genes)]
    duplicated = set(range(0, n_genes, 100))
    ids_a = []
    for i, gene in enumerate(base):
        ids_a += [f"{gene}.1", f"{gene}.2"] if i in duplicated else [gene]
    rng = np.random.default_rng(7)
    on_b = np.ones(n_genes, dtype=bool)
    on_b[rng.choice(n_genes, size=int(0.15 * n_genes), replace=False)] = False
    ids_b = [g for g, keep in zip(base, on_b, strict=True) if keep]
    return ids_a, on_b, ids_b


def _values(rng: np.random.Generator, n_rows: int, n_samples: int) -> np.ndarray:
    means = rng.uniform(2, 14, size=(n_rows, 1))
    return (means + rng.normal(0, 0.6, size=(n_rows, n_samples))).astype(np.float32)


def generate(folder: Path, n_samples: int, n_genes: int) -> dict[str, object]:
    """Write GENERATED inputs for both sides into ``folder``."""
    from genemill.formats.records import ExperimentMetadata, PlatformRecord, SampleRecord, SeriesRecord
    from genemill.pipeline.ingest import store_experiment
    from genemill.store.db import Database
    from genemill.store.expression import write_expression
    from genemill.store.results import record_result

    ids_a, _on_b, ids_b = _genes(n_genes)
    rng = np.random.default_rng(2024)
    db = Database(f"sqlite:///{folder / 'genemill.sqlite'}")
    db.migrate()
    tsv_dir = folder / "baseline_tsv"
    tsv_dir.mkdir()
    per_experiment = max(1, n_samples // 20)
    experiments = []
    for e, start in enumerate(range(0, n_samples, per_experiment)):
        names = [f"GENSAMPLE{i:05d}" for i in range(start, min(start + per_experiment, n_samples))]
        on_b = start >= n_samples - n_samples // 10
        ids, platform = (ids_b, "GENERATED-B") if on_b else (ids_a, "GENERATED-A")
        frame = pd.DataFrame(_values(rng, len(ids), len(names)), index=ids, columns=names)
        for name in names:
            frame[[name]].to_csv(tsv_dir / f"{name}.tsv", sep="\t", index_label="Gene")
        accession = f"GENERATED{e:03d}"
        path = folder / "store" / f"{accession}.parquet"
        write_expression(path, frame, metadata={"value_type": "log2", "note": "GENERATED benchmark data"})
        records = [
            SampleRecord(
                accession=n,
                title=f"generated {n}",
                organism=["Homo sapiens"],
                taxon_ids=[9606],
                platform=platform,
            )
            for n in names
        ]
        metadata = ExperimentMetadata(
            source="GEO",
            series=SeriesRecord(accession=accession, title="GENERATED benchmark experiment"),
            platforms=[
                PlatformRecord(accession=platform, title=platform, technology="in situ oligonucleotide")
            ],
            samples=records,
        )
        with db.session() as session:
            experiment = store_experiment(session, metadata)
            record_result(
                session,
                list(experiment.samples),
                experiment=experiment,
                processor="generated",
                version="0",
                mode="raw",
                parameters={},
                input_sha256=[],
                files=[("expression", path)],
                annotations={"value_type": "log2"},
            )
        experiments.append(accession)
    db.dispose()
    return {"experiments": experiments}


def run_genemill(folder: Path, experiments: list[str]) -> dict[str, object]:
    """Plan, build, write zip and Parquet; phase times from the progress callback."""
    t0 = time.perf_counter()
    from genemill.datasets import DatasetSpec, OutputFormat, build_dataset
    from genemill.store.db import Database

    marks: dict[str, float] = {}
    memory: dict[str, float] = {}

    def progress(phase: str, _done: int, _total: int) -> None:
        key = phase.split()[0] + (" " + phase.split()[1] if phase.startswith("write ") else "")
        if key not in marks:
            marks[key] = time.perf_counter()
            memory[key] = _peak_mb()

    t_import = time.perf_counter()
    memory["after imports"] = _peak_mb()
    db = Database(f"sqlite:///{folder / 'genemill.sqlite'}")
    spec = DatasetSpec.from_dict(
        {"data": {e: ["ALL"] for e in experiments}, "aggregate_by": "ALL", "formats": ["tsv_zip", "parquet"]}
    )
    out = folder / "genemill_out"
    outputs = {OutputFormat.TSV_ZIP: out / "dataset.zip", OutputFormat.PARQUET: out / "dataset.parquet"}
    t_start, cpu_start = time.perf_counter(), _cpu()
    with db.session() as session:
        outcome = build_dataset(session, spec, outputs=outputs, progress=progress)
    t_end, cpu_end = time.perf_counter(), _cpu()
    matrix = outcome.built.matrices[0]
    phases = {
        "plan (database)": marks["plan"] - t_start,
        "read + join": marks["normalize"] - marks["plan"],
        "QN + KS check": marks["write tsv_zip"] - marks["normalize"],
        "write TSV zip": marks["write parquet"] - marks["write tsv_zip"],
        "write Parquet": t_end - marks["write parquet"],
    }
    return {
        "imports": t_import - t0,
        "phases": phases,
        "total": t_end - t_start,
        "cpu": cpu_end - cpu_start,
        "genes": int(matrix.genes.shape[0]),
        "samples": len(matrix.samples),
        "zip_mb": outputs[OutputFormat.TSV_ZIP].stat().st_size / 1e6,
        "peak_mb": _peak_mb(),
        "peak_mb_before_phase": memory,
    }


def _read_sample(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", index_col=0, dtype={"Gene": str})
    frame = frame.astype(np.float32)
    frame.index = frame.index.str.replace(r"\.\d+$", "", regex=True)
    frame = frame[~frame.index.str.startswith("AFFX-")]
    return frame.groupby(level=0).mean()


def run_baseline(folder: Path) -> dict[str, object]:
    """refine.bio-style smashing of per-sample TSVs (see the module docstring)."""
    t_start, cpu_start = time.perf_counter(), _cpu()
    frames = [_read_sample(p) for p in sorted((folder / "baseline_tsv").glob("*.tsv"))]
    t_read = time.perf_counter()
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, how="inner", left_index=True, right_index=True)
    del frames
    t_merge = time.perf_counter()
    values = merged.to_numpy(dtype=np.float64)
    order = np.argsort(values, axis=0)
    target = np.sort(values, axis=0).mean(axis=1)
    normalized = np.empty_like(values)
    np.put_along_axis(normalized, order, target[:, None], axis=0)
    merged = pd.DataFrame(normalized.astype(np.float32), index=merged.index, columns=merged.columns)
    del values, order, normalized
    t_qn = time.perf_counter()
    out = folder / "baseline_out"
    (out / "ALL").mkdir(parents=True)
    merged.to_csv(out / "ALL" / "ALL.tsv", sep="\t", index_label="Gene")
    t_tsv = time.perf_counter()
    archive = shutil.make_archive(str(folder / "baseline"), "zip", out)
    t_zip = time.perf_counter()
    return {
        "phases": {
            "read per-sample TSVs": t_read - t_start,
            "successive inner merges": t_merge - t_read,
            "QN": t_qn - t_merge,
            "to_csv TSV": t_tsv - t_qn,
            "zip": t_zip - t_tsv,
        },
        "total": t_zip - t_start,
        "cpu": _cpu() - cpu_start,
        "genes": int(merged.shape[0]),
        "samples": int(merged.shape[1]),
        "zip_mb": Path(archive).stat().st_size / 1e6,
        "peak_mb": _peak_mb(),
    }


def _child(side: str, folder: Path, experiments: list[str]) -> dict[str, object]:
    command = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--folder",
        str(folder),
        "--experiments",
        ",".join(experiments),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(genemill: dict[str, object], baseline: dict[str, object], args: argparse.Namespace) -> None:
    shape = f"{args.samples} samples x {args.genes} genes"
    print(f"GENERATED data: {shape} (10 % on a platform lacking 15 % of the genes)")
    for name, result in (("genemill", genemill), ("baseline (refine.bio-style)", baseline)):
        kept = f"{result['samples']} samples x {result['genes']} genes kept"
        print(f"\n{name}: {kept}, zip {result['zip_mb']:.1f} MB")
        for phase, seconds in result["phases"].items():  # type: ignore[union-attr]
            print(f"  {phase:<28} {seconds:8.2f} s")
        print(
            f"  {'total (end to end)':<28} {result['total']:8.2f} s   peak memory {result['peak_mb']:.0f} MB"
        )
        print(f"  {'CPU time (user + system)':<28} {result['cpu']:8.2f} s")
        if "peak_mb_before_phase" in result:
            marks = ", ".join(f"{k} {v:.0f}" for k, v in result["peak_mb_before_phase"].items())  # type: ignore[union-attr]
            print(f"  peak memory (MB) reached before: {marks}")
    speed = float(baseline["total"]) / float(genemill["total"])  # type: ignore[arg-type]
    memory = float(genemill["peak_mb"]) / float(baseline["peak_mb"])  # type: ignore[arg-type]
    cpu = float(baseline["cpu"]) / float(genemill["cpu"])  # type: ignore[arg-type]
    print(f"\nspeed-up end to end: {speed:.1f}x (target >= 10x); CPU time ratio {cpu:.1f}x")
    print(f"peak memory genemill / baseline: {memory:.2f} (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (the median run is reported)")
    parser.add_argument("--side", choices=["genemill", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--experiments", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "genemill":
        print(json.dumps(run_genemill(args.folder, args.experiments.split(","))))
        return
    if args.side == "baseline":
        print(json.dumps(run_baseline(args.folder)))
        return
    folder = Path(tempfile.mkdtemp(prefix="genemill-bench-datasets-GENERATED-"))
    try:
        started = time.perf_counter()
        info = generate(folder, args.samples, args.genes)
        print(f"generated inputs in {time.perf_counter() - started:.1f} s under {folder}", flush=True)
        runs: dict[str, list[dict[str, object]]] = {"genemill": [], "baseline": []}
        for _ in range(args.repeat):  # alternate the sides so that both see the same machine load
            for side in runs:
                shutil.rmtree(folder / f"{side}_out", ignore_errors=True)
                (folder / "baseline.zip").unlink(missing_ok=True)
                runs[side].append(_child(side, folder, info["experiments"]))  # type: ignore[arg-type]
        for side, results in runs.items():
            totals = ", ".join(f"{float(r['total']):.1f}" for r in results)  # type: ignore[arg-type]
            cpus = ", ".join(f"{float(r['cpu']):.1f}" for r in results)  # type: ignore[arg-type]
            print(f"{side} end-to-end wall times (s): {totals}; CPU times (s): {cpus}")
        median = {side: sorted(r, key=lambda x: float(x["total"]))[len(r) // 2] for side, r in runs.items()}  # type: ignore[arg-type]
        _report(median["genemill"], median["baseline"], args)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("GENEMILL_BENCH_VERBOSE"):
            print(folder)


if __name__ == "__main__":
    main()
