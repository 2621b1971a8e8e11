"""A local HTTP server for network tests: real files at real URL paths, with injected faults.

Nothing leaves the machine: the server listens on 127.0.0.1 on a random port in a background thread
(HTTP/1.1, keep-alive, one thread per connection) and answers only the routes a test registers.

Quick start::

    with FixtureServer() as server:
        server.add_file("/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz", DATA / "GSE781_family.soft.gz")
        server.add_fault("/geo/series/GSEnnn/GSE781/soft/GSE781_family.soft.gz", Fault.status(503, times=2))
        # either point settings at it ...
        settings = Settings(home=tmp_path, geo_base_url=server.base_url)
        # ... or keep production URLs and send every host to it:
        client = make_client(settings, transport=server.transport())
        ...
        assert [r.status for r in server.requests] == [503, 503, 200]

Routes (``path`` is the URL path without query, percent-decoded, e.g. ``/a b.txt``):

* :meth:`FixtureServer.add_file` / :meth:`add_bytes` — a body with ``Content-Length``, a strong
  ``ETag``, ``Last-Modified`` and byte ranges (``Range: bytes=N-`` / ``N-M`` → 206 with
  ``Content-Range``; unsatisfiable → 416 ``bytes */size``; ``If-Range`` that does not match the ETag →
  the whole body with 200). ``HEAD`` works on every route. ``query={"db": "gds"}`` restricts a route
  to requests whose query contains those values, so one path can serve several answers;
  ``ranges=False`` makes the route ignore ``Range`` like a server without range support.
* :meth:`add_redirect` — 301/302/307 to another path (kept relative, so it stays on the same host).
* :meth:`add_handler` — a function ``(RecordedRequest) -> Reply`` for anything dynamic.

Faults (:class:`Fault`) queue per path and are consumed in order, one request each, ``times`` times:

* ``Fault.status(429, retry_after=2, times=3)`` — that status (with ``Retry-After`` if given);
* ``Fault.truncate(after_bytes=1000)`` — announce the full ``Content-Length``, send 1000 bytes, close;
* ``Fault.stall(seconds=5, after_bytes=0)`` — send headers (and some bytes), go silent for
  ``seconds`` (longer than the client's read timeout), then close; ``close()`` ends stalls early;
* ``Fault.ignore_range()`` — answer a ``Range`` request with the whole body and 200;
* ``Fault.reset()`` — close the connection without answering.

Every request is logged as a :class:`RecordedRequest` (method, path, query, headers, host, status).
``autoindex_html`` renders a directory listing the way ftp.ncbi.nlm.nih.gov (Apache) does.

Reuse from another test folder: ``sys.path.insert(0, str(<repo>/"tests"/"sources"))`` in that
folder's conftest, then ``from fixture_server import FixtureServer, Fault``.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import mimetypes
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import httpx

__all__ = ["Fault", "FixtureServer", "RecordedRequest", "Reply", "autoindex_html"]

_CHUNK = 64 * 1024

FaultKind = Literal["status", "truncate", "stall", "ignore_range", "reset"]


@dataclass(frozen=True)
class Fault:
    """One kind of misbehaviour, applied to the next ``times`` requests for a path."""

    kind: FaultKind
    times: int = 1
    status_code: int = 500
    retry_after: str | None = None
    after_bytes: int = 0
    seconds: float = 5.0

    @classmethod
    def status(cls, code: int, *, times: int = 1, retry_after: float | str | None = None) -> Fault:
        """Answer with ``code`` (and ``Retry-After``), e.g. 429 or 503."""
        after = None if retry_after is None else str(retry_after)
        return cls("status", times=times, status_code=code, retry_after=after)

    @classmethod
    def truncate(cls, after_bytes: int, *, times: int = 1) -> Fault:
        """Send the full ``Content-Length`` header but only ``after_bytes`` of body, then close."""
        return cls("truncate", times=times, after_bytes=after_bytes)

    @classmethod
    def stall(cls, seconds: float, *, after_bytes: int = 0, times: int = 1) -> Fault:
        """Send headers and ``after_bytes`` bytes, then say nothing for ``seconds`` and close."""
        return cls("stall", times=times, seconds=seconds, after_bytes=after_bytes)

    @classmethod
    def ignore_range(cls, *, times: int = 1) -> Fault:
        """Answer a ``Range`` request with 200 and the whole body, as some servers do."""
        return cls("ignore_range", times=times)

    @classmethod
    def reset(cls, *, times: int = 1) -> Fault:
        """Close the connection without sending a response."""
        return cls("reset", times=times)


@dataclass(frozen=True)
class RecordedRequest:
    """What the server saw, and the status it answered (0 for a reset)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0
    fault: FaultKind | None = None

    @property
    def host(self) -> str:
        """The ``Host`` header: the production host when requests came through :meth:`transport`."""
        return self.headers.get("host", "")

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Reply:
    """A handler's answer."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest], Reply]


@dataclass
class _Route:
    query: dict[str, str]
    body: bytes | Path | None = None
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    handler: Handler | None = None
    ranges: bool = True

    def matches(self, query: dict[str, list[str]]) -> bool:
        return all(value in query.get(name, []) for name, value in self.query.items())

    def size(self) -> int:
        if isinstance(self.body, Path):
            return self.body.stat().st_size
        return len(self.body or b"")

    def etag(self) -> str:
        if isinstance(self.body, Path):
            stat = self.body.stat()
            return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        return '"' + hashlib.sha1(self.body or b"", usedforsecurity=False).hexdigest()[:16] + '"'

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Yield the body bytes ``[start, end)``."""
        if isinstance(self.body, Path):
            with self.body.open("rb") as fh:
                fh.seek(start)
                remaining = end - start
                while remaining > 0 and (chunk := fh.read(min(_CHUNK, remaining))):
                    remaining -= len(chunk)
                    yield chunk
        else:
            data = self.body or b""
            for offset in range(start, end, _CHUNK):
                yield data[offset : min(offset + _CHUNK, end)]


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int


class FixtureServer:
    """A threaded HTTP/1.1 server on 127.0.0.1:<random port>; use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, list[_Route]] = {}
        self._faults: dict[str, list[_PendingFault]] = {}
        self._requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.fixture = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FixtureServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- addresses -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + urllib.parse.quote(path, safe="/?=&;:@%+,")

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport that delivers requests for *any* host to this server.

        Tests can then use production URLs (``https://ftp.ncbi.nlm.nih.gov/...``) unchanged; the
        original host is kept in the ``Host`` header (:attr:`RecordedRequest.host`).
        """
        return _LocalTransport(self.port)

    # -- routes and faults -----------------------------------------------------------------------
    def add_file(
        self,
        path: str,
        file: Path,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        ranges: bool = True,
    ) -> None:
        """Serve the bytes of ``file`` (streamed from disk) at ``path``; ``ranges=False`` ignores Range."""
        if not file.is_file():
            raise FileNotFoundError(file)
        route = _Route(dict(query or {}), body=file, content_type=_guess(path, content_type), ranges=ranges)
        self._add(path, route)

    def add_bytes(
        self,
        path: str,
        data: bytes | str,
        *,
        content_type: str | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        ranges: bool = True,
    ) -> None:
        """Serve ``data`` (str is UTF-8 encoded) at ``path`` with ``status``; ``ranges=False`` ignores Range."""
        body = data.encode() if isinstance(data, str) else data
        route = _Route(
            dict(query or {}),
            body=body,
            content_type=_guess(path, content_type),
            status=status,
            headers=dict(headers or {}),
            ranges=ranges,
        )
        self._add(path, route)

    def add_redirect(self, path: str, location: str, *, status: int = 302) -> None:
        """Redirect ``path`` to ``location`` (a path on this server or an absolute URL)."""
        route = _Route({}, body=b"", status=status, headers={"Location": location})
        self._add(path, route)

    def add_handler(self, path: str, handler: Handler, *, query: Mapping[str, str] | None = None) -> None:
        """Answer ``path`` with ``handler(request)``."""
        self._add(path, _Route(dict(query or {}), handler=handler))

    def add_fault(self, path: str, fault: Fault) -> None:
        """Queue ``fault`` for the next ``fault.times`` requests to ``path`` (after earlier faults)."""
        with self._lock:
            self._faults.setdefault(path, []).append(_PendingFault(fault, fault.times))

    def _add(self, path: str, route: _Route) -> None:
        with self._lock:
            self._routes.setdefault(path, []).insert(0, route)  # newest first, so it can override

    # -- request log -----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- used by the handler ---------------------------------------------------------------------
    def _lookup(self, path: str, query: dict[str, list[str]]) -> tuple[_Route | None, Fault | None]:
        with self._lock:
            route = next((r for r in self._routes.get(path, []) if r.matches(query)), None)
            fault = None
            for pending in self._faults.get(path, []):
                if pending.remaining > 0:
                    pending.remaining -= 1
                    fault = pending.fault
                    break
            return route, fault

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


def _guess(path: str, content_type: str | None) -> str:
    if content_type:
        return content_type
    if path.endswith(".gz") or path.endswith(".tgz") or path.endswith(".tar"):
        return "application/octet-stream"  # never let a .gz look like Content-Encoding: gzip
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


class _LocalTransport(httpx.BaseTransport):
    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        local = httpx.Request(
            request.method,
            request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port),
            headers=request.headers,  # keeps the original Host header
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(local)

    def close(self) -> None:
        self._inner.close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "genemill-fixture/1"
    server: ThreadingHTTPServer

    def handle(self) -> None:
        """Serve the connection; a client hanging up between requests is normal, not an error."""
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; the request log is :attr:`FixtureServer.requests`."""

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    @property
    def fixture(self) -> FixtureServer:
        return self.server.fixture  # type: ignore[attr-defined,no-any-return]

    def _serve(self, *, head: bool) -> None:
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        seen = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        route, fault = self.fixture._lookup(path, query)
        self._seen, self._fault, self._recorded = seen, fault, False
        try:
            status = self._respond(seen, route, fault, head=head)
        except (BrokenPipeError, ConnectionResetError):
            status = -1  # the client went away (e.g. after its read timeout)
            self.close_connection = True
        self._record(status)

    def _record(self, status: int) -> None:
        """Log the request once, before the client can see any answer (so tests never race it)."""
        if not self._recorded:
            self._recorded = True
            kind = self._fault.kind if self._fault else None
            self.fixture._record(replace(self._seen, status=status, fault=kind))

    def _end_headers(self, status: int) -> None:
        self._record(status)
        self.end_headers()

    def _respond(
        self, seen: RecordedRequest, route: _Route | None, fault: Fault | None, *, head: bool
    ) -> int:
        if fault is not None and fault.kind == "reset":
            self.close_connection = True
            self._record(0)
            return 0
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = f"{fault.status_code} injected by FixtureServer\n".encode()
            return self._simple(fault.status_code, body, headers=headers, head=head)
        if route is None:
            return self._simple(404, f"no route for {seen.path}\n".encode(), head=head)
        if route.handler is not None:
            reply = route.handler(seen)
            return self._simple(reply.status, reply.body, headers=dict(reply.headers), head=head)
        if route.status != 200 or "Location" in route.headers:
            body = b"".join(route.chunks(0, route.size()))
            return self._simple(
                route.status, body, headers=route.headers, content_type=route.content_type, head=head
            )
        return self._body(seen, route, fault, head=head)

    def _simple(
        self,
        status: int,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        head: bool = False,
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._end_headers(status)
        if not head:
            self.wfile.write(body)
        return status

    def _body(self, seen: RecordedRequest, route: _Route, fault: Fault | None, *, head: bool) -> int:
        size, etag = route.size(), route.etag()
        span = _requested_span(seen, size, etag)
        if not route.ranges or (fault is not None and fault.kind == "ignore_range"):
            span = None
        if span == "unsatisfiable":
            return self._simple(416, b"", headers={"Content-Range": f"bytes */{size}"}, head=head)
        start, end = (0, size) if span is None else span
        status = 200 if span is None else 206
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes" if route.ranges else "none")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(0, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for name, value in route.headers.items():
            self.send_header(name, value)
        self._end_headers(status)
        if head:
            return status
        limit = end
        if fault is not None and fault.kind in ("truncate", "stall"):
            limit = min(end, start + fault.after_bytes)
        for chunk in route.chunks(start, limit):
            self.wfile.write(chunk)
        self.wfile.flush()
        if fault is not None and fault.kind == "stall":
            self.fixture.stopping.wait(fault.seconds)
        if limit < end:
            self.close_connection = True
        return status


def _requested_span(
    seen: RecordedRequest, size: int, etag: str
) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse a single ``bytes=`` range; None means "send everything with 200"."""
    header = seen.range
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    if_range = seen.headers.get("if-range")
    if if_range is not None and if_range not in (etag, email.utils.formatdate(0, usegmt=True)):
        return None
    first, _, last = header[len("bytes=") :].partition("-")
    if not first.isdigit():
        return None  # suffix ranges (bytes=-N) are not needed by genemill
    start = int(first)
    end = min(int(last) + 1, size) if last.isdigit() else size
    if start >= size or start >= end:
        return "unsatisfiable"
    return start, end


def autoindex_html(directory: str, names: list[str]) -> str:
    """Render an Apache directory listing as ftp.ncbi.nlm.nih.gov serves it.

    The layout follows a listing captured from the live server (quoted in a public test suite):
    absolute ``Parent Directory`` link, one ``<a href="name">name</a>`` line per entry inside ``<pre>``
    with date and size columns, and the site-wide HHS link after ``</pre>``. Dates and sizes here are
    placeholders; genemill reads only the names.
    """
    directory = directory.rstrip("/")
    parent = directory.rsplit("/", 1)[0] + "/"
    rows = "".join(
        f'<a href="{urllib.parse.quote(name)}">{html.escape(name)}</a>'
        f"{' ' * max(1, 40 - len(name))}2024-01-01 00:00  1.0K\n"
        for name in names
    )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {directory}</title>\n </head>\n <body>\n<h1>Index of {directory}</h1>\n"
        "<pre>Name                                    Last modified      Size  <hr>"
        f'<a href="{parent}">Parent Directory</a>                             -\n'
        f"{rows}<hr></pre>\n"
        '<a href="https://www.hhs.gov/vulnerability-disclosure-policy/index.html">'
        "HHS Vulnerability Disclosure</a>\n</body></html>\n"
    )
