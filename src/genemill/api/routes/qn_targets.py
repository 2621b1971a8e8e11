"""``/v1/qn_targets/``: the stored quantile-normalization targets, one per organism (and platform)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from genemill.api.deps import SessionDep
from genemill.datasets import find_qn_target
from genemill.datasets.targets import QN_TARGET, TargetInfo, target_key
from genemill.errors import NotFoundError
from genemill.store import listings

__all__ = ["router"]

router = APIRouter(prefix="/qn_targets", tags=["qn_targets"])


def _out(request: Request, info: TargetInfo) -> dict[str, Any]:
    out = info.to_dict()
    out.pop("source", None)
    out["download_url"] = f"{str(request.base_url).rstrip('/')}/v1/qn_targets/{info.key}/download"
    return out


def _find(session: Any, organism: str) -> TargetInfo:
    key = target_key(organism.strip().upper().replace(" ", "_"))
    info = find_qn_target(session, key)
    if info is None:
        msg = f"no quantile-normalization target for {organism!r} (key {key}) in this genemill database"
        raise NotFoundError(msg)
    return info


@router.get("")
def list_targets(request: Request, session: SessionDep) -> list[dict[str, Any]]:
    """Current targets, by key (``HOMO_SAPIENS`` or ``HOMO_SAPIENS:GPL570``)."""
    keys = listings.list_result_modes(session, QN_TARGET)
    found = (find_qn_target(session, key) for key in keys)
    return [_out(request, info) for info in found if info is not None]


@router.get("/{organism}")
def read_target(organism: str, request: Request, session: SessionDep) -> dict[str, Any]:
    """The current organism-level target (``HOMO_SAPIENS`` or ``Homo sapiens``)."""
    return _out(request, _find(session, organism))


@router.get("/{organism}/download", response_class=FileResponse)
def download_target(organism: str, session: SessionDep) -> FileResponse:
    """The target as a one-column Parquet file (``target``, ascending float64)."""
    info = _find(session, organism)
    return FileResponse(info.path, filename=f"qn_target_{info.key.replace(':', '_')}_v{info.version}.parquet")
