"""Salmon, the external tool: its version, ``salmon quant`` on one sample's reads, and its QC.

Command (Salmon >= 1.0, selective alignment; the options refine.bio uses for FASTQ input)::

    salmon --no-version-check quant -l A -i <index> (-r <reads> | -1 <mate 1> -2 <mate 2>)
           --seqBias [--gcBias] -p <threads> -o <out>

A sample sequenced in several runs is quantified once over all of them: Salmon takes several
files per option (``-r a.fq b.fq``, or ``-1 a_1 b_1 -2 a_2 b_2`` with the mates in the same run
order), so its runs must share one layout; a mix of single- and paired-end runs is refused.

``-l A`` lets Salmon infer the library type; ``--seqBias`` corrects random-hexamer priming bias;
``--gcBias`` (fragment GC bias) is used for every paired-end run and never for single-end runs,
where Salmon documents it as unsupported — so a dataset's runs of one layout are quantified
alike. ``--no-version-check`` keeps Salmon off the network.

Salmon quantifies whatever it could read: a truncated FASTQ, a gzip stream without its trailer
or mates of different length all give exit status 0. genemill therefore checks the FASTQ files
itself (:mod:`genemill.formats.fastq`) *while* Salmon runs, in a thread started just after Salmon
(zlib inflates with the GIL released, and waiting on Salmon holds no GIL), and a failed check wins
over Salmon's result. The caller may give other work that does not need Salmon's output
(``meanwhile``) to be done in the main thread while Salmon runs. Salmon's output is written to
a temporary directory next to the destination and renamed into place only when both succeeded.

QC read from ``aux_info/meta_info.json`` and ``lib_format_counts.json``: ``percent_mapped``,
``num_processed`` and ``num_mapped`` fragments, the detected library type. A run whose mapping rate
is below :data:`MIN_MAPPING_RATE` (30 %) is flagged; the caller refuses it unless told otherwise.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast

from genemill.errors import InputError, ProcessingError, ToolError
from genemill.formats.fastq import FastqSummary, check_fastq, check_fastq_pair
from genemill.formats.salmon import read_salmon_lib_format_counts, read_salmon_meta_info

__all__ = [
    "MIN_MAPPING_RATE",
    "QUANT_MARKER",
    "Runs",
    "SalmonQc",
    "SalmonQuant",
    "ToolRun",
    "as_runs",
    "check_reads",
    "check_runs",
    "quant_arguments",
    "quantify_reads",
    "read_salmon_qc",
    "run_salmon",
    "salmon_executable",
    "salmon_qc_from_files",
    "salmon_version",
]

MIN_MAPPING_RATE = 0.30
QUANT_MARKER = "genemill_quant.json"
_TAIL = 2000
_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")


@dataclass(frozen=True)
class ToolRun:
    """One finished external command: arguments, exit status, wall time in seconds, output."""

    args: tuple[str, ...]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    shadowed: bool = True
    """False when the command had already exited once the work done meanwhile ended: ``seconds``
    then runs to the end of that work (an upper bound of the command's own time)."""


_FOUND: dict[str, str] = {}  # PATH -> where salmon was found on it


def salmon_executable() -> str:
    """Absolute path of ``salmon`` on PATH.

    Remembered per PATH while it is still an executable file there: a lookup walks every PATH
    folder, and a quantification asks several times.
    """
    search = os.environ.get("PATH", os.defpath)
    found = _FOUND.get(search)
    if found is None or not os.access(found, os.X_OK):
        found = shutil.which("salmon", path=search)
        if found is None:
            msg = "salmon is not installed (not on PATH): install Salmon >= 1.0 (e.g. `apt install salmon`)"
            raise ProcessingError(msg, step="salmon")
        _FOUND[search] = found
    return found


@functools.cache
def _version_of(executable: str) -> str:
    run = run_salmon(["--version"], what="salmon --version", executable=executable)
    words = (run.stdout + run.stderr).split()
    if len(words) < 2 or words[0] != "salmon":
        msg = f"`{executable} --version` printed {(run.stdout + run.stderr)[:80]!r}, expected 'salmon X.Y.Z'"
        raise ProcessingError(msg, step="salmon")
    return words[1]


def salmon_version() -> str:
    """The installed Salmon's version, e.g. ``1.10.1`` (asked once per executable)."""
    return _version_of(salmon_executable())


def run_salmon(
    args: list[str],
    *,
    what: str,
    sample: str | None = None,
    executable: str | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> ToolRun:
    """Run ``salmon <args>``; return the finished run, or raise ToolError with the output's tail.

    ``meanwhile`` is called once Salmon has started, before waiting for it: work that does not
    need Salmon's output is then done in its shadow (``seconds`` still runs from the start to
    Salmon's exit, or to the end of ``meanwhile`` should that be later: ``shadowed`` is then
    False). If it raises, Salmon is stopped and the error goes on.
    """
    command = (executable or salmon_executable(), *args)
    # Output to files, not pipes: nobody reads a pipe while ``meanwhile`` runs, and a full pipe
    # would stall Salmon until it ended.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        with subprocess.Popen(command, stdout=out, stderr=err) as process:
            try:
                if meanwhile is not None:
                    meanwhile()
                shadowed = process.poll() is None
                process.wait()
            except BaseException:
                process.kill()
                process.wait()
                raise
        seconds = time.perf_counter() - start
        stdout, stderr = (_read_text(handle) for handle in (out, err))
    run = ToolRun(command, process.returncode, seconds, stdout, stderr, shadowed)
    if run.returncode != 0:
        tail = (run.stderr + run.stdout)[-_TAIL:]
        msg = f"{what} exited with status {run.returncode}: {_last_complaint(run)}"
        raise ToolError(msg, returncode=run.returncode, stderr_tail=tail, sample=sample)
    return run


def _read_text(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", errors="replace")


def _last_complaint(run: ToolRun) -> str:
    """The last warning/error line Salmon logged (its logger writes to stdout and stderr)."""
    lines = [line.strip() for line in (run.stderr + "\n" + run.stdout).splitlines() if line.strip()]
    flagged = [line for line in lines if "[error]" in line or "[critical]" in line or "[warning]" in line]
    chosen = flagged[-1] if flagged else (lines[-1] if lines else "no output")
    return _LOG_PREFIX.sub("", chosen)  # drop "[time] [logger] [level] "


@dataclass(frozen=True)
class SalmonQc:
    """One quantification's statistics (``mapping_rate`` is a fraction, 0–1)."""

    salmon_version: str | None
    library_type: str | None
    num_processed: int | None
    num_mapped: int | None
    mapping_rate: float | None
    compatible_fragment_ratio: float | None
    strand_mapping_bias: float | None
    num_targets: int | None

    @classmethod
    def unknown(cls) -> SalmonQc:
        """No statistics (a quant.sf imported without Salmon's side files)."""
        return cls(None, None, None, None, None, None, None, None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (stored in ``sample.qc``)."""
        return asdict(self)


def read_salmon_qc(out_dir: Path) -> SalmonQc:
    """Read the QC of a Salmon output folder (``aux_info/meta_info.json`` must be there)."""
    meta_path = out_dir / "aux_info" / "meta_info.json"
    if not meta_path.is_file():
        msg = f"{out_dir}: no aux_info/meta_info.json (not a complete Salmon output directory)"
        raise InputError(msg)
    lib_path = out_dir / "lib_format_counts.json"
    return salmon_qc_from_files(meta_path, lib_path if lib_path.is_file() else None)


def salmon_qc_from_files(meta_info: Path, lib_format_counts: Path | None = None) -> SalmonQc:
    """QC from a ``meta_info.json`` and, when given, a ``lib_format_counts.json``."""
    with meta_info.open("rb") as fh:
        meta = read_salmon_meta_info(fh)
    counts = None
    if lib_format_counts is not None:
        with lib_format_counts.open("rb") as fh:
            counts = read_salmon_lib_format_counts(fh)
    library = counts.expected_format if counts and counts.expected_format else None
    return SalmonQc(
        salmon_version=meta.salmon_version,
        library_type=library or (meta.library_types[0] if meta.library_types else None),
        num_processed=meta.num_processed,
        num_mapped=meta.num_mapped,
        mapping_rate=None if meta.percent_mapped is None else meta.percent_mapped / 100.0,
        compatible_fragment_ratio=counts.compatible_fragment_ratio if counts else None,
        strand_mapping_bias=counts.strand_mapping_bias if counts else None,
        num_targets=meta.num_targets,
    )


Runs = list[list[Path]]


def as_runs(reads: list[Path] | Runs) -> Runs:
    """``reads`` as a list of runs: a flat list of paths is one run (one file, or two mates)."""
    if all(isinstance(read, Path) for read in reads):
        return [cast("list[Path]", list(reads))]
    return [list(cast("list[Path]", run)) for run in reads]


def _layout_of(runs: Runs) -> int:
    """Files per run (1 single-end, 2 paired-end), the same for every run, else InputError."""
    sizes = {len(run) for run in runs}
    if len(sizes) != 1 or not runs:
        described = "; ".join(f"{_names(run)} ({len(run)} file(s))" for run in runs) or "no runs"
        msg = f"runs quantified together must share one layout (all single- or all paired-end): {described}"
        raise InputError(msg)
    return sizes.pop()


def check_runs(runs: Runs) -> list[FastqSummary]:
    """Check every run's files completely (:func:`check_reads`); one summary per run."""
    return [check_reads(run) for run in runs]


def _total(summaries: list[FastqSummary]) -> FastqSummary:
    return FastqSummary(
        sum(s.n_reads for s in summaries), sum(s.n_bases for s in summaries), summaries[0].n_files
    )


def check_reads(reads: list[Path]) -> FastqSummary:
    """Check one FASTQ file or a mate pair completely (see :mod:`genemill.formats.fastq`)."""
    if len(reads) == 1:
        with reads[0].open("rb") as fh:
            return check_fastq(fh)
    if len(reads) == 2:
        with reads[0].open("rb") as first, reads[1].open("rb") as second:
            return check_fastq_pair(first, second)
    msg = f"a run has one FASTQ file (single-end) or two (paired-end), found {len(reads)}: {reads}"
    raise InputError(msg)


@dataclass(frozen=True)
class SalmonQuant:
    """A finished ``salmon quant``: output folder, QC, what the FASTQ check counted, timings.

    ``reads`` is the total over the runs, ``run_reads`` each run's count (in input order).
    """

    out_dir: Path
    qc: SalmonQc
    reads: FastqSummary
    salmon_seconds: float
    parameters: dict[str, Any]
    run_reads: tuple[FastqSummary, ...] = ()
    shadowed: bool = True  # Salmon outlasted the work done meanwhile (ToolRun.shadowed)

    @property
    def quant_sf(self) -> Path:
        return self.out_dir / "quant.sf"


def quant_arguments(reads: list[Path] | Runs, index_dir: Path, out_dir: Path, *, threads: int) -> list[str]:
    """The ``salmon quant`` arguments genemill uses (see the module docstring).

    ``reads`` is one run's files, or a list of runs of one layout (quantified together).
    """
    runs = as_runs(reads)
    paired = _layout_of(runs) == 2
    if paired:
        layout = ["-1", *(str(run[0]) for run in runs), "-2", *(str(run[1]) for run in runs)]
    else:
        layout = ["-r", *(str(run[0]) for run in runs)]
    bias = ["--seqBias", "--gcBias"] if paired else ["--seqBias"]
    return [
        "--no-version-check", "quant", "-l", "A", "-i", str(index_dir), *layout, *bias,
        "-p", str(threads), "-o", str(out_dir),
    ]  # fmt: skip


def quantify_reads(
    reads: list[Path] | Runs,
    index_dir: Path,
    out_dir: Path,
    *,
    threads: int,
    sample: str | None = None,
    record: dict[str, Any] | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> SalmonQuant:
    """Run ``salmon quant`` for one run, or several runs of one layout, into ``out_dir`` (replaced
    atomically), checking the FASTQs.

    Raises
    ------
    FormatError
        A FASTQ file is malformed or truncated, or the mates disagree (checked alongside Salmon).
    ToolError
        Salmon exited non-zero (e.g. too few fragments assigned to the index).
    ProcessingError
        Salmon processed a different number of fragments than the FASTQ holds (all runs together).

    ``out_dir/genemill_quant.json`` records the options, the read counts (total and per run) and
    ``record``. Salmon is started first; the FASTQ check thread and then ``meanwhile`` (work
    that does not need this quantification, :func:`run_salmon`) follow while it runs.
    """
    runs = as_runs(reads)
    if _layout_of(runs) not in (1, 2):
        check_reads(runs[0])  # raises the layout error
    files = [path for run in runs for path in run]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        args = quant_arguments(runs, index_dir, work, threads=threads)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastq-check") as pool:
            checked: list[Future[list[FastqSummary]]] = []

            def alongside() -> None:
                checked.append(pool.submit(check_runs, runs))
                if meanwhile is not None:
                    meanwhile()

            try:
                run = run_salmon(
                    args, what=f"salmon quant ({_names(files)})", sample=sample, meanwhile=alongside
                )
            finally:
                # A bad FASTQ is the cause to report, if there is one; checked anyway if need be.
                per_run = checked[0].result() if checked else check_runs(runs)
        summary = _total(per_run)
        qc = read_salmon_qc(work)
        _check_processed(qc, summary, files, sample)
        parameters = {
            "library_type": "A",
            "seq_bias": True,
            "gc_bias": len(runs[0]) == 2,
            "threads": threads,
            "salmon_version": qc.salmon_version,
        }
        counted = {
            "reads": [str(path) for path in files],
            "n_reads": summary.n_reads,
            "n_bases": summary.n_bases,
            "runs": [{"n_reads": s.n_reads, "n_bases": s.n_bases, "n_files": s.n_files} for s in per_run],
        }
        _write_marker(work, parameters | counted | (record or {}))
        _replace_dir(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return SalmonQuant(out_dir, qc, summary, run.seconds, parameters, tuple(per_run), run.shadowed)


def _names(reads: list[Path]) -> str:
    return ", ".join(str(path) for path in reads)


def _check_processed(qc: SalmonQc, summary: FastqSummary, reads: list[Path], sample: str | None) -> None:
    if qc.num_processed is not None and qc.num_processed != summary.n_reads:
        msg = (
            f"salmon quant processed {qc.num_processed} fragments of {_names(reads)}, but the FASTQ "
            f"holds {summary.n_reads}"
        )
        raise ProcessingError(msg, sample=sample, step="salmon quant")


def _write_marker(work: Path, content: dict[str, Any]) -> None:
    (work / QUANT_MARKER).write_text(json.dumps(content, indent=1, sort_keys=True))


def _replace_dir(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; an older ``target`` is renamed aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    source.rename(target)
    if old is not None:
        shutil.rmtree(old)
