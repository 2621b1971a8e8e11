"""Benchmark: genemill's own time around ``salmon quant`` on the bundled RNA-seq examples.

    .venv/bin/python bench/salmon_overhead.py [--repeat 5] [--threads 2]

For each example a private experiment is imported once and processed once to build (and cache)
the Salmon index. Then, ``--repeat`` times, alternating, two runs of
``process_rnaseq_experiment``, each running ``salmon quant`` for real:

* re-processing (first line): the cached quantification folder is deleted and the experiment
  processed again. Its sample stays ``PROCESSED``, so the search reindex is skipped
  (:func:`genemill.pipeline.ingest.finish_experiment`);
* first time (``first time`` line): a new experiment of the same reads is imported (not timed)
  and processed: its sample goes from new to processed, so the search row is rebuilt as well.

Printed for each:

* ``total``    — wall time of ``process_rnaseq_experiment`` (open the experiment, sample the read
  length, find the cached index, start ``salmon quant``, then the FASTQ check thread and, in the
  main thread while Salmon runs, the work that needs no quantification: tx2gene with its gene
  layout and Parquet gene columns, whether the search row exists; after Salmon: read QC,
  tximport, encode three Parquet files and write them in a thread while the result is recorded,
  refresh the counts, reindex if the states changed, commit);
* ``quant``    — wall time of the ``salmon quant`` subprocess alone, from its start to its exit
  (timed in :func:`genemill.pipeline.salmon.run_salmon`). Should the work done while Salmon runs
  ever outlast it, the excess would be counted in ``quant``, not in ``overhead`` (a WARNING says
  so);
* ``overhead`` — ``total - quant``, and as % of ``quant`` (target < 5 %);
* ``salmon CPU`` — user + system CPU time of ``salmon quant`` (its finished-children rusage), and
  the overhead as % of it: the stricter comparison. Salmon 1.10.1's wall time here is its CPU
  work plus zero, one or two 500 ms sleeps of its own threads (strace shows ``clock_nanosleep``;
  timed alone in a shell, 0.74 s or 1.24 s for 0.3 s of CPU), so ``quant`` varies between runs
  and machines while its CPU time does not;
* ``CPU``      — CPU time of the genemill process during ``total`` (all its threads, so the FASTQ
  check is included although it overlaps Salmon; Salmon's own CPU is a child's and excluded), and
  of the main thread alone: less sensitive than wall time to other processes competing for the
  cores.

Also printed, for scale: the one-off import (copying FASTQs into the file store, registering the
reference), the index build, the FASTQ check on its own (``check_reads``: it runs in a thread
while Salmon runs, so its time is hidden unless it outlasts Salmon) and the search reindex of the
experiment alone. Medians over repetitions.

Data (real files, see their PROVENANCE.md): rnaseq-salmon-example (15 RefSeq transcripts, 10,000
simulated 50 bp pairs; RefSeq → Entrez tx2gene from org.Hs.eg.db) and rnaseq-kallisto-test
(14 GENCODE transcripts + GTF, 10,000 simulated pairs). Real runs hold millions of reads, so a third
example is GENERATED here (``--generated-pairs``, default 500,000 pairs = 1 M reads, 0 to skip):
2 × 100 bp error-free pairs sampled from the real kallisto-test transcripts (fragments of 250 ± 25
bases, transcripts drawn with random abundances, seed 20261127), against the same reference (so
k = 31). It is labelled GENERATED in the output; its reads are not real sequencing data.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genemill.config import Settings
from genemill.formats.fasta import read_fasta
from genemill.pipeline.rnaseq_private import (
    ReferenceFiles,
    create_fastq_experiment,
    pair_fastqs,
    process_rnaseq_experiment,
)
from genemill.pipeline.salmon import check_reads, salmon_version
from genemill.store.db import Database
from genemill.store.queries import get_experiment
from genemill.store.search_index import reindex_experiment

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def _refseq_tx2gene(target: Path) -> Path:
    fasta = DATA / "rnaseq-salmon-example" / "transcripts.fasta"
    names = [line[1:].split()[0] for line in fasta.read_text().splitlines() if line.startswith(">")]
    table = pd.read_csv(DATA / "annotation-org-hs-eg-db" / "entrez_refseq.tsv.gz", sep="\t", dtype=str)
    table = table[table["refseq_accession"].isin(names)].drop_duplicates("refseq_accession")
    table[["refseq_accession", "entrez_id"]].to_csv(target, sep="\t", index=False, header=["tx", "gene"])
    return target


def _examples(work: Path) -> dict[str, tuple[list[Path], ReferenceFiles]]:
    salmon = DATA / "rnaseq-salmon-example"
    kallisto = DATA / "rnaseq-kallisto-test"
    return {
        "salmon-example": (
            [salmon / "reads_1.fastq.gz", salmon / "reads_2.fastq.gz"],
            ReferenceFiles(
                transcripts=salmon / "transcripts.fasta", tx2gene=_refseq_tx2gene(work / "t2g.tsv")
            ),
        ),
        "kallisto-test": (
            [kallisto / "reads_1.fastq.gz", kallisto / "reads_2.fastq.gz"],
            ReferenceFiles(
                transcripts=kallisto / "transcripts.fasta.gz", gtf=kallisto / "transcripts.gtf.gz"
            ),
        ),
    }


_COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")


def _generated_pairs(work: Path, pairs: int, *, read_length: int = 100) -> list[Path]:
    """GENERATED paired reads sampled from the real kallisto-test transcripts (see the docstring)."""
    with (DATA / "rnaseq-kallisto-test" / "transcripts.fasta.gz").open("rb") as fh:
        sequences = [bytes(sequence).upper() for _, sequence in read_fasta(fh)]
    rng = np.random.default_rng(20261127)
    lengths = np.array([len(seq) for seq in sequences])
    weights = rng.gamma(0.8, size=len(sequences)) * lengths
    chosen = rng.choice(len(sequences), size=pairs, p=weights / weights.sum())
    fragment = np.clip(rng.normal(250, 25, size=pairs).astype(int), read_length, None)
    fragment = np.minimum(fragment, lengths[chosen])
    start = (rng.random(pairs) * (lengths[chosen] - fragment + 1)).astype(int)
    quality = b"I" * read_length
    paths = [work / "GENERATED_1.fastq.gz", work / "GENERATED_2.fastq.gz"]
    with gzip.open(paths[0], "wb", compresslevel=1) as one, gzip.open(paths[1], "wb", compresslevel=1) as two:
        block: tuple[list[bytes], list[bytes]] = ([], [])
        for number, (t, begin, size) in enumerate(zip(chosen, start, fragment, strict=True)):
            seq = sequences[t]
            left = seq[begin : begin + read_length]
            right = seq[begin + size - read_length : begin + size].translate(_COMPLEMENT)[::-1]
            name = b"@gen%d" % number
            block[0].append(b"%s/1\n%s\n+\n%s\n" % (name, left, quality))
            block[1].append(b"%s/2\n%s\n+\n%s\n" % (name, right, quality))
            if len(block[0]) == 50_000:
                one.write(b"".join(block[0]))
                two.write(b"".join(block[1]))
                block = ([], [])
        one.write(b"".join(block[0]))
        two.write(b"".join(block[1]))
    return paths


@dataclass
class _Runs:
    """Per-run timings of ``process_rnaseq_experiment`` (seconds)."""

    totals: list[float] = field(default_factory=list)
    quants: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    mains: list[float] = field(default_factory=list)
    children: list[float] = field(default_factory=list)
    exposed: int = 0

    def time(self, settings: Settings, db: Database, accession: str, *, threads: int) -> None:
        child = _children_cpu()
        start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
        outcome = process_rnaseq_experiment(settings, db, accession, threads=threads)
        self.totals.append(time.perf_counter() - start)
        self.cpus.append(time.process_time() - cpu)
        self.mains.append(time.thread_time() - main)
        self.children.append(_children_cpu() - child)
        assert outcome.processed, outcome.refused
        (seconds,) = outcome.details["salmon-tximport"]["salmon_seconds"].values()
        self.quants.append(seconds)
        # Salmon exited before the work meant for its shadow ended: ``seconds`` includes some
        # of genemill's time, so that run's overhead is understated.
        self.exposed += not all(outcome.details["salmon-tximport"]["salmon_shadowed"].values())

    def report(self, label: str) -> None:
        overheads = [t - q for t, q in zip(self.totals, self.quants, strict=True)]
        total, quant, overhead = (statistics.median(v) for v in (self.totals, self.quants, overheads))
        print(
            f"{label:15s} total {total * 1000:7.1f} ms   salmon quant {quant * 1000:7.1f} ms   "
            f"overhead {overhead * 1000:6.1f} ms = {100 * overhead / quant:4.1f} % of quant   (per-run %: "
            f"{', '.join(f'{100 * o / q:.1f}' for o, q in zip(overheads, self.quants, strict=True))})"
        )
        if self.exposed:
            warning = (
                f"in {self.exposed} run(s) Salmon exited before the work done meanwhile: overhead understated"
            )
            print(f"{'':15s} WARNING: {warning}")
        salmon_cpu = statistics.median(self.children)
        print(
            f"{'':15s} salmon quant's own CPU time (user + system, all its threads) "
            f"{salmon_cpu * 1000:.0f} ms: overhead = {100 * overhead / salmon_cpu:.1f} % of it (per run: "
            f"{', '.join(f'{100 * o / c:.1f}' for o, c in zip(overheads, self.children, strict=True))})"
        )
        cpu, main = statistics.median(self.cpus), statistics.median(self.mains)
        print(
            f"{'':15s} genemill CPU time (this process, all threads, FASTQ check included) "
            f"{cpu * 1000:.1f} ms = {100 * cpu / quant:.1f} % of quant; main thread only (the path around "
            f"Salmon and the work done while it runs; FASTQ check thread excluded) {main * 1000:.1f} ms "
            f"= {100 * main / quant:.1f} %"
        )


def _bench(name: str, reads: list[Path], reference: ReferenceFiles, *, repeat: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        db = Database(settings.resolved_database_url)
        db.migrate()

        def new_experiment(files: list[Path]) -> str:
            return create_fastq_experiment(
                settings, db, pair_fastqs(files), title=name, reference=reference, organism="Homo sapiens"
            )

        def renamed_copies(number: int) -> list[Path]:
            """The same reads under new names: a new private accession (named by file names and sizes)."""
            folder = Path(tmp) / f"copy{number}"
            folder.mkdir()
            return [
                Path(shutil.copy(path, folder / f"first{number}_{mate}.fastq.gz"))
                for mate, path in enumerate(reads, 1)
            ]

        start = time.perf_counter()
        accession = new_experiment(reads)
        imported = time.perf_counter() - start
        start = time.perf_counter()
        first = process_rnaseq_experiment(settings, db, accession, threads=threads)
        cold = time.perf_counter() - start
        assert first.processed, first.refused
        index_json = next((settings.home / "indexes").glob("*/genemill_index.json"))
        build = float(pd.read_json(index_json, typ="series")["build_seconds"])
        again, new = _Runs(), _Runs()
        for number in range(repeat):  # alternating: both see the same machine
            shutil.rmtree(settings.home / "quant")
            again.time(settings, db, accession, threads=threads)
            new.time(settings, db, new_experiment(renamed_copies(number)), threads=threads)
        checks, reindexes = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            check_reads(reads)
            checks.append(time.perf_counter() - start)
            with db.session() as session:
                experiment = get_experiment(session, accession)
                start = time.perf_counter()
                reindex_experiment(session, experiment)
                reindexes.append(time.perf_counter() - start)
        db.dispose()
    again.report(name)
    new.report("  first time")
    print(
        f"{'':15s} one-off: import {imported * 1000:.0f} ms, first run with index build {cold * 1000:.0f} ms "
        f"(salmon index {build * 1000:.0f} ms); FASTQ check alone {statistics.median(checks) * 1000:.1f} ms; "
        f"search reindex alone {statistics.median(reindexes) * 1000:.1f} ms"
    )


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (here: ``salmon quant``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--generated-pairs",
        type=int,
        default=500_000,
        help="GENERATED read pairs for the large run (0: skip)",
    )
    args = parser.parse_args()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"salmon {salmon_version()}, threads {args.threads}, medians of {args.repeat} runs; load {load}")
    with tempfile.TemporaryDirectory() as work:
        examples = _examples(Path(work))
        for name, (reads, reference) in examples.items():
            _bench(name, reads, reference, repeat=args.repeat, threads=args.threads)
        if args.generated_pairs:
            start = time.perf_counter()
            reads = _generated_pairs(Path(work), args.generated_pairs)
            made = time.perf_counter() - start
            print(
                f"GENERATED: {args.generated_pairs:,} pairs (2 x 100 bp, {2 * args.generated_pairs:,} reads) "
                f"sampled from the real kallisto-test transcripts in {made:.1f} s; not real sequencing data"
            )
            reference = examples["kallisto-test"][1]
            label = f"GENERATED-{2 * args.generated_pairs / 1e6:g}M"
            _bench(label, reads, reference, repeat=max(1, args.repeat // 2), threads=args.threads)


if __name__ == "__main__":
    main()
