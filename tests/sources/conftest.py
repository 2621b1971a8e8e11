"""Fixtures for genemill.sources tests: a local fixture server, fast retries, settings, a client.

``client`` keeps genemill's production base URLs (``https://ftp.ncbi.nlm.nih.gov`` ...) and sends
every request to the local :class:`FixtureServer` through its transport, so the real URL layout is
exercised and nothing reaches the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fixture_server import FixtureServer

from genemill.config import Settings
from genemill.sources.http import RetryPolicy, make_client

REPO = Path(__file__).parents[2]
DATA = REPO / "data"
SOURCES_DATA = REPO / "tests" / "data" / "sources"

# Short enough to keep the suite fast, long enough that localhost never trips it by accident.
TEST_TIMEOUT = httpx.Timeout(5.0, read=0.5)


@pytest.fixture
def fixture_server() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture
def fast_policy() -> RetryPolicy:
    """Three attempts, 10-50 ms apart (a Retry-After from the server still wins)."""
    return RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def source_settings(tmp_path: Path) -> Settings:
    """Production URLs, no API key, a contact email for the user agent."""
    return Settings(home=tmp_path / "home", contact_email="tests@genemill.invalid", ncbi_api_key=None)


@pytest.fixture
def client(source_settings: Settings, fixture_server: FixtureServer) -> Iterator[httpx.Client]:
    with make_client(source_settings, transport=fixture_server.transport(), timeout=TEST_TIMEOUT) as c:
        yield c
