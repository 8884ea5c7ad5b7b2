"""The HTTP API with originals in S3 (moto's server on loopback): upload,
render and delete go through the bucket, and its failures are 503s."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from pytest_aiohttp import AiohttpClient, AiohttpServer

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.config import OriginalsSettings
from gateway.keys import INGESTOR
from gateway.originals.s3 import open_s3_store
from tests.conftest import SEED_ISSUER, SEED_KEY, Client, render_settings
from tests.gateway.http.support import bearer, document, form, image_file
from tests.helpers import assert_error
from tests.images import RED, solid
from tests.s3 import S3Server, s3_settings

JPEG = solid((64, 48), RED, "JPEG")


@pytest.fixture
def settings(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Settings:
    return s3_settings(render_settings(tmp_path), s3_server, s3_bucket)


@pytest.fixture
async def api_key(settings: Settings) -> str:
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    key = await catalog.add_api_key(SEED_ISSUER)
    await catalog.close()
    return key


async def _objects(store: OriginalsSettings) -> dict[str, int]:
    """Every object in the bucket, key -> size, read with a client of our own."""
    async with open_s3_store(store, read_timeout=10) as s3:
        assert store.url is not None
        listed = await s3.client.list_objects_v2(Bucket=store.url.bucket)
        return {item["Key"]: item["Size"] for item in listed.get("Contents", ())}


def _path(link: object, settings: Settings) -> str:
    return str(link).removeprefix(str(settings.base_url))


async def test_an_upload_is_stored_in_the_bucket_rendered_and_deleted(
    aiohttp_client: AiohttpClient, settings: Settings, api_key: str
) -> None:
    client: Client = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(api_key)
    )
    assert response.status == 201, await response.text()
    data = await document(response)
    objects = await _objects(settings.store)
    ((key, size),) = objects.items()
    assert key.startswith("originals/")
    assert size == len(JPEG)
    thumb = await client.get(_path(data["links"]["thumbnail"], settings))
    assert thumb.status == 200
    assert Image.open(io.BytesIO(await thumb.read())).size == (200, 200)
    deleted = await client.delete(f"/v1/images/{data['id']}", headers=bearer(api_key))
    assert deleted.status == 204
    assert await _objects(settings.store) == {}
    gone = await client.get(_path(data["links"]["delivery"], settings))
    await assert_error(gone, 404, "image_not_found")


async def test_an_upload_larger_than_a_part_goes_up_in_parts_and_renders(
    aiohttp_client: AiohttpClient, settings: Settings, api_key: str
) -> None:
    """Over 8 MiB: a multipart upload, completed whole, then read back to render."""
    noise = Image.frombytes("RGB", (1800, 1700), os.urandom(1800 * 1700 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    png = out.getvalue()
    assert len(png) > 8 * 1024 * 1024
    client: Client = await aiohttp_client(create_app(settings))
    body = aiohttp.FormData()
    # A stream: aiohttp warns about (and the suite fails on) large raw bytes.
    body.add_field(
        "image", io.BytesIO(png), filename="noise.png", content_type="image/png"
    )
    response = await client.post("/v1/images", data=body, headers=bearer(api_key))
    assert response.status == 201, await response.text()
    data = await document(response)
    assert list((await _objects(settings.store)).values()) == [len(png)]
    thumb = await client.get(_path(data["links"]["thumbnail"], settings))
    assert thumb.status == 200


async def test_a_bucket_that_fails_is_503_with_retry_after(
    aiohttp_client: AiohttpClient, settings: Settings, api_key: str
) -> None:
    client: Client = await aiohttp_client(create_app(settings))
    uploaded = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(api_key)
    )
    data = await document(uploaded)
    assert settings.store.url is not None
    bucket = settings.store.url.bucket
    async with open_s3_store(settings.store, read_timeout=10) as s3:
        for key in await _objects(settings.store):
            await s3.client.delete_object(Bucket=bucket, Key=key)
        await s3.client.delete_bucket(Bucket=bucket)
    response = await client.post(
        "/v1/images", data=form(image_file(JPEG)), headers=bearer(api_key)
    )
    error = await assert_error(response, 503, "originals_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "bucket" not in str(error["detail"]).lower()
    render = await client.get(_path(data["links"]["thumbnail"], settings))
    await assert_error(render, 503, "originals_unavailable")


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> TestServer:
    async def photo(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    return await aiohttp_server(app, host="127.0.0.1")


async def _ingest(client: Client, api_key: str, url: str) -> dict[str, object]:
    response = await client.post(
        "/v1/images", json={"origin": url}, headers=bearer(api_key)
    )
    assert response.status == 202, await response.text()
    queued = await document(response)
    await client.app[INGESTOR].drain()
    read = await client.get(f"/v1/images/{queued['id']}", headers=bearer(api_key))
    attributes = (await document(read))["attributes"]
    assert isinstance(attributes, dict)
    return attributes


@pytest.mark.parametrize("bucket_gone", [False, True], ids=["stored", "store-failed"])
async def test_an_origin_ingest_lands_in_the_bucket_or_records_the_failure(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    api_key: str,
    origin: TestServer,
    bucket_gone: bool,
) -> None:
    ingesting = replace(
        settings,
        ingest=replace(
            settings.ingest,
            allow_private=True,  # the test origin is on loopback
            allowed_hosts=frozenset({"127.0.0.1"}),
        ),
    )
    client: Client = await aiohttp_client(create_app(ingesting))
    if bucket_gone:
        async with open_s3_store(settings.store, read_timeout=10) as s3:
            await s3.client.delete_bucket(Bucket=s3.bucket)
    attributes = await _ingest(client, api_key, str(origin.make_url("/photo.jpg")))
    ingest = attributes["ingest"]
    assert isinstance(ingest, dict)
    if bucket_gone:
        assert ingest["state"] == "error"
        assert ingest["error"] == "the originals store did not answer; retry shortly"
    else:
        assert ingest["state"] == "finished"
        assert list((await _objects(settings.store)).values()) == [len(JPEG)]
