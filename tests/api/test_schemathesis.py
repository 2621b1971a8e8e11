"""Property-based checks of the whole /v1 API from its OpenAPI schema with schemathesis.

No generated request may produce a 5xx, and every response must match the documented schema and
status codes (including the canonical error shape). schemathesis is a declared dev dependency
(installed by scripts/setup.sh); its pytest plugin does not load under pytest 9, hence the
explicit Hypothesis loop over the operations.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from genemill.config import Settings
from genemill.server import create_app
from genemill.store.db import Database

EXAMPLES_PER_OPERATION = 40


def _checker(operation):
    # Dataset requests have rules across fields (ALL alone, min_fraction only with MIN_FRACTION)
    # that a JSON schema cannot state; their 400s are checked in test_datasets.py instead.
    excluded = [positive_data_acceptance] if "/v1/dataset" in operation.label else []

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def check(case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    return check


@pytest.mark.slow
def test_api_conforms_to_its_schema(settings: Settings, db: Database) -> None:
    from tests.app_fixtures import load_generated_catalog

    load_generated_catalog(db)
    # NUL characters are refused with a 400 by design (PostgreSQL text cannot hold them): do not generate them.
    config = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
    app = create_app(settings, db=db, rate_limit=None)
    schema = schemathesis.openapi.from_asgi("/v1/schema", app, config=config)
    failures: list[str] = []
    labels: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        check = _checker(operation)
        try:
            check()
        except (AssertionError, ExceptionGroup) as exc:  # how schemathesis and Hypothesis report failures
            failures.append(f"{operation.label}: {exc}")
    assert len(labels) >= 10
    assert not failures, "\n\n".join(failures)
