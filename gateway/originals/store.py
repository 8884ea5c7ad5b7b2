"""Originals on local disk, addressed by the SHA-256 of their bytes.

Writes go to a temporary file in the same directory, are flushed to disk and
renamed into place, so a reader never sees a half-written original and a crash
leaves at most a stray temporary file (swept at start-up, once it is old: a
sibling worker may be writing it right now).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Final

__all__ = ["STRAY_AGE", "OriginalStore", "remove_older"]

_SHA256: Final = re.compile(r"[0-9a-f]{64}")
# A temporary file (a spooled upload, an original being written) older than
# this was left by a process that died; a younger one may be another
# worker's, in use.
STRAY_AGE: Final = 3600.0


def remove_older(paths: Iterable[Path], older_than: float) -> int:
    """Remove the files last written over `older_than` seconds ago; say how many."""
    cutoff = time.time() - older_than
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


class OriginalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / "incoming"
        self._incoming.mkdir(parents=True, exist_ok=True)
        remove_older(self._incoming.iterdir(), STRAY_AGE)

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store bytes (once per content); return their SHA-256."""
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

    def sweep(self, in_use: Collection[str], *, older_than: float) -> int:
        """Remove originals no image refers to, last written over `older_than`
        seconds ago (younger ones may be on their way into the catalog, from
        this process or another); say how many went."""
        unreferenced = (
            path
            for path in self.root.glob("??/*")
            if _SHA256.fullmatch(path.name) and path.name not in in_use
        )
        return remove_older(unreferenced, older_than)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def remove(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()
