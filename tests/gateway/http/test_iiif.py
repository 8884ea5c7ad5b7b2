"""`/iiif/3`: each parameter form, each error status, access decisions, the 303, redirects.

The consortium's validator runs in `test_iiif_validator.py`; these pin
what it does not look at (the cap, credentials, redirect mode, 501s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import math
from pathlib import Path
from typing import Final

import hypothesis
import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import ImageRecord, Original, SqliteCatalog
from gateway.delivery import iiif
from gateway.errors import IiifParameterError
from gateway.keys import RENDERER
from gateway.originals.ingest import add_original
from gateway.originals.local import LocalOriginalStore
from tests.conftest import SEED_ISSUER, SEED_KEY, render_settings
from tests.helpers import assert_error
from tests.images import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    near,
    pixel_bomb,
    png_with_data,
    solid,
)
from transforms import Limits
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset

Client = TestClient[web.Request, web.Application]
QUADRANTS: Final = "11111111-1111-4111-8111-111111111111"  # 400x300, public
CAPPED: Final = "22222222-2222-4222-8222-222222222222"  # 1600x1200, public, cap 400
PRIVATE: Final = "33333333-3333-4333-8333-333333333333"  # 400x300, private
ACCOUNT: Final = CloudinaryAccount(
    cloud_name="democloud", api_key="k1", api_secret="s3cret"
)


def quadrants() -> bytes:
    """Red, green over blue, white: shows which part a region, turn or mirror kept."""
    image = Image.new("RGB", (400, 300), RED)
    image.paste(GREEN, (200, 0, 400, 150))
    image.paste(BLUE, (0, 150, 200, 300))
    image.paste(WHITE, (200, 150, 400, 300))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def seed_images(settings: Settings, *, cloudinary: bool = False) -> None:
    catalog = await SqliteCatalog.open(settings.database)
    try:
        await catalog.add_issuer(
            issuer_id=SEED_ISSUER, secret=SEED_KEY.secret, kid=SEED_KEY.kid
        )
        store = LocalOriginalStore(settings.originals)
        for image_id, data in (
            (QUADRANTS, quadrants()),
            (CAPPED, solid((1600, 1200), RED, "JPEG")),
            (PRIVATE, quadrants()),
        ):
            await add_original(
                catalog,
                store,
                settings.limits,
                issuer_id=SEED_ISSUER,
                image_id=image_id,
                data=data,
                cloudinary=CloudinaryAsset(
                    public_id=f"iiif/{image_id[:4]}",
                    version=7,
                    format="png",
                    delivery_type="authenticated",
                )
                if cloudinary
                else None,
            )
        await catalog.update_image(QUADRANTS, {"is_public": True})
        await catalog.update_image(
            CAPPED,
            {"is_public": True, "max_unauthorised": 400, "roles": frozenset({"staff"})},
        )
        keys = (
            await catalog.add_api_key(SEED_ISSUER),
            await catalog.add_api_key(SEED_ISSUER, roles=frozenset({"staff"})),
        )
        settings.data_dir.joinpath("keys").write_text("\n".join(keys))
    finally:
        await catalog.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return render_settings(tmp_path)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> Client:
    await seed_images(settings)
    return await aiohttp_client(create_app(settings))


def _key(settings: Settings, *, staff: bool = False) -> dict[str, str]:
    plain, with_role = settings.data_dir.joinpath("keys").read_text().split("\n")
    return {"Authorization": f"Bearer {with_role if staff else plain}"}


async def _picture(client: Client, path: str, **kwargs: object) -> Image.Image:
    response = await client.get(path, **kwargs)  # type: ignore[arg-type]
    assert response.status == 200, await response.text()
    picture = Image.open(io.BytesIO(await response.read()))
    picture.load()
    return picture


def _color(picture: Image.Image, x: int, y: int) -> tuple[int, ...]:
    pixel = picture.convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


# Each parameter form: the delivered size


@pytest.mark.parametrize(
    ("params", "size"),
    [
        pytest.param("full/max/0", (400, 300), id="full-max"),
        pytest.param("square/max/0", (300, 300), id="square"),
        pytest.param("10,20,100,50/max/0", (100, 50), id="region-pixels"),
        pytest.param("350,250,100,100/max/0", (50, 50), id="region-cut-at-edges"),
        pytest.param("pct:50,50,50,50/max/0", (200, 150), id="region-percent"),
        pytest.param("pct:12.5,0,25.5,100/max/0", (102, 300), id="region-pct-decimal"),
        pytest.param("full/200,/0", (200, 150), id="size-w"),
        pytest.param("full/,150/0", (200, 150), id="size-h"),
        pytest.param("full/pct:50/0", (200, 150), id="size-pct"),
        pytest.param("full/100,100/0", (100, 100), id="size-w-h-distorts"),
        pytest.param("full/!100,100/0", (100, 75), id="size-confined"),
        pytest.param("full/^max/0", (400, 300), id="up-max-within-limits"),
        pytest.param("full/^800,/0", (800, 600), id="up-w"),
        pytest.param("full/^,600/0", (800, 600), id="up-h"),
        pytest.param("full/^pct:150/0", (600, 450), id="up-pct"),
        pytest.param("full/^800,800/0", (800, 800), id="up-w-h"),
        pytest.param("full/^!800,800/0", (800, 600), id="up-confined"),
        pytest.param("full/max/90", (300, 400), id="rotate-90"),
        pytest.param("full/max/180", (400, 300), id="rotate-180"),
        pytest.param("full/max/270", (300, 400), id="rotate-270"),
        pytest.param("full/max/360", (400, 300), id="rotate-360"),
        pytest.param("full/max/!0", (400, 300), id="mirror"),
        pytest.param("full/max/45", (496, 496), id="rotate-45-grows"),
        pytest.param("full/max/!90.0", (300, 400), id="mirror-rotate-decimal-whole"),
    ],
)
async def test_each_parameter_form_gives_its_size(
    client: Client, params: str, size: tuple[int, int]
) -> None:
    picture = await _picture(client, f"/iiif/3/{QUADRANTS}/{params}/default.png")
    assert picture.size == size


@pytest.mark.parametrize(
    ("params", "at", "color"),
    [
        pytest.param("full/max/0", (10, 10), RED, id="as-is"),
        pytest.param("200,0,200,150/max/0", (10, 10), GREEN, id="region"),
        pytest.param("pct:0,50,50,50/max/0", (10, 10), BLUE, id="region-pct"),
        pytest.param("full/max/!0", (10, 10), GREEN, id="mirror"),
        pytest.param("full/max/90", (10, 10), BLUE, id="rotate-90-clockwise"),
        pytest.param("full/max/!90", (10, 10), WHITE, id="mirror-then-rotate"),
        pytest.param("full/max/180", (10, 10), WHITE, id="rotate-180"),
    ],
)
async def test_region_mirror_and_rotation_keep_the_right_part(
    client: Client, params: str, at: tuple[int, int], color: tuple[int, int, int]
) -> None:
    picture = await _picture(client, f"/iiif/3/{QUADRANTS}/{params}/default.png")
    assert near(_color(picture, *at), color), _color(picture, *at)


async def test_qualities(client: Client) -> None:
    base = f"/iiif/3/{QUADRANTS}/full/max/0"
    for quality in ("default", "color"):
        picture = await _picture(client, f"{base}/{quality}.png")
        assert near(_color(picture, 300, 10), GREEN)
    gray = (await _picture(client, f"{base}/gray.png")).convert("RGB")
    assert all(r == g == b for _, (r, g, b) in gray.getcolors() or [])  # type: ignore[misc]
    bitonal = (await _picture(client, f"{base}/bitonal.png")).convert("RGB")
    assert {c for _, c in bitonal.getcolors() or []} <= {(0, 0, 0), (255, 255, 255)}
    assert _color(bitonal, 300, 200) == (255, 255, 255)
    assert _color(bitonal, 10, 200) == (0, 0, 0)  # blue is dark


@pytest.mark.parametrize(
    ("extension", "media_type", "pillow"),
    [
        ("jpg", "image/jpeg", "JPEG"),
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("gif", "image/gif", "GIF"),
        ("avif", "image/avif", "AVIF"),
    ],
)
async def test_each_format(
    client: Client, extension: str, media_type: str, pillow: str
) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}/full/100,/0/default.{extension}")
    assert response.status == 200
    assert response.content_type == media_type
    assert Image.open(io.BytesIO(await response.read())).format == pillow


# Each error status, as JSON:API


REGION_FORMS: Final = "the region is full, square, x,y,w,h or pct:x,y,w,h"
SIZE_FORMS: Final = (
    "the size is max, w,, ,h, pct:n, w,h or !w,h (each may start with ^)"
)
ROTATIONS: Final = "the rotation is 0 to 360 degrees, ! first to mirror"
ENLARGES: Final = "the size enlarges the 400x300 region: ask with ^ to enlarge"
FORMAT_LIST: Final = "jpg, png, webp, gif, avif"


@pytest.mark.parametrize(
    ("params", "parameter", "detail"),
    [
        pytest.param("nowhere/max/0/default.jpg", "region", REGION_FORMS, id="region-word"),
        pytest.param("1,2,3/max/0/default.jpg", "region", REGION_FORMS, id="region-three"),
        pytest.param(
            "-1,0,10,10/max/0/default.jpg", "region", REGION_FORMS, id="region-negative"
        ),
        pytest.param(
            "0,0,0,10/max/0/default.jpg", "region", "the region is empty",
            id="region-empty",
        ),
        pytest.param(
            "0,0,10,0/max/0/default.jpg", "region", "the region is empty",
            id="region-empty-height",
        ),
        pytest.param(
            "400,0,10,10/max/0/default.jpg", "region",
            "the region lies outside the 400x300 image", id="region-outside",
        ),
        pytest.param(
            "0,300,10,10/max/0/default.jpg", "region",
            "the region lies outside the 400x300 image", id="region-below",
        ),
        pytest.param(
            "pct:0,0,0.1,10/max/0/default.jpg", "region", "the region is empty",
            id="region-pct-0px",
        ),
        pytest.param("full/big/0/default.jpg", "size", SIZE_FORMS, id="size-word"),
        pytest.param("full/,/0/default.jpg", "size", SIZE_FORMS, id="size-no-side"),
        pytest.param(
            "full/!100,/0/default.jpg", "size", SIZE_FORMS, id="size-confined-one"
        ),
        pytest.param(
            "full/0,/0/default.jpg", "size", "the size makes an empty image",
            id="size-zero",
        ),
        pytest.param(
            "full/,0/0/default.jpg", "size", "the size makes an empty image",
            id="size-zero-height",
        ),
        pytest.param("full/401,/0/default.jpg", "size", ENLARGES, id="size-enlarges"),
        pytest.param(
            "full/400,301/0/default.jpg", "size", ENLARGES, id="size-enlarges-height"
        ),
        pytest.param(
            "full/pct:101/0/default.jpg", "size", ENLARGES, id="size-pct-enlarges"
        ),
        pytest.param(
            "full/!800,800/0/default.jpg", "size", ENLARGES,
            id="size-confined-enlarges",
        ),
        pytest.param(
            "full/^5000,/0/default.jpg", "size",
            "at most 4096 pixels a side and 25000000 in all are served",
            id="size-over-max-size",
        ),
        pytest.param("full/full/0/default.jpg", "size", SIZE_FORMS, id="size-full-is-v2"),
        pytest.param("full/max/361/default.jpg", "rotation", ROTATIONS, id="rotation-over"),
        pytest.param(
            "full/max/-90/default.jpg", "rotation", ROTATIONS, id="rotation-negative"
        ),
        pytest.param("full/max/x/default.jpg", "rotation", ROTATIONS, id="rotation-word"),
        pytest.param(
            "full/max/0/native.jpg", "quality",
            "the quality is default, color, gray or bitonal", id="quality-v1",
        ),
        pytest.param(
            "full/max/0/default.bmp", "format", f"the format is one of {FORMAT_LIST}",
            id="format-unknown",
        ),
        pytest.param(
            "full/max/0/default.JPG", "format", f"the format is one of {FORMAT_LIST}",
            id="format-case",
        ),
    ],
)  # fmt: skip
async def test_malformed_parameters_are_400(
    client: Client, params: str, parameter: str, detail: str
) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}/{params}")
    error = await assert_error(response, 400, "parameter_invalid", parameter=parameter)
    assert error["detail"] == detail
    assert error["title"] == "Invalid IIIF parameter"  # a path segment, not a query


@pytest.mark.parametrize(
    "params",
    [
        pytest.param("full/max/45/default.png", id="turn"),
        pytest.param("full/max/!45/gray.png", id="mirror-turn-quality"),
        pytest.param("0,0,400,300/400,/30/default.jpg", id="region-size-turn"),
    ],
)
async def test_a_turn_past_the_render_budget_is_400_naming_rotation(
    aiohttp_client: AiohttpClient, tmp_path: Path, params: str
) -> None:
    # 400x300 is within maxArea; turned off a right angle, it grows past it.
    settings = render_settings(tmp_path)
    settings = dataclasses.replace(
        settings, limits=dataclasses.replace(settings.limits, max_output_pixels=150_000)
    )
    await seed_images(settings)
    client = await aiohttp_client(create_app(settings))
    response = await client.get(f"/iiif/3/{QUADRANTS}/{params}")
    error = await assert_error(response, 400, "parameter_invalid", parameter="rotation")
    assert error["title"] == "Invalid IIIF parameter"
    assert error["source"] == {"parameter": "rotation"}  # no /transformations pointer
    assert "150000" in str(error["detail"])
    assert "step" not in str(error["detail"])


@pytest.mark.parametrize(
    ("params", "parameter", "detail"),
    [
        pytest.param(
            "full/max/0/default.tif", "format", f"tif is not served; {FORMAT_LIST} are",
            id="tif",
        ),
        pytest.param(
            "full/max/0/default.jp2", "format", f"jp2 is not served; {FORMAT_LIST} are",
            id="jp2",
        ),
        pytest.param(
            "full/max/0/default.pdf", "format", f"pdf is not served; {FORMAT_LIST} are",
            id="pdf",
        ),
        pytest.param(
            "full/max/22.5/default.jpg", "rotation", "only whole degrees are supported",
            id="fractional-degrees",
        ),
    ],
)  # fmt: skip
async def test_valid_requests_not_supported_are_501(
    client: Client, params: str, parameter: str, detail: str
) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}/{params}")
    error = await assert_error(
        response, 501, "feature_not_supported", parameter=parameter
    )
    assert error["detail"] == detail


@pytest.mark.parametrize(
    "image_id",
    [
        pytest.param("44444444-4444-4444-8444-444444444444", id="unknown"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
        pytest.param(PRIVATE, id="private"),
    ],
)
@pytest.mark.parametrize("tail", ["info.json", "full/max/0/default.jpg"])
async def test_unknown_and_private_images_are_404(
    client: Client, image_id: str, tail: str
) -> None:
    response = await client.get(f"/iiif/3/{image_id}/{tail}")
    await assert_error(response, 404, "image_not_found")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param(f"{QUADRANTS}/full/max/0/default.bmp", 400, id="400"),
        pytest.param(f"{CAPPED}/full/800,/0/default.jpg", 401, id="401-over-the-cap"),
        pytest.param(f"{PRIVATE}/info.json", 404, id="404-info-json"),
        pytest.param(f"{PRIVATE}/full/max/0/default.jpg", 404, id="404-image"),
        pytest.param(f"{QUADRANTS}/full/max/0/default.tif", 501, id="501"),
    ],
)
async def test_errors_are_readable_across_origins(
    client: Client, path: str, status: int
) -> None:
    """Every answer has Access-Control-Allow-Origin (README), refusals too:
    a viewer on another site tells a 401 from a 404 only if it may read it."""
    response = await client.get(f"/iiif/3/{path}")
    assert response.status == status
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    "tail",
    ["", "/info.json", "/full/max/0/default.jpg", "/0,0,256,256/256,/0/gray.png"],
)
async def test_a_viewer_on_another_site_may_send_a_credential(
    client: Client, settings: Settings, tail: str
) -> None:
    """The CORS preflight (section 7): Authorization crosses origins only
    after an OPTIONS answer allows it."""
    path = f"/iiif/3/{CAPPED}{tail}"
    preflight = await client.options(
        path,
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed


async def test_the_base_uri_is_a_303_to_info_json(
    client: Client, settings: Settings
) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == str(
        settings.base_url / "iiif" / "3" / QUADRANTS / "info.json"
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_an_escaped_identifier_is_the_same_image(client: Client) -> None:
    escaped = QUADRANTS.replace("-", "%2D").upper()
    url = URL(f"/iiif/3/{escaped}/full/max/0/default.png", encoded=True)
    assert (await _picture(client, str(url))).size == (400, 300)


# info.json and headers


async def test_info_json(client: Client, settings: Settings) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}/info.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    doc = await response.json()
    assert doc == {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": str(settings.base_url / "iiif" / "3" / QUADRANTS),
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level2",
        "width": 400,
        "height": 300,
        "maxWidth": settings.limits.max_size,
        "maxHeight": settings.limits.max_size,
        "maxArea": settings.limits.max_output_pixels,
        "sizes": [{"width": 200, "height": 150}, {"width": 400, "height": 300}],
        "tiles": [{"width": 256, "height": 256, "scaleFactors": [1, 2]}],
        "extraFormats": ["webp", "gif", "avif"],
        "extraQualities": ["color", "gray", "bitonal"],
        "extraFeatures": [
            "mirroring",
            "sizeUpscaling",
            "profileLinkHeader",
            "canonicalLinkHeader",
        ],
    }


async def test_info_json_is_json_ld_when_asked(client: Client) -> None:
    response = await client.get(
        f"/iiif/3/{QUADRANTS}/info.json", headers={"Accept": "application/ld+json"}
    )
    assert response.headers["Content-Type"] == (
        'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    )
    assert "Accept" in response.headers["Vary"]


async def test_images_link_their_profile_and_canonical_uri(
    client: Client, settings: Settings
) -> None:
    response = await client.get(f"/iiif/3/{QUADRANTS}/pct:50,0,50,50/,75/!90/color.jpg")
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    service = settings.base_url / "iiif" / "3" / QUADRANTS
    assert response.headers["Link"] == (
        '<http://iiif.io/api/image/3/level2.json>;rel="profile", '
        f'<{service}/200,0,200,150/100,75/!90/color.jpg>;rel="canonical"'
    )


@pytest.mark.parametrize(
    ("size", "canonical"),
    [
        pytest.param("max", "max", id="max"),
        pytest.param("^max", "max", id="up-max-not-enlarging"),
        pytest.param("200,", "200,150", id="w"),
        pytest.param("^200,", "200,150", id="up-w-not-enlarging"),
        pytest.param("^,300", "400,300", id="up-h-the-region-itself"),
        pytest.param("^pct:50", "200,150", id="up-pct-not-enlarging"),
        pytest.param("^!100,100", "100,75", id="up-confined-not-enlarging"),
        pytest.param("^800,", "^800,600", id="up-w-enlarging"),
        pytest.param("^400,301", "^400,301", id="up-w-h-enlarging-one-side"),
    ],
)
def test_the_canonical_size_has_a_caret_only_when_it_enlarges(
    size: str, canonical: str
) -> None:
    """Section 4.8: `w,h` when the size needs no upscaling, `^w,h` when it does."""
    syntax = iiif.parse("full", size, "0", "default.jpg")
    wanted = iiif.resolve(syntax, (400, 300), Limits(), 1.0)
    assert wanted.canonical == f"full/{canonical}/0/default.jpg"


@pytest.mark.parametrize(
    ("full", "size", "limits", "served", "canonical"),
    [
        pytest.param((400, 300), "!100,100", Limits(), (100, 75), "100,75", id="within"),
        pytest.param(
            (400, 300), "^!5000,5000", Limits(max_size=500), (500, 375), "^500,375",
            id="up-max-size",
        ),
        pytest.param(
            (400, 300), "^!5000,5000", Limits(max_output_pixels=30_000), (200, 150),
            "200,150", id="up-max-area",
        ),
        pytest.param(
            (400, 300), "!300,300", Limits(max_size=200), (200, 150), "200,150",
            id="max-size",
        ),
        pytest.param(
            (400, 300), "^!5000,300", Limits(max_size=500), (400, 300), "400,300",
            id="h-binds-first",
        ),
        # The longest side at the limit exactly, the other from the ratio: a
        # fit worked back from a floored side lost a pixel, or most of a strip.
        pytest.param(
            (1001, 777), "^!5000,5000", Limits(), (4096, 3179), "^4096,3179",
            id="1001x777-at-4096",
        ),
        pytest.param(
            (777, 1001), "^!5000,5000", Limits(), (3179, 4096), "^3179,4096",
            id="portrait-at-4096",
        ),
        pytest.param(
            (7007, 4839), "!1000,1000", Limits(max_size=1000), (1000, 691),
            "1000,691", id="float-at-the-limit",
        ),
        pytest.param(
            (7633, 14), "!1000,6480", Limits(max_size=1000), (1000, 2), "1000,2",
            id="a-strip",
        ),
        # maxArea judged on the sides served, rounded: 1732x1155 is over it.
        pytest.param(
            (3000, 2000), "^!1732,9000",
            Limits(max_size=8000, max_output_pixels=2_000_000), (1732, 1154),
            "1732,1154", id="area-after-rounding",
        ),
        # The short side of a strip is one pixel at least, and no more.
        pytest.param(
            (10000, 5), "!10000,5", Limits(max_size=1000), (1000, 1), "1000,1",
            id="a-strip-at-max-size",
        ),
        pytest.param(
            (10000, 3), "!10000,3", Limits(max_size=10000, max_output_pixels=5000),
            (4082, 1), "4082,1", id="a-strip-at-max-area",
        ),
        pytest.param(
            (3, 10000), "!3,10000", Limits(max_size=10000, max_output_pixels=5000),
            (1, 4082), "1,4082", id="a-standing-strip-at-max-area",
        ),
        # At maxArea exactly: served as fitted, not shrunk again.
        pytest.param(
            (401, 300), "!200,150", Limits(max_output_pixels=30_000), (200, 150),
            "200,150", id="at-max-area",
        ),
    ],
)  # fmt: skip
def test_a_confined_size_is_fitted_in_the_servers_limits(
    full: tuple[int, int],
    size: str,
    limits: Limits,
    served: tuple[int, int],
    canonical: str,
) -> None:
    """Section 4.4: `!w,h` and `^!w,h` are "as large as possible but not larger
    than … w or h, or server-imposed limits": fitted, never refused for those."""
    syntax = iiif.parse("full", size, "0", "default.jpg")
    wanted = iiif.resolve(syntax, full, limits, 1.0)
    assert wanted.view.size == served
    assert wanted.canonical == f"full/{canonical}/0/default.jpg"


@pytest.mark.parametrize(
    ("full", "size", "cap", "limits", "served"),
    [
        pytest.param((1600, 1200), "!500,400", 400, Limits(), (400, 300), id="within"),
        # Fitted at the cap's scale exactly: 779 / 2 = 389.5, which rounded
        # (390) makes the policy size 501, refused (401) for `!500,1000`.
        pytest.param(
            (1000, 779), "!500,1000", 500, Limits(), (500, 389), id="at-the-cap"
        ),
        pytest.param(
            (1000, 779), "!500,1000", 500, Limits(max_size=500), (500, 389),
            id="at-the-cap-and-max-size",
        ),
        pytest.param(
            (1000, 779), "!1000,389", 500, Limits(), (499, 389), id="under-the-cap"
        ),
        pytest.param((6000, 5), "!6000,5", 400, Limits(), (400, 1), id="a-strip"),
        pytest.param(
            (5, 6000), "!5,6000", 400, Limits(), (1, 400), id="a-standing-strip"
        ),
    ],
)  # fmt: skip
def test_a_confined_size_is_fitted_within_a_capped_callers_cap(
    full: tuple[int, int],
    size: str,
    cap: int,
    limits: Limits,
    served: tuple[int, int],
) -> None:
    """As `max` is: the most the caller may have, which the policy lets through."""
    syntax = iiif.parse("full", size, "0", "default.jpg")
    wanted = iiif.resolve(syntax, full, limits, cap / max(full))
    assert wanted.view.size == served
    assert iiif.policy_size(wanted.view) <= cap


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@given(
    full=st.tuples(st.integers(2, 6000), st.integers(1, 6000)),
    data=st.data(),
)
def test_any_confined_size_of_a_capped_caller_is_within_the_cap(
    full: tuple[int, int], data: st.DataObject
) -> None:
    """`!w,h` is fitted, never refused, for the caller: 2530x63 capped at 1117
    served !1114,303 as 1114x28, whose short side rounded past the cap's scale
    (policy size 1125), and the caller was refused."""
    cap = data.draw(st.integers(1, max(full) - 1))
    w = data.draw(st.integers(1, 2 * full[0]))
    h = data.draw(st.integers(1, 2 * full[1]))
    syntax = iiif.parse("full", f"^!{w},{h}", "0", "default.jpg")
    wanted = iiif.resolve(syntax, full, Limits(), cap / max(full))
    assert iiif.policy_size(wanted.view) <= cap


@pytest.mark.parametrize(
    ("full", "size", "cap", "served"),
    [
        ((2530, 63), "!1114,303", 1117, (1114, 27)),
        ((146, 1771), "!810,1293", 1295, (106, 1293)),
    ],
)
def test_a_side_rounded_past_the_cap_just_under_it_is_floored(
    full: tuple[int, int], size: str, cap: int, served: tuple[int, int]
) -> None:
    syntax = iiif.parse("full", size, "0", "default.jpg")
    wanted = iiif.resolve(syntax, full, Limits(), cap / max(full))
    assert wanted.view.size == served
    assert iiif.policy_size(wanted.view) <= cap


@pytest.mark.parametrize(
    ("full", "rotation", "budget", "detail", "parameter"),
    [
        pytest.param(
            (400, 200), "30", 100_000,
            "turned by 30 degrees, the 400x200 image becomes 447x374, over the "
            "100000 pixels (maxArea) rendered: ask for a smaller size or a right angle",
            "rotation", id="a-turn-grows-it",
        ),
        # Turned at a right angle it stays within the budget: the size is to change.
        pytest.param(
            (400, 300), "90", 150_000,
            "the request makes an image over the 150000 pixels (maxArea) rendered: "
            "ask for a smaller size",
            "size", id="a-right-angle",
        ),
        pytest.param(
            (400, 300), "0", 120_000,
            "the request makes an image over the 120000 pixels (maxArea) rendered: "
            "ask for a smaller size",
            "size", id="at-the-budget",
        ),
    ],
)  # fmt: skip
def test_a_refusal_over_the_budget_names_the_segment_to_change(
    full: tuple[int, int], rotation: str, budget: int, detail: str, parameter: str
) -> None:
    syntax = iiif.parse("full", "max", rotation, "default.jpg")
    wanted = iiif.resolve(syntax, full, Limits(), 1.0)
    error = iiif.over_budget(wanted, Limits(max_output_pixels=budget))
    assert (error.detail, error.parameter) == (detail, parameter)


@pytest.mark.parametrize(
    ("size", "limits"),
    [
        # The validator's size_noup: no enlarging without ^, `!` or not.
        pytest.param("!5000,5000", Limits(), id="confined-enlarging-without-caret"),
        pytest.param("^5000,", Limits(), id="exact-over-max-size"),
        pytest.param(
            "^600,400", Limits(max_output_pixels=200_000), id="exact-over-area"
        ),
    ],
)
def test_other_sizes_past_the_limits_are_refused(size: str, limits: Limits) -> None:
    syntax = iiif.parse("full", size, "0", "default.jpg")
    with pytest.raises(IiifParameterError):
        iiif.resolve(syntax, (400, 300), limits, 1.0)


# Access: the size policy, at the whole image's scale


async def test_a_capped_image_advertises_what_anyone_may_have(
    client: Client, settings: Settings
) -> None:
    anonymous = await (await client.get(f"/iiif/3/{CAPPED}/info.json")).json()
    assert (anonymous["maxWidth"], anonymous["maxHeight"]) == (400, 300)
    # 1600/4 = 400: the levels at 1/4 and smaller only.
    assert anonymous["tiles"][0]["scaleFactors"] == [4, 8]
    assert anonymous["sizes"] == [
        {"width": 200, "height": 150},
        {"width": 400, "height": 300},
    ]
    staff = await (
        await client.get(
            f"/iiif/3/{CAPPED}/info.json", headers=_key(settings, staff=True)
        )
    ).json()
    assert staff["maxWidth"] == settings.limits.max_size
    assert staff["tiles"][0]["scaleFactors"] == [1, 2, 4, 8]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param("full/max", 200, id="max-is-the-cap"),
        pytest.param("full/400,", 200, id="at-the-cap"),
        pytest.param("full/401,", 401, id="over-the-cap"),
        pytest.param("0,0,1024,1024/256,", 200, id="tile-at-quarter-scale"),
        pytest.param("0,0,512,512/256,", 401, id="tile-at-half-scale"),
        pytest.param("0,0,200,200/50,50", 200, id="small-region-at-quarter"),
        pytest.param("0,0,200,200/100,100", 401, id="small-region-at-half"),
        pytest.param("0,0,1600,2/400,1", 401, id="squeezed-keeps-full-width"),
        pytest.param("full/400,1200", 401, id="squeezed-keeps-full-height"),
        # Its height at a third is within 400, but the cap's scale is a quarter.
        pytest.param("full/100,400", 401, id="squeezed-height-at-a-third"),
        pytest.param("0,0,1600,1200/300,400", 401, id="squeezed-region-at-a-third"),
        pytest.param("full/400,300", 200, id="both-axes-at-the-cap"),
        pytest.param("full/100,300", 200, id="squeezed-within-the-cap"),
        pytest.param("0,0,400,4/100,4", 401, id="squeezed-band-at-full-height"),
        # `!w,h` is fitted in what this caller is served, as `max` is.
        pytest.param("full/!500,400", 200, id="confined-fitted-to-the-cap"),
        pytest.param("0,0,1024,1024/!900,900", 200, id="confined-tile-fitted"),
    ],
)
async def test_the_whole_images_scale_decides_anonymous_access(
    client: Client, params: str, status: int
) -> None:
    response = await client.get(f"/iiif/3/{CAPPED}/{params}/0/default.jpg")
    if status == 200:
        assert response.status == 200
        assert response.headers["Cache-Control"].startswith("public")
    else:
        await assert_error(response, status, "credential_required")


@pytest.mark.parametrize(
    ("image", "path", "varies"),
    [
        pytest.param(CAPPED, "info.json", True, id="capped-info"),
        pytest.param(CAPPED, "full/max/0/default.jpg", True, id="capped-max"),
        pytest.param(CAPPED, "full/200,/0/default.jpg", True, id="capped-size"),
        pytest.param(QUADRANTS, "info.json", False, id="uncapped-info"),
        pytest.param(QUADRANTS, "full/max/0/default.jpg", False, id="uncapped-max"),
    ],
)
async def test_a_shared_answer_capped_for_the_anonymous_varies_by_credential(
    client: Client, image: str, path: str, varies: bool
) -> None:
    """A shared cache must not give the anonymous answer (fitted to the cap)
    to a caller whose credential gets more for the same URL."""
    response = await client.get(f"/iiif/3/{image}/{path}")
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("public")
    vary = {v.strip() for v in response.headers.get("Vary", "").split(",")}
    credential = {"Authorization", "Cookie", "X-Session-Token"}
    assert (credential <= vary) is varies, vary


async def test_anonymous_max_is_fitted_to_the_cap(client: Client) -> None:
    picture = await _picture(client, f"/iiif/3/{CAPPED}/full/max/0/default.jpg")
    assert picture.size == (400, 300)


async def test_over_the_cap_a_credential_needs_the_images_role(
    client: Client, settings: Settings
) -> None:
    path = f"/iiif/3/{CAPPED}/full/800,/0/default.jpg"
    await assert_error(
        await client.get(path, headers=_key(settings)), 403, "role_required"
    )
    response = await client.get(path, headers=_key(settings, staff=True))
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("private")
    assert "Authorization" in response.headers["Vary"]


async def test_the_owner_may_open_a_private_image(
    client: Client, settings: Settings
) -> None:
    picture = await _picture(
        client, f"/iiif/3/{PRIVATE}/full/max/0/default.png", headers=_key(settings)
    )
    assert picture.size == (400, 300)


# Deep zoom: levels decoded once


async def test_tiles_of_one_level_share_one_decode(
    client: Client, settings: Settings
) -> None:
    tiles = [
        f"/iiif/3/{CAPPED}/{x},{y},512,512/256,256/0/default.jpg"
        for x in (0, 512, 1024)
        for y in (0, 512)
    ]
    levels = client.app[RENDERER].levels
    staff = _key(settings, staff=True)
    answers = await asyncio.gather(*(client.get(tile, headers=staff) for tile in tiles))
    assert [a.status for a in answers] == [200] * len(tiles)
    assert levels.decodes == 1  # the 1/2 level, for six tiles asked at once
    other = await client.get(tiles[0].replace("256,256", "255,255"), headers=staff)
    assert other.status == 200
    assert levels.decodes == 1  # a new tile of a kept level: no decode


# The image document links its IIIF service


async def test_the_image_document_links_info_json_and_thumbnail400(
    client: Client, settings: Settings
) -> None:
    response = await client.get(f"/v1/images/{CAPPED}", headers=_key(settings))
    links = (await response.json(content_type=None))["data"]["links"]
    service = settings.base_url / "iiif" / "3" / CAPPED
    assert links["iiif"] == f"{service}/info.json"
    assert links["thumbnail400"] == f"{service}/full/!400,400/0/default.jpg"
    thumbnail = await _picture(client, URL(links["thumbnail400"]).path)
    assert thumbnail.size == (400, 300)
    small = await client.get(f"/v1/images/{QUADRANTS}", headers=_key(settings))
    small_links = (await small.json(content_type=None))["data"]["links"]
    assert small_links["thumbnail400"].endswith("/full/max/0/default.jpg")
    private = await client.get(f"/v1/images/{PRIVATE}", headers=_key(settings))
    assert "iiif" not in (await private.json(content_type=None))["data"]["links"]


async def test_a_stored_pixel_bomb_is_refused_in_the_gateways_words(
    client: Client, settings: Settings
) -> None:
    # Ingest refuses such a file; one stored otherwise (an older, larger
    # limit; another tool) is refused again when its pixels are needed.
    record = await _stored_public_png(
        settings, pixel_bomb(20000, 20000), (20000, 20000)
    )
    response = await client.get(f"/iiif/3/{record.id}/full/256,/0/default.png")
    error = await assert_error(response, 422, "image_limit_exceeded")
    detail = str(error["detail"])
    assert detail.endswith("at most 50000000 are accepted")  # GATEWAY_MAX_SOURCE_PIXELS
    assert "bomb" not in detail


async def _stored_public_png(
    settings: Settings, data: bytes, size: tuple[int, int]
) -> ImageRecord:
    """A public image whose original is `data`, stored as it is: past ingest's checks."""
    catalog = await SqliteCatalog.open(settings.database)
    try:
        record = await catalog.add_image(
            issuer_id=SEED_ISSUER,
            image_id=None,
            cloudinary=None,
            original=Original(
                sha256=await LocalOriginalStore(settings.originals).put(data),
                media_type="image/png",
                file_size=len(data),
                width=size[0],
                height=size[1],
            ),
            original_filename=None,
        )
        return await catalog.update_image(record.id, {"is_public": True})
    finally:
        await catalog.close()


async def test_a_stored_original_that_cannot_be_decoded_is_422_not_a_500(
    client: Client, settings: Settings
) -> None:
    # Ingest refuses such a file (IDAT not zlib, under valid CRCs); one stored
    # otherwise is refused when a level of it is decoded.
    data = png_with_data(400, 300, b"not zlib data")
    record = await _stored_public_png(settings, data, (400, 300))
    response = await client.get(f"/iiif/3/{record.id}/full/256,/0/default.png")
    error = await assert_error(response, 422, "source_image_invalid")
    assert "cannot be decoded" in str(error["detail"])


async def test_levels_are_bounded_by_their_cache(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    settings = render_settings(tmp_path)
    settings = dataclasses.replace(
        settings,
        render=dataclasses.replace(settings.render, level_cache_bytes=2_000_000),
    )
    await seed_images(settings)
    client = await aiohttp_client(create_app(settings))
    levels = client.app[RENDERER].levels
    staff = _key(settings, staff=True)
    # The 1/1 level (1600x1200x3 bytes) is over the bound: decoded, never kept.
    for _ in range(2):
        response = await client.get(
            f"/iiif/3/{CAPPED}/0,0,256,256/256,/0/default.jpg", headers=staff
        )
        assert response.status == 200
    first = levels.decodes
    # A different tile of it decodes the level again; the 1/4 level is kept.
    response = await client.get(
        f"/iiif/3/{CAPPED}/256,0,256,256/256,/0/default.jpg", headers=staff
    )
    assert response.status == 200
    assert levels.decodes == first + 1
    for tile in ("0,0,1024,1024/256,", "1024,0,576,1024/144,"):
        response = await client.get(f"/iiif/3/{CAPPED}/{tile}/0/default.jpg")
        assert response.status == 200
    assert levels.decodes == first + 2


@pytest.mark.parametrize(
    ("full", "limits", "longest_allowed"),
    [
        pytest.param((400, 300), Limits(), None, id="defaults"),
        pytest.param((1600, 1200), Limits(), 400, id="capped"),
        pytest.param(
            (3000, 2000),
            Limits(max_size=8000, max_output_pixels=2_000_000),
            None,
            id="maxArea-under-the-whole-image",
        ),
        pytest.param((6000, 1000), Limits(), 5000, id="cap-over-maxWidth"),
    ],
)
def test_info_json_lists_only_sizes_it_serves(
    full: tuple[int, int], limits: Limits, longest_allowed: int | None
) -> None:
    """Every size `info.json` lists is within its maxWidth, maxHeight and
    maxArea, and served in its canonical `w,h` form to the caller it was
    written for; maxWidth and maxHeight promise no more than GATEWAY_MAX_SIZE."""
    doc = iiif.info_document("https://iiif.example/x", full, limits, longest_allowed)
    max_width, max_height = doc["maxWidth"], doc["maxHeight"]
    assert isinstance(max_width, int)
    assert isinstance(max_height, int)
    assert max(max_width, max_height) <= limits.max_size
    scale_cap = 1.0 if longest_allowed is None else longest_allowed / max(full)
    sizes = doc["sizes"]
    assert isinstance(sizes, list)
    assert sizes
    for size in sizes:
        width, height = size["width"], size["height"]
        assert width <= max_width
        assert height <= max_height
        assert width * height <= doc["maxArea"]
        syntax = iiif.parse("full", f"{width},{height}", "0", "default.jpg")
        wanted = iiif.resolve(syntax, full, limits, scale_cap)
        assert wanted.view.size == (width, height)
        if longest_allowed is not None:
            assert iiif.policy_size(wanted.view) <= longest_allowed


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@given(
    full=st.tuples(st.integers(1, 6000), st.integers(1, 6000)),
    cap=st.integers(1, 6000),
    data=st.data(),
)
def test_no_view_within_the_cap_is_more_detailed_than_the_cap(
    full: tuple[int, int], cap: int, data: st.DataObject
) -> None:
    """Whatever the region and size, a view the policy lets through at `cap`
    has, on each axis, at most the cap's scale (or a whole side at one
    pixel); and the whole image at the cap's scale (info.json's maxWidth and
    maxHeight) always passes."""
    width, height = full
    rw = data.draw(st.integers(1, width))
    rh = data.draw(st.integers(1, height))
    ow = data.draw(st.integers(1, 4 * rw))
    oh = data.draw(st.integers(1, 4 * rh))
    view = iiif.View(full=full, region=(0, 0, rw, rh), size=(ow, oh))
    allowed = cap / max(full)
    if iiif.policy_size(view) <= cap:
        for out, region, side in ((ow, rw, width), (oh, rh, height)):
            # A whole side at one pixel is the least it can be rendered at.
            assert (out, region) == (1, side) or out / region <= allowed + 1e-9
    if cap < max(full):
        fitted = (
            max(1, math.floor(width * allowed)),
            max(1, math.floor(height * allowed)),
        )
        whole = iiif.View(full=full, region=(0, 0, width, height), size=fitted)
        assert iiif.policy_size(whole) <= cap
