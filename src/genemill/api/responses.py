"""JSON responses serialized once, without re-validating the handler's dict through its model.

FastAPI validates a returned dict against ``response_model`` and then serializes it; for a search
page (25 summaries and the facet counts) that costs more than the search itself. Hot routes build
dicts with exactly their model's fields (tests compare the two serializations) and return
:func:`json_response`; ``response_model`` stays on the route for the OpenAPI schema.
orjson is used when installed (it is several times faster than the standard library here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi.responses import Response

orjson: Any
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is optional
    orjson = None

__all__ = ["dumps", "json_response"]


def _default(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


def dumps(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON."""
    if orjson is not None:
        encoded: bytes = orjson.dumps(content, default=_default)
        return encoded
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def json_response(content: Any, *, headers: Mapping[str, str] | None = None) -> Response:
    """A 200 ``application/json`` response with ``content`` serialized once."""
    return Response(dumps(content), media_type="application/json", headers=dict(headers or {}))
