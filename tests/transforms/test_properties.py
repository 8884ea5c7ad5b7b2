"""Properties of the pure `transforms` package, on generated claims, chains and sizes.

The strategies build claims the way a token carries them (flat JSON steps), valid
ones from the parser's own rules and near-valid ones from its real keys with odd
values, so that every error path and every compiler branch is reached.
"""

from __future__ import annotations

import json
import re
import string
from typing import Final, TypeAlias

import cloudinary
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from transforms import (
    DEFAULT_BASE_CHAIN,
    Adjust,
    CropMode,
    Delivery,
    Effect,
    Gravity,
    InvalidTransformError,
    LimitExceededError,
    Limits,
    Overlay,
    Step,
    Transformation,
    dump_transformations,
    parse_base_chain,
    parse_render_base,
    parse_transformations,
)
from transforms.cloudinary import (
    DELIVERY_TYPES,
    FORMATS,
    CloudinaryAccount,
    CloudinaryAsset,
)
from transforms.cloudinary.compile import to_cloudinary_url
from transforms.render import Plan, RenderChain, plan
from transforms.render.pillow import Decoded, _source, compose
from transforms.render.plan import walk

# Bounded so that the file stays fast; no example database is written.
EXAMPLES: Final = settings(max_examples=200, deadline=None, database=None)
LIMITS: Final = Limits()
KEYS: Final = (
    "angle",
    "background",
    "crop",
    "effect",
    "gravity",
    "height",
    "opacity",
    "overlay",
    "width",
    "x",
    "y",
)
GRAVITY_CROPS: Final = frozenset(CropMode) - {
    CropMode.SCALE,
    CropMode.FIT,
    CropMode.LIMIT,
}
PAD_CROPS: Final = frozenset({CropMode.PAD, CropMode.LPAD})
Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None
Doc: TypeAlias = list[dict[str, object]]

# --- Strategies ------------------------------------------------------------------

uuids = st.uuids().map(str)
# The parser lower-cases an image id; upper case must parse to the same model.
image_ids = st.one_of(uuids, uuids.map(str.upper))
hex_colors = st.builds(
    lambda digits: "#" + digits,
    st.text("0123456789abcdefABCDEF", min_size=6, max_size=6)
    | st.text("0123456789abcdefABCDEF", min_size=8, max_size=8),
)
colors = st.sampled_from(["white", "black", "transparent"]) | hex_colors
huge_ints = st.integers(min_value=2**63 - 2, max_value=2**70) | st.integers(
    min_value=-(2**70), max_value=-(2**63)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_like: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
# Values a real key might be given: right type and wrong range, wrong type, right
# words in the wrong place, numbers that are equal to ints but are not ints.
odd_values: st.SearchStrategy[Json] = st.one_of(
    st.sampled_from(
        [m.value for m in CropMode]
        + [g.value for g in Gravity]
        + [e.value for e in Effect]
        + ["white", "#ff000080", "#FFF", "#gggggg", "FIT", " fit", "fit\n", ""]
    ),
    st.sampled_from(
        [0, 1, -1, 100, 101, 360, 361, -361, 4096, 4097, 32768, 32769, -32769]
    ),
    st.sampled_from([1.0, 0.5, -0.0, float("nan"), float("inf"), True, False, None]),
    image_ids,
    hex_colors,
    huge_ints,
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(KEYS), st.integers(), max_size=2),
)
near_steps = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=6), odd_values, max_size=6
)


@st.composite
def valid_steps(
    draw: st.DrawFn, limits: Limits = LIMITS, *, overlay: bool | None = None
) -> dict[str, object]:
    """One flat step that the parser accepts under `limits`."""
    sizes = st.integers(min_value=1, max_value=limits.max_size)
    offsets = st.integers(min_value=-limits.max_offset, max_value=limits.max_offset)
    is_overlay = draw(st.booleans()) if overlay is None else overlay
    crop = draw(st.none() | st.sampled_from(CropMode))
    step: dict[str, object] = {}
    if crop is not None:
        step["crop"] = crop.value
    sides = draw(st.sampled_from(["width", "height", "both", "neither"]))
    if sides == "neither" and crop is not None:  # a crop mode needs a side
        sides = "width"
    if sides in {"width", "both"}:
        step["width"] = draw(sizes)
    if sides in {"height", "both"}:
        step["height"] = draw(sizes)
    if (is_overlay or crop in GRAVITY_CROPS) and draw(st.booleans()):
        step["gravity"] = draw(st.sampled_from(Gravity)).value
    if is_overlay or crop is CropMode.CROP:
        for axis in ("x", "y"):
            if draw(st.booleans()):
                step[axis] = draw(offsets)
    if crop in PAD_CROPS and draw(st.booleans()):
        step["background"] = draw(colors)
    if draw(st.booleans()):
        step["angle"] = draw(
            st.integers(min_value=-360, max_value=360) | st.just("hflip")
        )
    if draw(st.booleans()):
        step["effect"] = draw(st.sampled_from(Effect)).value
    if draw(st.booleans()):
        step["opacity"] = draw(st.integers(min_value=0, max_value=100))
    if is_overlay:
        step["overlay"] = draw(image_ids)
    if not step:
        step["width"] = draw(sizes)
    return draw(st.permutations(list(step.items())).map(dict))


@st.composite
def valid_docs(draw: st.DrawFn, limits: Limits = LIMITS) -> Doc:
    """A claim the parser accepts: at most `max_steps` steps, `max_overlays` overlays."""
    doc = draw(st.lists(valid_steps(limits), max_size=limits.max_steps))
    assume(sum("overlay" in step for step in doc) <= limits.max_overlays)
    return doc


# --- Helpers ---------------------------------------------------------------------


def resolve(document: object, pointer: str) -> object:
    """The value an RFC 6901 JSON pointer names; KeyError/IndexError if none."""
    assert pointer.startswith("/"), pointer
    node = document
    for token in pointer[1:].split("/"):
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            assert key.isdigit(), pointer
            node = node[int(key)]
        else:
            assert isinstance(node, dict), pointer
            node = node[key]
    return node


def outcome(doc: object) -> Transformation | tuple[type, str, str | None]:
    """The parse of `doc`, or the error it raises as comparable values."""
    try:
        return parse_transformations(doc, LIMITS)
    except InvalidTransformError as error:
        return type(error), error.detail, error.pointer


class Unremembered(list[object]):
    """A claim list the parser does not memoise (`_memo_key` takes plain lists)."""


# --- 1. The claims parser --------------------------------------------------------


def check_claim(doc: object) -> None:
    result = outcome(doc)
    event("parsed" if isinstance(result, Transformation) else result[0].__name__)
    if not isinstance(result, Transformation):
        _, _, pointer = result
        assert pointer is not None
        assert pointer == "/transformations" or pointer.startswith("/transformations/")
        resolve({"transformations": doc}, pointer)  # points at what is there
    # A remembered parse (or failure) is the parse of the same claim unremembered.
    if isinstance(doc, list):
        assert outcome(Unremembered(doc)) == result


@EXAMPLES
@given(json_like)
def test_any_json_claim_parses_or_is_invalid_with_a_pointer(doc: Json) -> None:
    """Any JSON value either parses or raises `InvalidTransformError` whose pointer
    is under `/transformations` and names a value present in the claim."""
    check_claim(doc)


@EXAMPLES
@given(
    st.lists(
        near_steps
        | valid_steps()
        | st.builds(lambda s, v: {**s, **v}, valid_steps(), near_steps),
        max_size=LIMITS.max_steps + 2,
    )
    | st.lists(  # too many overlays, and the step count around its limit
        valid_steps(overlay=True),
        min_size=LIMITS.max_overlays,
        max_size=LIMITS.max_steps + 1,
    )
)
def test_near_valid_claim_parses_or_is_invalid_with_a_pointer(doc: Doc) -> None:
    """Steps made of the real keys with odd values (bools, floats, NaN, huge ints,
    out-of-range numbers, misplaced options) only ever raise `InvalidTransformError`
    with a pointer to the offending value, and the memoised parse agrees with a
    fresh one (a bool or a float never reuses an int's parse)."""
    check_claim(doc)


# --- 2. Round trip ---------------------------------------------------------------


@EXAMPLES
@given(valid_docs())
def test_valid_claim_round_trips_through_its_canonical_dump(doc: Doc) -> None:
    """parse(dump(t)) == t, the dump is canonical (dump(parse(dump(t))) == dump(t)),
    JSON-serialisable, with sorted keys."""
    t = parse_transformations(doc, LIMITS)
    dumped = dump_transformations(t)
    assert json.loads(json.dumps(dumped, allow_nan=False)) == dumped
    assert all(list(step) == sorted(step) for step in dumped)
    again = parse_transformations(dumped, LIMITS)
    assert again == t
    assert hash(again) == hash(t)
    assert dump_transformations(again) == dumped


# --- 3. Compiled URLs ------------------------------------------------------------

CLOUD_NAME: Final = r"[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?"
HOSTNAME: Final = rf"{CLOUD_NAME}(?:\.{CLOUD_NAME}){{1,3}}"
PUBLIC_ID: Final = r"[A-Za-z0-9_-]{1,12}(?:/[A-Za-z0-9_-]{1,12}){0,2}"
PARAM: Final = re.compile(r"[a-z]{1,3}_[^,/\s?#]+")
BASE_CHAINS: Final = (DEFAULT_BASE_CHAIN, "", "c_fit,w_100", "e_grayscale/q_auto")

accounts = st.builds(
    CloudinaryAccount,
    cloud_name=st.from_regex(CLOUD_NAME, fullmatch=True),
    api_key=st.from_regex(r"[0-9]{1,15}", fullmatch=True),
    api_secret=st.text(
        string.ascii_letters + string.digits + "-_", min_size=1, max_size=27
    ),
    secure_distribution=st.none()
    | st.just("res.cloudinary.com")
    | st.from_regex(HOSTNAME, fullmatch=True),
    private_cdn=st.booleans(),
)
assets = st.builds(
    CloudinaryAsset,
    public_id=st.from_regex(PUBLIC_ID, fullmatch=True),
    version=st.none() | st.integers(min_value=1, max_value=2**40),
    format=st.none() | st.sampled_from(sorted(FORMATS)),
    delivery_type=st.sampled_from(sorted(DELIVERY_TYPES)),
)


def expected_prefix(account: CloudinaryAccount) -> str:
    """The SDK's https prefix: the shared host (and cloud), the private CDN host,
    or the configured secure distribution (followed by the cloud unless private)."""
    host = account.secure_distribution
    if host is None:
        private = f"{account.cloud_name}-res.cloudinary.com"
        host = private if account.private_cdn else "res.cloudinary.com"
    shared = not account.private_cdn or host == "res.cloudinary.com"
    return f"https://{host}/" + (f"{account.cloud_name}/" if shared else "")


@EXAMPLES
@given(
    valid_docs(),
    accounts,
    assets,
    st.data(),
    st.sampled_from(BASE_CHAINS),
)
def test_compiled_url_stays_on_the_host_with_one_component_per_step(
    doc: Doc,
    account: CloudinaryAccount,
    asset: CloudinaryAsset,
    data: st.DataObject,
    base: str,
) -> None:
    """The URL starts with https:// and the account's host, has no whitespace, query
    or fragment, and is exactly: image/<type>/<signature>, the base chain's
    components, one component per step (with one `key_value` parameter per option
    of the canonical claim), the version if any, then the public id."""
    t = parse_transformations(doc, LIMITS)
    layers = {
        image: data.draw(assets, label=f"overlay {image}") for image in t.overlay_steps
    }
    base_chain = parse_base_chain(base)
    url = to_cloudinary_url(
        t, asset=asset, overlays=layers, account=account, base_chain=base_chain
    )
    prefix = expected_prefix(account)
    assert url.startswith(prefix), (url, prefix)
    assert not any(c.isspace() for c in url)
    assert "?" not in url
    assert "#" not in url
    parts = url.removeprefix(prefix).split("/")
    version = [] if asset.version is None else [f"v{asset.version}"]
    public_id = asset.public_id + ("" if asset.format is None else f".{asset.format}")
    tail = version + public_id.split("/")
    head = ["image", asset.delivery_type]
    assert parts[:2] == head
    assert re.fullmatch(r"s--[A-Za-z0-9_-]{8}--", parts[2]), parts[2]
    assert len(parts) == 3 + len(base_chain) + len(t.steps) + len(tail)
    assert tuple(parts[3 : 3 + len(base_chain)]) == base_chain
    assert parts[len(parts) - len(tail) :] == tail
    steps = parts[3 + len(base_chain) : len(parts) - len(tail)]
    for component, claim in zip(steps, dump_transformations(t), strict=True):
        params = component.split(",")
        assert all(PARAM.fullmatch(p) for p in params), component
        assert len(params) == len(claim), (component, claim)


# Options the SDK takes from its process-global config (CLOUDINARY_URL's query,
# which the gateway's own parser ignores) unless a call passes them explicitly.
sdk_configs = st.fixed_dictionaries(
    {},
    optional={
        "cdn_subdomain": st.booleans(),
        "secure_cdn_subdomain": st.booleans(),
        "shorten": st.booleans(),
        "use_root_path": st.booleans(),
        "auth_token": st.just({"key": "abcd", "duration": 300}),
        "dpr": st.sampled_from(["auto", 2.0]),
        "responsive_width": st.booleans(),
        "use_fetch_format": st.booleans(),
        "force_version": st.booleans(),
        "long_url_signature": st.booleans(),
        "signature_algorithm": st.just("sha256"),
        "secure": st.booleans(),
        "cname": st.just("evil.example"),
        "secure_distribution": st.just("evil.example"),
        "private_cdn": st.booleans(),
        "cloud_name": st.just("evil"),
        "api_secret": st.just("evil"),
    },
)


@EXAMPLES
@given(valid_docs(), accounts, assets, sdk_configs)
def test_compiled_url_ignores_the_sdks_global_config(
    doc: Doc,
    account: CloudinaryAccount,
    asset: CloudinaryAsset,
    config: dict[str, object],
) -> None:
    """Whatever the SDK's global config holds (it reads CLOUDINARY_URL at import),
    the URL is the same: it depends on the account and the asset alone."""
    t = parse_transformations(doc, LIMITS)
    layers = dict.fromkeys(t.overlay_steps, CloudinaryAsset(public_id="layer"))
    base_chain = parse_base_chain(DEFAULT_BASE_CHAIN)

    def compile_url() -> str:
        return to_cloudinary_url(
            t, asset=asset, overlays=layers, account=account, base_chain=base_chain
        )

    expected = compile_url()
    settings_ = cloudinary.config()
    saved = dict(vars(settings_))
    try:
        cloudinary.config(**config)
        assert compile_url() == expected
    finally:
        vars(settings_).clear()
        vars(settings_).update(saved)


# --- 4. Planned geometry ---------------------------------------------------------


@st.composite
def render_limits(draw: st.DrawFn) -> Limits:
    """Limits from tiny to the defaults, so that both answers of `plan` are common."""
    return Limits(
        max_size=draw(st.sampled_from([64, 1024, 4096])),
        max_output_pixels=draw(st.sampled_from([10_000, 1_000_000, 25_000_000])),
        max_source_pixels=draw(st.sampled_from([100_000, 50_000_000])),
    )


@st.composite
def source_sizes(draw: st.DrawFn, limits: Limits) -> tuple[int, int]:
    """A source of at most `max_source_pixels`."""
    width = draw(
        st.integers(min_value=1, max_value=min(20_000, limits.max_source_pixels))
    )
    most = max(1, min(20_000, limits.max_source_pixels // width))
    return width, draw(st.integers(min_value=1, max_value=most))


@st.composite
def render_bases(draw: st.DrawFn, limits: Limits) -> tuple[tuple[Step, ...], Delivery]:
    """An operator's base chain: a few adjust steps and a dpr."""
    steps = draw(st.lists(valid_steps(limits, overlay=False), max_size=3))
    parsed = parse_transformations(steps, limits, pointer="/base_chain").steps
    dpr = draw(st.sampled_from([1.0, 0.1, 0.5, 2.0, 4.0]) | st.floats(0.1, 4.0))
    return parsed, Delivery(dpr=dpr)


@EXAMPLES
@given(
    render_limits().flatmap(
        lambda limits: st.tuples(
            st.just(limits),
            render_bases(limits),
            valid_docs(limits),
            source_sizes(limits),
            st.data(),
            st.booleans(),
        )
    )
)
def test_plan_is_within_budget_or_refused_and_deterministic(
    case: tuple[
        Limits,
        tuple[tuple[Step, ...], Delivery],
        Doc,
        tuple[int, int],
        st.DataObject,
        bool,
    ],
) -> None:
    """`plan` either refuses with a `LimitExceededError` naming a token step or the
    base chain, or returns a size with both sides at least 1 and at most
    `max_output_pixels` pixels (whenever the chain has a step: see below); the
    same inputs always give the same plan."""
    limits, base, doc, size, data, alpha = case
    t = parse_transformations(doc, limits)
    overlays = {
        image: data.draw(source_sizes(limits), label=f"overlay {image}")
        for image in t.overlay_steps
    }
    chain = RenderChain.build(base, t)

    def run() -> Plan | tuple[type, str, str | None, str | None]:
        try:
            return plan(chain, size, overlays, limits, alpha_output=alpha)
        except LimitExceededError as error:
            return type(error), error.detail, error.pointer, error.parameter

    first = run()
    event("planned" if isinstance(first, Plan) else "refused")
    assert run() == first
    if not isinstance(first, Plan):
        _, _, pointer, parameter = first
        if parameter is not None:
            assert (pointer, parameter) == (None, "base_chain")
        else:
            assert pointer is not None
            resolve({"transformations": doc}, pointer)
        return
    width, height = first.size
    assert width >= 1
    assert height >= 1
    if chain.steps:
        assert width * height <= limits.max_output_pixels
    else:
        # Known gap, left to a decision: with no step at all (an empty or
        # delivery-only base chain and `[]`), nothing checks the budget and a
        # 6000x6000 source plans as 36M pixels, while `[{"angle": 0}]` on it is
        # refused. Pinned here so that a change to either is noticed.
        assert first.size == size
    assert set(first.hints) <= {"", *t.overlay_steps}


# --- 5. The base chain -----------------------------------------------------------

BASE_KEYS: Final = (
    "c", "w", "h", "g", "x", "y", "o", "a", "e", "b", "l", "u", "fl", "f", "q",
    "dpr", "fetch", "zz",
)  # fmt: skip
BASE_VALUES: Final = (
    "auto", "fit", "pad", "north", "grayscale", "negate", "attachment", "jpg",
    "nan", "inf", "1e5", "1_0", "0.05", "0.1", "4", "4.5", "0", "100", "101",
    "4097", "1", "_", ".", "1.5",
)  # fmt: skip
base_params = st.builds(
    lambda key, value: f"{key}_{value}",
    st.sampled_from(BASE_KEYS),
    st.sampled_from(BASE_VALUES) | st.from_regex(r"[a-z0-9_.\-:]{0,6}", fullmatch=True),
)
# Steps the renderer can read from a base chain (it has no `b_` and no `-`).
RENDER_KEYS: Final = {
    "c": "crop",
    "w": "width",
    "h": "height",
    "g": "gravity",
    "x": "x",
    "y": "y",
    "o": "opacity",
    "a": "angle",
    "e": "effect",
}
SHORT_KEYS: Final = {v: k for k, v in RENDER_KEYS.items()}
rendered_steps = valid_steps(overlay=False).map(
    lambda step: {
        k: abs(v) if isinstance(v, int) else v
        for k, v in step.items()
        if k != "background"
    }
)
base_texts = st.one_of(
    st.lists(rendered_steps, min_size=1, max_size=3).map(
        lambda steps: (
            "/".join(
                ",".join(f"{SHORT_KEYS[k]}_{v}" for k, v in step.items())
                for step in steps
            )
            + "/fl_attachment/dpr_auto,q_auto,f_auto"
        )
    ),
    st.text(max_size=40),
    st.text("cwhgxyoaeflqdpr_0123456789.,/-: ", max_size=40),
    st.lists(
        st.lists(base_params, min_size=1, max_size=4).map(",".join), max_size=4
    ).map("/".join),
)


@EXAMPLES
@given(base_texts)
def test_base_chain_parses_or_is_invalid(text: str) -> None:
    """`parse_base_chain` and `parse_render_base` raise only `InvalidTransformError`;
    what they accept is Cloudinary's plain grammar, adjust steps and a sane delivery."""
    components: tuple[str, ...] | None
    try:
        components = parse_base_chain(text)
    except InvalidTransformError:
        components = None
    if components is not None:
        assert "/".join(components) == text
    try:
        steps, delivery = parse_render_base(text, LIMITS)
    except InvalidTransformError:
        event("render base invalid")
        return
    event(f"render base parsed, {len(steps)} steps")
    assert components is not None  # the renderer's grammar is no wider
    # One step per component with pixel options; delivery options make none.
    assert len(steps) == sum(
        any(p.partition("_")[0] in RENDER_KEYS for p in component.split(","))
        for component in components
    )
    assert all(isinstance(step, Adjust) for step in steps)
    assert not any(isinstance(step, Overlay) for step in steps)
    assert 0.1 <= delivery.dpr <= 4.0
    assert delivery.quality is None or 1 <= delivery.quality <= 100
    assert delivery.format in {None, "auto", "jpg", "png", "webp", "avif"}


# --- 6. Opacity known while rendering ---------------------------------------------

NO_BASE: Final[tuple[tuple[()], Delivery]] = ((), Delivery())
TINY: Final = Limits(max_size=64, max_output_pixels=10_000, max_source_pixels=4096)


@st.composite
def tiny_sources(draw: st.DrawFn) -> Image.Image:
    """A small solid source: RGB (no alpha), or RGBA opaque or not."""
    size = (draw(st.integers(1, 64)), draw(st.integers(1, 64)))
    rgb = draw(st.tuples(*[st.integers(0, 255)] * 3))
    alpha = draw(st.sampled_from([None, None, 255, 0]) | st.integers(0, 255))
    if alpha is None:
        return Image.new("RGB", size, rgb)
    return Image.new("RGBA", size, (*rgb, alpha))


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(valid_steps(TINY), min_size=1, max_size=3).filter(
        lambda doc: sum("overlay" in step for step in doc) <= TINY.max_overlays
    ),
    tiny_sources(),
    st.data(),
    st.booleans(),
)
def test_a_render_known_opaque_has_no_transparent_pixel(
    doc: Doc, source: Image.Image, data: st.DataObject, alpha: bool
) -> None:
    """What the renderer claims opaque (and so encodes without alpha, or
    without looking for transparency before a JPEG) is opaque in every pixel;
    and an opaque render really does come out RGB."""
    t = parse_transformations(doc, TINY)
    overlays = {
        image: decoded(data.draw(tiny_sources(), label=f"overlay {image}"))
        for image in t.overlay_steps
    }
    chain = RenderChain.build(NO_BASE, t)
    base = decoded(source)
    try:
        raster = walk(chain, _source(base), lambda k: _source(overlays[k]), TINY,
                      alpha_output=alpha)  # fmt: skip
    except LimitExceededError:
        event("refused")
        return
    event("known opaque" if raster.opaque else "maybe transparent")
    pixels = raster.pixels()
    assert not raster.opaque or pixels.getchannel("A").getextrema() == (255, 255)
    out = compose(chain, base, overlays, TINY, alpha_output=alpha)
    assert out.image.mode == ("RGB" if raster.opaque else "RGBA")


def decoded(image: Image.Image) -> Decoded:
    return Decoded(image, image.size)
