"""Redirect mode: `/v3` streams the signed Cloudinary URL through; `/image` answers a 302.

Cloudinary is stood in by aioresponses here (its delivery host is HTTPS);
the proxy's own behaviour on a real socket (slow, cut, abandoned streams) is
pinned in `tests/gateway/delivery/test_proxy.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient
from aioresponses import aioresponses
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import SqliteCatalog
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, make_settings
from tests.gateway.http.support import MockedResponse
from tests.helpers import assert_error
from tests.images import RED, solid
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

Client = TestClient[web.Request, web.Application]
IMAGE = "44444444-4444-4444-8444-444444444444"
ACCOUNT = CloudinaryAccount(cloud_name="democloud", api_key="k1", api_secret="s3cret")
DELIVERY = re.compile(r"^https://res\.cloudinary\.com/democloud/image/authenticated/.*")
JPEG = solid((400, 300), RED, "JPEG")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path, cloudinary=ACCOUNT)
    return dataclasses.replace(
        settings,
        upstream=dataclasses.replace(
            settings.upstream, proxy_max_bytes=len(JPEG) + 100, proxy_read_timeout=1.0
        ),
    )


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[SqliteCatalog]:
    catalog = await SqliteCatalog.open(settings.database)
    await catalog.add_issuer(
        issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
    )
    await add_original(
        catalog,
        LocalOriginalStore(settings.originals),
        settings.limits,
        issuer_id=SEED_ISSUER,
        image_id=IMAGE,
        data=solid((1600, 1200), RED, "JPEG"),
        cloudinary=CloudinaryAsset(
            public_id="photos/one",
            version=17,
            format="png",
            delivery_type="authenticated",
        ),
    )
    await catalog.update_image(IMAGE, {"is_public": True, "max_unauthorised": 400})
    yield catalog
    await catalog.close()


@pytest.fixture
def cloud() -> Iterator[aioresponses]:
    with aioresponses(passthrough=["http://127.0.0.1", "http://localhost"]) as mocked:
        yield mocked


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, catalog: SqliteCatalog
) -> Client:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def key(catalog: SqliteCatalog) -> dict[str, str]:
    return {"Authorization": f"Bearer {await catalog.add_api_key(SEED_ISSUER)}"}


def fetched(cloud: aioresponses) -> list[URL]:
    return [url for (method, url) in cloud.requests if url.host == "res.cloudinary.com"]


async def test_v3_streams_the_signed_chain_through(
    client: Client, cloud: aioresponses, key: dict[str, str]
) -> None:
    cloud.get(
        DELIVERY, response_class=MockedResponse, body=JPEG, content_type="image/jpeg"
    )
    response = await client.get(f"/v3/images/{IMAGE}/400.400.jpg", headers=key)
    assert response.status == 200, await response.text()
    assert response.content_type == "image/jpeg"
    assert await response.read() == JPEG
    assert response.headers["X-Request-Id"]
    # Every answer's timing, this streamed one's too (its headers leave
    # before the middleware sees it).
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])
    assert response.headers["Cache-Control"].startswith("private")
    (url,) = fetched(cloud)
    # The SDK's signed URL of c_limit 400x400, in JPEG, without the base chain.
    assert re.fullmatch(
        r"/democloud/image/authenticated/s--[A-Za-z0-9_-]{8}--/c_limit,h_400,w_400/v17/photos/one\.jpg",
        url.path,
    ), url


async def test_v3_etag_answers_304_without_asking_cloudinary(
    client: Client, cloud: aioresponses, key: dict[str, str]
) -> None:
    cloud.get(
        DELIVERY, response_class=MockedResponse, body=JPEG, content_type="image/jpeg"
    )
    first = await client.get(f"/v3/images/{IMAGE}/400.400.jpg", headers=key)
    await first.read()
    etag = first.headers["ETag"]
    again = await client.get(
        f"/v3/images/{IMAGE}/400.400.jpg", headers={**key, "If-None-Match": etag}
    )
    assert again.status == 304
    assert len(fetched(cloud)) == 1


@pytest.mark.parametrize(
    ("upstream", "status", "code"),
    [
        ({"status": 404, "body": b"not found", "content_type": "text/plain"}, 502, "upstream_error"),
        ({"status": 500, "body": b"oops", "content_type": "text/plain"}, 502, "upstream_error"),
        ({"status": 302, "headers": {"Location": "https://evil.example/"}}, 502, "upstream_error"),
        ({"body": b"<html>hello</html>", "content_type": "text/html"}, 502, "upstream_error"),
        ({"body": b"<html>not a jpeg</html>", "content_type": "image/jpeg"}, 502, "upstream_error"),
        ({"body": JPEG + b"x" * 200, "content_type": "image/jpeg"}, 502, "upstream_error"),
        ({"exception": TimeoutError()}, 504, "upstream_timeout"),
        ({"exception": aiohttp.ServerTimeoutError()}, 504, "upstream_timeout"),
        ({"exception": aiohttp.ClientConnectionError()}, 502, "upstream_error"),
    ],
    ids=["404", "500", "redirect", "html", "not-an-image", "over-the-cap", "timeout", "read-timeout", "refused"],
)  # fmt: skip
async def test_v3_upstream_failures(
    client: Client,
    cloud: aioresponses,
    key: dict[str, str],
    upstream: dict[str, object],
    status: int,
    code: str,
) -> None:
    cloud.get(DELIVERY, response_class=MockedResponse, **upstream)
    response = await client.get(f"/v3/images/{IMAGE}/400.400.jpg", headers=key)
    error = await assert_error(response, status, code)
    # The signed URL is a credential of sorts: never in an answer.
    assert "res.cloudinary.com" not in str(error)
    assert "s--" not in str(error)


async def test_image_redirects_with_the_public_cache_control(
    client: Client, cloud: aioresponses
) -> None:
    response = await client.get(
        f"/image/{IMAGE}.webp", params={"w": "300"}, allow_redirects=False
    )
    assert response.status == 302
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    location = URL(response.headers["Location"])
    assert location.host == "res.cloudinary.com"
    # 300 snaps up to the 320 rung, then down to the cap of 400? No: 320 < 400.
    assert re.fullmatch(
        r"/democloud/image/authenticated/s--[A-Za-z0-9_-]{8}--/c_limit,w_320/v17/photos/one\.webp",
        location.path,
    ), location
    assert fetched(cloud) == []  # the browser follows it, not us


async def test_image_over_the_cap_needs_a_credential_in_redirect_mode_too(
    client: Client, key: dict[str, str]
) -> None:
    await assert_error(
        await client.get(f"/image/{IMAGE}.jpg", params={"w": "800"}),
        401,
        "credential_required",
    )
    response = await client.get(
        f"/image/{IMAGE}.jpg", params={"w": "800"}, headers=key, allow_redirects=False
    )
    assert response.status == 302
    assert response.headers["Cache-Control"].startswith("private")
