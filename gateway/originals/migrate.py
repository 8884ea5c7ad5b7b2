"""Copy a local originals directory into an S3 store (moving up to replicas).

Idempotent and resumable: each original is one object, which appears whole
or not at all, so a run that stops midway leaves some originals copied and
none half-copied; the next run copies only what is missing. Verified by
hashes both ways: a local file goes up only if its bytes hash to its name
(checked as they stream, so a damaged one is never completed), and every
object, copied now or found from an earlier run, is read back and hashed
before it counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.originals.s3 import S3OriginalStore
from gateway.originals.store import SHA256

__all__ = ["CopyReport", "copy_originals"]

log = logging.getLogger("gateway.originals")


@dataclass(slots=True, kw_only=True)
class CopyReport:
    copied: int = 0  # uploaded by this run, then read back and verified
    present: int = 0  # already in the store, read back and verified
    # Local files whose bytes do not hash to their name: left alone, never
    # uploaded. Restore them from a backup, or remove their images.
    damaged: list[str] = field(default_factory=list)

    @property
    def verified(self) -> int:
        return self.copied + self.present


def _originals(root: Path) -> Iterator[Path]:
    """The originals under a local store's root (not `incoming/`, nothing else)."""
    for path in sorted(root.glob("??/*")):
        if SHA256.fullmatch(path.name) and path.parent.name == path.name[:2]:
            yield path


async def copy_originals(
    source: Path,
    target: S3OriginalStore,
    *,
    concurrency: int = 4,
    progress: Callable[[CopyReport], None] | None = None,
) -> CopyReport:
    """Copy every original under `source` into `target`; say what happened.

    Raises `OriginalsUnavailableError` when the store fails (rerun to resume).
    """
    report = CopyReport()
    paths = _originals(source)

    async def worker() -> None:
        for path in paths:  # one shared iterator: each path taken once
            await _copy_one(path, target, report)
            if progress is not None:
                progress(report)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return report


async def _copy_one(path: Path, target: S3OriginalStore, report: CopyReport) -> None:
    sha256 = path.name
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    if await target.size(sha256) == size and await _intact(target, sha256, size):
        report.present += 1
        return
    try:
        await target.put_file(path, sha256)
    except ValueError:
        log.error("%s does not hash to its name: not copied", path)
        report.damaged.append(sha256)
        return
    if not await _intact(target, sha256, size):
        raise OSError(f"{sha256} read back from the store differs from {path}")
    report.copied += 1


async def _intact(target: S3OriginalStore, sha256: str, size: int) -> bool:
    """Read back whole and hashed (`read` checks both)."""
    try:
        await target.read(sha256, size=size)
    except OSError:  # FileNotFoundError among them
        return False
    finally:
        target.forget(sha256)  # a migration reads each once: cache none
    return True
