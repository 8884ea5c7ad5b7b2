"""GATEWAY_CDN=local: the 302 to the stand-in of Cloudinary's delivery endpoint, followed.

The gateway serves on a port chosen before it starts, so that its public URL
(which the redirects name) is where the test reaches it, and the client
follows the 302 exactly as a browser would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestServer, unused_port
from PIL import Image
from pytest_aiohttp import AiohttpServer
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.cloudinary import LocalCloud
from gateway.config import CatalogSettings, ServerSettings, UpstreamSettings
from gateway.originals.local import LocalOriginalStore
from signing import mint
from tests.conftest import SEED_ISSUER, SEED_KEY
from tests.gateway.http.support import bearer, document, form, image_file
from tests.helpers import announced, assert_error
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

    async def upload_public(self, data: bytes, **attributes: object) -> str:
        """An image uploaded and made public (with more `attributes` if given)."""
        image = await self.upload(data)
        patched = await self.session.patch(
            self.url(f"/v1/images/{image}"),
            json={"isPublic": True, **attributes},
            headers=bearer(self.key),
        )
        assert patched.status == 200, await patched.text()
        return image

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
        LocalOriginalStore(gateway.settings.originals),
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
        gateway.settings.cdn, LocalOriginalStore(gateway.settings.originals), Limits()
    )
    assert again.account.api_secret == path.read_text().strip()
    assert len(again.account.api_secret) >= 32
    assert await gateway.redirect(image, TILING) == first


async def test_the_stand_ins_picture_has_an_etag_and_answers_304(
    gateway: Gateway,
) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    first = await gateway.get(location)
    assert first.status == 200
    assert first.headers["Content-Disposition"].startswith(
        "attachment"
    )  # fl_attachment
    again = await gateway.session.get(
        location, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    assert await again.read() == b""


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
        gateway.settings.cdn, LocalOriginalStore(gateway.settings.originals), Limits()
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


def sdk_url(gateway: Gateway, location: URL, chain: str, **options: Any) -> URL:
    """The URL the SDK itself signs for the stand-in's account, with a raw chain."""
    import cloudinary.utils

    cloud = LocalCloud.open(
        gateway.settings.cdn, LocalOriginalStore(gateway.settings.originals), Limits()
    )
    *_, version, file = location.path.split("/")
    url, _ = cloudinary.utils.cloudinary_url(
        file.removesuffix(".jpg"),
        format="jpg",
        version=version.removeprefix("v"),
        type="authenticated",
        transformation=[{"raw_transformation": chain}] if chain else [],
        sign_url=True,
        secure=True,
        cloud_name=cloud.account.cloud_name,
        api_secret=cloud.account.api_secret,
        **options,
    )
    assert isinstance(url, str)
    return URL(
        url.replace("https://res.cloudinary.com", str(gateway.url("/cdn"))),
        encoded=True,
    )


BASE = "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto"


async def test_a_long_signature_is_accepted(gateway: Gateway) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    url = sdk_url(gateway, location, BASE + "/c_fit,w_300", long_url_signature=True)
    signature = url.path.split("/")[5]
    assert len(signature) == len("s--") + 32 + len("--")
    response = await gateway.get(url)
    assert response.status == 200, await response.text()
    assert picture(await response.read()).size == (300, 200)


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param(BASE + "/w_300,c_fit", id="another-order"),
        pytest.param(BASE + "/c_fit,w_0300", id="leading-zero"),
        pytest.param(BASE + "/c_fit,w_300,w_200", id="repeated"),
        pytest.param(BASE + "/e_sepia", id="unknown-effect"),
        pytest.param(BASE + "/e_blur:300", id="unknown-option-value"),
        pytest.param(BASE + "/q_80", id="delivery-option-outside-the-base"),
        pytest.param(BASE + "/l_fetch:aHR0cDovL3g", id="fetch-layer"),
        # GATEWAY_MAX_SIZE bounds a step the gateway compiles from a token, not
        # what the stand-in draws (an IIIF region may be wider); 65535 does.
        pytest.param(BASE + "/c_fit,w_65536", id="past-the-largest-side"),
        pytest.param("c_fit,h_1920,w_1920/e_sepia", id="part-of-the-base-chain"),
        pytest.param("c_fit,w_300,a_hflip", id="no-base-unknown-order"),
    ],
)
async def test_a_signed_chain_the_compiler_never_emits_is_400(
    gateway: Gateway, chain: str
) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    response = await gateway.get(sdk_url(gateway, location, chain))
    await assert_error(response, 400, "transform_invalid", parameter="path")


async def test_a_picture_longer_than_its_format_holds_is_400_not_a_500(
    gateway: Gateway,
) -> None:
    """100x200000 is within the pixel budget; a JPEG is at most 65500 a side.
    Signed without the base chain, whose f_auto would have the gateway choose
    PNG instead: the extension names JPEG."""
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    chain = "h_2000,w_1/c_fit,w_100"
    response = await gateway.get(sdk_url(gateway, location, chain))
    error = await assert_error(response, 400, "output_too_large")
    assert "JPEG holds at most 65500 pixels a side" in str(error["detail"])


@pytest.mark.parametrize(
    ("chain", "size"),
    [
        pytest.param("c_fit,w_300", (300, 200), id="a-step"),
        pytest.param("", (600, 400), id="as-is"),
    ],
)
async def test_a_chain_without_the_base_chain_is_drawn(
    gateway: Gateway, chain: str, size: tuple[int, int]
) -> None:
    """The paths without tokens (`/image`, IIIF) sign their chains without it."""
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    response = await gateway.get(sdk_url(gateway, location, chain))
    assert response.status == 200, await response.text()
    assert picture(await response.read()).size == size


async def test_the_sdks_url_for_the_same_chain_is_the_gateways(
    gateway: Gateway,
) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    assert sdk_url(gateway, location, BASE + "/c_fit,w_300") == location


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/cdn/other/image/authenticated/s--AAAAAAAA--/v1/x.jpg", 404, "image_not_found", id="another-cloud"),
        pytest.param("/cdn/local/video/authenticated/s--AAAAAAAA--/v1/x.jpg", 404, "route_not_found", id="video"),
        pytest.param("/cdn/local/image/fetch/s--AAAAAAAA--/v1/x.jpg", 404, "image_not_found", id="fetch"),
        pytest.param("/cdn/local/image/authenticated/s--AAAAAAAA--/x.jpg", 404, "image_not_found", id="no-version"),
        pytest.param("/cdn/local/image/authenticated/s--AAAAAAAA--/v1/x", 404, "image_not_found", id="no-extension"),
        pytest.param("/cdn/local/image/authenticated/s--AAAAAAAA--/v1/../x.jpg", 404, "image_not_found", id="dot-dot"),
        pytest.param("/cdn/local/image/authenticated/s--AAAAAAAA--/v1/x.jpg", 401, "url_signature_invalid", id="bad-signature"),
        pytest.param("/cdn/local/image/authenticated/v1/x.jpg", 401, "url_signature_invalid", id="unsigned"),
    ],
)  # fmt: skip
async def test_what_is_not_a_signed_delivery_url_is_refused(
    gateway: Gateway, path: str, status: int, code: str
) -> None:
    response = await gateway.get(
        URL(str(gateway.url("/")).rstrip("/") + path, encoded=True)
    )
    await assert_error(response, status, code)


async def test_an_unknown_extension_is_400(gateway: Gateway) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    import cloudinary.utils

    cloud = LocalCloud.open(
        gateway.settings.cdn, LocalOriginalStore(gateway.settings.originals), Limits()
    )
    url, _ = cloudinary.utils.cloudinary_url(
        image,
        format="tiff",
        version=location.path.split("/")[-2][1:],
        type="authenticated",
        transformation=[{"raw_transformation": BASE + "/c_fit,w_300"}],
        sign_url=True,
        secure=True,
        cloud_name="local",
        api_secret=cloud.account.api_secret,
    )
    response = await gateway.get(
        URL(url.replace("https://res.cloudinary.com", str(gateway.url("/cdn"))))
    )
    await assert_error(response, 400, "parameter_invalid", parameter="path")


async def test_a_public_picture_under_a_cap_over_the_size_limit_is_drawn(
    gateway: Gateway,
) -> None:
    """Without w and h the picture fits the cap, itself within the top rung:
    a cap over GATEWAY_MAX_SIZE compiled `w_5000`, past what /image serves."""
    image = await gateway.upload_public(PHOTO, maxUnauthorised=5000)
    response = await gateway.session.get(gateway.url(f"/image/{image}.jpg"))
    assert response.status == 200, await response.text()
    top = gateway.settings.limits.max_size
    assert f"/c_limit,h_{top},w_{top}/" in response.url.path
    assert picture(await response.read()).size == (600, 400)


async def test_an_iiif_region_wider_than_the_size_limit_is_drawn(
    gateway: Gateway,
) -> None:
    """A IIIF region is cut from the original, which may be wider than
    GATEWAY_MAX_SIZE (a step's output): `c_crop,w_4500` is the gateway's own
    signed chain, and the stand-in, as Cloudinary, draws it."""
    image = await gateway.upload_public(solid((5000, 1000), RED, "JPEG"))
    response = await gateway.session.get(
        gateway.url(f"/iiif/3/{image}/0,0,4500,1000/900,/0/default.jpg")
    )
    assert response.status == 200, await response.text()
    assert response.url.path.startswith("/cdn/local/image/")
    assert "w_4500" in response.url.path
    assert picture(await response.read()).size == (900, 200)


async def test_a_deleted_image_is_gone_from_the_stand_in(gateway: Gateway) -> None:
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    deleted = await gateway.session.delete(
        gateway.url(f"/v1/images/{image}"), headers=bearer(gateway.key)
    )
    assert deleted.status == 204
    await assert_error(await gateway.get(location), 404, "image_not_found")


async def test_the_stand_in_is_not_mounted_by_default(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from tests.conftest import render_settings

    client = await aiohttp_client(create_app(render_settings(tmp_path)))
    response = await client.get("/cdn/local/image/upload/s--AAAAAAAA--/v1/x.jpg")
    await assert_error(response, 404, "route_not_found")


# --- GATEWAY_CDN_TOKEN_KEY: __cld_token__ ------------------------------------


async def test_token_mode_redirects_carry_a_cld_token_and_are_followed(
    token_gateway: Gateway,
) -> None:
    gateway = token_gateway
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    assert "/s--" not in location.path
    token = location.query["__cld_token__"]
    assert token.startswith("exp=")
    response = await gateway.get(location)
    assert response.status == 200, await response.text()
    assert picture(await response.read()).size == (300, 200)
    cache = response.headers["Cache-Control"]
    assert int(cache.split("max-age=")[1]) <= 600  # never past the URL's expiry


def with_token(gateway: Gateway, location: URL, expiration: int) -> URL:
    """The location with a token the SDK makes for `expiration`, with our key."""
    from cloudinary import auth_token

    path = location.path.removeprefix("/cdn")
    token = auth_token.generate(url=path, expiration=expiration, key=TOKEN_KEY)
    return location.with_query(None).with_query(token)


async def test_an_expired_cld_token_is_401(token_gateway: Gateway) -> None:
    gateway = token_gateway
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    fresh = with_token(gateway, location, int(time.time()) + 60)
    assert (await gateway.get(fresh)).status == 200
    expired = with_token(gateway, location, int(time.time()) - 1)
    await assert_error(await gateway.get(expired), 401, "url_expired")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda u: u.with_query(None), id="missing"),
        pytest.param(lambda u: u.with_query(__cld_token__="exp=9999999999~hmac=" + "0" * 64), id="forged"),
        pytest.param(lambda u: u.with_query(__cld_token__=u.query["__cld_token__"].replace("exp=", "exp=1")), id="longer-life"),
        pytest.param(lambda u: u.update_query(__cld_token__="x"), id="two-tokens"),
        pytest.param(lambda u: URL(str(u).replace("w_300", "w_301"), encoded=True), id="other-chain"),
        pytest.param(lambda u: u.with_query(__cld_token__="ip=1.2.3.4~" + u.query["__cld_token__"]), id="ip-field"),
    ],
)  # fmt: skip
async def test_a_missing_or_tampered_cld_token_is_401(
    token_gateway: Gateway, change: Any
) -> None:
    gateway = token_gateway
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    response = await gateway.get(change(location))
    await assert_error(response, 401, "url_signature_invalid")


@pytest.mark.parametrize(("length", "status"), [(8192, 401), (8193, 404)])
async def test_a_path_longer_than_any_url_compiled_is_not_checked(
    token_gateway: Gateway, length: int, status: int
) -> None:
    """Checking a `__cld_token__` escapes the path in Python a byte at a time:
    49 KB of `:` took 26 ms of the event loop."""
    gateway = token_gateway
    location = await gateway.redirect(await gateway.upload(PHOTO), TILING)
    # /cdn/{cloud}/image/authenticated/
    head = "/" + "/".join(location.raw_path.split("/")[2:5]) + "/"
    tail = "/v1/x/y.jpg"
    path = head + ":" * (length - len(head) - len(tail)) + tail
    url = gateway.url("/cdn" + path).with_query(
        __cld_token__="exp=9999999999~hmac=" + "0" * 64
    )
    response = await gateway.get(url)
    assert response.status == status


async def test_token_mode_refuses_a_url_with_only_a_signature(
    token_gateway: Gateway,
) -> None:
    gateway = token_gateway
    image = await gateway.upload(PHOTO)
    location = await gateway.redirect(image, TILING)
    signed = sdk_url(gateway, location, BASE + "/c_fit,w_300")
    assert "/s--" in signed.path
    await assert_error(await gateway.get(signed), 401, "url_signature_invalid")


# --- The demo and the command line in this mode ------------------------------


async def test_the_demo_page_says_its_mode_and_every_picture_loads(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    port = unused_port()
    settings = local_settings(tmp_path, port)
    demo = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, demo=True)
    )
    server = await aiohttp_server(create_app(demo), port=port)
    async with ClientSession() as session:
        page = await (await session.get(server.make_url("/demo"))).text()
        assert "Mode: 302 to the local stand-in of Cloudinary" in page
        sources = re.findall(r'<img src="([^"]+)"', page)
        assert len(sources) == 3  # the playground's three originals
        for source in sources:
            response = await session.get(html.unescape(source))
            assert response.status == 200, await response.text()
            assert [r.status for r in response.history] == [302]
            assert response.url.path.startswith("/cdn/local/image/authenticated/")
            picture(await response.read())
    assets = sorted((settings.cdn / "assets" / "authenticated").rglob("*.json"))
    assert len(assets) == 3


async def test_image_add_file_goes_to_the_stand_in(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """The CLI (the real entry point) stores the original as an asset of the stand-in."""
    port = unused_port()
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_CDN": "local",
        "GATEWAY_PORT": str(port),
    }
    env.pop("CLOUDINARY_URL", None)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)

    def run(*argv: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        doc = json.loads(result.stdout)
        assert isinstance(doc, dict)
        return doc

    issuer = run("issuer", "add", "--name", "me")["id"]
    image = run("image", "add", "--issuer", issuer, "--file", str(photo))
    assert image["publicId"] == image["id"]
    assert image["deliveryType"] == "authenticated"
    minted = run(
        "token", "mint", "--issuer", issuer, "--image", image["id"],
        "--transformations", '[{"crop": "fill", "width": 120, "height": 90}]',
        "--ttl", "600",
    )  # fmt: skip
    settings = Settings.from_env(env)
    server = await aiohttp_server(create_app(settings), port=port)
    async with ClientSession() as session:
        response = await session.get(minted["url"])
        assert response.status == 200, await response.text()
        assert response.url.path.startswith("/cdn/local/")
        assert picture(await response.read()).size == (120, 90)
    await server.close()


def test_serve_demo_with_a_local_cdn_follows_its_port_to_a_picture(
    tmp_path: Path,
) -> None:
    """`GATEWAY_CDN=local serve --demo --port P`: the announced URL is a 302 to
    the stand-in on the same port, which a plain HTTP client follows to a JPEG."""
    port = unused_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_CDN": "local"}
    for name in ("CLOUDINARY_URL", "GATEWAY_PORT", "GATEWAY_PUBLIC_URL"):
        env.pop(name, None)
    env["GATEWAY_WORKERS"] = "1"
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        printed: dict[str, str] = {}
        for line in server.stdout:
            name, _, value = announced(line).partition(": ")
            printed[name.strip()] = value.strip()
            if "open the demo page" in printed:
                break
        assert printed["open the demo page"] == f"http://127.0.0.1:{port}/demo"
        # The playground's token desk signs three 400-wide tiles.
        first, second, third = (
            f"de300000-0000-4000-8000-0000000000a{i}" for i in (1, 2, 3)
        )
        tiles = [
            {"crop": "fit", "width": 400},
            {"overlay": second, "crop": "fit", "width": 400, "x": 400},
            {"overlay": third, "crop": "fit", "width": 400, "x": 600},
        ]
        desk = urllib.request.Request(
            f"http://127.0.0.1:{port}/demo/token",
            data=json.dumps({"image": first, "transformations": tiles}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(desk, timeout=30) as signed:  # noqa: S310 - loopback
            url = json.load(signed)["url"]
        assert url.startswith(f"http://127.0.0.1:{port}/images/")
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
            assert answer.status == 200
            assert answer.url.startswith(f"http://127.0.0.1:{port}/cdn/local/image/")
            assert answer.headers["Content-Type"] == "image/jpeg"
            # Three 400-wide tiles of the 1200x800 originals, side by side.
            assert picture(answer.read()).size == (1200, 267)
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_a_local_cdn_with_cloudinary_url_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_CDN": "local",
        "CLOUDINARY_URL": "cloudinary://1:2@cloud",
        "GATEWAY_PORT": str(unused_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "image-gateway: GATEWAY_CDN=local stands in for Cloudinary: "
        "unset CLOUDINARY_URL, or set GATEWAY_CDN=cloudinary"
    )


async def test_an_origin_ingest_goes_to_the_stand_in(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    origin = web.Application()

    async def photo(request: web.Request) -> web.Response:
        return web.Response(body=PHOTO, content_type="image/jpeg")

    origin.router.add_get("/photo.jpg", photo)
    origin_server = await aiohttp_server(origin, host="127.0.0.1")
    port = unused_port()
    base = local_settings(tmp_path, port)
    settings = dataclasses.replace(
        base,
        ingest=dataclasses.replace(
            base.ingest, allow_private=True, allowed_hosts=frozenset({"127.0.0.1"})
        ),
    )
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    key = await catalog.add_api_key(SEED_ISSUER)
    await catalog.close()
    server = await aiohttp_server(create_app(settings), port=port)
    gateway = Gateway(server, settings, key)
    try:
        queued = await gateway.session.post(
            gateway.url("/v1/images"),
            json={"origin": str(origin_server.make_url("/photo.jpg"))},
            headers=bearer(key),
        )
        assert queued.status == 202, await queued.text()
        image = str((await document(queued))["id"])
        doc: dict[str, Any] = {}
        for _ in range(500):
            doc = await document(
                await gateway.session.get(
                    gateway.url(f"/v1/images/{image}"), headers=bearer(key)
                )
            )
            if doc["attributes"]["ingest"]["state"] != "queued":
                break
            await asyncio.sleep(0.02)
        assert doc["attributes"]["ingest"]["state"] == "finished"
        assert doc["attributes"]["cloudinary"]["publicId"] == image
        response = await gateway.get(await gateway.redirect(image, TILING))
        assert response.status == 200, await response.text()
        assert picture(await response.read()).size == (300, 200)
    finally:
        await gateway.session.close()
