"""How long a built dataset's files stay downloadable, and regenerating them afterwards.

refine.bio (ANCHOR.md §3, §5) keeps a built zip for 7 days (``expires_on``); afterwards the dataset
page offers "Regenerate Files". genemill does the same with ``Settings.dataset_lifetime_days``:

* a successful build sets ``expires_at = finished_at + lifetime`` (``expiry_after``);
* ``is_expired``: the dataset is ``EXPIRED``, or ``SUCCEEDED`` with ``expires_at`` in the past — so
  a download is refused on time even before the sweep has run;
* ``expire_datasets`` (the sweep, run after every dataset job): removes the files of overdue
  datasets and marks them ``EXPIRED`` (the file list stays, for the record);
* ``DatasetExpiredError``: what asking for an expired file raises (the API answers 410 Gone);
* ``regenerate_dataset``: an expired dataset goes back to ``QUEUED`` with its stored spec, keeping
  its id (shared links keep working); a dataset whose files are still available is refused.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from genemill.datasets.models import Dataset, DatasetState
from genemill.errors import InputError
from genemill.store.models import utcnow

__all__ = [
    "DatasetExpiredError",
    "as_utc",
    "expire_dataset",
    "expire_datasets",
    "expiry_after",
    "is_expired",
    "overdue",
    "regenerate_dataset",
]


class DatasetExpiredError(InputError):
    """The dataset was built, but its files outlived their lifetime; regenerate it to download again."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset_id = dataset.id
        when = as_utc(dataset.expires_at)
        since = f" on {when:%Y-%m-%d %H:%M} UTC" if when is not None else ""
        super().__init__(
            f"dataset {dataset.id} expired{since}: its files were removed after their lifetime; "
            f"regenerate it (POST /v1/dataset/{dataset.id}/regenerate, or the button on "
            f"/datasets/{dataset.id}) to build them again from the same request"
        )


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def expiry_after(finished_at: dt.datetime, lifetime_days: float | None) -> dt.datetime | None:
    """When files finished at ``finished_at`` expire (None: never)."""
    if lifetime_days is None:
        return None
    return finished_at + dt.timedelta(days=lifetime_days)


def is_expired(dataset: Dataset, now: dt.datetime | None = None) -> bool:
    """True when the dataset's files are (or are due to be) gone for age."""
    if dataset.state == DatasetState.EXPIRED:
        return True
    expires = as_utc(dataset.expires_at)
    return dataset.state == DatasetState.SUCCEEDED and expires is not None and expires <= (now or utcnow())


def overdue(moment: dt.datetime) -> ColumnElement[bool]:
    """SQL condition of :func:`is_expired` for datasets the sweep has not marked yet."""
    return and_(
        Dataset.state == DatasetState.SUCCEEDED, Dataset.expires_at.is_not(None), Dataset.expires_at <= moment
    )


def _remove_files(dataset: Dataset) -> None:
    for entry in dataset.files:
        Path(entry["path"]).unlink(missing_ok=True)


def expire_dataset(dataset: Dataset) -> None:
    """Remove an overdue dataset's files and mark it ``EXPIRED``."""
    _remove_files(dataset)
    dataset.state = DatasetState.EXPIRED


def expire_datasets(session: Session, now: dt.datetime | None = None) -> list[str]:
    """Expire every built dataset whose lifetime is over; returns their ids."""
    moment = now or utcnow()
    expired = []
    for dataset in session.scalars(select(Dataset).where(overdue(moment)).order_by(Dataset.id)):
        expire_dataset(dataset)
        expired.append(dataset.id)
    session.flush()
    return expired


def regenerate_dataset(session: Session, dataset: Dataset, now: dt.datetime | None = None) -> Dataset:
    """Queue an expired dataset to be built again from its stored spec (same id)."""
    if not is_expired(dataset, now):
        if dataset.state == DatasetState.SUCCEEDED:
            until = as_utc(dataset.expires_at)
            left = f" until {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
            msg = f"dataset {dataset.id} has not expired: its files can be downloaded{left}"
        else:
            msg = (
                f"dataset {dataset.id} is {dataset.state.value}, not expired: only an expired dataset "
                "is regenerated (start a created or failed one with PUT /v1/dataset/{id}/ "
                '{"start": true})'
            )
        raise InputError(msg)
    if dataset.state == DatasetState.SUCCEEDED:
        _remove_files(dataset)
    dataset.state = DatasetState.QUEUED
    dataset.files = []
    dataset.expires_at = None
    dataset.error = dataset.error_type = None
    session.flush()
    return dataset
