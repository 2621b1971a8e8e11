"""Content-addressed file store: files are written once, under their sha256, atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from genemill.errors import StoreError

__all__ = ["FileStore", "StoredFile", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """Where a stored file lives and what it hashes to."""

    path: Path
    sha256: str
    size: int


class FileStore:
    """Files under ``root/<sha[:2]>/<sha><suffix>``; writes go to a temp file then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str, suffix: str = "") -> Path:
        """Path a file with this hash (and suffix) has in the store."""
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def put(self, source: Path, *, suffix: str = "") -> StoredFile:
        """Copy ``source`` into the store (no-op when already present and intact)."""
        digest = sha256_file(source)
        target = self.path_for(digest, suffix)
        if target.exists() and sha256_file(target) == digest:
            return StoredFile(target, digest, target.stat().st_size)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
            tmp_path = Path(tmp.name)
            with source.open("rb") as src:
                shutil.copyfileobj(src, tmp, _CHUNK)
            tmp.flush()
            os.fsync(tmp.fileno())
        tmp_path.replace(target)
        return StoredFile(target, digest, target.stat().st_size)

    def put_bytes_atomic(self, target: Path, data: bytes) -> StoredFile:
        """Write ``data`` to ``target`` (anywhere under root) via a temp file and rename."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        Path(tmp.name).replace(target)
        return StoredFile(target, hashlib.sha256(data).hexdigest(), len(data))

    def verify(self, path: Path, sha256: str) -> None:
        """Raise StoreError when a stored file is missing or its content changed."""
        if not path.exists():
            msg = f"stored file {path} is missing"
            raise StoreError(msg)
        actual = sha256_file(path)
        if actual != sha256:
            msg = f"stored file {path} changed: expected sha256 {sha256}, found {actual}"
            raise StoreError(msg)
