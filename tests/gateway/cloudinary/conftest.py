"""A stand-in for Cloudinary's Upload API on loopback, and settings pointing at it.

It checks each request's signature with the SDK's own `api_sign_request`, as
Cloudinary does, measures the file with Pillow, and answers as Cloudinary
answers; `failing` makes it answer an error instead.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import cloudinary.utils
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from pytest_aiohttp import AiohttpServer

API_KEY = "8642"
API_SECRET = "upload-api-secret"
CLOUD = "testcloud"


@dataclass
class UploadApi:
    server: TestServer
    uploads: list[dict[str, str]] = field(default_factory=list)
    destroyed: list[dict[str, str]] = field(default_factory=list)
    failing: int | None = None

    @property
    def cloudinary_url(self) -> str:
        prefix = str(self.server.make_url("")).rstrip("/")
        return f"cloudinary://{API_KEY}:{API_SECRET}@{CLOUD}?upload_prefix={prefix}"


async def _signed(request: web.Request) -> tuple[dict[str, str], bytes | None]:
    form = await request.post()
    params: dict[str, str] = {}
    data = None
    for name, value in form.items():
        if isinstance(value, web.FileField):
            data = value.file.read()
        else:
            params[name] = str(value)
    signature = params.pop("signature", "")
    assert params.pop("api_key") == API_KEY
    expected = cloudinary.utils.api_sign_request(dict(params), API_SECRET, "sha1")
    if signature != expected:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": {"message": "Invalid Signature"}}),
            content_type="application/json",
        )
    return params, data


@pytest.fixture
async def upload_api(aiohttp_server: AiohttpServer) -> UploadApi:
    api: UploadApi

    async def upload(request: web.Request) -> web.Response:
        if api.failing is not None:
            return web.json_response(
                {"error": {"message": "Cloudinary is down"}}, status=api.failing
            )
        params, data = await _signed(request)
        assert data is not None
        api.uploads.append(params)
        image = Image.open(io.BytesIO(data))
        return web.json_response(
            {
                "public_id": params["public_id"],
                "version": 1700000000 + len(api.uploads),
                "format": {"JPEG": "jpg", "PNG": "png"}[str(image.format)],
                "width": image.width,
                "height": image.height,
                "type": params["type"],
                "resource_type": "image",
            }
        )

    async def destroy(request: web.Request) -> web.Response:
        params, _ = await _signed(request)
        api.destroyed.append(params)
        return web.json_response({"result": "ok"})

    app = web.Application()
    app.router.add_post(f"/v1_1/{CLOUD}/image/upload", upload)
    app.router.add_post(f"/v1_1/{CLOUD}/image/destroy", destroy)
    api = UploadApi(await aiohttp_server(app))
    return api
