"""The transformation model: strict parsing, pointers, limits, canonical form."""

from __future__ import annotations

import pytest

from transforms import (
    Adjust,
    Color,
    CropMode,
    Gravity,
    InvalidTransformError,
    Limits,
    Overlay,
    TooManyOverlaysError,
    TooManyStepsError,
    Transformation,
)

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"
SEED = [
    {"crop": "fit", "width": 800},
    {"overlay": A, "crop": "fit", "width": 800, "x": 800},
    {"overlay": B, "crop": "fit", "width": 800, "x": 1200},
]


def test_seed_steps_parse_into_typed_steps() -> None:
    t = Transformation.from_json(SEED)
    assert t.steps == (
        Adjust(crop=CropMode.FIT, width=800),
        Overlay(image=A, crop=CropMode.FIT, width=800, x=800),
        Overlay(image=B, crop=CropMode.FIT, width=800, x=1200),
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
    ],
)
def test_canonical_json_round_trips(doc: list[dict[str, object]]) -> None:
    t = Transformation.from_json(doc)
    assert Transformation.from_json(t.to_json()) == t
    assert all(list(step) == sorted(step) for step in t.to_json())


def test_canonical_form_omits_unset_options_and_normalises() -> None:
    t = Transformation.from_json([{"width": 8, "overlay": A.upper()}])
    assert t.to_json() == [{"overlay": A, "width": 8}]


def test_equal_transformations_hash_alike() -> None:
    reordered = [{k: step[k] for k in reversed(list(step))} for step in SEED]
    first, second = Transformation.from_json(SEED), Transformation.from_json(reordered)
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
            [{"effect": "sepia:50"}], "/transformations/0/effect", id="effect"
        ),
        pytest.param(
            [{"width": 1}, {"width": 1}, {"width": None}],
            "/transformations/2/width",
            id="points-at-the-right-step",
        ),
    ],
)
def test_invalid_step_is_refused_with_pointer(doc: object, pointer: str) -> None:
    with pytest.raises(InvalidTransformError) as caught:
        Transformation.from_json(doc)
    assert caught.value.pointer == pointer


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        pytest.param(1, True, id="bool-after-int"),
        pytest.param(2, 2.0, id="float-after-int"),
    ],
)
def test_a_remembered_parse_never_serves_another_type(good: int, bad: object) -> None:
    Transformation.from_json([{"width": good}])
    with pytest.raises(InvalidTransformError):
        Transformation.from_json([{"width": bad}])


def test_too_many_steps_is_refused() -> None:
    Transformation.from_json([{"width": 1}] * 16)
    with pytest.raises(TooManyStepsError) as caught:
        Transformation.from_json([{"width": 1}] * 17)
    assert caught.value.pointer == "/transformations"


def test_too_many_overlays_is_refused() -> None:
    Transformation.from_json([{"overlay": A}] * 8)
    with pytest.raises(TooManyOverlaysError):
        Transformation.from_json([{"overlay": A}] * 9)


def test_limits_are_configurable() -> None:
    limits = Limits(max_size=100, max_steps=2, max_overlays=1)
    Transformation.from_json([{"width": 100}], limits)
    with pytest.raises(InvalidTransformError):
        Transformation.from_json([{"width": 101}], limits)
    with pytest.raises(TooManyStepsError):
        Transformation.from_json([{"width": 1}] * 3, limits)
    with pytest.raises(TooManyOverlaysError):
        Transformation.from_json([{"overlay": A}, {"overlay": B}], limits)


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        pytest.param("white", (255, 255, 255, 255), id="white"),
        pytest.param("transparent", (0, 0, 0, 0), id="transparent"),
        pytest.param("#FF8000", (255, 128, 0, 255), id="hex"),
        pytest.param("#ff800080", (255, 128, 0, 128), id="hex-alpha"),
    ],
)
def test_colors_parse(text: str, rgba: tuple[int, int, int, int]) -> None:
    color = Color.parse(text)
    assert color is not None
    assert color.rgba == rgba


def test_gravity_names_are_cloudinarys() -> None:
    assert [g.value for g in Gravity][:3] == ["north_west", "north", "north_east"]
