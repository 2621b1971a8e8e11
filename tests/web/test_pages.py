"""HTML pages: the seed fields of the experiment page, search with facets, sample page, plots, cart flow.

Pages and the /v1 JSON share the query layer, so each page is also compared with its JSON twin.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning")

SEED_LABELS = [
    "Submitter Supplied Information",
    "Description",
    "PubMed ID",
    "Publication Title",
    "Total Samples",
    "Submitter's Institution",
    "Authors",
    "Source Repository",
    "Alternate Accession IDs",
    "Downloadable Samples",
]


def _html(response) -> str:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_experiment_page_has_every_seed_field(gse781_client) -> None:
    page = _html(gse781_client.get("/experiments/GSE781"))
    for label in SEED_LABELS:
        assert label in page, label
    assert "Normal and Renal Cell Carcinoma Kidney Tissue, Human" in page
    assert "<strong>34</strong> Downloadable Samples" in page
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/14641932/"' in page
    assert 'href="https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=GSE781"' in page
    assert 'href="https://www.ebi.ac.uk/biostudies/arrayexpress/studies/E-GEOD-781"' in page
    assert "Affymetrix Human Genome U133A Array (hgu133a)" in page
    assert "badge-microarray" in page and ">Microarray<" in page
    assert 'href="/search?q=submitter_institution%3A%22Boston+University+School+of+Medicine%22"' in page
    assert 'href="/search?q=publication_authors%3A%22Marc+E+Lenburg%22"' in page
    assert '<em class="missing">No associated publication title</em>' in page


def test_sample_table_columns_details_and_paging(gse781_client) -> None:
    page = _html(gse781_client.get("/experiments/GSE781"))
    headers = re.findall(r'<th scope="col">([^<]+)</th>', page)
    assert headers == [
        "Add/Remove", "Accession Code", "Title", "Sex", "Age", "Disease",
        "Processing Information", "Additional Metadata",
    ]  # fmt: skip
    assert page.count('<details class="processing"') == 20  # default page size
    assert page.count('<details class="additional"') == 20
    assert "Page 1 of 2 · 34 samples" in page
    assert "submitter 0.1.0" in page
    assert '<em class="missing">No associated disease</em>' in page
    second = _html(gse781_client.get("/experiments/GSE781", params={"offset": 20}))
    assert second.count('<details class="processing"') == 14
    filtered = _html(gse781_client.get("/experiments/GSE781", params={"filter_by": "carcinoma", "limit": 50}))
    twin = gse781_client.get(
        "/v1/samples/", params={"experiment_accession_code": "GSE781", "filter_by": "carcinoma"}
    ).json()
    assert f"{twin['count']} of 34 samples match" in filtered
    assert filtered.count('<details class="processing"') == twin["count"]


def test_plots_are_svg_from_the_processed_values(gse781_client) -> None:
    page = _html(gse781_client.get("/experiments/GSE781"))
    assert 'src="/experiments/GSE781/boxplot.svg"' in page
    assert 'src="/experiments/GSE781/pca.svg?color_by=sex"' in page
    boxplot = gse781_client.get("/experiments/GSE781/boxplot.svg")
    assert boxplot.headers["content-type"] == "image/svg+xml"
    assert boxplot.text.count("<g><title>GSM") == 34
    pca = gse781_client.get("/experiments/GSE781/pca.svg", params={"color_by": "sex"}).text
    assert pca.count("</circle>") == 34  # one point per sample (legend marks have no title)
    assert re.search(r"PC1 \(\d+%\)", pca)
    assert ">female</text>" in pca and ">male</text>" in pca


def test_unprocessed_experiment_has_a_note_and_no_download(catalog_client) -> None:
    page = _html(catalog_client.get("/experiments/GSE9002"))
    assert "No sample of this experiment has been processed yet" in page
    assert "No processed samples yet: nothing to download." in page
    assert 'action="/cart/add"' not in page
    svg = catalog_client.get("/experiments/GSE9002/boxplot.svg").text
    assert "No processed samples yet." in svg


def test_search_page_matches_its_json_twin(catalog_client) -> None:
    page = _html(catalog_client.get("/search", params={"q": "kidney"}))
    twin = catalog_client.get("/v1/search/", params={"search": "kidney"}).json()
    assert f"<strong>{twin['count']}</strong> experiments" in page
    for result in twin["results"]:
        assert f'href="/experiments/{result["accession_code"]}"' in page
    assert "Homo sapiens" in page and "Mus musculus" in page
    assert 'href="/search?q=kidney&amp;organism=Mus+musculus"' in page  # facet link adds the filter
    filtered = _html(catalog_client.get("/search", params={"q": "kidney", "organism": "Mus musculus"}))
    assert "<strong>2</strong> experiments" in filtered
    assert 'class="check on"' in filtered
    nothing = _html(catalog_client.get("/search", params={"q": "zebra"}))
    assert "No experiments match “zebra”" in nothing


def test_search_page_sorts_and_pages(catalog_client) -> None:
    page = _html(catalog_client.get("/search", params={"ordering": "-num_total_samples", "limit": 2}))
    codes = re.findall(r'<a class="accession" href="/experiments/(GSE\d+)"', page)
    assert codes == ["GSE9001", "GSE9003"]
    assert "Page 1 of 2" in page and 'rel="next"' in page
    second = _html(
        catalog_client.get("/search", params={"ordering": "-num_total_samples", "limit": 2, "offset": 2})
    )
    assert re.findall(r'<a class="accession" href="/experiments/(GSE\d+)"', second) == ["GSE9002"]


def test_sample_page(gse781_client) -> None:
    page = _html(gse781_client.get("/samples/GSM11805"))
    assert "N035 Normal Human Kidney U133A" in page
    assert 'href="/experiments/GSE781"' in page
    assert "<dt>Sex</dt><dd>female" in page
    assert '<details class="processing" open>' in page
    assert "GSM11805.CEL.gz" in page


def test_error_pages(gse781_client) -> None:
    response = gse781_client.get("/experiments/GSE0")
    assert response.status_code == 404
    assert "no experiment &#39;GSE0&#39;" in response.text


def test_cart_download_and_status_pages(gse781_client) -> None:
    client = gse781_client
    client.cookies.clear()
    empty = _html(client.get("/download"))
    assert "Your dataset is empty." in empty
    added = client.post(
        "/cart/add", data={"accession": "GSE781", "sample": "GSM11805", "next": "/experiments/GSE781"}
    )
    assert added.status_code == 200  # followed the 303 back to the experiment page
    assert 'class="cart-count"' in added.text
    assert "Add remaining to dataset" in added.text
    cart = _html(client.get("/download"))
    assert "1 selected" in cart
    client.post("/cart/add", data={"accession": "GSE781"})
    assert "All 34" in _html(client.get("/download"))
    dataset_id = re.search(r'name="dataset" value="([0-9a-f-]{36})"', _html(client.get("/download"))).group(1)

    refused = client.post("/download", data={"dataset": dataset_id, "transform": "ZSCORE"})
    assert refused.status_code == 400
    assert "Please accept the terms of use" in refused.text

    started = client.post(
        "/download",
        data={"dataset": dataset_id, "transform": "ZSCORE", "formats": "tsv_zip", "accept_terms": "on"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    assert started.headers["location"] == f"/datasets/{dataset_id}"
    status = _html(client.get(f"/datasets/{dataset_id}"))  # the build ran as a background task
    assert "Your dataset is ready" in status
    assert "Z-score" in status
    download = client.get(f"/datasets/{dataset_id}/download", params={"format": "tsv_zip"})
    assert download.status_code == 200 and download.content[:2] == b"PK"
    client.cookies.clear()
    assert client.get(f"/datasets/{dataset_id}/download").status_code == 403


def test_remove_and_clear_cart(gse781_client) -> None:
    client = gse781_client
    client.cookies.clear()
    client.post("/cart/add", data={"accession": "GSE781"})
    client.post("/cart/remove", data={"accession": "GSE781", "sample": "GSM11805"})
    assert "33 selected" in _html(client.get("/download"))
    client.post("/cart/remove", data={"accession": "GSE781"})
    assert "Your dataset is empty." in _html(client.get("/download"))
    client.post("/cart/add", data={"accession": "GSE781"})
    client.post("/cart/clear", data={})
    assert "Your dataset is empty." in _html(client.get("/download"))
    bad = client.post("/cart/add", data={"accession": "GSE781", "sample": "GSM1"})
    assert bad.status_code == 400 and "GSM1: not samples of GSE781" in bad.text


def test_download_now_makes_a_separate_request(gse781_client) -> None:
    client = gse781_client
    client.cookies.clear()
    response = client.post("/download/experiment", data={"accession": "E-GEOD-781"}, follow_redirects=False)
    assert response.status_code == 303
    assert re.fullmatch(r"/download\?dataset=[0-9a-f-]{36}", response.headers["location"])
    page = _html(client.get(response.headers["location"]))
    assert "Download GSE781" in page
    assert "genemill_cart" not in response.headers.get("set-cookie", "")
