"""Content-addressed originals, in each store: the local directory and S3."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.originals import OriginalStore
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, render_settings
from tests.images import BLUE, GREEN, RED, solid

HOUR = 3600.0
# S3 dates its objects to the second: the sweep tests wait this long to age one.
AGE = 2.0


async def test_put_gives_the_sha256_and_read_gives_the_bytes_back(
    store: OriginalStore,
) -> None:
    data = solid((4, 4), RED)
    sha256 = await store.put(data)
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert await store.read(sha256, size=len(data)) == data


async def test_an_original_larger_than_an_upload_part_is_stored_whole(
    store: OriginalStore,
) -> None:
    """Over 8 MiB, S3 gets it in parts (a multipart upload), completed at once."""
    data = os.urandom(9 * 1024 * 1024 + 17)
    sha256 = await store.put(data)
    assert await store.read(sha256, size=len(data)) == data


async def test_storing_the_same_bytes_twice_is_one_original(
    store: OriginalStore,
) -> None:
    data = solid((4, 4), GREEN)
    assert await store.put(data) == await store.put(data)
    await store.remove(hashlib.sha256(data).hexdigest())
    with pytest.raises(FileNotFoundError):
        await store.read(hashlib.sha256(data).hexdigest(), size=len(data))


async def test_a_removed_original_cannot_be_read_and_removing_again_is_fine(
    store: OriginalStore,
) -> None:
    data = solid((4, 4), BLUE)
    sha256 = await store.put(data)
    await store.read(sha256, size=len(data))  # cached, where the store caches
    await store.remove(sha256)
    with pytest.raises(FileNotFoundError):
        await store.read(sha256, size=len(data))
    await store.remove(sha256)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("../" + "a" * 61, id="path"),
        pytest.param("A" * 64, id="upper-case"),
        pytest.param("a" * 63, id="short"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_key_that_is_not_a_sha256_is_refused(
    store: OriginalStore, key: str
) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        await store.read(key, size=1)
    with pytest.raises(ValueError, match="SHA-256"):
        await store.remove(key)


async def test_the_sweep_removes_only_old_originals_no_image_refers_to(
    store: OriginalStore,
) -> None:
    orphan = await store.put(solid((4, 4), RED))
    used = await store.put(solid((4, 4), BLUE))
    await asyncio.sleep(AGE + 0.5)
    young = await store.put(solid((4, 4), GREEN))
    assert await store.sweep({used}, older_than=AGE) == 1
    with pytest.raises(FileNotFoundError):
        await store.read(orphan, size=1)
    await store.read(young, size=len(solid((4, 4), GREEN)))
    await store.read(used, size=len(solid((4, 4), BLUE)))


async def test_storing_an_existing_original_makes_it_young_again(
    store: OriginalStore,
) -> None:
    """Another process may register it right now: the sweep must spare it."""
    data = solid((4, 4), RED)
    sha256 = await store.put(data)
    await asyncio.sleep(AGE + 0.5)
    assert await store.put(data) == sha256
    assert await store.sweep(set(), older_than=AGE) == 0


def _aged(root: Path, data: bytes, seconds: float) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    path = root / sha256[:2] / sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return sha256


async def test_start_up_sweeps_what_a_crash_left(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings: Settings = render_settings(tmp_path)
    catalog = await SqliteCatalog.open(settings.database)
    store = LocalOriginalStore(settings.originals)
    try:
        await catalog.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret)
        kept = await add_original(
            catalog,
            store,
            settings.limits,
            issuer_id=SEED_ISSUER,
            data=solid((4, 4), RED),
        )
    finally:
        await catalog.close()
    assert kept.original is not None
    then = time.time() - 2 * HOUR
    os.utime(store.path(kept.original.sha256), (then, then))
    stray = _aged(settings.originals, solid((4, 4), GREEN), 2 * HOUR)
    await aiohttp_client(create_app(settings))
    assert not store.path(stray).exists()
    assert store.path(kept.original.sha256).exists()


async def test_start_up_spares_a_sibling_workers_spools_and_sweeps_old_ones(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """A worker (re)starting beside others must not delete their uploads and
    originals under way; what a dead process left, hours old, goes."""
    settings: Settings = render_settings(tmp_path)
    for folder in (settings.uploads, settings.originals / "incoming"):
        folder.mkdir(parents=True)
        (folder / "in-use").write_bytes(b"a sibling's")
        old = folder / "left-by-a-crash"
        old.write_bytes(b"stale")
        then = time.time() - 2 * HOUR
        os.utime(old, (then, then))
    await aiohttp_client(create_app(settings))
    for folder in (settings.uploads, settings.originals / "incoming"):
        assert sorted(p.name for p in folder.iterdir()) == ["in-use"]
