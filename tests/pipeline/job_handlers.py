"""Job handlers used by the job-runner tests (importable by worker processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from genemill.config import Settings
from genemill.errors import InputError, SourceError


def count_and_maybe_fail(settings: Settings, target: str, params: dict[str, Any]) -> dict[str, Any]:
    """Append one line per attempt to a log; fail transiently the first ``fail_times`` attempts."""
    log = Path(params["log"])
    with log.open("a") as fh:
        fh.write(f"{target} {os.getpid()}\n")
    attempts = sum(1 for line in log.read_text().splitlines() if line.split()[0] == target)
    if params.get("permanent"):
        msg = f"{target}: malformed input"
        raise InputError(msg)
    if attempts <= int(params.get("fail_times", 0)):
        msg = f"{target}: archive answered 503 (attempt {attempts})"
        raise SourceError(msg)
    return {"attempts": attempts}
