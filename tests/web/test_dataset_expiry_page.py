"""The dataset status page once the files have expired: it says so and offers "Regenerate files".

On the real, processed GSE781 (tests/app_fixtures.py): one app keeps built files a week, a second
app on the same database and home lets them expire after 1.5 s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.app_fixtures import make_client

from genemill.config import Settings
from genemill.store.db import Database

pytestmark = pytest.mark.filterwarnings("ignore::genemill.errors.GenemillWarning")

SHORT_LIFETIME_SECONDS = 1.5


@pytest.fixture
def short_client(gse781: tuple[Settings, Database]) -> Iterator[Any]:
    settings, db = gse781
    short = Settings(home=settings.home, dataset_lifetime_days=SHORT_LIFETIME_SECONDS / 86400)
    with make_client(short, db) as client:
        yield client


def _start(client: Any, accession: str) -> str:
    client.cookies.clear()
    client.post("/cart/add", data={"accession": accession})
    page = client.get("/download").text
    dataset_id = re.search(r'name="dataset" value="([0-9a-f-]{36})"', page).group(1)
    started = client.post(
        "/download",
        data={"dataset": dataset_id, "formats": "tsv_zip", "accept_terms": "on"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    return dataset_id


def test_expired_dataset_offers_regeneration(short_client, gse781_client) -> None:
    dataset_id = _start(short_client, "GSE781")
    ready = short_client.get(f"/datasets/{dataset_id}")
    assert ready.status_code == 200
    assert "Your dataset is ready" in ready.text
    assert "Files available until" in ready.text
    assert "Regenerate files" not in ready.text
    time.sleep(SHORT_LIFETIME_SECONDS + 0.2)

    expired = short_client.get(f"/datasets/{dataset_id}")
    assert expired.status_code == 200
    assert "files have expired" in expired.text
    assert f'action="/datasets/{dataset_id}/regenerate"' in expired.text
    assert "Regenerate files" in expired.text
    assert "last built by genemill 0.1.0" in expired.text
    gone = short_client.get(f"/datasets/{dataset_id}/download", params={"format": "tsv_zip"})
    assert gone.status_code == 410
    assert "expired" in gone.text and "text/html" in gone.headers["content-type"]

    # Regenerated through the app that keeps files a week: same id, same request, files again.
    gse781_client.cookies.clear()
    for name, value in short_client.cookies.items():
        gse781_client.cookies.set(name, value)
    regenerated = gse781_client.post(f"/datasets/{dataset_id}/regenerate", follow_redirects=False)
    assert regenerated.status_code == 303
    assert regenerated.headers["location"] == f"/datasets/{dataset_id}"
    rebuilt = gse781_client.get(f"/datasets/{dataset_id}")
    assert "Your dataset is ready" in rebuilt.text
    download = gse781_client.get(f"/datasets/{dataset_id}/download", params={"format": "tsv_zip"})
    assert download.status_code == 200 and download.content[:2] == b"PK"
    gse781_client.cookies.clear()


def test_regenerating_a_fresh_dataset_is_refused(gse781_client) -> None:
    dataset_id = _start(gse781_client, "GSE781")
    response = gse781_client.post(f"/datasets/{dataset_id}/regenerate")
    assert response.status_code == 400
    assert "has not expired" in response.text
    gse781_client.cookies.clear()
