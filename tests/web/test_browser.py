"""A real browser (Playwright driving Debian's chromium) walks the site on the real, processed GSE781.

search "renal" → GSE781 page → every seed field under its label → processing information →
add to dataset → download options → start → status page until ready → download the zip.
Saves artifacts/experiment-page.png. Skipped when chromium or Playwright is missing.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
    # Building GSE781 reports a failed KS check after quantile normalization as a GenemillWarning.
    pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning"),
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(gse781) -> Iterator[str]:
    """uvicorn serving the app in a thread on a free loopback port."""
    import uvicorn

    from genemill.server import create_app

    settings, db = gse781
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, db=db, rate_limit=None), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(base_url):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(
            base_url=base_url, viewport={"width": 1366, "height": 900}, accept_downloads=True
        )
        yield context.new_page()
        context.close()
        browser.close()


def _field(page, name: str):
    return page.locator(f'[data-field="{name}"]')


def test_search_then_experiment_page_shows_every_seed_field(page) -> None:
    expect = playwright_api.expect
    page.goto("/")
    page.fill("#q", "renal")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=renal"))
    expect(page.locator(".results-count")).to_contain_text("1 experiment")
    page.click("text=Normal and Renal Cell Carcinoma Kidney Tissue, Human")
    page.wait_for_url(re.compile(r"/experiments/GSE781$"))

    expect(_field(page, "accession")).to_have_text(re.compile(r"GSE781"))
    expect(_field(page, "title")).to_have_text("Normal and Renal Cell Carcinoma Kidney Tissue, Human")
    expect(_field(page, "organism")).to_contain_text("Homo sapiens")
    expect(_field(page, "downloadable")).to_contain_text("34 Downloadable Samples")
    expect(_field(page, "technology")).to_contain_text("Microarray")
    expect(_field(page, "technology")).to_contain_text("Affymetrix Human Genome U133A Array (hgu133a)")
    expect(page.locator("h2#ssi")).to_have_text("Submitter Supplied Information")
    labels = page.locator(".info-card dt").all_inner_texts()
    assert labels == [
        "Description", "PubMed ID", "Publication Title", "Total Samples", "Submitter's Institution",
        "Authors", "Source Repository", "Alternate Accession IDs",
    ]  # fmt: skip
    expect(_field(page, "description")).to_contain_text("Affymetrix U133A (GPL96) and U133B (GPL97)")
    expect(_field(page, "pubmed").locator("a")).to_have_attribute(
        "href", "https://pubmed.ncbi.nlm.nih.gov/14641932/"
    )
    expect(_field(page, "total-samples")).to_have_text("34")
    expect(_field(page, "institution")).to_contain_text("Boston University School of Medicine")
    expect(_field(page, "authors")).to_contain_text("Marc E Lenburg")
    expect(_field(page, "source").locator("a")).to_have_attribute(
        "href", "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE781"
    )
    expect(_field(page, "alternate")).to_contain_text("E-GEOD-781")
    headers = page.locator(".sample-table thead th").all_inner_texts()
    assert headers[1:3] == ["Accession Code", "Title"]
    assert headers[-2:] == ["Processing Information", "Additional Metadata"]
    assert "Sex" in headers and "Age" in headers

    first = page.locator(".sample-table tbody tr").first
    first.locator("details.processing summary").click()
    expect(first.locator("details.processing")).to_contain_text("submitter")
    expect(first.locator("details.processing")).to_contain_text("Input sha256")
    first.locator("details.additional summary").click()
    expect(first.locator("details.additional")).to_contain_text("Sample_source_name_ch1")

    for image in page.locator(".plot img").all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "experiment-page.png"), full_page=True)


def test_add_to_dataset_start_and_download(page, tmp_path: Path) -> None:
    expect = playwright_api.expect
    page.goto("/experiments/GSE781")
    page.click("button:has-text('Add to dataset')")
    expect(page.locator(".cart-count")).to_have_text("1")
    expect(page.locator("button:has-text('Remove from dataset')")).to_be_visible()
    page.click("a.nav-cart")
    expect(page.locator(".summary-numbers")).to_contain_text("34")
    page.check("input[name=transform][value=ZSCORE]")
    page.check("input[name=accept_terms]")
    page.click("button:has-text('Start processing')")
    page.wait_for_url(re.compile(r"/datasets/[0-9a-f-]{36}$"))
    expect(page.locator("h1")).to_have_text("Your dataset is ready", timeout=60_000)
    with page.expect_download() as download_info:
        page.click("a.button:has-text('Download')")
    download = download_info.value
    assert download.suggested_filename.startswith("genemill-dataset-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.stat().st_size > 1000
    expect(page.locator(".cart-count")).to_have_count(0)  # the started cart is no longer the cart
