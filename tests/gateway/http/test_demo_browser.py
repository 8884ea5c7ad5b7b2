"""The playground in a real headless Chromium, against `serve --demo` on loopback.

Debian's `chromium` (installed by `.ci/run`), driven by Playwright for Python
pointed at that executable: Playwright never downloads a browser here. Every
host name resolves to nothing (`--host-resolver-rules`), so no lookup leaves
the machine; the gateway is reached by its loopback address.

Without Chromium or Playwright the tests skip, saying why; under CI=true
that skip is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import pytest

from tests.cloudinary_api import VERSION, served_upload_api
from tests.gateway.ops.conftest import Served

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

ROOT: Final = Path(__file__).resolve().parents[3]
# Screenshots land here (CI keeps the folder as the run's artifacts).
ARTIFACTS: Final = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    # Every name resolves to nothing, the loopback address excepted (the rules
    # apply to addresses too): nothing is looked up beyond the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)
SUNRISE: Final = "de300000-0000-4000-8000-0000000000a1"
MEADOW: Final = "de300000-0000-4000-8000-0000000000a2"
OCEAN: Final = "de300000-0000-4000-8000-0000000000a3"
BASE_CHAIN: Final = ("c_fit,h_1920,w_1920", "fl_attachment", "dpr_auto,q_auto,f_auto")
THREE_TILES: Final = [
    {"crop": "fit", "width": 800},
    {"overlay": MEADOW, "crop": "fit", "width": 800, "x": 800},
    {"overlay": OCEAN, "crop": "fit", "width": 800, "x": 1200},
]
# The three demo originals are 1200x800: fitted into 1920 (the base chain),
# then to 800 wide each, three side by side.
TILING_SIZE: Final = [2400, 533]
THUMBNAIL_SIZE: Final = [240, 160]
FAKE_CLOUD: Final = "cloudinary://1234:fake-api-secret@fake-cloud"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run the browser tests: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, args=list(CHROMIUM_ARGS), timeout=60_000
            )
        except Error as exc:
            _unavailable(f"chromium did not start: {str(exc).splitlines()[0]}")
        with launched:
            yield launched


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    for server in served.processes:
        if server.returncode is None:
            server.terminate()
        server.communicate(timeout=10)


class Visit:
    """A page of the playground, with what it asked for and what it broke."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.failed: dict[str, tuple[str, str]] = {}
        self.redirected: dict[str, str] = {}
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("requestfailed", self._request_failed)
        page.on("requestfinished", self._request_finished)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            # A CSP violation, a failed script: anything the page did not expect.
            self.problems.append(message.text)

    def _request_failed(self, request: Request) -> None:
        origin = request.redirected_from
        # Images only: the page's own fetch of a failed picture (to show why)
        # stops at the 302 by design.
        if origin is not None and request.resource_type == "image":
            self.failed[origin.url] = (request.url, request.failure or "")

    def _request_finished(self, request: Request) -> None:
        origin = request.redirected_from
        if origin is not None and request.resource_type == "image":
            self.redirected[origin.url] = request.url

    def build_three_tiles(self) -> None:
        """As a person would: three tiles of 800, offsets for adjacent tiles, sign."""
        page = self.page
        page.check('input[name="kind"][value="tiling"]')
        page.select_option('select[name="tile-crop"]', "fit")
        page.fill('input[name="tile-width"]', "800")
        page.select_option('select[name="tile-gravity"]', "center")
        while page.locator("#tiles li").count() > 1:
            page.click("#remove-tile")
        page.click("#add-tile")
        page.click("#add-tile")
        for index, image in enumerate((SUNRISE, MEADOW, OCEAN)):
            page.locator("#tiles li select").nth(index).select_option(image)
        page.click("#adjacent")
        offsets = page.locator('#tiles input[name="tile-x"]')
        assert [offsets.nth(i).input_value() for i in (1, 2)] == ["800", "1200"]
        page.click("#sign")
        page.wait_for_selector(
            "#picture[data-state=loaded], #picture[data-state=failed]",
            state="attached",
        )

    def images(self) -> list[dict[str, Any]]:
        found = self.page.evaluate(
            """() => Array.from(document.images).map(img => ({
                id: img.id, src: img.src, complete: img.complete,
                size: [img.naturalWidth, img.naturalHeight]}))"""
        )
        assert isinstance(found, list)
        return found

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Browser) -> Iterator[Any]:
    contexts = []

    def open_page(url: str) -> Visit:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        seen = Visit(page)
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", state="attached")
        return seen

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize(
    ("mode", "environ"),
    [
        pytest.param("render", {}, id="local-rendering"),
        pytest.param("cdn-local", {"GATEWAY_CDN": "local"}, id="local-cdn"),
    ],
)
def test_the_three_tiles_render_in_the_browser(
    serve: Served, visit: Any, mode: str, environ: dict[str, str]
) -> None:
    port = serve(GATEWAY_DEMO="true", GATEWAY_WORKERS="1", **environ)
    page: Visit = visit(f"http://127.0.0.1:{port}/demo")
    assert page.page.get_attribute("#mode", "data-mode") == mode
    page.build_three_tiles()
    shot = page.screenshot(f"playground-{mode}.png")
    assert shot.stat().st_size > 10_000

    images = page.images()
    assert [i["id"] for i in images] == ["", "", "", "picture"]
    for image in images:
        assert image["complete"], image
        assert image["src"].startswith(f"http://127.0.0.1:{port}/images/")
        # With the stand-in, each picture came through the gateway's 302, as
        # from Cloudinary in production; rendering locally, straight away.
        followed = page.redirected.get(image["src"])
        if mode == "cdn-local":
            assert followed is not None, image["src"]
            assert followed.startswith(
                f"http://127.0.0.1:{port}/cdn/local/image/authenticated/s--"
            )
        else:
            assert followed is None
    assert [i["size"] for i in images] == [THUMBNAIL_SIZE] * 3 + [TILING_SIZE]
    assert page.page.inner_text("#picture-size") == "2400 \u00d7 533 pixels"
    claims = json.loads(page.page.inner_text("#claims"))
    assert claims["transformations"] == THREE_TILES
    assert claims["sub"] == SUNRISE
    assert page.page.inner_text("#chain") == "/".join(
        (
            *BASE_CHAIN,
            "c_fit,w_800",
            "c_fit,l_authenticated:image-gateway-demo:meadow,w_800,x_800",
            "c_fit,l_authenticated:image-gateway-demo:ocean,w_800,x_1200",
        )
    )
    assert page.problems == []


def _sdk_url(public_id: str, steps: list[dict[str, object]]) -> str:
    """The signed delivery URL as the Cloudinary SDK computes it, for the fake cloud."""
    import cloudinary.utils

    url, _ = cloudinary.utils.cloudinary_url(
        public_id,
        transformation=[{"raw_transformation": c} for c in BASE_CHAIN] + steps,
        type="authenticated",
        version=VERSION,
        format="jpg",
        sign_url=True,
        secure=True,
        cloud_name="fake-cloud",
        api_key="1234",
        api_secret="fake-api-secret",
    )
    assert isinstance(url, str)
    return url


def test_in_redirect_mode_every_image_points_at_the_signed_cloudinary_url(
    serve: Served, visit: Any
) -> None:
    # The demo's originals are uploaded at start, to Cloudinary's API on loopback.
    with served_upload_api("1234", "fake-api-secret") as api:
        port = serve(
            GATEWAY_DEMO="true",
            GATEWAY_WORKERS="1",
            CLOUDINARY_URL=f"{FAKE_CLOUD}?upload_prefix={api}",
        )
    page: Visit = visit(f"http://127.0.0.1:{port}/demo")
    assert page.page.get_attribute("#mode", "data-mode") == "redirect"
    page.build_three_tiles()
    page.screenshot("playground-redirect.png")

    thumbnail = [{"crop": "fill", "width": 240, "height": 160}]
    tiles = [
        {"crop": "fit", "width": 800},
        {"overlay": {"public_id": "image-gateway-demo/meadow", "type": "authenticated"},
         "crop": "fit", "width": 800, "x": 800},
        {"overlay": {"public_id": "image-gateway-demo/ocean", "type": "authenticated"},
         "crop": "fit", "width": 800, "x": 1200},
    ]  # fmt: skip
    expected = [
        _sdk_url(f"image-gateway-demo/{name}", thumbnail)
        for name in ("sunrise", "meadow", "ocean")
    ] + [_sdk_url("image-gateway-demo/sunrise", tiles)]

    images = page.images()
    assert len(images) == 4
    for image, cloudinary_url in zip(images, expected, strict=True):
        assert image["src"].startswith(f"http://127.0.0.1:{port}/images/")
        # The gateway's 302 led the browser to exactly the SDK's URL, where
        # the name did not resolve (no lookup leaves the machine), and the
        # page's policy let it try (a CSP block would read ERR_BLOCKED_BY_CSP).
        assert page.failed.get(image["src"]) == (
            cloudinary_url,
            "net::ERR_NAME_NOT_RESOLVED",
        ), image["src"]
    assert page.page.inner_text("#cloudinary-url") == expected[-1]
    assert page.page.get_attribute("#picture", "data-state") == "failed"


def test_a_number_the_browser_cannot_read_is_named_not_signed_without(
    serve: Served, visit: Any
) -> None:
    port = serve(GATEWAY_DEMO="true", GATEWAY_WORKERS="1")
    page: Visit = visit(f"http://127.0.0.1:{port}/demo")
    signed: list[str] = []

    def record(request: Request) -> None:
        if request.url.endswith("/demo/token"):
            signed.append(request.url)

    page.page.on("request", record)
    # Typed as a person would: Chromium keeps "1e" on screen, but the field's
    # value is "" (badInput), which read as empty would sign without a height.
    page.page.click('input[name="tile-height"]')
    page.page.keyboard.type("1e")
    page.page.click("#sign")
    page.page.wait_for_selector("#problem:not([hidden])")
    assert page.page.inner_text("#problem") == "tile height: not a number"
    page.page.check('input[name="kind"][value="crop"]')
    page.page.fill('input[name="crop-x"]', "")
    page.page.click('input[name="crop-x"]')
    page.page.keyboard.type("--5")
    page.page.click("#sign")
    assert page.page.inner_text("#problem") == "crop x: not a number"
    assert signed == []
    assert page.problems == []


def test_a_refusal_leaves_no_earlier_result_beside_it(
    serve: Served, visit: Any
) -> None:
    port = serve(GATEWAY_DEMO="true", GATEWAY_WORKERS="1")
    page: Visit = visit(f"http://127.0.0.1:{port}/demo")
    page.build_three_tiles()
    assert page.page.get_attribute("#picture", "data-state") == "loaded"
    # Now a crop the claims parser refuses: gravity needs a cropping mode.
    page.page.check('input[name="kind"][value="crop"]')
    page.page.select_option('select[name="crop-mode"]', "fit")
    page.page.select_option('select[name="crop-gravity"]', "north")
    page.page.click("#sign")
    page.page.wait_for_selector("#problem:not([hidden])")
    assert page.page.inner_text("#problem").startswith("/transformations/0/gravity: ")
    # The three tiles signed before are not shown as if they were this crop.
    assert page.page.inner_text("#claims") == "(sign something)"
    assert page.page.inner_text("#gateway-url") == ""
    assert page.page.inner_text("#chain") == ""
    assert page.page.is_hidden("#picture")
    assert page.page.get_attribute("#picture", "src") is None
    assert page.page.inner_text("#picture-size") == ""
    # The browser's own log of the refused POST is expected; nothing else.
    assert [p for p in page.problems if "status of 400" not in p] == []


@pytest.mark.parametrize(
    ("width", "height", "gravity", "offsets", "size"),
    [
        # The 1200x800 originals fitted into 800x300 are 450 wide, not 800.
        pytest.param(
            "800", "300", "center", ["450", "675"], "1350 \u00d7 300",
            id="fit-within-a-height",
        ),
        pytest.param(
            "", "300", "west", ["450", "900"], "1350 \u00d7 300", id="only-a-height"
        ),
        # 1200 x 41 / 800 is 61.5: 62, rounded half up (R11) as the renderer
        # rounds it. Worked in doubles, 1200 x (41 / 800) is 61.4999..., 61,
        # and the page's offsets would overlap the tiles by a pixel.
        pytest.param(
            "", "41", "west", ["62", "124"], "186 \u00d7 41", id="the-renderers-rounding"
        ),
    ],
)  # fmt: skip
def test_offsets_for_adjacent_tiles_follow_the_width_the_tiles_come_out(
    serve: Served,
    visit: Any,
    width: str,
    height: str,
    gravity: str,
    offsets: list[str],
    size: str,
) -> None:
    port = serve(GATEWAY_DEMO="true", GATEWAY_WORKERS="1")
    page: Visit = visit(f"http://127.0.0.1:{port}/demo")
    page.page.select_option('select[name="tile-crop"]', "fit")
    page.page.fill('input[name="tile-width"]', width)
    page.page.fill('input[name="tile-height"]', height)
    page.page.select_option('select[name="tile-gravity"]', gravity)
    page.page.click("#adjacent")
    found = page.page.locator('#tiles input[name="tile-x"]')
    assert [found.nth(i).input_value() for i in (1, 2)] == offsets
    page.page.click("#sign")
    page.page.wait_for_selector("#picture[data-state=loaded]", state="attached")
    # Three tiles edge to edge: no gap, no overlap.
    assert page.page.inner_text("#picture-size") == f"{size} pixels"
    assert page.problems == []
