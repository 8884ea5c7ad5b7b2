"""Delivery URLs read back: the parser is the compiler's exact inverse (hypothesis)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from tests.transforms.test_properties import (
    BASE_CHAINS,
    EXAMPLES,
    LIMITS,
    PUBLIC_ID,
    Doc,
    accounts,
    assets,
    valid_docs,
)
from transforms import (
    InvalidTransformError,
    Limits,
    Transformation,
    parse_base_chain,
    parse_transformations,
)
from transforms.cloudinary import (
    DELIVERY_TYPES,
    FORMATS,
    CloudinaryAccount,
    CloudinaryAsset,
)
from transforms.cloudinary.compile import to_cloudinary_chain, to_cloudinary_url
from transforms.cloudinary.parse import parse_chain, parse_delivery_path
from transforms.cloudinary.signature import check_signature, url_signature

SHARED = "https://res.cloudinary.com"
# Cloudinary reads these at the head of a layer as a kind or a type, not a
# folder of an `upload` public id: the parser refuses or reads them so.
AMBIGUOUS_HEADS = {"fetch", "text", "subtitles", "video", "raw", "image", "upload"}
AMBIGUOUS_HEADS |= {"youtube", "authenticated", "private"}

shared_accounts = accounts.map(
    lambda a: dataclasses.replace(a, secure_distribution=None, private_cdn=False)
)
stored_assets = st.builds(
    CloudinaryAsset,
    public_id=st.from_regex(PUBLIC_ID, fullmatch=True),
    version=st.integers(min_value=1, max_value=2**40),
    format=st.sampled_from(sorted(FORMATS)),
    delivery_type=st.sampled_from(sorted(DELIVERY_TYPES)),
)


def unambiguous(layer: CloudinaryAsset) -> bool:
    head = layer.public_id.split("/")[0]
    return head not in AMBIGUOUS_HEADS


def inverse(layers: Mapping[str, CloudinaryAsset]) -> dict[CloudinaryAsset, str]:
    """Each overlay's asset -> its image id (assets compared by type and id)."""
    return {
        dataclasses.replace(asset, version=None, format=None): image
        for image, asset in layers.items()
    }


@EXAMPLES
@given(valid_docs(), st.data(), st.sampled_from(BASE_CHAINS))
def test_compile_then_parse_gives_the_same_model(
    doc: Doc, data: st.DataObject, base: str
) -> None:
    """parse(compile(t)) == t, with each overlay's asset, for any valid claim."""
    t = parse_transformations(doc, LIMITS)
    layers = {
        image: data.draw(assets.filter(unambiguous), label=f"overlay {image}")
        for image in t.overlay_steps
    }
    ids = inverse(layers)
    assume(len(ids) == len(layers))  # distinct images, distinct assets
    base_chain = parse_base_chain(base)
    chain = to_cloudinary_chain(t, overlays=layers, base_chain=base_chain)
    parsed, found = parse_chain(
        chain, base_chain=base_chain, layer_id=ids.__getitem__, limits=LIMITS
    )
    assert parsed == t
    assert found == {image: a for a, image in ids.items()}


@EXAMPLES
@given(valid_docs(), shared_accounts, stored_assets, st.sampled_from(BASE_CHAINS))
def test_a_compiled_url_parses_into_its_parts_and_its_signature_checks(
    doc: Doc, account: CloudinaryAccount, asset: CloudinaryAsset, base: str
) -> None:
    t = parse_transformations(doc, LIMITS)
    layers = dict.fromkeys(t.overlay_steps, CloudinaryAsset(public_id="layer"))
    base_chain = parse_base_chain(base)
    url = to_cloudinary_url(
        t, asset=asset, overlays=layers, account=account, base_chain=base_chain
    )
    parsed = parse_delivery_path(url.removeprefix(SHARED))
    assert parsed is not None
    assert parsed.cloud_name == account.cloud_name
    assert (parsed.public_id, parsed.version, parsed.format) == (
        asset.public_id,
        asset.version,
        asset.format,
    )
    assert parsed.delivery_type == asset.delivery_type
    assert parsed.chain == to_cloudinary_chain(
        t, overlays=layers, base_chain=base_chain
    )
    assert parsed.signature is not None
    assert check_signature(parsed.signature, parsed.signed, account.api_secret)
    assert not check_signature(
        parsed.signature, parsed.signed, account.api_secret + "x"
    )


# Parameters as the compiler writes them, and as it never does.
params = st.one_of(
    st.sampled_from(
        ["c_fit", "c_fill", "c_pad", "c_crop", "c_sepia", "g_north", "g_auto",
         "e_grayscale", "e_negate", "e_blackwhite", "e_blur", "a_hflip", "a_vflip", "b_rgb:ffffff", "b_white",
         "b_rgb:ff000080", "fl_attachment", "q_auto", "f_auto", "l_x", "l_a:b",
         "l_authenticated:x", "l_private:x:y", "l_fetch:aHR0cA", "l_text:x",
         "w_", "w_-1", "w_0", "w_+5", "w_1_0", "x_-0", "a_-360", "o_100", "o_101"]
    ),
    st.builds(
        lambda key, n: f"{key}_{n}",
        st.sampled_from("whxyoa"),
        st.integers(min_value=-40_000, max_value=40_000) | st.sampled_from(["007", "1e3"]),
    ),
    st.text("abcwhxyoglef_:,0123456789-", max_size=10),
)  # fmt: skip
chains = st.lists(
    st.lists(params, min_size=1, max_size=5).map(",".join), max_size=4
).map("/".join)


@EXAMPLES
@given(chains)
def test_any_chain_parses_exactly_or_is_invalid(chain: str) -> None:
    """What parses is exactly what the compiler writes for the model it gives;
    everything else is an `InvalidTransformError` about the path."""
    t: Transformation | None = None
    layers: Mapping[str, CloudinaryAsset] = {}
    try:
        t, layers = parse_chain(
            chain,
            base_chain=(),
            layer_id=lambda a: str(uuid.uuid5(uuid.NAMESPACE_URL, a.public_id)),
            limits=LIMITS,
        )
    except InvalidTransformError as error:
        refused: InvalidTransformError | None = error
    else:
        refused = None
    event("parsed" if refused is None else "refused")
    if refused is not None:
        assert refused.parameter == "path"
    else:
        assert t is not None
        assert to_cloudinary_chain(t, overlays=layers) == chain


@pytest.mark.parametrize(
    "path",
    [
        "/local/image/authenticated/s--AAAAAAAA--/v1/a.jpg",
        "/local/image/upload/c_fit,w_5/v12/f/a.png",
        "/local/image/private/s--AAAAAAAA--/c_fit,w_5/e_negate/v3/a/b/c.webp",
    ],
)
def test_delivery_paths_parse(path: str) -> None:
    parsed = parse_delivery_path(path)
    assert parsed is not None
    file = f"{parsed.public_id}.{parsed.format}"
    assert path.endswith(f"/v{parsed.version}/{file}")
    assert parsed.signed == (f"{parsed.chain}/{file}" if parsed.chain else file)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/local/image/authenticated/s--AAAAAAAA--/a.jpg", id="no-version"),
        pytest.param("/local/image/authenticated/v1", id="no-file"),
        pytest.param("/local/image/authenticated/v1/a", id="no-extension"),
        pytest.param("/local/image/authenticated/v1/a.b.jpg", id="two-dots"),
        pytest.param("/local/image/authenticated/v1/../a.jpg", id="dot-dot"),
        pytest.param("/local/image/authenticated/v1//a.jpg", id="empty-segment"),
        pytest.param("/local/image/authenticated/c_fit,,w_5//v1/a.jpg", id="empty-component"),
        pytest.param("/local/image/fetch/v1/a.jpg", id="fetch"),
        pytest.param("/local/video/upload/v1/a.jpg", id="video"),
        pytest.param("/local/image/upload/v0/a.jpg", id="version-zero"),
        pytest.param("local/image/upload/v1/a.jpg", id="relative"),
    ],
)  # fmt: skip
def test_what_is_not_a_delivery_path_is_none(path: str) -> None:
    assert parse_delivery_path(path) is None


def test_signatures_are_the_sdks_short_and_long() -> None:
    import cloudinary.utils

    for long in (False, True):
        url, _ = cloudinary.utils.cloudinary_url(
            "a/b",
            format="jpg",
            version=3,
            transformation=[{"raw_transformation": "c_fit,w_5"}],
            sign_url=True,
            long_url_signature=long,
            signature_algorithm="sha1",
            cloud_name="c",
            api_secret="secret",
            secure=True,
        )
        signature = url.split("/")[6]
        assert signature == url_signature("c_fit,w_5/a/b.jpg", "secret", long=long)


def test_a_base_chain_must_lead_the_chain() -> None:
    with pytest.raises(InvalidTransformError, match="base chain"):
        parse_chain(
            "c_fit,w_5",
            base_chain=("fl_attachment",),
            layer_id=str,
            limits=Limits(),
        )
