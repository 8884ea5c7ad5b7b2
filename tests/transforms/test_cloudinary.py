"""Compiling to Cloudinary: golden URLs, signed by the official SDK."""

from __future__ import annotations

import base64
import hashlib

import pytest

from transforms import (
    DEFAULT_BASE_CHAIN,
    CloudinaryAccount,
    CloudinaryAsset,
    InvalidTransformError,
    Transformation,
    parse_base_chain,
    to_cloudinary_url,
)

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
    base_chain = parse_base_chain(str(kwargs.pop("base_chain", DEFAULT_BASE_CHAIN)))
    asset = kwargs.pop("asset", ASSET)
    assert isinstance(asset, CloudinaryAsset)
    return to_cloudinary_url(
        Transformation.from_json(doc),
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
    t = Transformation.from_json(SEED)
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
    ],
)
def test_step_compiles_to_one_component(doc: object, component: str) -> None:
    assert f"/{component}/" in url(doc, base_chain="")


def test_upload_type_overlay_has_no_type_prefix() -> None:
    layers = {A: CloudinaryAsset(public_id="folder/pic", delivery_type="upload")}
    compiled = to_cloudinary_url(
        Transformation.from_json([{"overlay": A}]),
        asset=ASSET,
        overlays=layers,
        account=ACCOUNT,
    )
    assert "/l_folder:pic/" in compiled


def test_no_base_chain_and_no_steps_is_the_plain_signed_asset() -> None:
    compiled = url([], base_chain="")
    assert compiled.endswith("/image/authenticated/s--" + compiled.split("s--")[1])
    assert compiled.endswith("--/v123123/f7332109c6c5.jpg")


@pytest.mark.parametrize(
    "chain",
    [
        pytest.param("l_fetch:aHR0cA", id="layer"),
        pytest.param("c_fit,w_10/u_evil", id="underlay"),
        pytest.param("fetch_x", id="fetch"),
        pytest.param("c_fit,w_10//", id="empty-component"),
        pytest.param("c_fit:w_10", id="colon"),
    ],
)
def test_unsafe_base_chain_is_refused(chain: str) -> None:
    with pytest.raises(InvalidTransformError):
        parse_base_chain(chain)


def test_default_base_chain_is_the_seeds() -> None:
    assert parse_base_chain(DEFAULT_BASE_CHAIN) == (
        "c_fit,h_1920,w_1920",
        "fl_attachment",
        "dpr_auto,q_auto,f_auto",
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"public_id": "a,b"}, id="comma"),
        pytest.param({"public_id": "../x"}, id="dots"),
        pytest.param({"public_id": "a:b"}, id="colon"),
        pytest.param({"public_id": "x", "format": "svg"}, id="format"),
        pytest.param({"public_id": "x", "delivery_type": "fetch"}, id="fetch-type"),
        pytest.param({"public_id": "x", "version": 0}, id="version"),
    ],
)
def test_unsafe_asset_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message differs
        CloudinaryAsset(**kwargs)  # type: ignore[arg-type]
