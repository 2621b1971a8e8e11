"""Benchmark: parse a GEO SOFT family file with genemill and with GEOparse.

Each measurement runs in a fresh ``python`` subprocess so that peak memory is that process's own
high-water mark (``VmHWM`` in ``/proc/self/status``, Linux). Three contenders:

* ``zlib``     - the floor: stream-inflate the file with ``zlib.decompressobj`` and discard it;
* ``genemill`` - ``genemill.formats.soft.read_soft_path`` (tables kept as raw bytes);
* ``GEOparse`` - ``GEOparse.get_GEO(filepath=...)`` (tables parsed into pandas DataFrames).

Reported per contender: parse time (best of ``--repeat`` runs, timed inside the child around the
parse call only; contenders interleaved round by round so background load hits them alike), RSS
after imports ("base"), peak RSS ("peak", worst of the runs) and peak minus base ("parse").
Targets: genemill >= 5x faster than GEOparse and <= 1/3 of its peak memory.

Usage: ``python bench/ingest_soft.py [FILE] [--repeat N]`` (default: GSE781_family.soft.gz).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "data" / "geo-soft" / "geoquery-extdata" / "GSE781_family.soft.gz"
TOOLS = ("zlib", "genemill", "GEOparse")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _inflate(path: Path) -> int:
    import zlib

    inflater, size = zlib.decompressobj(31), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 18):
            size += len(inflater.decompress(chunk))
    return size


def _child(tool: str, path: Path) -> None:
    """Run one contender and print one JSON line."""
    if tool == "genemill":
        from genemill.formats.soft import read_soft_path

        def run() -> str:
            meta = read_soft_path(path)
            rows = sum(s.table.n_rows for s in meta.samples if s.table)
            return f"{len(meta.samples)} samples, {len(meta.platforms)} platforms, {rows} sample rows"

    elif tool == "GEOparse":
        import GEOparse

        def run() -> str:
            gse = GEOparse.get_GEO(filepath=str(path), silent=True)
            rows = sum(len(g.table) for g in gse.gsms.values())
            return f"{len(gse.gsms)} samples, {len(gse.gpls)} platforms, {rows} sample rows"

    else:

        def run() -> str:
            return f"{_inflate(path)} bytes inflated"

    base = _status_mb("VmRSS")
    start = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - start
    result = Run(seconds=seconds, base_mb=base, peak_mb=_status_mb("VmHWM"), summary=summary)
    print(json.dumps(dataclasses.asdict(result)))


@dataclasses.dataclass(frozen=True)
class Run:
    """One child's measurement (or the best/worst over repeats)."""

    seconds: float
    base_mb: float
    peak_mb: float
    summary: str

    @property
    def parse_mb(self) -> float:
        return self.peak_mb - self.base_mb


def _once(tool: str, path: Path) -> Run:
    command = [sys.executable, __file__, str(path), "--child", tool]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return Run(**json.loads(out.stdout.strip().splitlines()[-1]))


def _measure(path: Path, repeat: int) -> dict[str, Run]:
    """Interleave the contenders round by round so background load hits them alike."""
    runs: dict[str, list[Run]] = {tool: [] for tool in TOOLS}
    for _ in range(repeat):
        for tool in TOOLS:
            runs[tool].append(_once(tool, path))
    return {
        tool: Run(
            seconds=min(r.seconds for r in each),
            base_mb=min(r.base_mb for r in each),
            peak_mb=max(r.peak_mb for r in each),
            summary=each[0].summary,
        )
        for tool, each in runs.items()
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.file)
        return
    size_mb = args.file.stat().st_size / 1e6
    print(f"{args.file.name}: {size_mb:.1f} MB compressed; best time / worst peak of {args.repeat} runs")
    results = _measure(args.file, args.repeat)
    print(f"{'':9} {'time s':>7} {'base MB':>8} {'peak MB':>8} {'parse MB':>9}  result")
    for tool, r in results.items():
        print(f"{tool:9} {r.seconds:7.3f} {r.base_mb:8.1f} {r.peak_mb:8.1f} {r.parse_mb:9.1f}  {r.summary}")
    ours, theirs, floor = results["genemill"], results["GEOparse"], results["zlib"]
    speedup, memory = theirs.seconds / ours.seconds, ours.peak_mb / theirs.peak_mb
    print(f"genemill vs GEOparse: {speedup:.1f}x faster (target >= 5x: {_verdict(speedup >= 5)})")
    print(f"peak RSS ratio: {memory:.2f} (target <= 0.33: {_verdict(memory <= 1 / 3)})")
    print(f"parse-only memory ratio (peak - base): {ours.parse_mb / theirs.parse_mb:.2f}")
    print(f"genemill time / zlib floor: {ours.seconds / floor.seconds:.2f}")


if __name__ == "__main__":
    main()
