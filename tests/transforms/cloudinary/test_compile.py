"""Compiling to Cloudinary: golden URLs, signed by the official SDK."""

from __future__ import annotations

import base64
import hashlib

import cloudinary
import pytest

from transforms import (
    DEFAULT_BASE_CHAIN,
    Adjust,
    Grayscale,
    Negate,
    Opacity,
    Overlay,
    Placement,
    Rotate,
    Size,
    Transformation,
    parse_base_chain,
    parse_transformations,
)
from transforms.cloudinary import CloudinaryAccount, CloudinaryAsset
from transforms.cloudinary.compile import to_cloudinary_url

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"
ACCOUNT = CloudinaryAccount(cloud_name="sadaasdasd", api_key="1", api_secret="secret")
ASSET = CloudinaryAsset(public_id="f7332109c6c5", version=123123, format="jpg")
LAYERS = {
    A: CloudinaryAsset(public_id="3bc669b21d8e"),
    B: CloudinaryAsset(public_id="e199b75435bf"),
}
SEED = [
    {"crop": "fit", "width": 800},
    {"overlay": A, "crop": "fit", "width": 800, "x": 800},
    {"overlay": B, "crop": "fit", "width": 800, "x": 1200},
]
# Seed 004's Location, after its `http://example.org/assets/blank.jpg#` artifact.
SEED_PATH = (
    "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto/c_fit,w_800/"
    "c_fit,l_authenticated:3bc669b21d8e,w_800,x_800/"
    "c_fit,l_authenticated:e199b75435bf,w_800,x_1200/v123123/f7332109c6c5.jpg"
)


def signature(path: str, secret: str) -> str:
    """Cloudinary's documented URL signature: base64url(sha1(path + secret))[:8]."""
    digest = hashlib.sha1((path + secret).encode()).digest()  # noqa: S324 - Cloudinary's scheme
    return base64.urlsafe_b64encode(digest).decode()[:8]


def url(doc: object, **kwargs: object) -> str:
    """The URL of a claim (or of a model built in code), default base chain first."""
    base_chain = parse_base_chain(str(kwargs.pop("base_chain", DEFAULT_BASE_CHAIN)))
    asset = kwargs.pop("asset", ASSET)
    assert isinstance(asset, CloudinaryAsset)
    t = doc if isinstance(doc, Transformation) else parse_transformations(doc)
    return to_cloudinary_url(
        t,
        asset=asset,
        overlays=LAYERS,
        account=ACCOUNT,
        base_chain=base_chain,
    )


def test_seed_url_is_reproduced_to_the_byte() -> None:
    # The SDK signs the transformation and the public id with its format, not the version.
    sig = signature(SEED_PATH.replace("/v123123/", "/"), "secret")
    expected = f"https://res.cloudinary.com/sadaasdasd/image/authenticated/s--{sig}--/{SEED_PATH}"
    assert url(SEED) == expected


def test_signature_depends_on_the_api_secret() -> None:
    other = CloudinaryAccount(cloud_name="sadaasdasd", api_key="1", api_secret="x")
    t = parse_transformations(SEED)
    first = to_cloudinary_url(t, asset=ASSET, overlays=LAYERS, account=ACCOUNT)
    second = to_cloudinary_url(t, asset=ASSET, overlays=LAYERS, account=other)
    assert first != second


@pytest.mark.parametrize(
    ("doc", "component"),
    [
        pytest.param(
            [{"crop": "fill", "width": 10, "height": 20, "gravity": "north_east"}],
            "c_fill,g_north_east,h_20,w_10",
            id="fill-gravity",
        ),
        pytest.param(
            [{"crop": "pad", "width": 10, "background": "#ff0000"}],
            "b_rgb:ff0000,c_pad,w_10",
            id="pad-background",
        ),
        pytest.param(
            [{"overlay": A, "opacity": 50, "angle": 90, "effect": "grayscale", "y": 0}],
            "a_90,e_grayscale,l_authenticated:3bc669b21d8e,o_50,y_0",
            id="overlay-effects",
        ),
        pytest.param(
            [{"crop": "crop", "width": 5, "height": 6, "x": -3, "y": 4}],
            "c_crop,h_6,w_5,x_-3,y_4",
            id="crop-offsets",
        ),
        pytest.param(
            [{"crop": "crop", "width": 5, "gravity": "north", "x": 1}],
            "c_crop,g_north,w_5,x_1",
            id="crop-gravity",
        ),
        pytest.param([{"width": 800}], "w_800", id="size-has-no-crop-mode"),
        pytest.param(
            [{"crop": "scale", "width": 8, "height": 9}],
            "c_scale,h_9,w_8",
            id="scale",
        ),
        pytest.param([{"crop": "limit", "height": 9}], "c_limit,h_9", id="limit"),
        pytest.param(
            [{"crop": "lfill", "width": 8, "gravity": "south"}],
            "c_lfill,g_south,w_8",
            id="lfill-gravity",
        ),
        pytest.param(
            [{"crop": "thumb", "width": 8, "height": 8}], "c_thumb,h_8,w_8", id="thumb"
        ),
        pytest.param(
            [{"crop": "lpad", "width": 8, "background": "#00ff0080"}],
            "b_rgb:00ff0080,c_lpad,w_8",
            id="lpad-background-alpha",
        ),
        pytest.param(
            [{"effect": "negate", "angle": -45, "opacity": 0}],
            "a_-45,e_negate,o_0",
            id="edits",
        ),
        pytest.param(
            [{"angle": "hflip", "effect": "blackwhite"}],
            "a_hflip,e_blackwhite",
            id="mirror-bitonal",
        ),
        pytest.param(
            [
                {
                    "overlay": A,
                    "crop": "fill",
                    "width": 4,
                    "height": 4,
                    "gravity": "south_west",
                    "x": 2,
                }
            ],
            "c_fill,g_south_west,h_4,l_authenticated:3bc669b21d8e,w_4,x_2",
            id="overlay-fill-placement",
        ),
    ],
)
def test_step_compiles_to_one_golden_component(doc: object, component: str) -> None:
    assert f"/{component}/" in url(doc, base_chain="")


def test_model_built_in_code_compiles_like_its_claim() -> None:
    built = Transformation(
        steps=(
            Adjust(resize=Size(width=8), edits=(Rotate(angle=90), Grayscale())),
            Overlay(
                image=A,
                edits=(Negate(), Opacity(percent=50)),
                placement=Placement(y=0),
            ),
        )
    )
    claim = [
        {"width": 8, "angle": 90, "effect": "grayscale"},
        {"overlay": A, "effect": "negate", "opacity": 50, "y": 0},
    ]
    assert url(built) == url(claim)


def test_upload_type_overlay_has_no_type_prefix() -> None:
    layers = {A: CloudinaryAsset(public_id="folder/pic", delivery_type="upload")}
    compiled = to_cloudinary_url(
        parse_transformations([{"overlay": A}]),
        asset=ASSET,
        overlays=layers,
        account=ACCOUNT,
    )
    assert "/l_folder:pic/" in compiled


def test_no_base_chain_and_no_steps_is_the_plain_signed_asset() -> None:
    sig = signature("f7332109c6c5.jpg", "secret")
    assert url([], base_chain="") == (
        "https://res.cloudinary.com/sadaasdasd/image/authenticated/"
        f"s--{sig}--/v123123/f7332109c6c5.jpg"
    )


def golden(host: str, path: str, *, delivery_type: str = "authenticated") -> str:
    """A URL signed as Cloudinary documents it; `path` has no version (unsigned)."""
    sig = signature(path, "secret")
    return f"https://{host}/image/{delivery_type}/s--{sig}--/{path}"


def compile_w8(asset: CloudinaryAsset, account: CloudinaryAccount = ACCOUNT) -> str:
    t = parse_transformations([{"width": 8}])
    return to_cloudinary_url(t, asset=asset, overlays={}, account=account)


PIC = CloudinaryAsset(public_id="pic", format="jpg")


@pytest.mark.parametrize(
    ("distribution", "private_cdn", "host"),
    [
        pytest.param(None, False, "res.cloudinary.com/sadaasdasd", id="shared-cdn"),
        pytest.param(
            "img.example.com", False, "img.example.com/sadaasdasd", id="own-host"
        ),
        pytest.param(None, True, "sadaasdasd-res.cloudinary.com", id="private-cdn"),
        pytest.param(
            "img.example.com", True, "img.example.com", id="private-cdn-own-host"
        ),
    ],
)
def test_the_accounts_distribution_sets_the_host(
    distribution: str | None, private_cdn: bool, host: str
) -> None:
    account = CloudinaryAccount(
        cloud_name="sadaasdasd",
        api_key="1",
        api_secret="secret",
        secure_distribution=distribution,
        private_cdn=private_cdn,
    )
    assert compile_w8(PIC, account) == golden(host, "w_8/pic.jpg")


@pytest.mark.parametrize(
    ("asset", "path"),
    [
        pytest.param(
            CloudinaryAsset(public_id="folder/pic", format="jpg"),
            "w_8/folder/pic.jpg",
            id="in-a-folder-no-v1",
        ),
        pytest.param(CloudinaryAsset(public_id="pic"), "w_8/pic", id="no-format"),
        pytest.param(
            CloudinaryAsset(public_id="pic", format="png", delivery_type="private"),
            "w_8/pic.png",
            id="private",
        ),
    ],
)
def test_an_unversioned_asset_has_no_version_component(
    asset: CloudinaryAsset, path: str
) -> None:
    # The SDK would add `v1/` to a public id with a folder (its `force_version`).
    host = "res.cloudinary.com/sadaasdasd"
    assert compile_w8(asset) == golden(host, path, delivery_type=asset.delivery_type)


def test_a_versioned_asset_has_its_version_outside_the_signature() -> None:
    asset = CloudinaryAsset(public_id="folder/pic", version=5)
    sig = signature("w_8/folder/pic", "secret")
    assert compile_w8(asset) == (
        "https://res.cloudinary.com/sadaasdasd/image/authenticated/"
        f"s--{sig}--/w_8/v5/folder/pic"
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("secure_cdn_subdomain", True, id="host-res-3"),
        pytest.param("cdn_subdomain", True, id="host-res-3-via-cdn-subdomain"),
        pytest.param("auth_token", {"key": "abcd", "duration": 300}, id="no-signature"),
        pytest.param("shorten", True, id="iu-path"),
        pytest.param("use_root_path", True, id="root-path"),
        pytest.param("use_fetch_format", True, id="f-component"),
        pytest.param("dpr", 2.0, id="dpr-in-every-component"),
        pytest.param("responsive_width", True, id="sdk-recursion"),
        pytest.param("private_cdn", True, id="host-private-cdn"),
        pytest.param("secure_distribution", "evil.example", id="host-elsewhere"),
        pytest.param("secure", False, id="plain-http"),
        pytest.param("force_version", True, id="v1-for-a-folder"),
        pytest.param("sign_url", False, id="unsigned"),
        pytest.param("signature_algorithm", "sha256", id="sha256-signature"),
        pytest.param("long_url_signature", True, id="32-character-signature"),
        pytest.param("api_secret", "other-secret", id="another-secret"),
        pytest.param("cloud_name", "other-cloud", id="another-cloud"),
    ],
)
def test_url_ignores_the_sdks_global_config(
    option: str, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK reads CLOUDINARY_URL's query into a global config at import and used
    to fall back to it: `?secure_cdn_subdomain=true` moved the host, `auth_token`
    replaced the signature with a query token, `responsive_width` recursed forever."""
    asset = CloudinaryAsset(
        public_id="folder/pic", delivery_type="upload", format="jpg"
    )
    t = parse_transformations([{"width": 8}])
    monkeypatch.setitem(vars(cloudinary.config()), option, value)
    compiled = to_cloudinary_url(t, asset=asset, overlays={}, account=ACCOUNT)
    assert compiled == golden(
        "res.cloudinary.com/sadaasdasd", "w_8/folder/pic.jpg", delivery_type="upload"
    )
