"""The playground (`serve --demo`): its page, files and token desk, and their absence otherwise."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import pytest
from PIL import Image
from pytest_aiohttp import AiohttpClient, AiohttpServer
from yarl import URL

from gateway import Settings, create_app
from gateway.demo import DEMO_ISSUER
from tests.cloudinary_api import upload_api
from tests.conftest import API_SECRET, Client, make_settings, render_settings
from tests.helpers import assert_error
from transforms.cloudinary import CloudinaryAccount

SUNRISE: Final = "de300000-0000-4000-8000-0000000000a1"
MEADOW: Final = "de300000-0000-4000-8000-0000000000a2"
OCEAN: Final = "de300000-0000-4000-8000-0000000000a3"
# Three 800-wide tiles: the second centred 800 right of the first's centre,
# the third 1200 right of the grown canvas's centre (docs/geometry.md).
THREE_TILES: Final = [
    {"crop": "fit", "width": 800},
    {"overlay": MEADOW, "crop": "fit", "width": 800, "x": 800},
    {"overlay": OCEAN, "crop": "fit", "width": 800, "x": 1200},
]
BASE_CHAIN: Final = "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto"
THREE_TILES_CHAIN: Final = (
    f"{BASE_CHAIN}/c_fit,w_800"
    "/c_fit,l_authenticated:image-gateway-demo:meadow,w_800,x_800"
    "/c_fit,l_authenticated:image-gateway-demo:ocean,w_800,x_1200"
)


def with_demo(settings: Settings) -> Settings:
    return replace(settings, server=replace(settings.server, demo=True))


@pytest.fixture
async def demo(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    """The playground of a fresh install: local rendering."""
    return await aiohttp_client(create_app(with_demo(render_settings(tmp_path))))


@pytest.fixture
async def plain(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    return await aiohttp_client(create_app(render_settings(tmp_path)))


class _Page(HTMLParser):
    """What of a page could run or style it inline, and its images."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.scripts: list[str] = []
        self.images: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.inline.extend(f"{tag}[{n}]" for n in names if n.startswith("on"))
        if "style" in names:
            self.inline.append(f"{tag}[style]")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            if not names.get("src"):
                self.inline.append("<script> without src")
            self.scripts.append(names.get("src") or "")
        if tag == "img" and names.get("src"):
            self.images.append(str(names["src"]))


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def local_path(url: str, settings_base: str = "http://127.0.0.1:8080") -> str:
    return url.removeprefix(settings_base)


def picture(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body))


async def sign(client: Client, doc: object) -> dict[str, object]:
    response = await client.post("/demo/token", json=doc)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert isinstance(body, dict)
    return body


async def test_the_page_runs_nothing_inline_under_a_strict_policy(
    demo: Client,
) -> None:
    response = await demo.get("/demo")
    assert response.status == 200
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    page = parse(await response.text())
    assert page.inline == []
    assert page.scripts == ["/demo/static/playground.js"]


async def test_the_page_says_what_the_gateway_is_for_and_its_mode(
    demo: Client,
) -> None:
    text = await (await demo.get("/demo")).text()
    assert "signs a short token" in text
    assert 'data-mode="render"' in text
    assert "Why 800, then 1200?" in text


async def test_the_demo_images_show_as_signed_thumbnails(demo: Client) -> None:
    page = parse(await (await demo.get("/demo")).text())
    assert len(page.images) == 3
    for url in page.images:
        response = await demo.get(local_path(url))
        assert response.status == 200
        assert picture(await response.read()).size == (240, 160)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        pytest.param("playground.js", "text/javascript", id="script"),
        pytest.param("playground.css", "text/css", id="style"),
        pytest.param("favicon.svg", "image/svg+xml", id="icon"),
    ],
)
async def test_static_files_are_served_with_their_type(
    demo: Client, name: str, content_type: str
) -> None:
    response = await demo.get(f"/demo/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(await response.read()) > 100


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("playground.html", id="the-template"),
        pytest.param("..%2Fdemo.py", id="traversal"),
        pytest.param("nothing.js", id="unknown"),
    ],
)
async def test_only_the_two_static_files_are_served(demo: Client, name: str) -> None:
    await assert_error(await demo.get(f"/demo/static/{name}"), 404, "route_not_found")


async def test_three_tiles_are_signed_compiled_and_rendered(demo: Client) -> None:
    body = await sign(demo, {"image": SUNRISE, "transformations": THREE_TILES})
    assert body["mode"] == "render"
    assert body["chain"] == THREE_TILES_CHAIN
    assert body["cloudinaryUrl"] is None
    claims = body["claims"]
    assert isinstance(claims, dict)
    assert claims["iss"] == DEMO_ISSUER
    assert claims["sub"] == SUNRISE
    assert claims["transformations"] == THREE_TILES
    assert claims["exp"] - claims["iat"] == 3600
    url = URL(str(body["url"]))
    token = url.query["token"]
    payload = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == claims
    rendered = await demo.get(local_path(str(url)))
    assert rendered.status == 200
    assert picture(await rendered.read()).size == (2400, 533)


async def test_a_crop_is_signed_and_rendered(demo: Client) -> None:
    steps = [
        {"crop": "crop", "width": 300, "height": 200, "gravity": "north_west",
         "x": 100, "y": 50},
        {"effect": "grayscale"},
    ]  # fmt: skip
    body = await sign(demo, {"image": OCEAN, "transformations": steps})
    assert str(body["chain"]).endswith(
        "/c_crop,g_north_west,h_200,w_300,x_100,y_50/e_grayscale"
    )
    rendered = await demo.get(local_path(str(body["url"])))
    image = picture(await rendered.read())
    assert image.size == (300, 200)


@pytest.mark.parametrize(
    ("doc", "status", "code", "pointer"),
    [
        pytest.param(
            {"image": SUNRISE, "transformations": [{"width": 0}]},
            400, "transform_invalid", "/transformations/0/width", id="bad-width",
        ),
        pytest.param(
            {"image": SUNRISE, "transformations": [{"crop": "fit", "bogus": 1}]},
            400, "transform_invalid", "/transformations/0/bogus", id="unknown-key",
        ),
        pytest.param(
            {"image": SUNRISE, "transformations": [{"crop": "fit", "width": True}]},
            400, "transform_invalid", "/transformations/0/width", id="bool-is-not-int",
        ),
        pytest.param(
            {"image": SUNRISE}, 400, "transform_invalid", None, id="no-transformations",
        ),
        pytest.param(
            {"image": "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10", "transformations": []},
            422, "field_invalid", "/image", id="not-a-demo-image",
        ),
        pytest.param(
            {"image": 7, "transformations": []},
            422, "field_invalid", "/image", id="image-not-a-string",
        ),
        pytest.param(
            {"image": SUNRISE, "transformations": [
                {"overlay": "0b6a4b55-7cc4-4a4f-9e0e-8f1a3f2f6f10", "x": 10}]},
            422, "field_invalid", "/transformations/0/overlay", id="overlay-not-demo",
        ),
        pytest.param(
            {"image": SUNRISE, "transformations": [], "ttl": 99999},
            422, "field_unknown", "/ttl", id="unknown-field",
        ),
        pytest.param(
            [SUNRISE], 422, "field_invalid", "", id="not-an-object",
        ),
    ],
)  # fmt: skip
async def test_bad_requests_are_refused_with_a_pointer(
    demo: Client, doc: object, status: int, code: str, pointer: str | None
) -> None:
    response = await demo.post("/demo/token", json=doc)
    await assert_error(response, status, code, pointer=pointer)


async def test_only_json_is_taken(demo: Client) -> None:
    response = await demo.post(
        "/demo/token",
        data=json.dumps({"image": SUNRISE, "transformations": []}),
        headers={"Content-Type": "text/plain"},
    )
    await assert_error(response, 415, "content_type_unsupported")


async def test_a_body_over_the_bound_is_refused_unread(demo: Client) -> None:
    body = json.dumps({"image": SUNRISE, "transformations": [{}] * 3000})
    response = await demo.post(
        "/demo/token", data=body, headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 413, "payload_too_large")


async def test_a_body_without_length_is_refused(demo: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"image": "' + SUNRISE.encode() + b'", "transformations": []}'

    response = await demo.post(
        "/demo/token", data=chunks(), headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/demo", id="page"),
        pytest.param("GET", "/demo/static/playground.js", id="script"),
        pytest.param("POST", "/demo/token", id="token-desk"),
    ],
)
async def test_nothing_of_the_demo_exists_without_it(
    plain: Client, method: str, path: str
) -> None:
    response = await plain.request(
        method, path, json={"image": SUNRISE, "transformations": []}
    )
    await assert_error(response, 404, "route_not_found")


async def test_the_root_lists_links_without_the_demo(plain: Client) -> None:
    response = await plain.get("/")
    assert response.status == 200
    doc = await response.json()
    links = doc["links"]
    assert links["openapi"] == "http://127.0.0.1:8080/openapi.json"
    assert links["images"] == "http://127.0.0.1:8080/v1/images"
    for name in ("status", "livez", "readyz", "metrics"):
        assert (await plain.get(local_path(links[name]))).status == 200, name
    assert set(doc) == {"name", "version", "links"}
    assert "demo" not in links


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        (BROWSER, True),
        ("text/html;q=0.9,application/json;q=0.9", True),
        ("*/*", False),  # curl
        (None, False),
        ("application/json", False),
        ("application/json,text/html;q=0.5", False),
        ("text/html;q=0", False),
    ],
)
async def test_the_root_is_the_playground_for_a_browser_with_the_demo(
    demo: Client, accept: str | None, page: bool
) -> None:
    """The OpenAPI document offers both: a browser gets the page, an API
    client or `curl` the JSON index, which links the playground."""
    headers = {"Accept": accept} if accept is not None else {}
    response = await demo.get("/", headers=headers, skip_auto_headers=["Accept"])
    assert response.status == 200
    assert "Accept" in response.headers["Vary"]
    if page:
        assert response.content_type == "text/html"
        assert "Content-Security-Policy" in response.headers
        assert "image-gateway playground" in await response.text()
    else:
        assert response.content_type == "application/json"
        doc = await response.json()
        assert doc["links"]["demo"] == "http://127.0.0.1:8080/demo"
        assert (await demo.get(local_path(doc["links"]["demo"]))).status == 200


async def test_redirect_mode_shows_the_url_the_302_points_at(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    # The demo's originals are uploaded at start, to Cloudinary's API on loopback.
    api = await aiohttp_server(upload_api("1234", API_SECRET))
    account = CloudinaryAccount(
        cloud_name="fake-cloud",
        api_key="1234",
        api_secret=API_SECRET,
        upload_prefix=str(api.make_url("")).rstrip("/"),
    )
    client = await aiohttp_client(
        create_app(with_demo(make_settings(tmp_path, cloudinary=account)))
    )
    page = await client.get("/demo")
    policy = page.headers["Content-Security-Policy"]
    assert "img-src 'self' http://127.0.0.1:8080 https://res.cloudinary.com;" in policy
    assert 'data-mode="redirect"' in await page.text()
    body = await sign(client, {"image": SUNRISE, "transformations": THREE_TILES})
    assert body["mode"] == "redirect"
    location = str(body["cloudinaryUrl"])
    assert location.startswith(
        "https://res.cloudinary.com/fake-cloud/image/authenticated/s--"
    )
    assert location.endswith(f"/{THREE_TILES_CHAIN}/v1/image-gateway-demo/sunrise.jpg")
    redirect = await client.get(local_path(str(body["url"])), allow_redirects=False)
    assert redirect.status == 302
    assert redirect.headers["Location"] == location
