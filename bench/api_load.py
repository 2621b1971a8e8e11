"""Benchmark: search and experiment-detail latency of the genemill API under concurrent load.

The catalog is GENERATED (made-up experiments and samples, labelled as such in every description),
sized like a large deployment: by default 50,000 experiments and 1,000,000 samples on SQLite. It is
bulk-inserted with Core ``executemany`` (no ORM objects), then indexed with
``genemill.store.search.reindex_all``. The catalog is kept in ``--home`` and reused when its
parameters match, so reruns skip generation.

Load: ``--workers`` uvicorn processes serve ``create_app`` (rate limit off) on one 127.0.0.1 port
(SO_REUSEPORT); this process runs ``--clients`` concurrent keep-alive connections on loopback,
each driven by a minimal HTTP/1.1 client on asyncio streams (see ``_Connection`` for why not httpx).
Each phase sends a fixed number of requests (``--requests``) or stops at
``--max-seconds``, after an uncounted warm-up:

* ``search``: ``/v1/search/?search=…`` with one or two words from the generated vocabulary (some as
  3-letter prefixes), a quarter with an organism or technology filter, 1 in 20 an exact accession;
* ``experiment``: ``/v1/experiments/{accession}/`` for random generated accessions.

Searches run on the in-memory search index (``--no-memory-index``: on SQL) behind a per-process
result cache (``--no-search-cache``: every search computed; report this cold figure, the bench
repeats queries). Before measuring, the run waits until the servers answer from the in-memory index
(its load time is reported). Reported per phase: p50 / p90 / p99 / max latency (ms), throughput
(requests/s), non-200 count, what answered the searches (``X-Search-Engine``: memory, sql,
cache), the servers' CPU time per request and the 1-minute load average before and after (latency
on a busy machine measures the machine; CPU per request does not). Target: p99 < 100 ms for both
on SQLite.

Usage: ``python bench/api_load.py [--home DIR] [--experiments N] [--samples N] [--clients 32]
[--requests 4000] [--max-seconds 120] [--workers 2] [--out results.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "GENERATED benchmark experiment (not real data)"
TISSUES = (
    "kidney", "liver", "brain", "lung", "heart", "breast", "colon", "skin", "blood", "muscle",
    "pancreas", "prostate", "ovary", "retina", "spleen", "thymus", "stomach", "bone marrow",
)  # fmt: skip
CONDITIONS = (
    "carcinoma", "adenocarcinoma", "fibrosis", "diabetes", "inflammation", "infection", "hypoxia",
    "development", "aging", "injury", "regeneration", "obesity", "leukemia", "melanoma", "glioma",
    "asthma", "sepsis", "ischemia", "autism", "psoriasis",
)  # fmt: skip
DESIGNS = (
    "time course", "knockout mice", "drug treatment", "cell line panel", "patient cohort",
    "single-cell sorted populations", "dose response", "circadian sampling", "tumour versus normal",
)  # fmt: skip
COMPOUNDS = ("dexamethasone", "metformin", "cisplatin", "rapamycin", "tamoxifen", "LPS", "insulin", "vehicle")
SURNAMES = ("Smith", "Garcia", "Chen", "Okafor", "Müller", "Rossi", "Kowalski", "Tanaka", "Silva", "Novak")
INSTITUTES = ("University of Example", "Institute of Generated Biology", "Synthetic Medical Center")
ORGANISMS = (("Homo sapiens", 9606), ("Mus musculus", 10090), ("Rattus norvegicus", 10116))
PLATFORMS = (
    ("GPL570", "Affymetrix Human Genome U133 Plus 2.0 Array (hgu133plus2)", "MICROARRAY", 0),
    ("GPL96", "Affymetrix Human Genome U133A Array (hgu133a)", "MICROARRAY", 0),
    ("GPL1261", "Affymetrix Mouse Genome 430 2.0 Array (mouse4302)", "MICROARRAY", 1),
    ("GPL6246", "Affymetrix Mouse Gene 1.0 ST Array (mogene10sttranscriptcluster)", "MICROARRAY", 1),
    ("GPL1355", "Affymetrix Rat Genome 230 2.0 Array (rat2302)", "MICROARRAY", 2),
    ("GPL16791", "Illumina HiSeq 2500 (Homo sapiens)", "RNA-SEQ", 0),
    ("GPL13112", "Illumina HiSeq 2000 (Mus musculus)", "RNA-SEQ", 1),
)
FIRST_ACCESSION = 900_000
CHUNK = 20_000


# ---------------------------------------------------------------- generated catalog


def _experiment_row(rng: random.Random, index: int, n_samples: int, processed: int) -> dict[str, Any]:
    import datetime as dt

    tissue, condition, design = rng.choice(TISSUES), rng.choice(CONDITIONS), rng.choice(DESIGNS)
    title = f"{condition.capitalize()} in {tissue}: {design}"
    authors = [f"{rng.choice('ABCDEFGHJKLMN')}. {rng.choice(SURNAMES)}" for _ in range(rng.randint(1, 5))]
    published = dt.date(2005, 1, 1) + dt.timedelta(days=rng.randint(0, 7000))
    has_pubmed = rng.random() < 0.6
    return {
        "accession": f"GSE{FIRST_ACCESSION + index}",
        "alternate_accessions": [f"E-GEOD-{FIRST_ACCESSION + index}"],
        "source_database": "GEO",
        "source_url": f"https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE{FIRST_ACCESSION + index}",
        "title": title,
        "description": f"{GENERATED}. {title}; samples treated with {rng.choice(COMPOUNDS)}.",
        "protocol_description": {},
        "technology": "",
        "submitter_institution": rng.choice(INSTITUTES),
        "pubmed_id": str(10_000_000 + index) if has_pubmed else None,
        "publication_title": "",
        "publication_doi": "",
        "publication_authors": authors,
        "source_first_published": published,
        "source_last_modified": published,
        "num_total_samples": n_samples,
        "num_processed_samples": processed,
        "num_downloadable_samples": processed,
        "is_public": True,
        "metadata_file_format": "generated",
        "metadata_sha256": "",
        "raw_fields": {},
    }


def _sample_row(
    rng: random.Random, sample_index: int, experiment: dict[str, Any], *, platform: int, processed: bool
) -> dict[str, Any]:
    from genemill.store.models import ProcessingState, Technology

    accession, organism_index = PLATFORMS[platform][0], PLATFORMS[platform][3]
    condition, rest = experiment["title"].split(" in ", 1)
    tissue = rest.split(":", 1)[0]
    # Samples describe their own experiment (its tissue; its condition or a control), as in real series.
    disease = condition.lower() if rng.random() < 0.6 else "normal"
    sex, age = rng.choice(("female", "male")), float(rng.randint(1, 90))
    return {
        "accession": f"GSM{10_000_000 + sample_index}",
        "title": f"{tissue} {disease if disease != 'normal' else 'control'} replicate {sample_index % 7 + 1}",
        "organism_id": organism_index + 1,
        "platform_id": platform + 1,
        "technology": Technology(PLATFORMS[platform][2]),
        "manufacturer": "ILLUMINA" if "Illumina" in PLATFORMS[platform][1] else "AFFYMETRIX",
        "source_database": "GEO",
        "source_archive_url": "",
        "has_raw": True,
        "sex": sex,
        "age": age,
        "age_value": age,
        "age_unit": "year",
        "specimen_part": tissue,
        "disease": disease,
        "harmonized": {},
        "annotations": {"characteristics": [["tissue", tissue], ["sex", sex]], "generated": True},
        "protocol_info": {},
        "processing_state": ProcessingState.PROCESSED if processed else ProcessingState.NEW,
        "qc": {},
    } | {"_accession": accession}


def generate_catalog(db: Any, *, n_experiments: int, n_samples: int, seed: int = 7) -> dict[str, float]:
    """Bulk-insert the GENERATED catalog and index it; returns timings in seconds."""
    from sqlalchemy import insert

    from genemill.store.models import Experiment, Organism, Platform, Sample, Technology, experiment_sample
    from genemill.store.search import reindex_all

    rng = random.Random(seed)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with db.session() as session:
        session.execute(insert(Organism), [{"name": n, "taxonomy_id": t} for n, t in ORGANISMS])
        session.execute(
            insert(Platform),
            [
                {
                    "accession": a,
                    "title": title,
                    "technology": Technology(tech),
                    "manufacturer": "",
                    "internal_name": None,
                }
                for a, title, tech, _organism in PLATFORMS
            ],
        )
        per_experiment = [n_samples // n_experiments] * n_experiments
        for i in range(n_samples - sum(per_experiment)):
            per_experiment[i] += 1
        sample_index = 0
        experiments, samples, links = [], [], []
        for index, size in enumerate(per_experiment):
            processed = rng.randint(0, size)
            row = _experiment_row(rng, index, size, processed)
            platform = rng.randrange(len(PLATFORMS))
            row["technology"] = PLATFORMS[platform][2]
            experiments.append(row)
            for k in range(size):
                sample = _sample_row(rng, sample_index, row, platform=platform, processed=k < processed)
                sample.pop("_accession")
                samples.append(sample)
                sample_index += 1
                links.append({"experiment_id": index + 1, "sample_id": sample_index})
            if len(samples) >= CHUNK or index == n_experiments - 1:
                if experiments:
                    session.execute(insert(Experiment), experiments)
                session.execute(insert(Sample), samples)
                session.execute(insert(experiment_sample), links)
                experiments, samples, links = [], [], []
    timings["insert_s"] = time.perf_counter() - start
    start = time.perf_counter()
    with db.session() as session:
        reindex_all(session)
    timings["index_s"] = time.perf_counter() - start
    return timings


# ---------------------------------------------------------------- server (child process)


def app_factory() -> Any:
    """The app for the server processes: GENEMILL_HOME settings, rate limit off (loopback load test).

    ``API_LOAD_SEARCH_CACHE=0`` turns the search-result cache off (every search is computed);
    ``API_LOAD_MEMORY_INDEX=0`` turns the in-memory search index off (every search runs its SQL).
    """
    from genemill.config import load_settings
    from genemill.server import create_app
    from genemill.store.search import SearchCache
    from genemill.store.search_engine import SearchEngine

    size = 0 if os.environ.get("API_LOAD_SEARCH_CACHE") == "0" else 512
    engine = None if os.environ.get("API_LOAD_MEMORY_INDEX") == "0" else SearchEngine()
    return create_app(load_settings(), rate_limit=None, search_cache=SearchCache(size=size, engine=engine))


def _serve(home: Path, port: int) -> None:
    """One server process on a SO_REUSEPORT socket (the kernel spreads connections over processes).

    Not ``uvicorn --workers``: with it (uvicorn 0.54) each response waited ~45 ms here, also for a
    trivial ASGI app. Its listening socket is made with ``proto=0``; asyncio sets TCP_NODELAY only on
    connections whose socket says ``IPPROTO_TCP``, so Nagle's algorithm meets delayed ACKs. The
    socket here names ``IPPROTO_TCP``.
    """
    import uvicorn

    os.environ["GENEMILL_HOME"] = str(home)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app_factory, factory=True, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


# ---------------------------------------------------------------- load (this process)


def _search_url(rng: random.Random, n_experiments: int) -> str:
    from urllib.parse import urlencode

    roll = rng.random()
    if roll < 0.05:
        return "/v1/search/?" + urlencode({"search": f"GSE{FIRST_ACCESSION + rng.randrange(n_experiments)}"})
    words = [rng.choice(TISSUES + CONDITIONS + COMPOUNDS)]
    if rng.random() < 0.4:
        words.append(rng.choice(CONDITIONS + TISSUES))
    if rng.random() < 0.2:
        words[0] = words[0][:3]
    params: dict[str, str] = {"search": " ".join(words)}
    if roll > 0.75:
        params["organism"] = rng.choice(ORGANISMS)[0]
    elif roll > 0.65:
        params["technology"] = rng.choice(("MICROARRAY", "RNA-SEQ"))
    return "/v1/search/?" + urlencode(params)


def _experiment_url(rng: random.Random, n_experiments: int) -> str:
    return f"/v1/experiments/GSE{FIRST_ACCESSION + rng.randrange(n_experiments)}/"


class _Connection:
    """A minimal HTTP/1.1 keep-alive GET client on asyncio streams.

    httpx's AsyncClient itself topped out near 300 requests/s with 32 connections on this machine
    (measured against a trivial ASGI app), which would have measured the client, not the server.
    Responses must carry Content-Length (FastAPI's do).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, str]:
        """Status and the ``X-Search-Engine`` header ("" when absent)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, engine = 0, ""
        for line in head.split(b"\r\n"):
            lower = line.lower()
            if lower.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif lower.startswith(b"x-search-engine:"):
                engine = line.split(b":", 1)[1].strip().decode()
        await self.reader.readexactly(length)
        return status, engine

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _drive(base: str, urls: list[str], *, clients: int, max_seconds: float) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    failures: list[str] = []
    engines: dict[str, int] = {}
    queue = iter(urls)
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        connection = _Connection(host, int(port))
        try:
            for url in queue:
                if time.perf_counter() > deadline:
                    return
                start = time.perf_counter()
                status, engine = await connection.get(url)
                latencies.append(time.perf_counter() - start)
                if engine:
                    engines[engine] = engines.get(engine, 0) + 1
                if status != 200:
                    failures.append(f"{status} {url}")
        finally:
            await connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    return _summary(latencies, failures, wall) | {"answered_by": engines}


def _summary(latencies: list[float], failures: list[str], wall: float) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 1)

    return {
        "requests": len(ms),
        "errors": len(failures),
        "error_examples": failures[:5],
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ms[-1], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
        "throughput_rps": round(len(ms) / wall, 1),
        "wall_s": round(wall, 1),
    }


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes (Linux /proc): server cost per request, whatever else runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    return total


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _server_modules() -> dict[str, str | None]:
    """Versions of the optional speed-ups uvicorn and the API pick up when installed."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("uvloop", "httptools", "orjson"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/static/genemill.css", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {base} did not answer within {timeout} s")


def _wait_memory_index(base: str, timeout: float) -> float | None:
    """Seconds until searches are answered from the in-memory index (None: never within timeout).

    Each server process loads it in a background thread at start; with SO_REUSEPORT a request may
    reach either process, so this waits for 20 answers in a row from memory. Each probe asks for a
    different page, so no probe is a result-cache hit (a cached SQL answer says "cache").
    """
    import httpx

    start = time.monotonic()
    streak = probe = 0
    with httpx.Client(timeout=30) as client:
        while time.monotonic() - start < timeout:
            probe += 1
            # A fresh connection each time, so the kernel may pick either process.
            params = {"search": "kidney", "limit": 1, "offset": probe}
            response = client.get(base + "/v1/search/", params=params, headers={"Connection": "close"})
            streak = streak + 1 if response.headers.get("X-Search-Engine") == "memory" else 0
            if streak >= 20:
                return round(time.monotonic() - start, 1)
            time.sleep(0.1 if streak == 0 else 0)
    return None


def _prepare(home: Path, n_experiments: int, n_samples: int) -> dict[str, Any]:
    from genemill.store.db import Database

    marker = home / "generated-catalog.json"
    wanted = {"experiments": n_experiments, "samples": n_samples, "generator": 2}
    if marker.is_file() and json.loads(marker.read_text()).get("catalog") == wanted:
        return json.loads(marker.read_text())
    home.mkdir(parents=True, exist_ok=True)
    (home / "genemill.sqlite").unlink(missing_ok=True)
    db = Database(f"sqlite:///{home / 'genemill.sqlite'}")
    db.migrate()
    timings = generate_catalog(db, n_experiments=n_experiments, n_samples=n_samples)
    db.dispose()
    info = {"catalog": wanted, "label": GENERATED, **timings}
    marker.write_text(json.dumps(info))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/genemill-api-load"))
    parser.add_argument("--experiments", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000, help="per phase")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per phase")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--phases", default="search,experiment", help="comma list of search, experiment")
    parser.add_argument(
        "--no-search-cache", action="store_true", help="compute every search (no result cache)"
    )
    parser.add_argument("--no-memory-index", action="store_true", help="run every search on SQL")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.home, args.port)
        return
    prepared = _prepare(args.home, args.experiments, args.samples)
    if args.no_search_cache:
        os.environ["API_LOAD_SEARCH_CACHE"] = "0"
    if args.no_memory_index:
        os.environ["API_LOAD_MEMORY_INDEX"] = "0"
    print(
        f"catalog ({GENERATED}): {args.experiments:,} experiments, {args.samples:,} samples; "
        f"insert {prepared['insert_s']:.0f} s, index {prepared['index_s']:.0f} s"
    )
    port = _free_port()
    command = [sys.executable, __file__, "--serve", "--home", str(args.home), "--port", str(port)]
    servers = [subprocess.Popen(command) for _ in range(args.workers)]
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {
        "catalog": prepared,
        "clients": args.clients,
        "workers": args.workers,
        "search_cache": not args.no_search_cache,
        "memory_index": not args.no_memory_index,
        "server_modules": _server_modules(),
    }
    try:
        _wait_ready(base)
        if not args.no_memory_index:
            results["memory_index_ready_s"] = _wait_memory_index(base, timeout=600)
            print(f"in-memory search index ready after {results['memory_index_ready_s']} s")
        rng = random.Random(11)
        makers = {"search": _search_url, "experiment": _experiment_url}
        for phase in args.phases.split(","):
            make = makers[phase]
            warm = [make(rng, args.experiments) for _ in range(200)]
            asyncio.run(_drive(base, warm, clients=args.clients, max_seconds=args.max_seconds))
            urls = [make(rng, args.experiments) for _ in range(args.requests)]
            cpu_before, load_before = _cpu_seconds([s.pid for s in servers]), _loadavg()
            client_before = time.process_time()
            results[phase] = asyncio.run(
                _drive(base, urls, clients=args.clients, max_seconds=args.max_seconds)
            )
            r = results[phase]
            cpu = _cpu_seconds([s.pid for s in servers]) - cpu_before
            r["server_cpu_ms_per_request"] = round(cpu * 1000 / max(r["requests"], 1), 2)
            client = time.process_time() - client_before
            r["client_cpu_ms_per_request"] = round(client * 1000 / max(r["requests"], 1), 2)
            r["loadavg_1min"] = [load_before, _loadavg()]
            print(
                f"{phase:>10}: {r['requests']} requests, p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, "
                f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms, {r['throughput_rps']} req/s, "
                f"errors {r['errors']}, answered by {r['answered_by'] or '-'}; "
                f"CPU per request: server {r['server_cpu_ms_per_request']} ms, "
                f"client {r['client_cpu_ms_per_request']} ms; load {r['loadavg_1min']}"
            )
        results["server_rss_mb"] = [_rss_mb(s.pid) for s in servers]
        print(f"server processes' resident memory: {results['server_rss_mb']} MB")
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
