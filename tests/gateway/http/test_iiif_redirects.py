"""`/iiif/3` in redirect mode: a 302 to the chain the SDK signs, and the local CDN drawing it."""

from __future__ import annotations

import io
from pathlib import Path

import cloudinary.utils
import pytest
from aiohttp.pytest_plugin import AiohttpClient
from PIL import Image
from pytest_aiohttp import AiohttpServer
from yarl import URL

from gateway import create_app
from tests.conftest import make_settings
from tests.gateway.http.test_cdn import serve
from tests.gateway.http.test_iiif import (
    ACCOUNT,
    CAPPED,
    QUADRANTS,
    Client,
    quadrants,
    seed_images,
)
from tests.helpers import assert_error
from tests.images import WHITE


@pytest.fixture
async def redirecting(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    settings = make_settings(tmp_path, cloudinary=ACCOUNT)
    await seed_images(settings, cloudinary=True)
    return await aiohttp_client(create_app(settings))


def _sdk_url(public_id: str, chain: list[dict[str, object]], extension: str) -> str:
    url, _ = cloudinary.utils.cloudinary_url(
        public_id,
        transformation=chain,
        type="authenticated",
        resource_type="image",
        version=7,
        format=extension,
        sign_url=True,
        secure=True,
        cloud_name=ACCOUNT.cloud_name,
        api_key=ACCOUNT.api_key,
        api_secret=ACCOUNT.api_secret,
    )
    assert isinstance(url, str)
    return url


@pytest.mark.parametrize(
    ("params", "chain"),
    [
        pytest.param("full/max/0/default.jpg", [], id="as-is"),
        pytest.param(
            "10,20,100,50/50,/0/default.png",
            [
                {"crop": "crop", "x": 10, "y": 20, "width": 100, "height": 50},
                {"crop": "scale", "width": 50, "height": 25},
            ],
            id="crop-then-scale",
        ),
        pytest.param(
            "square/max/!90/gray.webp",
            [
                {"crop": "crop", "x": 50, "y": 0, "width": 300, "height": 300},
                {"angle": "hflip"},
                {"angle": 90},
                {"effect": "grayscale"},
            ],
            id="mirror-turn-gray",
        ),
        pytest.param(
            "full/^!800,800/45/bitonal.gif",
            [
                {"crop": "scale", "width": 800, "height": 600},
                {"angle": 45},
                {"effect": "blackwhite"},
            ],
            id="upscale-turn-bitonal",
        ),
    ],
)
async def test_redirect_mode_answers_the_sdks_own_url(
    redirecting: Client, params: str, chain: list[dict[str, object]]
) -> None:
    response = await redirecting.get(
        f"/iiif/3/{QUADRANTS}/{params}", allow_redirects=False
    )
    assert response.status == 302, await response.text()
    extension = params.rpartition(".")[2]
    assert response.headers["Location"] == _sdk_url("iiif/1111", chain, extension)
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_redirect_mode_keeps_the_cap(redirecting: Client) -> None:
    response = await redirecting.get(f"/iiif/3/{CAPPED}/full/800,/0/default.jpg")
    await assert_error(response, 401, "credential_required")
    response = await redirecting.get(
        f"/iiif/3/{CAPPED}/0,0,1024,1024/256,/0/default.jpg", allow_redirects=False
    )
    assert response.status == 302


async def test_the_local_cdn_draws_the_chain_a_redirect_names(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """GATEWAY_CDN=local parses the IIIF chain back (a_hflip, e_blackwhite) and draws it."""
    async for gateway in serve(aiohttp_server, tmp_path):
        image = await gateway.upload_public(quadrants())
        response = await gateway.get(
            gateway.url(f"/iiif/3/{image}/pct:50,0,50,50/100,/!90/bitonal.png")
        )
        assert response.status == 302
        location = URL(response.headers["Location"], encoded=True)
        assert "/a_hflip/a_90/e_blackwhite/" in location.path
        followed = await gateway.get(location)
        assert followed.status == 200, await followed.text()
        picture = Image.open(io.BytesIO(await followed.read()))
        assert picture.size == (75, 100)
        assert {c for _, c in picture.convert("RGB").getcolors() or []} == {WHITE}


@pytest.mark.parametrize(
    ("extension", "media_type"),
    [
        pytest.param("jpg", "image/jpeg", id="jpg"),
        pytest.param("png", "image/png", id="png"),
        pytest.param("webp", "image/webp", id="webp"),
        pytest.param("gif", "image/gif", id="gif"),
        pytest.param("avif", "image/avif", id="avif"),
    ],
)
async def test_the_local_cdn_answers_the_format_a_redirect_names(
    aiohttp_server: AiohttpServer, tmp_path: Path, extension: str, media_type: str
) -> None:
    """Each IIIF format followed through GATEWAY_CDN=local is that format."""
    async for gateway in serve(aiohttp_server, tmp_path):
        image = await gateway.upload_public(quadrants())
        response = await gateway.get(
            gateway.url(f"/iiif/3/{image}/full/100,/0/default.{extension}")
        )
        assert response.status == 302
        followed = await gateway.get(URL(response.headers["Location"], encoded=True))
        assert followed.status == 200, await followed.text()
        assert followed.content_type == media_type
        picture = Image.open(io.BytesIO(await followed.read()))
        assert Image.MIME[picture.format or ""] == media_type
        assert picture.size == (100, 75)
