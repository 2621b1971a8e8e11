"""Where job functions run: in-process (tests, tiny jobs) or a local process pool (the default).

Both follow ``Executor``; a Dask executor joins them later behind the same two methods.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

__all__ = ["Executor", "InlineExecutor", "LocalExecutor"]


class Executor(Protocol):
    """Runs picklable functions and returns futures."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Schedule ``fn(*args)``."""
        ...

    def shutdown(self) -> None:
        """Release workers."""
        ...


class InlineExecutor:
    """Runs each function immediately in this process (deterministic; used by tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` now and return a completed future."""
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self) -> None:
        """Nothing to release."""


class LocalExecutor:
    """A pool of worker processes on this machine (spawned: no state inherited from the parent)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Schedule ``fn(*args)`` on a worker process."""
        return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        """Wait for running work and stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)
