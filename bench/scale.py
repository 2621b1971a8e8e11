"""Scale-out benchmark on GENERATED HG-U133 Plus 2.0-sized arrays (1164 x 1164 cells): nothing here is real.

1. **Per-sample MAS5 through the job queue on Dask**: ``--arrays`` GENERATED CELs (made by
   ``bench/generate_affy.py``) are imported as one private experiment, then processed with
   ``genemill.pipeline.process.process_experiments(method="mas5")`` -- what ``genemill process
   --method mas5 --scheduler ...`` runs: one durable job per array, SQLite or the ``--database-url``
   queue -- on a ``distributed.LocalCluster`` of 1, then 2 worker processes (one thread each,
   ``MEMORY`` resource 4096 MB each, genemill's ``DASK_CONFIG``). Prints arrays/s, the speed-up over
   one worker and the peak RSS of each worker process (its ``VmHWM``, read after the run).
   First the MAS5 kernel alone is timed on one array in this process (the machine's speed for
   the work itself: the per-array costs of the runner and Dask are fixed, so the speed-up depends
   on it). Workers import genemill before the clock starts; every run processes all arrays (``force``). Also
   prints the workers' CPU seconds per array and their CPU share (CPU seconds / (wall x workers)),
   which shows when other load on the machine, not genemill, limited the speed-up, the CPU seconds
   per array of this process (the runner, the Dask client and the LocalCluster's scheduler: what
   competes with the workers for the cores) and of everything else on the machine (``/proc/stat``;
   the PostgreSQL server among it), and ``/proc/loadavg`` before and after every run: a run on a
   loaded machine is recognizable. A run that fails is reported and the others still run.
2. **Bounded-memory RMA** (``--rma-arrays K``, 0 to skip): in fresh subprocesses, in-memory
   ``numerics.rma.rma`` vs ``numerics.rma_chunked.rma_chunked`` (memmap scratch, 4 arrays per
   chunk) on K GENERATED arrays; prints wall time, the RSS high-water mark while RMA runs
   (``VmHWM``, reset after the CDF is loaded; it counts the memmap's page-cache pages), the peak
   resident anonymous memory (``RssAnon`` sampled every 5 ms) and max |difference|.

    python bench/scale.py --arrays 200 --workers 1 2 --repeat 3 --rma-arrays 40 --out /tmp/gm-scale

With ``--repeat N`` the worker counts are run in N alternating rounds and the speed-up compares
the median throughputs (a shared VM's slow spells otherwise decide a single pair of runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_affy  # bench/generate_affy.py: the GENERATED CDF + CEL writer


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (psutil, else /proc/<pid>/stat)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (``/proc/stat``: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    """The process's resident-set high-water mark (``VmHWM``): its exact peak, with no sampling.

    Read once after the run: a sampling thread in this process would compete with the workers for
    the cores (the 0.1 s sampler it replaces cost ~1 ms of CPU per array).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _warm() -> int:
    import importlib

    for module in ("genemill.pipeline.sample_jobs", "genemill.pipeline.affymetrix", "genemill.numerics.mas5"):
        importlib.import_module(module)
    return os.getpid()


def _kernel_ms(cdf: Path, cels: list[Path], cache_dir: Path, *, arrays: int = 5) -> float:
    """Median wall ms of the MAS5 kernel alone on one GENERATED array, in this process.

    The machine's speed for the work itself: the per-array costs of the runner and of Dask are
    fixed, so their share, and with it the speed-up, depends on it.
    """
    from genemill import affy
    from genemill.pipeline.affymetrix import mas5_on_layout
    from genemill.pipeline.heap import keep_temporaries_on_heap

    keep_temporaries_on_heap()
    layout = affy.read_cdf(cdf, cache_dir=cache_dir)
    times = []
    for path in cels[: arrays + 1]:  # the first call also makes the CDF's plan: not timed
        intensities = affy.read_cel(path).intensities
        started = time.perf_counter()
        mas5_on_layout(intensities, layout)
        times.append(time.perf_counter() - started)
    times = times[1:]
    return 1000 * statistics.median(times)


def _loadavg() -> str:
    """``/proc/loadavg`` as is (1, 5, 15-minute load, running/total tasks, last pid)."""
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(settings, db, accession: str, n_workers: int, *, force: bool) -> dict:
    import dask
    from distributed import Client, LocalCluster

    from genemill.pipeline.dask_executor import DASK_CONFIG, DaskExecutor
    from genemill.pipeline.process import process_experiments

    settings = settings.model_copy(update={"workers": 2 * n_workers})
    load_before = _loadavg()
    with (
        dask.config.set(DASK_CONFIG),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            resources={"MEMORY": 4096},
        ) as cluster,
    ):
        with Client(cluster) as client:
            client.wait_for_workers(n_workers, timeout=300)
            pids = client.run(_warm)
        executor = DaskExecutor(cluster=cluster, db=db)
        try:
            cpu_before = sum(_cpu_seconds(pid) for pid in pids.values())
            driver_before, machine_before = _cpu_seconds(os.getpid()), _machine_busy_seconds()
            started = time.perf_counter()
            run = process_experiments(
                settings, db, [accession], method="mas5", executor=executor, force=force
            )
            seconds = time.perf_counter() - started
            cpu = sum(_cpu_seconds(pid) for pid in pids.values()) - cpu_before
            driver = _cpu_seconds(os.getpid()) - driver_before
            machine = _machine_busy_seconds() - machine_before
            peaks = [_peak_rss_mb(pid) for pid in pids.values()]  # before the workers exit
        finally:
            executor.shutdown()
    report = run.samples[accession]
    return {
        "workers": n_workers,
        "seconds": seconds,
        "processed": len(report.processed),
        "refused": len(report.refused),
        "failed_jobs": len(run.summary.failed),
        "peak_rss_mb": sorted(peaks),
        "worker_cpu_s_per_array": cpu / max(1, len(report.processed)),
        "worker_cpu_share": cpu / (seconds * n_workers),
        "driver_cpu_s_per_array": driver / max(1, len(report.processed)),
        "other_cpu_s_per_array": (machine - cpu - driver) / max(1, len(report.processed)),
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }


def scale(args: argparse.Namespace) -> None:
    from genemill.config import Settings
    from genemill.pipeline.private import create_cel_experiment
    from genemill.store.db import Database

    started = time.perf_counter()
    cdf, cels = generate_affy.generate(args.out / "affy", args.arrays)
    took = time.perf_counter() - started
    print(f"GENERATED data: {len(cels)} CELs + CDF in {args.out / 'affy'} ({took:.0f} s)")
    home = args.out / "home"  # the benchmark's own scratch home: started afresh
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, database_url=args.database_url)
    db = Database(settings.resolved_database_url)
    db.migrate()
    started = time.perf_counter()
    accession = create_cel_experiment(settings, db, cels, title="GENERATED Plus2-sized arrays", cdf=cdf)
    print(f"imported as {accession} in {time.perf_counter() - started:.0f} s (copies + sha256 + CDF cache)")
    kernel = _kernel_ms(cdf, cels, args.out / "cdf-cache")
    print(f"MAS5 kernel alone, one array in this process: {kernel:.0f} ms (median of 5)")
    rows = []
    # Rounds alternate the worker counts (1, 2, 1, 2, ...): a slow spell of the machine then
    # falls on both, and the summary compares medians.
    for n_workers in [n for _ in range(args.repeat) for n in args.workers]:
        try:
            row = _run(settings, db, accession, n_workers, force=True)
        except Exception as exc:  # noqa: BLE001 (report it and go on with the other worker counts)
            print(f"{n_workers} worker(s): FAILED: {type(exc).__name__}: {exc}")
            continue
        row["arrays_per_s"] = row["processed"] / row["seconds"]
        rows.append(row)
        print(json.dumps(row))
        if row["processed"] != len(cels):
            print(f"WARNING: {row['processed']} of {len(cels)} arrays processed ({row['refused']} refused)")
    db.dispose()
    if not rows:
        print("no run finished")
        return
    medians = {
        n: statistics.median(r["arrays_per_s"] for r in rows if r["workers"] == n)
        for n in sorted({r["workers"] for r in rows})
    }
    base = medians.get(1)
    print(
        f"\n{'workers':>7} {'seconds':>8} {'arrays/s':>9} {'speed-up':>9} {'CPU s/array':>12} "
        f"{'CPU share':>10} {'driver CPU':>10} {'other CPU':>10}  peak RSS per worker (MB)"
    )
    for row in rows:
        peaks = ", ".join(f"{p:.0f}" for p in row["peak_rss_mb"])
        speed_up = f"{row['arrays_per_s'] / base:>8.2f}x" if base else f"{'n/a':>9}"
        print(
            f"{row['workers']:>7} {row['seconds']:>8.1f} {row['arrays_per_s']:>9.3f} "
            f"{speed_up} {row['worker_cpu_s_per_array']:>12.2f} "
            f"{row['worker_cpu_share']:>10.2f} {row['driver_cpu_s_per_array']:>10.3f} "
            f"{row['other_cpu_s_per_array']:>10.3f}  {peaks}"
        )
    print("CPU share = worker CPU seconds / (wall seconds x workers): below 1 means the workers waited")
    print(
        "driver CPU = this process per array (the runner's queue bookkeeping, the Dask client, and the "
        "LocalCluster's scheduler and nannies); other CPU = every other process on the machine per "
        "array (the database server, the kernel's writeback, anything else running)"
    )
    print(f"\n{'workers':>7}  /proc/loadavg before run -> after run")
    for row in rows:
        print(f"{row['workers']:>7}  {row['loadavg_before']}  ->  {row['loadavg_after']}")
    if 1 in medians and 2 in medians:
        one, two = medians[1], medians[2]
        peak = max(max(r["peak_rss_mb"]) for r in rows)
        runs = sum(1 for r in rows if r["workers"] == 1)
        print(
            f"\nthroughput (median of {runs} run(s) each): 1 worker {one:.3f} arrays/s, "
            f"2 workers {two:.3f} arrays/s; speed-up {two / one:.2f}x (target >= 1.8x); "
            f"peak RSS per worker {peak:.0f} MB (target < 2048 MB)"
        )
    busy = [r for r in rows if float(r["loadavg_before"].split()[0]) > 0.5]
    if busy:
        print(
            f"NOTE: the 1-minute load was above 0.5 before {len(busy)} run(s) on {os.cpu_count()} CPUs: "
            "other work shared the machine, so the speed-up is not a clean measurement"
        )


CHILD = """
import json, sys, threading, time
from pathlib import Path
import numpy as np
from genemill import affy
from genemill.numerics.rma import rma
from genemill.numerics.rma_chunked import rma_chunked

def status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def peak_mb():
    # VmHWM belongs to this process's memory map (ru_maxrss would carry the parent's peak over exec)
    return status_mb("VmHWM")

anon = {"peak": 0.0}
stop = threading.Event()
def sample_anon():
    # resident anonymous memory only: file pages of the memmap scratch can be written back and dropped
    while not stop.wait(0.005):
        anon["peak"] = max(anon["peak"], status_mb("RssAnon"))

mode, cdf, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cels = sys.argv[4:]
layout = affy.read_cdf(cdf, cache_dir=out / "cdf-cache")
after_layout = peak_mb()
Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark: measure RMA alone
baseline = peak_mb()
def load(start, stop):
    return np.column_stack([affy.read_cel(p).intensities[layout.pm_index] for p in cels[start:stop]])
anon_before = status_mb("RssAnon")
sampler = threading.Thread(target=sample_anon, daemon=True)
sampler.start()
started = time.perf_counter()
if mode == "memory":
    result = rma(load(0, len(cels)), layout.offsets, workers=1, overwrite_input=True)
else:
    scratch = np.memmap(out / "scratch.f64", dtype=np.float64, mode="w+", order="F",
                        shape=(layout.pm_index.size, len(cels)))
    result = rma_chunked(load, layout.offsets, n_arrays=len(cels), scratch=scratch, chunk_arrays=4)
seconds = time.perf_counter() - started
stop.set()
sampler.join()
np.save(out / f"{mode}.npy", result)
print(json.dumps({"mode": mode, "seconds": round(seconds, 2), "rss_before_mb": round(baseline),
                  "peak_rss_during_rma_mb": round(peak_mb()),
                  "anon_rss_before_mb": round(anon_before),
                  "peak_anon_rss_during_rma_mb": round(anon["peak"]),
                  "peak_rss_loading_cdf_mb": round(after_layout)}))
"""


def rma_memory(args: argparse.Namespace) -> None:
    import numpy as np

    cdf, cels = generate_affy.generate(args.out / "affy", args.rma_arrays)
    work = args.out / "rma"
    work.mkdir(parents=True, exist_ok=True)
    script = work / "child.py"
    script.write_text(CHILD)
    for mode in ("memory", "chunked"):
        done = subprocess.run(
            [sys.executable, str(script), mode, str(cdf), str(work), *map(str, cels)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"RMA of {len(cels)} GENERATED arrays: {done.stdout.strip()}")
    diff = np.nanmax(np.abs(np.load(work / "memory.npy") - np.load(work / "chunked.npy")))
    print(f"max |in-memory - chunked| = {diff:.2e}")
    (work / "scratch.f64").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrays", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="rounds over --workers (medians compared)")
    parser.add_argument("--rma-arrays", type=int, default=0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/genemill-bench-scale"))
    args = parser.parse_args()
    print(f"bench/scale.py: GENERATED data only; {os.cpu_count()} CPUs; /proc/loadavg at start: {_loadavg()}")
    if args.arrays:
        scale(args)
    if args.rma_arrays:
        rma_memory(args)
    print(f"this process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"/proc/loadavg at the end: {_loadavg()}")


if __name__ == "__main__":
    main()
