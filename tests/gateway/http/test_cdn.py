"""GATEWAY_CDN=local: the 302 to the stand-in of Cloudinary's delivery endpoint, followed.

The gateway serves on a port chosen before it starts, so that its public URL
(which the redirects name) is where the test reaches it, and the client
follows the 302 exactly as a browser would.
"""

from __future__ import annotations

import dataclasses
import io
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer, unused_port
from PIL import Image
from pytest_aiohttp import AiohttpServer
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.cloudinary import LocalCloud
from gateway.config import CatalogSettings, ServerSettings, UpstreamSettings
from gateway.originals.store import OriginalStore
from signing import mint
from tests.conftest import SEED_ISSUER, SEED_KEY
from tests.gateway.http.support import bearer, document, form, image_file
from tests.helpers import assert_error
from tests.images import BLUE, RED, solid
from transforms import Limits, parse_transformations
from transforms.cloudinary import CloudinaryAsset
from transforms.cloudinary.compile import to_cloudinary_url

TOKEN_KEY = "a1" * 32
PHOTO = solid((600, 400), RED, "JPEG")
BADGE = solid((300, 300), BLUE, "PNG")


def local_settings(data_dir: Path, port: int, **upstream: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        server=ServerSettings(
            access_log=False, port=port, public_url=f"http://127.0.0.1:{port}"
        ),
        catalog=CatalogSettings(poll_interval=0.0),
        upstream=UpstreamSettings(cdn="local", delivery="redirect", **upstream),
    )


class Gateway:
    """A served gateway in CDN=local mode, its API key, and an HTTP session."""

    def __init__(self, server: TestServer, settings: Settings, key: str) -> None:
        self.server = server
        self.settings = settings
        self.key = key
        self.session = ClientSession()

    def url(self, path: str) -> URL:
        return self.server.make_url(path)

    async def upload(self, data: bytes) -> str:
        response = await self.session.post(
            self.url("/v1/images"),
            data=form(image_file(data)),
            headers=bearer(self.key),
        )
        assert response.status == 201, await response.text()
        return str((await document(response))["id"])

    async def redirect(self, image: str, steps: list[dict[str, object]]) -> URL:
        """The stand-in URL the gateway's 302 names for a fresh token."""
        token = mint(SEED_KEY, issuer_id=SEED_ISSUER, transformations=steps, ttl=600)
        response = await self.session.get(
            self.url(f"/images/{image}"),
            params={"token": token},
            allow_redirects=False,
        )
        assert response.status == 302, await response.text()
        return URL(response.headers["Location"], encoded=True)

    async def get(self, url: URL) -> ClientResponse:
        return await self.session.get(url, allow_redirects=False)


async def serve(
    aiohttp_server: AiohttpServer, tmp_path: Path, **upstream: Any
) -> AsyncIterator[Gateway]:
    port = unused_port()
    settings = local_settings(tmp_path, port, **upstream)
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    key = await catalog.add_api_key(SEED_ISSUER)
    await catalog.close()
    server = await aiohttp_server(create_app(settings), port=port)
    gateway = Gateway(server, settings, key)
    yield gateway
    await gateway.session.close()


@pytest.fixture
async def gateway(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for served in serve(aiohttp_server, tmp_path):
        yield served


@pytest.fixture
async def token_gateway(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for served in serve(aiohttp_server, tmp_path, cdn_token_key=TOKEN_KEY):
        yield served


def picture(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


TILING = [
    {"crop": "fit", "width": 300},
]


async def test_302_points_at_the_stand_in_and_is_followed_to_the_picture(
    gateway: Gateway,
) -> None:
    image = await gateway.upload(PHOTO)
    badge = await gateway.upload(BADGE)
    steps: list[dict[str, object]] = [
        {"crop": "fit", "width": 300},
        {"overlay": badge, "crop": "fit", "width": 100, "x": 300},
    ]
    location = await gateway.redirect(image, steps)
    assert str(location).startswith(f"{gateway.settings.base_url}/cdn/local/image/")
    assert "/s--" in location.path
    token = mint(SEED_KEY, issuer_id=SEED_ISSUER, transformations=steps, ttl=600)
    # Followed as a browser follows it.
    response = await gateway.session.get(
        gateway.url(f"/images/{image}"), params={"token": token}
    )
    assert response.status == 200, await response.text()
    assert len(response.history) == 1
    assert response.url == location
    # The fit to 300x200; the 100x100 badge, centred and moved right by 300
    # (its centre at 450), reaches to x=500 and grows the canvas.
    assert picture(await response.read()).size == (500, 200)


async def test_the_url_is_what_the_sdk_compiles_for_the_stand_ins_account(
    gateway: Gateway,
) -> None:
    """Compiled exactly as for Cloudinary, then moved: only the origin differs."""
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    cloud = LocalCloud.open(
        gateway.settings.cdn,
        OriginalStore(gateway.settings.originals),
        gateway.settings.limits,
    )
    version = int(location.path.split("/")[-2].removeprefix("v"))
    expected = to_cloudinary_url(
        parse_transformations(TILING, Limits()),
        asset=CloudinaryAsset(public_id=image, version=version, format="jpg"),
        overlays={},
        account=cloud.account,
        base_chain=tuple(gateway.settings.upstream.base_chain.split("/")),
    )
    assert str(location) == expected.replace(
        "https://res.cloudinary.com", f"{gateway.settings.base_url}/cdn"
    )


async def test_the_stand_ins_secret_is_private_and_kept(gateway: Gateway) -> None:
    path = gateway.settings.cdn / "api_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    image = await gateway.upload(PHOTO)
    first = await gateway.redirect(image, TILING)
    again = LocalCloud.open(
        gateway.settings.cdn, OriginalStore(gateway.settings.originals), Limits()
    )
    assert again.account.api_secret == path.read_text().strip()
    assert len(again.account.api_secret) >= 32
    assert await gateway.redirect(image, TILING) == first


def tampered(url: URL, old: str, new: str) -> URL:
    text = str(url)
    assert old in text
    return URL(text.replace(old, new, 1), encoded=True)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(("/c_fit,w_300/", "/c_fit,w_3000/"), id="chain"),
        pytest.param(("/c_fit,w_300/", "/c_fit,w_300/e_negate/"), id="added-step"),
        pytest.param(("/fl_attachment/", "/"), id="base-chain"),
        pytest.param((".jpg", ".png"), id="extension"),
        pytest.param(("/s--", "/s--A"), id="signature-longer"),
        pytest.param(("/s--", "/s--AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), id="signature-odd"),
    ],
)  # fmt: skip
async def test_a_tampered_url_is_401(gateway: Gateway, change: tuple[str, str]) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    assert (await gateway.get(location)).status == 200
    response = await gateway.get(tampered(location, *change))
    await assert_error(response, 401, "url_signature_invalid")


async def test_another_delivery_type_is_another_asset(gateway: Gateway) -> None:
    """As on Cloudinary, the signature covers the chain and the file only; the
    type names another asset, which does not exist."""
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    response = await gateway.get(
        tampered(location, "/image/authenticated/", "/image/upload/")
    )
    await assert_error(response, 404, "image_not_found")


async def test_an_unsigned_url_is_401(gateway: Gateway) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    signature = location.path.split("/")[5]
    response = await gateway.get(tampered(location, f"/{signature}/", "/"))
    await assert_error(response, 401, "url_signature_invalid")


async def test_a_url_signed_with_another_secret_is_401(gateway: Gateway) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    cloud = LocalCloud.open(
        gateway.settings.cdn, OriginalStore(gateway.settings.originals), Limits()
    )
    forged = to_cloudinary_url(
        parse_transformations(TILING, Limits()),
        asset=CloudinaryAsset(
            public_id=image, version=int(location.path.split("/")[-2][1:]), format="jpg"
        ),
        overlays={},
        account=dataclasses.replace(cloud.account, api_secret="not-the-secret"),
        base_chain=tuple(gateway.settings.upstream.base_chain.split("/")),
    )
    response = await gateway.get(
        URL(forged.replace("https://res.cloudinary.com", str(gateway.url("/cdn"))))
    )
    await assert_error(response, 401, "url_signature_invalid")
