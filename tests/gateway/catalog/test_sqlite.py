"""The SQLite store: versioned migrations, upgrades in place, writes off the event loop."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path

import pytest

from gateway.catalog import CatalogError, Change, IngestState, SqliteCatalog
from gateway.catalog.sqlite.schema import APPLICATION_ID, MIGRATIONS
from signing import InMemoryKeyStore, TokenVerifier, mint

DATA = Path(__file__).parent / "data"
LEGACY_ISSUER = "6b6fdb7b-65cb-4acf-97b9-d25eff795348"
HS512_ISSUER = "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10"
SEED = "3f9c1a52-7d0e-4b8a-9c61-2e5f7a8b9d40"
ORIGIN = "https://example.com/a.jpg"


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [number for number, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(script.strip() for _, script in MIGRATIONS)


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of `catalog-v3.sqlite3`, written by the release before this layout
    (0f09670): issuers, a revoked key, a 43-byte HS512 key, images with metadata."""
    path = tmp_path / "catalog.sqlite3"
    shutil.copy(DATA / "catalog-v3.sqlite3", path)
    return path


async def test_a_catalog_of_the_previous_release_upgrades_in_place(
    legacy: Path,
) -> None:
    store = await SqliteCatalog.open(legacy)
    try:
        (_, first) = sorted(await store.issuers(), key=lambda i: i.name)
        assert first.id == LEGACY_ISSUER
        assert [k.kid for k in first.keys] == ["legacy-1"]  # the revoked one is not
        record = await store.image("b48fff71-a649-41dc-8f35-67229b3fd584")
        assert record is not None
        assert record.description == "kept"
        assert record.is_public
        assert record.tags == ("a", "b")
        assert record.texts[0] == "t1"
        assert record.numbers[1] == 2.5
        assert record.max_unauthorised == 200
        assert record.original is not None
        assert record.original.width == 40
        queued = await store.image("372083d9-8179-4161-af8c-6cbfecd9219a")
        assert queued is not None
        assert queued.ingest.state is IngestState.QUEUED
        api_key = (DATA / "catalog-v3.api-key.txt").read_text().strip()
        found = await store.api_key(api_key)
        assert found is not None
        assert found.issuer_id == LEGACY_ISSUER
        assert found.roles == frozenset()  # the migration gives old keys none
        added = await store.add_image(issuer_id=LEGACY_ISSUER, origin="https://x.org/")
        assert await store.image(added.id) == added
    finally:
        await store.close()
    with sqlite3.connect(legacy) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


async def test_a_short_hs512_key_of_the_previous_release_verifies_but_signs_nothing(
    legacy: Path,
) -> None:
    """The previous release gave HS512 keys 43-byte secrets (RFC 7518 asks 64)."""
    store = await SqliteCatalog.open(legacy)
    try:
        issuer = await store.issuer(HS512_ISSUER)
    finally:
        await store.close()
    assert issuer is not None
    (key,) = issuer.keys
    assert key.verify_only
    assert issuer.signing_key is None
    # A token its backend signed before the upgrade still verifies.
    token = mint_legacy(key.secret, key.kid)
    keys = InMemoryKeyStore({HS512_ISSUER: issuer})
    assert TokenVerifier(keys).verify(token).issuer == HS512_ISSUER
    with pytest.raises(ValueError, match="verify"):
        mint(key, issuer_id=HS512_ISSUER, transformations=[])


def mint_legacy(secret: str, kid: str) -> str:
    import warnings

    import jwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyjwt warns of the short key, as it did
        return jwt.encode(
            {"iss": HS512_ISSUER, "transformations": []},
            secret,
            algorithm="HS512",
            headers={"kid": kid},
        )


async def test_a_catalog_newer_than_this_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(CatalogError, match="newer than this release"):
        await SqliteCatalog.open(path)


async def test_a_write_waiting_for_another_process_does_not_stall_the_loop(
    tmp_path: Path,
) -> None:
    """Another process (the CLI) holds the write lock: our write waits on its
    thread while the event loop goes on serving."""
    path = tmp_path / "catalog.sqlite3"
    store = await SqliteCatalog.open(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(store.add_issuer(name="waits"))
        started = time.perf_counter()
        await asyncio.sleep(0.2)
        assert time.perf_counter() - started < 0.5  # the loop was never blocked
        assert not write.done()
        other.execute("COMMIT")
        issuer, _ = await asyncio.wait_for(write, 5)
        assert issuer.name == "waits"
    finally:
        other.close()
        await store.close()


async def test_a_cancelled_write_ends_committed_before_the_cancellation_arrives(
    tmp_path: Path,
) -> None:
    """The thread cannot be stopped: the caller's clean-up must see the row, or
    it would remove the original of a committed image (a shutdown mid-upload)."""
    path = tmp_path / "catalog.sqlite3"
    store = await SqliteCatalog.open(path)
    issuer, _ = await store.add_issuer()
    told = 0

    def listener(change: Change) -> None:
        nonlocal told
        told += 1

    store.subscribe(listener)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process mid-write
        write = asyncio.ensure_future(
            store.add_image(issuer_id=issuer.id, origin="https://example.org/a.jpg")
        )
        await asyncio.sleep(0.05)
        write.cancel()
        await asyncio.sleep(0.05)
        assert not write.done()  # waiting for the write, not abandoning it
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await write
        assert len(await store.images(issuer.id)) == 1
        assert told == 1  # the caches were told, after the commit
    finally:
        other.close()
        await store.close()


async def test_this_stores_own_write_is_not_taken_for_another_writers(
    tmp_path: Path,
) -> None:
    store = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    try:
        await store.add_issuer()
        assert not await store.check()
        other = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
        await other.add_issuer()
        await other.close()
        assert await store.check()
    finally:
        await store.close()


@pytest.mark.parametrize(
    "own_write",
    [
        pytest.param(
            lambda store: store.add_image(issuer_id=SEED, origin=ORIGIN),
            id="an-image-write",
        ),
        pytest.param(
            lambda store: store.renew_ingests(owner="w", until="2999-01-01T00:00:00Z"),
            id="bookkeeping",  # an ingest lease renewed, which no reader sees
        ),
    ],
)
async def test_another_writers_change_is_told_though_our_own_write_came_after_it(
    tmp_path: Path, own_write: Callable[[SqliteCatalog], Awaitable[object]]
) -> None:
    """A key revoked by the CLI, then any write of the server's own before its
    next check: the version the server notes after its write covers the
    revocation, so its own write must tell everything changed (it told only
    `IMAGES`, or nothing, and the revoked key verified on)."""
    path = tmp_path / "catalog.sqlite3"
    server = await SqliteCatalog.open(path)
    told: list[Change] = []
    server.subscribe(told.append)
    try:
        _, key = await server.add_issuer(issuer_id=SEED)
        told.clear()
        cli = await SqliteCatalog.open(path)
        await cli.revoke_key(SEED, key.kid)
        await cli.close()
        await own_write(server)
        assert told == [Change.EVERYTHING]
        # and a later write of its own alone is its own again
        told.clear()
        await server.add_image(issuer_id=SEED, origin=ORIGIN)
        assert told == [Change.IMAGES]
        assert not await server.check()
    finally:
        await server.close()


def _foreign(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE other (x)")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda path: path.write_bytes(b""), "is empty", id="empty"),
        pytest.param(
            lambda path: path.write_bytes(b"not a database at all, " * 100),
            "not a readable catalog",
            id="not-sqlite",
        ),
        pytest.param(_foreign, "another program", id="foreign"),
    ],
)
async def test_a_file_that_is_not_a_catalog_is_refused_naming_it(
    tmp_path: Path, make: Callable[[Path], object], says: str
) -> None:
    """Never taken for a new, empty catalog: every issuer and image would be gone."""
    path = tmp_path / "catalog.sqlite3"
    await asyncio.to_thread(make, path)
    before = await asyncio.to_thread(path.read_bytes)
    with pytest.raises(CatalogError, match=says) as refused:
        await SqliteCatalog.open(path)
    assert str(path) in str(refused.value)
    assert await asyncio.to_thread(path.read_bytes) == before  # left as found


async def test_a_damaged_catalog_is_refused_naming_it(legacy: Path) -> None:
    with sqlite3.connect(legacy) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(await asyncio.to_thread(legacy.read_bytes))
    # Scribble over the tables' pages, past the header and the schema.
    for offset in range(2 * page_size, len(data) - page_size, 7):
        data[offset] ^= 0x5A
    await asyncio.to_thread(legacy.write_bytes, bytes(data))
    with pytest.raises(CatalogError, match=str(legacy)):
        await SqliteCatalog.open(legacy)


async def test_a_new_catalog_is_private_to_the_gateways_user(tmp_path: Path) -> None:
    path = tmp_path / "new" / "catalog.sqlite3"
    store = await SqliteCatalog.open(path)
    await store.close()
    assert path.stat().st_mode & 0o777 == 0o600
