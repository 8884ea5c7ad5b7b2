"""With CLOUDINARY_URL: originals go to Cloudinary's Upload API (a stand-in on loopback).

The API, `image add --file`, `image rm` and `serve --demo` all upload (or
destroy) through the one client, with requests signed by the SDK; the
commands run through the real entry point, in a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from pytest_aiohttp import AiohttpClient

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from signing import mint
from tests.conftest import SEED_ISSUER, SEED_KEY
from tests.gateway.cloudinary.conftest import CLOUD, UploadApi
from tests.gateway.http.support import bearer, document, form, image_file
from tests.helpers import announced, assert_error
from tests.images import RED, solid

PHOTO = solid((64, 48), RED, "JPEG")


def environ(data_dir: Path, api: UploadApi, **more: str) -> dict[str, str]:
    return {
        "GATEWAY_DATA_DIR": str(data_dir),
        "CLOUDINARY_URL": api.cloudinary_url,
        "GATEWAY_ACCESS_LOG": "false",
        **more,
    }


async def command(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """`python -m gateway ARGV`, awaited: the Upload API stand-in runs on this loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_an_api_upload_goes_to_cloudinary_and_a_delete_destroys_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, upload_api: UploadApi
) -> None:
    settings = Settings.from_env(environ(tmp_path, upload_api))
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    key = await catalog.add_api_key(SEED_ISSUER)
    await catalog.close()
    client = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/v1/images", data=form(image_file(PHOTO)), headers=bearer(key)
    )
    assert response.status == 201, await response.text()
    image = (await document(response))["id"]
    (upload,) = upload_api.uploads
    assert (upload["public_id"], upload["type"]) == (image, "authenticated")
    token = mint(SEED_KEY, issuer_id=SEED_ISSUER, transformations=[], ttl=60)
    redirect = await client.get(
        f"/images/{image}", params={"token": token}, allow_redirects=False
    )
    assert redirect.status == 302
    assert redirect.headers["Location"].startswith(
        f"https://res.cloudinary.com/{CLOUD}/image/authenticated/s--"
    )
    assert redirect.headers["Location"].endswith(f"/v1700000001/{image}.jpg")
    deleted = await client.delete(f"/v1/images/{image}", headers=bearer(key))
    assert deleted.status == 204
    assert [d["public_id"] for d in upload_api.destroyed] == [image]


async def test_an_upload_cloudinary_refuses_is_502_and_records_nothing(
    aiohttp_client: AiohttpClient, tmp_path: Path, upload_api: UploadApi
) -> None:
    settings = Settings.from_env(environ(tmp_path, upload_api))
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(issuer_id=SEED_ISSUER, kid="k")
    key = await catalog.add_api_key(SEED_ISSUER)
    upload_api.failing = 500
    client = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/v1/images", data=form(image_file(PHOTO)), headers=bearer(key)
    )
    await assert_error(response, 502, "upstream_error")
    assert await catalog.images(SEED_ISSUER) == []
    await catalog.close()


async def test_image_add_file_uploads_to_cloudinary_and_rm_destroys(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    env = environ(tmp_path / "data", upload_api)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)
    status, out, err = await command(env, "issuer", "add", "--name", "shop")
    assert status == 0, err
    issuer = json.loads(out)["id"]
    status, out, err = await command(
        env, "image", "add", "--issuer", issuer, "--file", str(photo)
    )
    assert status == 0, err
    record = json.loads(out)
    (upload,) = upload_api.uploads
    assert upload["public_id"] == record["id"]
    assert record["publicId"] == record["id"]
    assert (record["version"], record["format"]) == (1700000001, "jpg")
    assert record["deliveryType"] == "authenticated"
    assert (record["width"], record["height"]) == (64, 48)
    status, _, err = await command(env, "image", "rm", "--id", record["id"])
    assert status == 0, err
    assert [d["public_id"] for d in upload_api.destroyed] == [record["id"]]


async def test_image_add_file_that_cloudinary_refuses_is_one_line_and_nothing(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    env = environ(tmp_path / "data", upload_api)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)
    _, out, _ = await command(env, "issuer", "add", "--name", "shop")
    issuer = json.loads(out)["id"]
    upload_api.failing = 500
    status, out, err = await command(
        env, "image", "add", "--issuer", issuer, "--file", str(photo)
    )
    assert status == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("image-gateway: ")
    assert "Cloudinary answered 500" in line
    assert "Cloudinary is down" in line
    _, out, _ = await command(env, "image", "list", "--issuer", issuer)
    assert json.loads(out) == []
    originals = tmp_path / "data" / "originals"
    assert not [p for p in originals.rglob("*") if p.is_file()]


async def test_image_add_file_for_an_unknown_issuer_uploads_nothing(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    env = environ(tmp_path / "data", upload_api)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)
    status, _, err = await command(
        env, "image", "add", "--issuer", SEED_ISSUER, "--file", str(photo)
    )
    assert status == 2
    # After the line saying the catalog was new (this test's data directory is).
    made, refused = err.strip().splitlines()
    assert made.startswith("image-gateway: no catalog was at ")
    assert refused == f"image-gateway: no issuer {SEED_ISSUER}"
    assert upload_api.uploads == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def _served_demo(
    env: dict[str, str], port: int, session: aiohttp.ClientSession
) -> AsyncIterator[str]:
    """`serve --demo` running, announced, and its demo page."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--demo",
        env={
            **{k: v for k, v in os.environ.items() if k != "CLOUDINARY_URL"},
            **env,
            "GATEWAY_PORT": str(port),
            "GATEWAY_WORKERS": "1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "serve exited before announcing the demo"
            if announced(line).startswith("open the demo page: "):
                break
        async with session.get(f"http://127.0.0.1:{port}/demo") as response:
            assert response.status == 200
            page = await response.text()
        yield page
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), timeout=30)


async def test_serve_demo_uploads_its_originals_once(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    env = environ(tmp_path, upload_api)
    port = _free_port()
    async with (
        aiohttp.ClientSession() as session,
        _served_demo(env, port, session) as page,
    ):
        assert "Mode: 302 to Cloudinary (cloud testcloud)" in page
        uploaded = {u["public_id"] for u in upload_api.uploads}
        assert len(uploaded) == len(upload_api.uploads) == 3
        sources = re.findall(r'<img src="([^"]+)"', page)
        assert sources
        for source in sources:
            url = source.replace("&amp;", "&")
            async with session.get(url, allow_redirects=False) as answer:
                assert answer.status == 302
                location = answer.headers["Location"]
            assert location.startswith(
                f"https://res.cloudinary.com/{CLOUD}/image/authenticated/s--"
            )
            assert any(f"/{pid}.jpg" in location for pid in uploaded), location
    async with (
        aiohttp.ClientSession() as session,
        _served_demo(env, port, session),  # started again: nothing uploaded
    ):
        pass
    assert len(upload_api.uploads) == 3


async def test_serve_demo_refuses_in_one_line_when_cloudinary_fails(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    upload_api.failing = 401
    env = {**environ(tmp_path, upload_api), "GATEWAY_PORT": str(_free_port())}
    status, out, err = await command(env, "serve", "--demo")
    assert status == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line == (
        "image-gateway: serve --demo: the demo originals could not be uploaded: "
        "Cloudinary answered 401 to upload: Cloudinary is down"
    )


async def test_a_demo_tried_with_the_local_cdn_is_uploaded_to_cloudinary_later(
    tmp_path: Path, upload_api: UploadApi
) -> None:
    """The newcomer's path: `GATEWAY_CDN=local serve --demo`, then CLOUDINARY_URL."""
    port = _free_port()
    local = {"GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_CDN": "local"}
    async with (
        aiohttp.ClientSession() as session,
        _served_demo(local, port, session) as page,
    ):
        assert "local stand-in" in page
    assert upload_api.uploads == []
    async with (
        aiohttp.ClientSession() as session,
        _served_demo(environ(tmp_path, upload_api), port, session) as page,
    ):
        assert "302 to Cloudinary" in page
    assert len(upload_api.uploads) == 3
