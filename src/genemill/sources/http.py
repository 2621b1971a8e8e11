"""The HTTP seam: one client factory, one retry loop, one rate limiter.

* :func:`make_client` builds the only kind of :class:`httpx.Client` genemill uses: a user agent that
  names genemill and the operator's contact address (NCBI and EBI ask for one), explicit timeouts
  (the read timeout bounds the silence *between* bytes, not the length of a download) and redirects
  followed. Tests pass ``transport=`` to reach a local server instead of the internet.
* :func:`with_retries` runs an operation until it succeeds or ``policy.max_attempts`` attempts have
  failed with a transient fault: HTTP 408/425/429/500/502/503/504 (raised by the operation as
  :class:`TransientResponse`) or a connect/read/protocol error from httpx. Waits grow exponentially
  (``base_delay * 2**(n-1)``, capped at ``max_delay``) with jitter, and never undercut a server's
  ``Retry-After``. When attempts run out it raises :class:`~genemill.errors.DownloadError` carrying
  the URL and the last HTTP status (``None`` for network errors).
* :class:`RateLimiter` spaces requests evenly (a token bucket holding ``burst`` tokens), thread-safe.
  NCBI E-utilities allow 3 requests/s per client without an API key and 10/s with one
  (:func:`ncbi_limiter` returns the process-wide limiter for the configured key).
"""

from __future__ import annotations

import email.utils
import functools
import importlib.metadata
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import httpx

from genemill.config import Settings
from genemill.errors import DownloadError, SourceError

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_ERRORS",
    "RETRYABLE_STATUSES",
    "TRANSPORT_ERRORS",
    "RateLimiter",
    "RetryPolicy",
    "TransientResponse",
    "describe_failure",
    "exhausted",
    "get_with_retries",
    "make_client",
    "ncbi_limiter",
    "retry_after_seconds",
    "user_agent",
    "wait_after_failure",
    "with_retries",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses that say "try again later" rather than "this request is wrong"."""

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts (a stalled server)
    httpx.NetworkError,  # connection refused/reset, read and write errors
    httpx.RemoteProtocolError,  # peer closed the connection before Content-Length bytes arrived
)
"""httpx errors worth retrying; invalid URLs and unsupported schemes are not among them."""

DEFAULT_TIMEOUT = httpx.Timeout(connect=15.0, read=120.0, write=60.0, pool=60.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    ``max_attempts`` counts every try including the first. The wait before attempt ``n + 1`` is
    ``min(max_delay, base_delay * 2**(n-1))`` with the upper ``jitter`` fraction randomised, raised to
    the server's ``Retry-After`` (itself capped at ``max_retry_after``).
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    max_retry_after: float = 600.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"RetryPolicy.max_attempts must be >= 1, found {self.max_attempts}"
            raise ValueError(msg)
        if not 0.0 <= self.jitter <= 1.0:
            msg = f"RetryPolicy.jitter must be within [0, 1], found {self.jitter}"
            raise ValueError(msg)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** max(failures - 1, 0))
        backoff -= backoff * self.jitter * random.random()  # jitter, not cryptography
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_retry_after))
        return backoff


DEFAULT_POLICY = RetryPolicy()


class TransientResponse(SourceError):
    """An HTTP response that asks to be retried (429, 5xx, ...); raised inside a retried operation.

    :func:`with_retries` catches it; callers only see it if they run an operation themselves.
    """

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)

    @classmethod
    def from_response(cls, response: httpx.Response) -> TransientResponse:
        """Describe ``response`` (status, reason, Retry-After) as a transient failure."""
        msg = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        return cls(msg, status=response.status_code, retry_after=retry_after_seconds(response))


RETRYABLE_ERRORS: tuple[type[Exception], ...] = (TransientResponse, *TRANSPORT_ERRORS)
"""What :func:`with_retries` retries: transient responses and transient transport errors."""


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Return the ``Retry-After`` header as seconds from now (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@functools.cache
def _version() -> str:
    try:
        return importlib.metadata.version("genemill")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def user_agent(settings: Settings) -> str:
    """Return ``genemill/<version> (+<contact email>)``, or without the comment if no email is set."""
    base = f"genemill/{_version()}"
    return f"{base} (+{settings.contact_email})" if settings.contact_email else base


def make_client(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float | None = None,
) -> httpx.Client:
    """Build the HTTP client every ``sources`` function expects.

    Parameters
    ----------
    settings
        Supplies the contact email for the user agent.
    transport
        Replacement transport, e.g. :class:`httpx.MockTransport` or a test server's transport.
    timeout
        Seconds (or an :class:`httpx.Timeout`); default :data:`DEFAULT_TIMEOUT`. The read timeout is
        the longest silence tolerated between two chunks; a stalled server is retried after it.
    """
    return httpx.Client(
        headers={"User-Agent": user_agent(settings)},
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        follow_redirects=True,
        transport=transport,
    )


def with_retries(
    operation: Callable[[int], T],
    *,
    url: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    method: str = "GET",
) -> T:
    """Call ``operation(attempt)`` (attempt counts from 1) until it returns or attempts run out.

    ``operation`` signals a retryable failure by raising :class:`TransientResponse` or one of
    :data:`TRANSPORT_ERRORS`; anything else propagates at once.

    Raises
    ------
    DownloadError
        After ``policy.max_attempts`` transient failures, naming ``url`` and the last status.
    """
    attempt = 1
    while True:
        try:
            return operation(attempt)
        except RETRYABLE_ERRORS as exc:
            if attempt >= policy.max_attempts:
                raise exhausted(exc, url=url, attempts=attempt, method=method) from exc
            wait_after_failure(exc, url=url, failures=attempt, policy=policy, method=method)
        attempt += 1


def describe_failure(exc: Exception) -> str:
    """One line for a transient failure: ``HTTP 503 Service Unavailable`` or ``ReadTimeout (...)``."""
    if isinstance(exc, TransientResponse):
        return str(exc)
    return f"{type(exc).__name__} ({exc})" if str(exc) else type(exc).__name__


def wait_after_failure(
    exc: Exception, *, url: str, failures: int, policy: RetryPolicy, method: str = "GET"
) -> None:
    """Log the ``failures``-th consecutive transient failure and sleep the policy's delay."""
    retry_after = exc.retry_after if isinstance(exc, TransientResponse) else None
    wait = policy.delay(failures, retry_after)
    logger.warning(
        "%s %s: %s (failure %d of at most %d); retrying in %.2f s",
        method,
        url,
        describe_failure(exc),
        failures,
        policy.max_attempts,
        wait,
    )
    policy.sleep(wait)


def exhausted(exc: Exception, *, url: str, attempts: int, method: str = "GET") -> DownloadError:
    """Build the :class:`DownloadError` for giving up on ``url`` after ``attempts`` failures."""
    status = exc.status if isinstance(exc, TransientResponse) else None
    msg = f"{method} {url} failed after {attempts} attempts: {describe_failure(exc)}"
    return DownloadError(msg, url=url, status=status)


def get_with_retries(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    limiter: RateLimiter | None = None,
) -> httpx.Response:
    """GET ``url`` with retries and return the first non-transient response, body read.

    The caller decides what a 404 or 403 means; only transient statuses are retried. Each attempt
    first waits for ``limiter`` (retries count against a rate limit too).
    """

    def attempt(_: int) -> httpx.Response:
        if limiter is not None:
            limiter.acquire()
        response = client.get(url, params=params, headers=headers)
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientResponse.from_response(response)
        return response

    return with_retries(attempt, url=url, policy=policy)


class RateLimiter:
    """Space calls ``1/rate`` seconds apart, allowing ``burst`` back-to-back calls; thread-safe.

    A token bucket in its GCRA form: one "theoretical arrival time" under a lock, sleeping outside it,
    so waiting threads queue fairly without holding the lock.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            msg = f"RateLimiter needs rate > 0 and burst >= 1, found rate={rate}, burst={burst}"
            raise ValueError(msg)
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = clock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, burst={self.burst})"

    def acquire(self) -> float:
        """Block until a call is allowed; return the seconds waited."""
        with self._lock:
            now = self._clock()
            arrival = max(self._next_free, now)
            wait = arrival - (self.burst - 1) * self._interval - now
            self._next_free = arrival + self._interval
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0


_NCBI_LIMITERS: dict[float, RateLimiter] = {}
_NCBI_LOCK = threading.Lock()


def ncbi_limiter(settings: Settings) -> RateLimiter:
    """Return the process-wide E-utilities limiter: 10 requests/s with an API key, else 3/s.

    NCBI counts requests per key (or per IP address), so every client in the process shares it.
    """
    rate = 10.0 if settings.ncbi_api_key else 3.0
    with _NCBI_LOCK:
        if rate not in _NCBI_LIMITERS:
            _NCBI_LIMITERS[rate] = RateLimiter(rate)
        return _NCBI_LIMITERS[rate]
