"""Origin ingests survive the process that started them: leases, resumption, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from gateway import Settings, create_app
from gateway.catalog import ImageRecord, IngestState, SqliteCatalog
from gateway.keys import INGESTOR
from gateway.originals.ingest import add_original, discard
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, render_settings
from tests.helpers import assert_error, eventually
from tests.images import RED, solid

JPEG = solid((64, 48), RED, "JPEG")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = render_settings(tmp_path)
    return replace(
        base,
        ingest=replace(
            base.ingest,
            allow_private=True,  # the test origin is on loopback
            allowed_hosts=frozenset({"127.0.0.1"}),
        ),
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[SqliteCatalog]:
    store = await SqliteCatalog.open(settings.database)
    await store.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid="k")
    yield store
    await store.close()


class Origin:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.hits = 0

    async def photo(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(body=JPEG, content_type="image/jpeg")

    async def hang(self, request: web.Request) -> web.Response:
        self.hits += 1
        await self.release.wait()
        return web.Response(body=JPEG, content_type="image/jpeg")


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> tuple[Origin, TestServer]:
    handlers = Origin()
    app = web.Application()
    app.router.add_get("/photo.jpg", handlers.photo)
    app.router.add_get("/hang.jpg", handlers.hang)
    return handlers, await aiohttp_server(app, host="127.0.0.1")


async def _settled(store: SqliteCatalog, image_id: str) -> ImageRecord:
    """The image once its ingest left `queued` (within ten seconds)."""
    for _ in range(500):
        record = await store.image(image_id)
        assert record is not None
        if record.ingest.state is not IngestState.QUEUED:
            return record
        await asyncio.sleep(0.02)
    raise AssertionError("the ingest stayed queued")


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(
        timespec="microseconds"
    )


async def test_an_ingest_whose_owner_died_is_resumed_at_start(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    store: SqliteCatalog,
    origin: tuple[Origin, TestServer],
) -> None:
    """Killed mid-ingest: its lease ran out, and the next start picks it up."""
    _, server = origin
    record = await store.add_image(
        issuer_id=SEED_ISSUER, origin=str(server.make_url("/photo.jpg"))
    )
    assert await store.claim_ingest(record.id, owner="dead", until=_in(-1))
    await aiohttp_client(create_app(settings))
    finished = await _settled(store, record.id)
    assert finished.ingest.state is IngestState.FINISHED
    assert finished.original is not None


async def test_an_ingest_another_live_process_owns_is_left_to_it(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    store: SqliteCatalog,
    origin: tuple[Origin, TestServer],
) -> None:
    """Replicas on one catalog: a starting one never takes over a running ingest."""
    handlers, server = origin
    record = await store.add_image(
        issuer_id=SEED_ISSUER, origin=str(server.make_url("/photo.jpg"))
    )
    assert await store.claim_ingest(record.id, owner="alive", until=_in(600))
    client = await aiohttp_client(create_app(settings))
    await asyncio.sleep(0.2)
    await client.app[INGESTOR].drain()
    assert handlers.hits == 0
    assert not await store.claim_ingest(record.id, owner="me", until=_in(600))
    still = await store.image(record.id)
    assert still is not None
    assert still.ingest.state is IngestState.QUEUED


async def test_a_shutdown_hands_a_running_ingest_back_saying_why(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    store: SqliteCatalog,
    origin: tuple[Origin, TestServer],
) -> None:
    handlers, server = origin
    client = await aiohttp_client(create_app(settings))
    record = await store.add_image(
        issuer_id=SEED_ISSUER, origin=str(server.make_url("/hang.jpg"))
    )
    client.app[INGESTOR].start(record.id, str(server.make_url("/hang.jpg")))
    await eventually(lambda: handlers.hits == 1)
    await client.close()  # the app shuts down mid-fetch
    handlers.release.set()
    interrupted = await store.image(record.id)
    assert interrupted is not None
    assert interrupted.ingest.state is IngestState.QUEUED
    assert "interrupted by a shutdown" in str(interrupted.ingest.error)
    # Handed back: the next process to look takes it at once.
    assert await store.claim_abandoned_ingests(
        owner="next", until=_in(60), limit=5
    ) == [(record.id, str(server.make_url("/hang.jpg")))]


INTERNAL: Final = {"internal.example": ("10.0.0.1",)}


@pytest.fixture
def dns() -> Mapping[str, Sequence[str]]:
    return INTERNAL


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param(
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data", id="nat64-metadata"
        ),
        pytest.param("http://[2002:7f00:1::1]/x.jpg", id="6to4-loopback"),
        pytest.param("http://[::10.0.0.1]/x.jpg", id="ipv4-compatible"),
        pytest.param("http://0x7f.1/x.jpg", id="hex-loopback"),
    ],
)
async def test_an_origin_embedding_a_private_ipv4_is_refused_at_once(
    aiohttp_client: AiohttpClient, store: SqliteCatalog, tmp_path: Path, origin: str
) -> None:
    key = await store.add_api_key(SEED_ISSUER)
    client = await aiohttp_client(
        create_app(render_settings(tmp_path))
    )  # no allow-list
    response = await client.post(
        "/v1/images",
        json={"origin": origin},
        headers={"Authorization": f"Bearer {key}"},
    )
    await assert_error(response, 422, "origin_not_allowed", pointer="/origin")


@pytest.mark.usefixtures("fake_dns")
async def test_an_unknown_and_an_internal_name_fail_alike(
    aiohttp_client: AiohttpClient, store: SqliteCatalog, tmp_path: Path
) -> None:
    """A tenant learns nothing of the internal DNS from its ingests' errors."""
    key = await store.add_api_key(SEED_ISSUER)
    client = await aiohttp_client(
        create_app(render_settings(tmp_path))
    )  # no allow-list
    errors = []
    for host in ("internal.example", "unknown.example"):
        response = await client.post(
            "/v1/images",
            json={"origin": f"http://{host}/a.jpg"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status == 202, await response.text()
        image_id = (await response.json(content_type=None))["data"]["id"]
        await client.app[INGESTOR].drain()
        record = await _settled(store, image_id)
        assert record.ingest.state is IngestState.ERROR
        errors.append(record.ingest.error)
    first, second = errors
    assert first == second


class _DeleteLandsFirst:
    """A catalog where, just before an image is added, another image with
    the same bytes is deleted, and its original discarded (no image using it
    yet): the interleaving of a DELETE and an upload on two replicas."""

    def __init__(self, catalog: SqliteCatalog, store: object, victim: ImageRecord):
        self._catalog, self._store, self._victim = catalog, store, victim

    def __getattr__(self, name: str) -> object:
        return getattr(self._catalog, name)

    async def add_image(self, **fields: object) -> ImageRecord:
        assert self._victim.original is not None
        await self._catalog.remove_image(self._victim.id)
        await discard(self._catalog, self._store, self._victim.original)  # type: ignore[arg-type]
        return await self._catalog.add_image(**fields)  # type: ignore[arg-type]


async def test_an_upload_keeps_its_original_when_a_delete_of_the_same_bytes_lands_meanwhile(
    tmp_path: Path, settings: Settings
) -> None:
    """The upload's `put` found the shared original present and wrote nothing;
    the delete then removed it. The upload answered 201 and every render of
    it was a 404 (a helper's race: 19 of 20 on one replica)."""
    catalog = await SqliteCatalog.open(tmp_path / "catalog.sqlite3")
    store = LocalOriginalStore(settings.originals)
    try:
        await catalog.add_issuer(issuer_id=SEED_ISSUER, secret=SEED_KEY.secret)
        data = solid((8, 8), RED, "PNG")
        victim = await add_original(
            catalog, store, settings.limits, issuer_id=SEED_ISSUER, data=data
        )
        racing = _DeleteLandsFirst(catalog, store, victim)
        record = await add_original(
            racing,  # type: ignore[arg-type]
            store,
            settings.limits,
            issuer_id=SEED_ISSUER,
            data=data,
        )
        assert record.original is not None
        assert await store.read(record.original.sha256, size=len(data)) == data
    finally:
        await catalog.close()
