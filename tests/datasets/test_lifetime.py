"""Dataset lifetime rules on unsaved Dataset rows: when files expire, what counts as expired, what regenerates.

The full flow (build, 410, sweep, regenerate) runs on both backends in tests/api/test_dataset_lifecycle.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from genemill.datasets import Dataset, DatasetState, is_expired
from genemill.datasets.lifetime import DatasetExpiredError, as_utc, expiry_after
from genemill.errors import InputError

FINISHED = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def test_expiry_after_the_lifetime_or_never() -> None:
    assert expiry_after(FINISHED, 7) == dt.datetime(2026, 1, 17, 12, 0, tzinfo=dt.UTC)
    assert expiry_after(FINISHED, 0.5) == dt.datetime(2026, 1, 11, 0, 0, tzinfo=dt.UTC)
    assert expiry_after(FINISHED, None) is None


@pytest.mark.parametrize(
    ("state", "expires_at", "now", "expected"),
    [
        (DatasetState.SUCCEEDED, FINISHED, FINISHED - dt.timedelta(seconds=1), False),
        (DatasetState.SUCCEEDED, FINISHED, FINISHED, True),
        (
            DatasetState.SUCCEEDED,
            FINISHED.replace(tzinfo=None),
            FINISHED + dt.timedelta(days=1),
            True,
        ),  # SQLite
        (DatasetState.SUCCEEDED, None, FINISHED + dt.timedelta(days=10_000), False),
        (DatasetState.EXPIRED, FINISHED, FINISHED - dt.timedelta(days=1), True),
        (DatasetState.FAILED, FINISHED, FINISHED + dt.timedelta(days=1), False),
        (DatasetState.QUEUED, FINISHED, FINISHED + dt.timedelta(days=1), False),
    ],
    ids=["before", "at", "naive", "never", "marked", "failed", "queued"],
)
def test_is_expired(
    state: DatasetState, expires_at: dt.datetime | None, now: dt.datetime, expected: bool
) -> None:
    dataset = Dataset(id="d", spec={}, state=state, files=[], summary={}, expires_at=expires_at)
    assert is_expired(dataset, now) is expected


def test_expired_error_says_when_and_how_to_regenerate() -> None:
    dataset = Dataset(id="abc", state=DatasetState.EXPIRED, expires_at=FINISHED.replace(tzinfo=None))
    error = DatasetExpiredError(dataset)
    assert isinstance(error, InputError)
    assert str(error).startswith("dataset abc expired on 2026-01-10 12:00 UTC")
    assert "POST /v1/dataset/abc/regenerate" in str(error)
    assert as_utc(None) is None
