"""The token claim: strict parsing into the model, pointers, limits, canonical form."""

from __future__ import annotations

import json

import pytest

from transforms import (
    Adjust,
    Bitonal,
    Color,
    Crop,
    Fit,
    Gravity,
    Grayscale,
    InvalidTransformError,
    Limits,
    LPad,
    Mirror,
    Negate,
    Opacity,
    Overlay,
    Pad,
    Placement,
    Rotate,
    Size,
    Thumb,
    TooManyOverlaysError,
    TooManyStepsError,
    Transformation,
    dump_transformations,
    json_int,
    parse_transformations,
)
from transforms.claims import _parse_remembered

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"
SEED = [
    {"crop": "fit", "width": 800},
    {"overlay": A, "crop": "fit", "width": 800, "x": 800},
    {"overlay": B, "crop": "fit", "width": 800, "x": 1200},
]


def test_seed_steps_parse_into_typed_steps() -> None:
    t = parse_transformations(SEED)
    assert t.steps == (
        Adjust(resize=Fit(width=800)),
        Overlay(image=A, resize=Fit(width=800), placement=Placement(x=800)),
        Overlay(image=B, resize=Fit(width=800), placement=Placement(x=1200)),
    )
    assert dict(t.overlay_steps) == {A: 1, B: 2}


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(SEED, id="seed"),
        pytest.param([], id="empty"),
        pytest.param(
            [
                {
                    "crop": "pad",
                    "width": 10,
                    "height": 20,
                    "gravity": "south_east",
                    "background": "#ff000080",
                    "opacity": 50,
                    "angle": 90,
                    "effect": "grayscale",
                }
            ],
            id="every-option",
        ),
        pytest.param(
            [{"crop": "crop", "width": 5, "x": -3, "y": 0}], id="crop-offsets"
        ),
        pytest.param([{"overlay": A, "gravity": "north", "y": -10}], id="overlay-only"),
        pytest.param(
            [
                {"crop": mode, "width": 3, "height": 4}
                for mode in ("scale", "fit", "limit", "fill", "lfill", "thumb", "lpad")
            ],
            id="every-crop-mode",
        ),
        pytest.param(
            [
                {"overlay": A, "crop": "crop", "width": 5, "gravity": "east", "x": 2},
                {"overlay": B, "crop": "lpad", "height": 5, "background": "black"},
                {"overlay": B, "effect": "negate", "angle": -90, "opacity": 0},
            ],
            id="overlay-resizes-and-edits",
        ),
    ],
)
def test_canonical_json_round_trips(doc: list[dict[str, object]]) -> None:
    t = parse_transformations(doc)
    assert parse_transformations(dump_transformations(t)) == t
    assert all(list(step) == sorted(step) for step in dump_transformations(t))


def test_canonical_form_omits_unset_options_and_normalises() -> None:
    t = parse_transformations([{"width": 8, "overlay": A.upper()}])
    assert dump_transformations(t) == [{"overlay": A, "width": 8}]


@pytest.mark.parametrize(
    ("doc", "step"),
    [
        pytest.param({"width": 8}, Adjust(resize=Size(width=8)), id="size-no-crop"),
        pytest.param(
            {"crop": "crop", "height": 5, "x": 1, "gravity": "south"},
            Adjust(resize=Crop(height=5, x=1, gravity=Gravity.SOUTH)),
            id="crop-region",
        ),
        pytest.param(
            {"crop": "pad", "width": 2, "background": "white"},
            Adjust(resize=Pad(width=2, background=Color((255, 255, 255, 255)))),
            id="pad-background",
        ),
        pytest.param(
            {"opacity": 40, "effect": "grayscale", "angle": 30},
            Adjust(edits=(Rotate(angle=30), Grayscale(), Opacity(percent=40))),
            id="edits-in-order",
        ),
        pytest.param(
            {"angle": "hflip", "effect": "blackwhite"},
            Adjust(edits=(Mirror(), Bitonal())),
            id="mirror-and-bitonal",
        ),
        pytest.param(
            {"overlay": A, "crop": "crop", "width": 5, "gravity": "east", "x": 2},
            Overlay(
                image=A,
                resize=Crop(width=5),
                placement=Placement(gravity=Gravity.EAST, x=2),
            ),
            id="overlay-gravity-and-offsets-are-placement",
        ),
        pytest.param(
            {"overlay": A, "effect": "negate"},
            Overlay(image=A, edits=(Negate(),)),
            id="overlay-edit",
        ),
        pytest.param(
            {"crop": "thumb", "width": 3, "gravity": "west"},
            Adjust(resize=Thumb(width=3, gravity=Gravity.WEST)),
            id="thumb-gravity",
        ),
        pytest.param(
            {"crop": "lpad", "height": 3, "gravity": "south", "background": "black"},
            Adjust(
                resize=LPad(
                    height=3,
                    gravity=Gravity.SOUTH,
                    background=Color((0, 0, 0, 255)),
                )
            ),
            id="lpad-gravity-background",
        ),
        pytest.param(
            {"overlay": A, "crop": "pad", "width": 5, "background": "#ff0000"},
            Overlay(image=A, resize=Pad(width=5, background=Color((255, 0, 0, 255)))),
            id="overlay-pad-background",
        ),
    ],
)
def test_step_parses_into_its_operation_classes(
    doc: dict[str, object], step: Adjust | Overlay
) -> None:
    assert parse_transformations([doc]).steps == (step,)


def test_canonical_form_is_plain_json() -> None:
    doc = [{"crop": "fill", "gravity": "north", "height": 2, "width": 2}]
    dumped = dump_transformations(parse_transformations(doc))
    assert json.loads(json.dumps(dumped)) == doc
    assert type(dumped[0]["crop"]) is str
    assert type(dumped[0]["gravity"]) is str


@pytest.mark.parametrize(
    ("value", "number"),
    [
        pytest.param(7, 7, id="int"),
        pytest.param(-1, -1, id="negative"),
        pytest.param(True, None, id="bool-is-not-int"),
        pytest.param(7.0, None, id="float"),
        pytest.param("7", None, id="string"),
        pytest.param(None, None, id="null"),
    ],
)
def test_json_int_accepts_only_integers(value: object, number: int | None) -> None:
    assert json_int(value) == number


def test_equal_transformations_hash_alike() -> None:
    reordered = [{k: step[k] for k in reversed(list(step))} for step in SEED]
    first, second = parse_transformations(SEED), parse_transformations(reordered)
    assert first == second
    assert hash(first) == hash(second)


@pytest.mark.parametrize(
    ("doc", "pointer"),
    [
        pytest.param({"crop": "fit"}, "/transformations", id="not-a-list"),
        pytest.param(["fit"], "/transformations/0", id="step-not-an-object"),
        pytest.param([{}], "/transformations/0", id="empty-step"),
        pytest.param([{"bogus": 1}], "/transformations/0/bogus", id="unknown-key"),
        pytest.param(
            [{"a/b~c": 1}], "/transformations/0/a~1b~0c", id="unknown-key-escaped"
        ),
        pytest.param(
            [{"width": True}], "/transformations/0/width", id="bool-is-not-int"
        ),
        pytest.param([{"width": 8.5}], "/transformations/0/width", id="float-width"),
        pytest.param([{"width": "800"}], "/transformations/0/width", id="string-width"),
        pytest.param([{"width": 0}], "/transformations/0/width", id="zero-width"),
        pytest.param(
            [{"width": 4097}], "/transformations/0/width", id="width-over-max"
        ),
        pytest.param(
            [{"height": -1}], "/transformations/0/height", id="negative-height"
        ),
        pytest.param(
            [{"crop": "stretch", "width": 1}], "/transformations/0/crop", id="crop"
        ),
        pytest.param(
            [{"crop": "fit"}], "/transformations/0/crop", id="crop-without-size"
        ),
        pytest.param(
            [{"crop": "fit,l_fetch:aHR0cA", "width": 1}],
            "/transformations/0/crop",
            id="crop-smuggles-a-fetch-layer",
        ),
        pytest.param(
            [{"crop": "fill", "width": 1, "gravity": "center/fl_x"}],
            "/transformations/0/gravity",
            id="gravity-smuggles-a-component",
        ),
        pytest.param(
            [{"crop": "fit", "width": 1, "gravity": "north"}],
            "/transformations/0/gravity",
            id="gravity-without-region-crop",
        ),
        pytest.param(
            [{"width": 1, "x": 5}], "/transformations/0/x", id="x-without-crop"
        ),
        pytest.param(
            [{"crop": "fill", "width": 1, "y": 5}],
            "/transformations/0/y",
            id="y-on-fill",
        ),
        pytest.param(
            [{"overlay": A, "x": 32769}], "/transformations/0/x", id="offset-over-max"
        ),
        pytest.param(
            [{"overlay": "fetch:http://evil"}],
            "/transformations/0/overlay",
            id="overlay-not-an-id",
        ),
        pytest.param(
            [{"overlay": "3bc669b21d8e"}],
            "/transformations/0/overlay",
            id="overlay-public-id",
        ),
        pytest.param([{"overlay": 7}], "/transformations/0/overlay", id="overlay-int"),
        pytest.param(
            [{"crop": "pad", "width": 1, "background": "rgb:ff0000"}],
            "/transformations/0/background",
            id="background-raw-cloudinary",
        ),
        pytest.param(
            [{"crop": "fit", "width": 1, "background": "white"}],
            "/transformations/0/background",
            id="background-without-pad",
        ),
        pytest.param([{"opacity": 101}], "/transformations/0/opacity", id="opacity"),
        pytest.param([{"angle": 361}], "/transformations/0/angle", id="angle"),
        pytest.param(
            [{"angle": "vflip"}], "/transformations/0/angle", id="angle-other-word"
        ),
        pytest.param([{"angle": "90"}], "/transformations/0/angle", id="angle-string"),
        pytest.param(
            [{"effect": "sepia:50"}], "/transformations/0/effect", id="effect"
        ),
        pytest.param(
            [{"width": 1}, {"width": 1}, {"width": None}],
            "/transformations/2/width",
            id="points-at-the-right-step",
        ),
        # Odd JSON types where a number, a string or a list is expected.
        pytest.param(5, "/transformations", id="claim-a-number"),
        pytest.param(None, "/transformations", id="claim-null"),
        pytest.param("[]", "/transformations", id="claim-a-string"),
        pytest.param([[{"width": 1}]], "/transformations/0", id="step-a-list"),
        pytest.param([None], "/transformations/0", id="step-null"),
        pytest.param([{"width": [1]}], "/transformations/0/width", id="width-a-list"),
        pytest.param(
            [{"height": {"px": 1}}], "/transformations/0/height", id="height-an-object"
        ),
        pytest.param(
            [{"crop": ["fit"], "width": 1}], "/transformations/0/crop", id="crop-a-list"
        ),
        pytest.param(
            [{"crop": "fill", "width": 1, "gravity": 5}],
            "/transformations/0/gravity",
            id="gravity-a-number",
        ),
        pytest.param(
            [{"crop": "pad", "width": 1, "background": 255}],
            "/transformations/0/background",
            id="background-a-number",
        ),
        pytest.param(
            [{"crop": "pad", "width": 1, "background": ["white"]}],
            "/transformations/0/background",
            id="background-a-list",
        ),
        pytest.param(
            [{"overlay": [A]}], "/transformations/0/overlay", id="overlay-a-list"
        ),
        pytest.param([{"effect": None}], "/transformations/0/effect", id="effect-null"),
        pytest.param(
            [{"opacity": 50.0}], "/transformations/0/opacity", id="opacity-float"
        ),
        pytest.param([{"angle": False}], "/transformations/0/angle", id="angle-a-bool"),
        pytest.param(
            [{"overlay": A, "y": "1"}], "/transformations/0/y", id="offset-a-string"
        ),
    ],
)
def test_invalid_step_is_refused_with_pointer(doc: object, pointer: str) -> None:
    with pytest.raises(InvalidTransformError) as caught:
        parse_transformations(doc)
    assert caught.value.pointer == pointer


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        pytest.param(1, True, id="bool-after-int"),
        pytest.param(2, 2.0, id="float-after-int"),
    ],
)
def test_a_remembered_parse_never_serves_another_type(good: int, bad: object) -> None:
    parse_transformations([{"width": good}])
    with pytest.raises(InvalidTransformError):
        parse_transformations([{"width": bad}])


def test_too_many_steps_is_refused() -> None:
    parse_transformations([{"width": 1}] * 16)
    with pytest.raises(TooManyStepsError) as caught:
        parse_transformations([{"width": 1}] * 17)
    assert caught.value.pointer == "/transformations"


def test_too_many_overlays_is_refused() -> None:
    parse_transformations([{"overlay": A}] * 8)
    with pytest.raises(TooManyOverlaysError):
        parse_transformations([{"overlay": A}] * 9)


def test_limits_are_configurable() -> None:
    limits = Limits(max_size=100, max_steps=2, max_overlays=1)
    parse_transformations([{"width": 100}], limits)
    with pytest.raises(InvalidTransformError):
        parse_transformations([{"width": 101}], limits)
    with pytest.raises(TooManyStepsError):
        parse_transformations([{"width": 1}] * 3, limits)
    with pytest.raises(TooManyOverlaysError):
        parse_transformations([{"overlay": A}, {"overlay": B}], limits)


# The detail of each refusal: shown to the client as the error's `detail`.

CROPS = "scale, fit, limit, fill, lfill, pad, lpad, crop, thumb"
GRAVITIES = (
    "north_west, north, north_east, west, center, east, south_west, south, south_east"
)
KEYS = "angle, background, crop, effect, gravity, height, opacity, overlay, width, x, y"


@pytest.mark.parametrize(
    ("doc", "pointer", "detail"),
    [
        pytest.param(
            {}, "", "transformations must be a list of objects", id="not-a-list"
        ),
        pytest.param(["x"], "/0", "a step must be an object", id="step-not-an-object"),
        pytest.param([{}], "/0", "a step must not be empty", id="empty-step"),
        pytest.param(
            [{"bogus": 1}],
            "/0/bogus",
            f"unknown option 'bogus'; allowed: {KEYS}",
            id="unknown-key",
        ),
        pytest.param([{"width": "1"}], "/0/width", "must be an integer", id="integer"),
        pytest.param(
            [{"width": 4097}], "/0/width", "must be between 1 and 4096", id="size"
        ),
        pytest.param(
            [{"overlay": A, "x": -32769}],
            "/0/x",
            "must be between -32768 and 32768",
            id="offset",
        ),
        pytest.param(
            [{"opacity": -1}], "/0/opacity", "must be between 0 and 100", id="opacity"
        ),
        pytest.param(
            [{"angle": -361}],
            "/0/angle",
            "must be an integer between -360 and 360, or hflip",
            id="angle",
        ),
        pytest.param(
            [{"crop": "x", "width": 1}],
            "/0/crop",
            f"must be one of: {CROPS}",
            id="crop",
        ),
        pytest.param(
            [{"overlay": A, "gravity": 1}],
            "/0/gravity",
            f"must be one of: {GRAVITIES}",
            id="gravity",
        ),
        pytest.param(
            [{"effect": "blur"}],
            "/0/effect",
            "must be one of: grayscale, negate, blackwhite",
            id="effect",
        ),
        pytest.param(
            [{"crop": "pad", "width": 1, "background": "red"}],
            "/0/background",
            "must be #rrggbb, #rrggbbaa, white, black or transparent",
            id="color",
        ),
        pytest.param(
            [{"overlay": "x"}], "/0/overlay", "must be an image id (a UUID)", id="id"
        ),
        pytest.param(
            [{"crop": "fit"}],
            "/0/crop",
            "a crop mode needs a width or a height",
            id="crop-without-size",
        ),
        pytest.param(
            [{"width": 1, "gravity": "north"}],
            "/0/gravity",
            "gravity needs crop fill, lfill, pad, lpad, crop or thumb",
            id="gravity-without-crop",
        ),
        pytest.param(
            [{"crop": "fill", "width": 1, "x": 1}],
            "/0/x",
            "x needs crop 'crop' or an overlay",
            id="x-without-crop",
        ),
        pytest.param(
            [{"crop": "fill", "width": 1, "y": 1}],
            "/0/y",
            "y needs crop 'crop' or an overlay",
            id="y-without-crop",
        ),
        pytest.param(
            [{"crop": "lfill", "width": 1, "background": "white"}],
            "/0/background",
            "background needs crop pad or lpad",
            id="background-without-pad",
        ),
        pytest.param(
            [{"width": 1}] * 17, "", "17 steps; at most 16 are allowed", id="steps"
        ),
        pytest.param(
            [{"overlay": A}] * 9, "", "9 overlays; at most 8 are allowed", id="overlays"
        ),
    ],
)
def test_each_refusal_says_what_is_wrong(
    doc: object, pointer: str, detail: str
) -> None:
    with pytest.raises(InvalidTransformError) as caught:
        parse_transformations(doc)
    assert (caught.value.pointer, caught.value.detail) == (
        "/transformations" + pointer,
        detail,
    )
    assert caught.value.parameter is None


@pytest.mark.parametrize(
    "step",
    [
        pytest.param({"width": 4096, "height": 1}, id="size-edges"),
        pytest.param(
            {"crop": "crop", "width": 1, "x": -32768, "y": 32768}, id="offsets"
        ),
        pytest.param({"opacity": 0}, id="opacity-0"),
        pytest.param({"opacity": 100}, id="opacity-100"),
        pytest.param({"angle": -360}, id="angle-minus-360"),
        pytest.param({"angle": 360}, id="angle-360"),
    ],
)
def test_values_at_their_bounds_are_accepted(step: dict[str, object]) -> None:
    (parsed,) = parse_transformations([step]).steps
    assert dump_transformations(Transformation(steps=(parsed,))) == [
        dict(sorted(step.items()))
    ]


def test_a_pointer_other_than_the_claims_prefixes_every_error() -> None:
    with pytest.raises(InvalidTransformError) as caught:
        parse_transformations([{"width": 0}], pointer="/data/steps")
    assert caught.value.pointer == "/data/steps/0/width"


# Parses of flat claims are remembered (each test starts with an empty memo).


def memo_size() -> int:
    return _parse_remembered.cache_info().currsize


def test_a_flat_claim_is_parsed_once() -> None:
    first = parse_transformations(SEED)
    assert parse_transformations([dict(step) for step in SEED]) == first
    info = _parse_remembered.cache_info()
    assert (info.currsize, info.hits) == (1, 1)


def test_another_claim_is_remembered_apart() -> None:
    parse_transformations([{"width": 2}])
    parse_transformations([{"width": 1}])
    assert memo_size() == 2


def test_other_limits_or_pointer_are_remembered_apart() -> None:
    parse_transformations([{"width": 2}])
    parse_transformations([{"width": 2}], Limits(max_size=10))
    parse_transformations([{"width": 2}], pointer="/steps")
    assert memo_size() == 3


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"width": 1}, id="not-a-list"),
        pytest.param(({"width": 1},), id="a-tuple"),
        pytest.param([[("width", 1)]], id="step-not-a-dict"),
        pytest.param([{"width": 1}, {"width": [1]}], id="a-list-value"),
        pytest.param([{"width": {"px": 1}}], id="an-object-value"),
        pytest.param([{"width": None}], id="a-null-value"),
        pytest.param([{"width": 1}] * 17, id="more-steps-than-allowed"),
    ],
)
def test_a_claim_that_is_not_flat_steps_is_never_remembered(doc: object) -> None:
    with pytest.raises(InvalidTransformError):
        parse_transformations(doc)
    assert memo_size() == 0


def test_a_refused_flat_claim_is_never_remembered() -> None:
    for _ in range(2):
        with pytest.raises(InvalidTransformError):
            parse_transformations([{"width": 0}])
    assert memo_size() == 0


def test_a_claim_of_as_many_steps_as_allowed_is_remembered() -> None:
    parse_transformations([{"width": 1}] * 16)
    assert memo_size() == 1
