"""Originals on local disk, addressed by the SHA-256 of their bytes.

Writes go to a temporary file in `incoming/`, are flushed to disk and renamed
into place, so a reader never sees a half-written original and a crash leaves
at most a stray temporary file (swept at start-up, once it is old: a sibling
worker may be writing it right now). The file work runs in a thread, off the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Collection
from pathlib import Path

from gateway.originals.store import SHA256, STRAY_AGE, check_sha256, remove_older

__all__ = ["LocalOriginalStore"]


class LocalOriginalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / "incoming"
        self._incoming.mkdir(parents=True, exist_ok=True)
        remove_older(self._incoming.iterdir(), STRAY_AGE)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self._put, data)

    async def read(self, sha256: str, *, size: int) -> bytes:
        return await asyncio.to_thread(self.path(sha256).read_bytes)

    async def remove(self, sha256: str) -> None:
        await asyncio.to_thread(self._remove, sha256)

    async def sweep(self, in_use: Collection[str], *, older_than: float) -> int:
        return await asyncio.to_thread(self._sweep, in_use, older_than)

    async def check(self) -> None:
        pass  # the constructor made the directory, or raised

    async def close(self) -> None:
        pass

    def _put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            # Fresh again: a sweep spares what is about to be registered.
            with contextlib.suppress(FileNotFoundError):
                os.utime(target)
                return sha256
        target.parent.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._incoming, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            Path(name).replace(target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return sha256

    def _remove(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def _sweep(self, in_use: Collection[str], older_than: float) -> int:
        unreferenced = (
            path
            for path in self.root.glob("??/*")
            if SHA256.fullmatch(path.name) and path.name not in in_use
        )
        return remove_older(unreferenced, older_than)
