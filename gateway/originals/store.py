"""What an originals store does, whichever holds the bytes: a local directory
(`local.py`, the default) or an S3-compatible object store (`s3.py`).

Originals are addressed by the SHA-256 of their bytes, so a key never changes
meaning: a reader that finds one has the right bytes, a cache of them is never
stale, and a second store of the same content is a no-op. Each store makes an
original visible whole or not at all, and leaves what a crash interrupts to
its sweep.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Final, Protocol

__all__ = ["SHA256", "STRAY_AGE", "OriginalStore", "check_sha256", "remove_older"]

SHA256: Final = re.compile(r"[0-9a-f]{64}")
# A temporary file or unfinished upload (a spooled upload, an original being
# written) older than this was left by a process that died; a younger one may
# be another worker's, in use.
STRAY_AGE: Final = 3600.0


class OriginalStore(Protocol):
    """Content-addressed originals; every method may be awaited from the event loop."""

    async def put(self, data: bytes) -> str:
        """Store bytes (once per content) and return their SHA-256.

        Storing content already there makes it young again, so that a sweep
        spares what is about to be registered.
        """
        ...

    async def read(self, sha256: str, *, size: int) -> bytes:
        """The original's bytes; `size` is what the catalog recorded (a bound).

        Raises `FileNotFoundError` when it is gone (deleted meanwhile).
        """
        ...

    async def remove(self, sha256: str) -> None:
        """Remove it; removing what is not there is no error."""
        ...

    async def sweep(self, in_use: Collection[str], *, older_than: float) -> int:
        """Remove originals no image refers to, last written over `older_than`
        seconds ago (younger ones may be on their way into the catalog, from
        this process or another), and what crashes left half-written; say how
        many originals went."""
        ...

    async def check(self) -> None:
        """Raise `ConfigError` when the store cannot be used (checked before
        serving, so a wrong bucket or key is one line at start, not 503s)."""
        ...

    async def close(self) -> None: ...


def check_sha256(sha256: str) -> str:
    """The digest, if it is one: it becomes a path or an object key."""
    if not SHA256.fullmatch(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return sha256


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
