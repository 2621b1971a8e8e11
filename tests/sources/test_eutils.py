"""E-utilities parsing and requests (hand-written JSON fixtures, see tests/data/sources/PROVENANCE.md)
and the token-bucket RateLimiter that paces them."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest
from fixture_server import Fault, FixtureServer, RecordedRequest, Reply

from genemill.config import Settings
from genemill.errors import DownloadError, NotFoundError, SourceError
from genemill.sources import eutils
from genemill.sources.http import RateLimiter, ncbi_limiter

FIXTURES = Path(__file__).parents[1] / "data" / "sources"
ESEARCH = json.loads((FIXTURES / "eutils_esearch_gds_GSE781.json").read_text())
ESUMMARY = json.loads((FIXTURES / "eutils_esummary_gds_GSE781.json").read_text())
PUBMED = json.loads((FIXTURES / "eutils_esummary_pubmed_14641932.json").read_text())
EUTILS = "/entrez/eutils"


class CountingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__(1000.0)
        self.calls = 0

    def acquire(self) -> float:
        self.calls += 1
        return super().acquire()


@pytest.fixture
def eutils_server(fixture_server: FixtureServer) -> FixtureServer:
    fixture_server.add_bytes(f"{EUTILS}/esearch.fcgi", json.dumps(ESEARCH), query={"db": "gds"})
    fixture_server.add_bytes(f"{EUTILS}/esummary.fcgi", json.dumps(ESUMMARY), query={"db": "gds"})
    fixture_server.add_bytes(f"{EUTILS}/esummary.fcgi", json.dumps(PUBMED), query={"db": "pubmed"})
    return fixture_server


# -- parsing -----------------------------------------------------------------------------------------
def test_parse_esearch():
    assert eutils.parse_esearch(ESEARCH) == ["200000781"]


def test_parse_gds_summary_of_gse781():
    (summary,) = eutils.parse_gds_summaries(ESUMMARY)
    assert (summary.uid, summary.accession, summary.entry_type) == ("200000781", "GSE781", "GSE")
    assert summary.title == "Normal and Renal Cell Carcinoma Kidney Tissue, Human"
    assert summary.taxon == "Homo sapiens"
    assert summary.n_samples == 34 == len(summary.samples)
    assert summary.samples[0] == eutils.GeoSampleRef("GSM11805", "N035 Normal Human Kidney U133A")
    assert summary.platforms == ("GPL96", "GPL97")
    assert summary.pubmed_ids == ("14641932",)
    assert summary.series_type == "Expression profiling by array"
    assert summary.supplementary_types == ("CEL",)
    assert summary.summary.startswith("Each total RNA sample is hybridized to two different arrays")
    assert summary.sra_studies == ()


@pytest.mark.parametrize(
    ("gpl", "expected"),
    [("24247", ("GPL24247",)), ("96;97", ("GPL96", "GPL97")), ("GPL570", ("GPL570",)), ("", ())],
    ids=["single", "two", "prefixed", "empty"],
)
def test_platform_field_spellings(gpl, expected):
    document = {**ESUMMARY["result"]["200000781"], "gpl": gpl}
    payload = {"result": {"uids": ["1"], "1": document}}
    assert eutils.parse_gds_summaries(payload)[0].platforms == expected


def test_sra_relations_are_collected():
    relations = [{"relationtype": "SRA", "targetobject": "SRP000001", "targetftplink": "ftp://x"}]
    document = {**ESUMMARY["result"]["200000781"], "extrelations": relations, "n_samples": "5"}
    summary = eutils.parse_gds_summaries({"result": {"uids": ["1"], "1": document}})[0]
    assert (summary.sra_studies, summary.n_samples) == (("SRP000001",), 5)


def test_parse_pubmed_summary():
    publication = eutils.parse_pubmed_summary(PUBMED, "14641932")
    assert publication.title.startswith("Previously unidentified changes in renal cell carcinoma")
    assert publication.authors == (
        "Lenburg ME",
        "Liou LS",
        "Gerry NP",
        "Frampton GM",
        "Cohen HT",
        "Christman MF",
    )
    assert (publication.journal, publication.doi) == ("BMC cancer", "10.1186/1471-2407-3-31")


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        ({"esearchresult": {"ERROR": "Invalid query"}}, SourceError, r"esearch failed: Invalid query"),
        ({"header": {}}, SourceError, r"esearch response has no 'esearchresult'"),
    ],
    ids=["error", "shape"],
)
def test_parse_esearch_errors(payload, error, message):
    with pytest.raises(error, match=message):
        eutils.parse_esearch(payload)


def test_summary_layout_errors():
    with pytest.raises(SourceError, match=r"gds esummary response has no 'result.uids'"):
        eutils.parse_gds_summaries({"esummaryresult": ["Empty id list - nothing todo"]})
    with pytest.raises(SourceError, match=r"lists uid 7 but has no document"):
        eutils.parse_gds_summaries({"result": {"uids": ["7"]}})
    missing = {"result": {"uids": ["1"], "1": {"uid": "1", "error": "cannot get document summary"}}}
    with pytest.raises(NotFoundError, match=r"PubMed has no summary for PMID 1: cannot get document summary"):
        eutils.parse_pubmed_summary(missing, "1")


# -- requests ----------------------------------------------------------------------------------------
def test_find_geo_summary_sends_documented_parameters(eutils_server, client, source_settings, fast_policy):
    limiter = CountingLimiter()
    summary = eutils.find_geo_summary(client, source_settings, "gse781", limiter=limiter, policy=fast_policy)
    assert summary.accession == "GSE781"
    search, summarize = eutils_server.requests
    assert search.host == "eutils.ncbi.nlm.nih.gov" and search.path == f"{EUTILS}/esearch.fcgi"
    assert {k: search.param(k) for k in ("db", "term", "retmode", "tool", "email")} == {
        "db": "gds",
        "term": "GSE781[ACCN]",
        "retmode": "json",
        "tool": "genemill",
        "email": "tests@genemill.invalid",
    }
    assert "api_key" not in search.query
    assert (summarize.param("db"), summarize.param("id")) == ("gds", "200000781")
    assert limiter.calls == 2


def test_api_key_is_sent_when_configured(eutils_server, client, tmp_path, fast_policy):
    settings = Settings(home=tmp_path, ncbi_api_key="0123abcd", contact_email=None)
    eutils.esearch(client, settings, "GSE781[ACCN]", limiter=CountingLimiter(), policy=fast_policy)
    (request,) = eutils_server.requests
    assert request.param("api_key") == "0123abcd" and "email" not in request.query


def test_fetch_publication(eutils_server, client, source_settings, fast_policy):
    publication = eutils.fetch_publication(
        client, source_settings, "14641932", limiter=CountingLimiter(), policy=fast_policy
    )
    assert publication.doi == "10.1186/1471-2407-3-31"
    assert eutils_server.requests[0].param("db") == "pubmed"


def test_rate_limit_error_in_a_200_body_is_retried(fixture_server, client, source_settings, fast_policy):
    answers = iter(
        [
            {"error": "API rate limit exceeded", "api-key": "127.0.0.1", "count": "4", "limit": "3"},
            ESEARCH,
        ]
    )
    fixture_server.add_handler(
        f"{EUTILS}/esearch.fcgi", lambda _: Reply(body=json.dumps(next(answers)).encode())
    )
    limiter = CountingLimiter()
    uids = eutils.esearch(client, source_settings, "GSE781[ACCN]", limiter=limiter, policy=fast_policy)
    assert uids == ["200000781"]
    assert limiter.calls == 2  # the retry waited for the limiter too


def test_http_429_is_retried_after_retry_after(eutils_server, client, source_settings, fast_policy):
    eutils_server.add_fault(f"{EUTILS}/esearch.fcgi", Fault.status(429, retry_after=0))
    eutils_server.add_fault(f"{EUTILS}/esearch.fcgi", Fault.status(503))
    uids = eutils.esearch(
        client, source_settings, "GSE781[ACCN]", limiter=CountingLimiter(), policy=fast_policy
    )
    assert uids == ["200000781"]
    assert [r.status for r in eutils_server.requests] == [429, 503, 200]


def test_non_json_body_is_retried_then_reported(fixture_server, client, source_settings, fast_policy):
    fixture_server.add_bytes(
        f"{EUTILS}/esearch.fcgi", "<html>502 Bad Gateway</html>", content_type="text/html"
    )
    with pytest.raises(
        DownloadError,
        match=r"failed after 3 attempts: esearch.fcgi answered 200 with a body that is not JSON",
    ):
        eutils.esearch(client, source_settings, "x", limiter=CountingLimiter(), policy=fast_policy)


def test_other_errors_raise_source_error(fixture_server, client, source_settings, fast_policy):
    body = json.dumps({"error": "Invalid uid GSE at position= 0"})
    fixture_server.add_bytes(f"{EUTILS}/esummary.fcgi", body)
    with pytest.raises(SourceError, match=r"E-utilities esummary.fcgi failed: Invalid uid"):
        eutils.summarize_gds(client, source_settings, ["GSE"], limiter=CountingLimiter(), policy=fast_policy)


def test_unknown_accession_is_not_found(fixture_server, client, source_settings, fast_policy):
    empty = {"header": {"type": "esearch", "version": "0.3"}, "esearchresult": {"count": "0", "idlist": []}}
    fixture_server.add_bytes(f"{EUTILS}/esearch.fcgi", json.dumps(empty))
    with pytest.raises(
        NotFoundError,
        match=r"GSE999999999 not found in NCBI GEO DataSets \(esearch GSE999999999\[ACCN\] returned nothing\)",
    ):
        eutils.find_geo_summary(
            client, source_settings, "GSE999999999", limiter=CountingLimiter(), policy=fast_policy
        )


def test_summaries_are_batched(fixture_server, client, source_settings, fast_policy):
    def answer(request: RecordedRequest) -> Reply:
        uids = (request.param("id") or "").split(",")
        result = {"uids": uids, **{uid: {"uid": uid, "accession": f"GSE{uid}"} for uid in uids}}
        return Reply(body=json.dumps({"result": result}).encode())

    fixture_server.add_handler(f"{EUTILS}/esummary.fcgi", answer)
    uids = [str(n) for n in range(450)]
    summaries = eutils.summarize_gds(
        client, source_settings, uids, limiter=CountingLimiter(), policy=fast_policy
    )
    assert [s.uid for s in summaries] == uids
    assert [len((r.param("id") or "").split(",")) for r in fixture_server.requests] == [200, 200, 50]


# -- rate limiter ------------------------------------------------------------------------------------
def test_three_per_second_without_api_key():
    limiter = RateLimiter(3.0)
    start = time.monotonic()
    for _ in range(7):
        limiter.acquire()
    elapsed = time.monotonic() - start
    assert 1.99 <= elapsed < 2.5, f"7 calls at 3/s took {elapsed:.3f} s, expected 2.0 s"


def test_ten_per_second_with_api_key_and_shared_per_rate(tmp_path):
    with_key = ncbi_limiter(Settings(home=tmp_path, ncbi_api_key="k"))
    without = ncbi_limiter(Settings(home=tmp_path, ncbi_api_key=None))
    assert (with_key.rate, without.rate) == (10.0, 3.0)
    assert ncbi_limiter(Settings(home=tmp_path, ncbi_api_key="other")) is with_key
    limiter = RateLimiter(10.0)
    start = time.monotonic()
    for _ in range(11):
        limiter.acquire()
    assert 0.99 <= time.monotonic() - start < 1.5


def test_limiter_is_thread_safe():
    limiter = RateLimiter(20.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 12
    # 12 calls at 20/s span at least 11 intervals of 50 ms; an unlocked limiter lets the four
    # threads through together (about 3 intervals). Individual gaps are not asserted: a thread can
    # be descheduled between acquire() returning and taking its timestamp.
    assert stamps[-1] - stamps[0] >= 0.54
    median_gap = sorted(b - a for a, b in itertools.pairwise(stamps))[5]
    assert median_gap >= 0.04


def test_burst_allows_back_to_back_calls_then_paces():
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    limiter = RateLimiter(2.0, burst=3, clock=lambda: clock[0], sleep=sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert slept == [0.5, 0.5]
