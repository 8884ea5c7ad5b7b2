"""Copying a local originals directory into S3: idempotent, resumable, and
verified by hashes both ways."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import Settings
from gateway.originals.local import LocalOriginalStore
from gateway.originals.migrate import CopyReport, copy_originals
from gateway.originals.s3 import PART_SIZE, S3OriginalStore, open_s3_store
from tests.conftest import render_settings
from tests.images import solid
from tests.s3 import S3Server, s3_settings


@pytest.fixture
def settings(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Settings:
    return s3_settings(render_settings(tmp_path), s3_server, s3_bucket)


@pytest.fixture
async def s3(settings: Settings) -> AsyncIterator[S3OriginalStore]:
    async with open_s3_store(settings.store, read_timeout=10) as store:
        yield store


async def _local(settings: Settings, count: int) -> list[str]:
    """`count` distinct originals in the local directory; their digests."""
    local = LocalOriginalStore(settings.originals)
    return [await local.put(solid((4 + i, 4), (i, 9, 9))) for i in range(count)]


async def _keys(s3: S3OriginalStore) -> list[str]:
    listed = await s3.client.list_objects_v2(Bucket=s3.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", ()))


async def test_every_original_is_copied_and_a_second_run_copies_none(
    settings: Settings, s3: S3OriginalStore
) -> None:
    digests = await _local(settings, 6)
    (settings.originals / "incoming" / "put-abandoned").write_bytes(b"half")
    first = await copy_originals(settings.originals, s3, concurrency=3)
    assert (first.copied, first.present, first.damaged) == (6, 0, [])
    assert await _keys(s3) == sorted(s3.key(d) for d in digests)
    again = await copy_originals(settings.originals, s3)
    assert (again.copied, again.present, again.damaged) == (0, 6, [])


class _StoppedError(Exception):
    pass


async def test_an_interrupted_run_is_resumed_where_it_stopped(
    settings: Settings, s3: S3OriginalStore
) -> None:
    digests = await _local(settings, 5)

    def interrupt(report: CopyReport) -> None:
        if report.verified == 2:
            raise _StoppedError  # a crash, a lost connection

    with pytest.raises(_StoppedError):
        await copy_originals(settings.originals, s3, concurrency=1, progress=interrupt)
    assert len(await _keys(s3)) == 2
    resumed = await copy_originals(settings.originals, s3)
    assert (resumed.copied, resumed.present) == (3, 2)
    assert await _keys(s3) == sorted(s3.key(d) for d in digests)


async def test_a_damaged_local_original_is_reported_and_never_uploaded(
    settings: Settings, s3: S3OriginalStore
) -> None:
    good, bad = await _local(settings, 2)
    damaged = settings.originals / bad[:2] / bad
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    report = await copy_originals(settings.originals, s3)
    assert (report.copied, report.damaged) == (1, [bad])
    assert await _keys(s3) == [s3.key(good)]


async def test_a_damaged_object_of_the_right_size_is_copied_again(
    settings: Settings, s3: S3OriginalStore
) -> None:
    """Verified by hash, not size: an object that reads back wrong is replaced."""
    (digest,) = await _local(settings, 1)
    data = (settings.originals / digest[:2] / digest).read_bytes()
    wrong = bytes(reversed(data))
    await s3.client.put_object(Bucket=s3.bucket, Key=s3.key(digest), Body=wrong)
    report = await copy_originals(settings.originals, s3)
    assert (report.copied, report.present) == (1, 0)
    assert await s3.read(digest, size=len(data)) == data


async def test_a_large_original_is_copied_in_parts(
    settings: Settings, s3: S3OriginalStore
) -> None:
    data = bytes(range(256)) * (PART_SIZE // 256 + 1000)
    digest = hashlib.sha256(data).hexdigest()
    path = settings.originals / digest[:2] / digest
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    report = await copy_originals(settings.originals, s3)
    assert report.copied == 1
    assert await s3.size(digest) == len(data)
