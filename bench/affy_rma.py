"""Benchmark genemill RMA against Bioconductor ``affy::justRMA`` on the same CEL files.

Each side runs in its own process, one after the other: genemill's ``affy.rma`` (CDF layout
loaded from the .npz cache beforehand) and R's ``justRMA`` (CDF environment built with
``makecdfenv::make.cdf.env`` beforehand, R_THREADS=2; only ``justRMA`` is timed). Peak RSS is the
process's VmHWM, reset (``/proc/self/clear_refs``) just before the timed call, so it covers the
timed call plus whatever the process already held. The two results are compared number by number.

Datasets: the real arrays in data/affy-hg-focus (2 arrays) and data/affy-hu6800 (1 array), and
GENERATED HG-U133 Plus 2.0-shaped sets of 9 and 100 arrays (bench/generate_affy.py; written to
--work, never committed).

    python bench/affy_rma.py [--sizes 9 100] [--repeat 1] [--work /tmp/genemill-bench-affy]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from generate_affy import generate  # noqa: E402

R_SCRIPT = r"""
args <- commandArgs(TRUE)
cdf_dir <- args[1]; cdf_file <- args[2]; cdfname <- args[3]; out <- args[4]; cels <- args[-(1:4)]
suppressPackageStartupMessages({library(affy); library(makecdfenv)})
env <- make.cdf.env(cdf_file, cdf.path = cdf_dir, verbose = FALSE)
assign(cdfname, env, envir = .GlobalEnv)
setwd(dirname(cels[1]))
invisible(gc())
cat("5", file = "/proc/self/clear_refs")
t <- system.time(e <- justRMA(filenames = basename(cels), cdfname = cdfname, verbose = FALSE))
status <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)
hwm <- as.numeric(sub("VmHWM:\\s*([0-9]+) kB", "\\1", status))
cpu <- t[["user.self"]] + t[["sys.self"]]
cat(sprintf('{"wall": %.3f, "cpu": %.3f, "peak_mb": %.1f}\n', t[["elapsed"]], cpu, hwm / 1024))
write.table(format(exprs(e), digits = 17), out, sep = "\t", quote = FALSE, col.names = NA)
"""


@dataclass(frozen=True)
class Dataset:
    name: str
    cdf: Path
    cels: list[Path]
    r_cdfname: str


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mb: float
    table: Path


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def genemill_worker(args: argparse.Namespace) -> None:
    """Child process: time affy.rma and print a JSON line (wall, cpu, peak)."""
    from genemill import affy

    layout = affy.read_cdf(args.cdf, cache_dir=args.cache)
    Path("/proc/self/clear_refs").write_text("5")
    wall, cpu = time.perf_counter(), time.process_time()
    table = affy.rma(args.cels, cdf=layout, workers=2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak_mb()}))
    table.to_csv(args.out, sep="\t", float_format="%.17g")


def run_genemill(data: Dataset, cache: Path, out: Path) -> Run:
    subprocess.run(  # warm the CDF cache outside the timed process
        [
            sys.executable,
            "-c",
            f"from genemill import affy; affy.read_cdf({str(data.cdf)!r}, cache_dir={str(cache)!r})",
        ],
        check=True,
    )
    command = [sys.executable, __file__, "--worker", "--cdf", str(data.cdf), "--cache", str(cache)]
    command += ["--out", str(out), "--cels", *map(str, data.cels)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(stats["wall"], stats["cpu"], stats["peak_mb"], out)


def run_r(data: Dataset, work: Path, out: Path) -> Run:
    cdf_dir = work / f"r-cdf-{data.name}"
    cdf_dir.mkdir(exist_ok=True)
    cdf_plain = cdf_dir / data.cdf.name.removesuffix(".gz")
    fresh = cdf_plain.exists() and cdf_plain.stat().st_mtime >= data.cdf.stat().st_mtime
    if not fresh:  # makecdfenv here is built without zlib
        opener = gzip.open if data.cdf.name.endswith(".gz") else open
        with opener(data.cdf, "rb") as source, cdf_plain.open("wb") as target:
            shutil.copyfileobj(source, target)
    script = work / "justrma.R"
    script.write_text(R_SCRIPT)
    cel_dir = work / f"r-cel-{data.name}"  # justRMA wants the CELs of one run in one folder
    cel_dir.mkdir(exist_ok=True)
    for cel in data.cels:
        link = cel_dir / cel.name
        if not link.exists():
            link.symlink_to(cel.resolve())
    command = ["Rscript", str(script), str(cdf_dir), cdf_plain.name, data.r_cdfname, str(out)]
    command += [str(cel_dir / cel.name) for cel in data.cels]
    done = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, "R_THREADS": "2"}
    )
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(stats["wall"], stats["cpu"], stats["peak_mb"], out)


def max_difference(ours: Path, theirs: Path) -> float:
    a = pd.read_csv(ours, sep="\t", index_col=0)
    b = pd.read_csv(theirs, sep="\t", index_col=0)
    b.columns = [
        Path(c).name.removesuffix(".gz").removesuffix(".CEL").removesuffix(".cel") for c in b.columns
    ]
    return float(np.abs(a.loc[b.index, b.columns].to_numpy() - b.to_numpy()).max())


def datasets(work: Path, sizes: list[int]) -> list[Dataset]:
    found = [
        Dataset(
            "HG-Focus (real)",
            REPO / "data/affy-hg-focus/HG-Focus.CDF.gz",
            sorted((REPO / "data/affy-hg-focus").glob("*.CEL.gz")),
            "hgfocuscdf",
        ),
        Dataset(
            "Hu6800 (real)",
            REPO / "data/affy-hu6800/Hu6800.CDF.gz",
            [REPO / "data/affy-hu6800/T1_r1.CEL.gz"],
            "hu6800cdf",
        ),
    ]
    for size in sizes:
        cdf, cels = generate(work, size)
        found.append(Dataset(f"GENERATED Plus2-shaped x{size}", cdf, cels, "generatedplus2cdf"))
    return found


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[9, 100])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "genemill-bench-affy")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cdf", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cels", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        genemill_worker(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} CPUs (shared machine)")
    header = (
        "dataset                         arrays | genemill wall  cpu  peakMB |  justRMA wall   cpu  peakMB |"
    )
    print(header + " speed-up  mem ratio  max|diff|")
    for data in datasets(args.work, args.sizes):
        slug = "".join(ch for ch in data.name if ch.isalnum())
        for cel in data.cels:  # both sides read from the page cache, not from disk
            cel.read_bytes()
        ours = best(
            [
                run_genemill(data, args.work / "cdf-cache", args.work / f"{slug}.gm.tsv")
                for _ in range(args.repeat)
            ]
        )
        theirs = best([run_r(data, args.work, args.work / f"{slug}.R.tsv") for _ in range(args.repeat)])
        print(
            f"{data.name:32s} {len(data.cels):5d} | {ours.wall:12.2f} {ours.cpu:5.1f} {ours.peak_mb:7.0f} |"
            f" {theirs.wall:12.2f} {theirs.cpu:5.1f} {theirs.peak_mb:7.0f} |"
            f" {theirs.wall / ours.wall:7.1f}x {ours.peak_mb / theirs.peak_mb:9.2f}"
            f"  {max_difference(ours.table, theirs.table):.1e}",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
