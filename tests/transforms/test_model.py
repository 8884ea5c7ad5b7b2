"""The model's value classes: hashable, immutable, and guarded against impossible values."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from transforms import (
    Adjust,
    Color,
    Crop,
    Fill,
    Fit,
    Gravity,
    Grayscale,
    LFill,
    Limit,
    LPad,
    Negate,
    Opacity,
    Overlay,
    Pad,
    Placement,
    Rotate,
    Scale,
    Size,
    Thumb,
    Transformation,
    normalise_image_id,
)

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"


def test_overlay_steps_name_the_first_step_using_each_image() -> None:
    t = Transformation(
        steps=(
            Adjust(resize=Fit(width=8)),
            Overlay(image=A),
            Overlay(image=B),
            Overlay(image=A),
        )
    )
    assert dict(t.overlay_steps) == {A: 1, B: 2}


def test_equal_transformations_are_equal_and_hash_alike() -> None:
    first = Transformation(steps=(Adjust(resize=Scale(width=2, height=3)),))
    second = Transformation(steps=(Adjust(resize=Scale(height=3, width=2)),))
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_same_options_in_another_mode_differ() -> None:
    assert Adjust(resize=Fit(width=2)) != Adjust(resize=Scale(width=2))
    assert Adjust(resize=Size(width=2)) != Adjust(resize=Scale(width=2))


def test_steps_are_immutable() -> None:
    step = Adjust(resize=Fit(width=2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.resize = None  # type: ignore[misc]
    assert dataclasses.replace(step, resize=Fit(width=3)).resize == Fit(width=3)


EMPTY = "a resize needs a width or a height"
TOO_SMALL = "width and height are at least 1"
ORDER = "edits are at most one angle, effect and opacity, in order"
ANCHORED = "an overlay's gravity and offsets are its placement"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: Fit(), EMPTY, id="resize-without-size"),
        pytest.param(lambda: Scale(width=0), TOO_SMALL, id="zero-width"),
        pytest.param(lambda: Scale(height=0), TOO_SMALL, id="zero-height"),
        pytest.param(lambda: Fit(width=5, height=-1), TOO_SMALL, id="negative-height"),
        pytest.param(
            lambda: Opacity(percent=101), "opacity is 0 to 100", id="opacity-over-100"
        ),
        pytest.param(
            lambda: Opacity(percent=-1), "opacity is 0 to 100", id="opacity-below-0"
        ),
        pytest.param(lambda: Adjust(), "a step must not be empty", id="empty-adjust"),
        pytest.param(
            lambda: Adjust(edits=(Opacity(percent=5), Rotate(angle=1))),
            ORDER,
            id="edits-out-of-order",
        ),
        pytest.param(
            lambda: Adjust(edits=(Grayscale(), Grayscale())), ORDER, id="edit-twice"
        ),
        pytest.param(
            lambda: Adjust(edits=(Negate(), Grayscale())), ORDER, id="two-effects"
        ),
        pytest.param(
            lambda: Overlay(image=A, edits=(Opacity(percent=1), Negate())),
            ORDER,
            id="overlay-edits-out-of-order",
        ),
        pytest.param(
            lambda: Overlay(image=A.upper()),
            "an overlay's image is a lower-case UUID",
            id="overlay-id-not-canonical",
        ),
        pytest.param(
            lambda: Overlay(image="3bc669b21d8e"),
            "an overlay's image is a lower-case UUID",
            id="overlay-id-not-a-uuid",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Fill(width=2, gravity=Gravity.NORTH)),
            ANCHORED,
            id="overlay-fill-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=LFill(width=2, gravity=Gravity.NORTH)),
            ANCHORED,
            id="overlay-lfill-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Thumb(width=2, gravity=Gravity.NORTH)),
            ANCHORED,
            id="overlay-thumb-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Pad(width=2, gravity=Gravity.NORTH)),
            ANCHORED,
            id="overlay-pad-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=LPad(width=2, gravity=Gravity.NORTH)),
            ANCHORED,
            id="overlay-lpad-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Crop(width=2, x=1)),
            ANCHORED,
            id="overlay-crop-with-its-own-x",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Crop(width=2, y=0)),
            ANCHORED,
            id="overlay-crop-with-its-own-y",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Crop(width=2, gravity=Gravity.WEST)),
            ANCHORED,
            id="overlay-crop-with-its-own-gravity",
        ),
    ],
)
def test_impossible_values_are_refused(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Scale(width=1), id="width-1"),
        pytest.param(lambda: Scale(height=1), id="height-1"),
        pytest.param(lambda: Opacity(percent=0), id="opacity-0"),
        pytest.param(lambda: Opacity(percent=100), id="opacity-100"),
        pytest.param(
            lambda: Adjust(edits=(Rotate(angle=1), Negate(), Opacity(percent=5))),
            id="one-edit-of-each-kind-in-order",
        ),
        pytest.param(lambda: Adjust(edits=(Opacity(percent=5),)), id="edits-only"),
        pytest.param(lambda: Adjust(resize=Fit(width=1)), id="resize-only"),
        pytest.param(
            lambda: Overlay(image=A, resize=Crop(width=2)), id="overlay-plain-crop"
        ),
        *(
            pytest.param(lambda r=r: Overlay(image=A, resize=r), id=type(r).__name__)
            for r in (
                Size(width=2),
                Scale(width=2),
                Fit(width=2),
                Limit(width=2),
                Fill(width=2),
                LFill(width=2),
                Thumb(width=2),
                Pad(width=2),
                LPad(width=2),
            )
        ),
    ],
)
def test_possible_values_at_the_edges_are_made(make: Callable[[], object]) -> None:
    made = make()
    assert made == make()


def test_overlay_placement_is_separate_from_its_resize() -> None:
    step = Overlay(
        image=A, resize=Crop(width=2), placement=Placement(gravity=Gravity.EAST, x=1)
    )
    assert step.resize == Crop(width=2)
    assert step.placement.gravity is Gravity.EAST


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        pytest.param("white", (255, 255, 255, 255), id="white"),
        pytest.param("transparent", (0, 0, 0, 0), id="transparent"),
        pytest.param("#FF8000", (255, 128, 0, 255), id="hex"),
        pytest.param("#ff800080", (255, 128, 0, 128), id="hex-alpha"),
    ],
)
def test_colors_parse_from_names_and_hex(
    text: str, rgba: tuple[int, int, int, int]
) -> None:
    color = Color.parse(text)
    assert color is not None
    assert color.rgba == rgba


@pytest.mark.parametrize(
    "text",
    ["red", "#ff800", "#ff80000", "#ff8000800", "#gg8000", "ff8000", "#ff8000\n", ""],
)
def test_other_color_text_is_not_a_color(text: str) -> None:
    assert Color.parse(text) is None


@pytest.mark.parametrize(
    ("rgba", "text"),
    [
        pytest.param((255, 128, 0, 255), "#ff8000", id="opaque-has-no-alpha"),
        pytest.param((255, 128, 0, 254), "#ff8000fe", id="alpha"),
        pytest.param((0, 1, 2, 0), "#00010200", id="clear"),
    ],
)
def test_a_color_writes_its_shortest_hex(
    rgba: tuple[int, int, int, int], text: str
) -> None:
    color = Color(rgba)
    assert color.to_json() == text
    assert color.hex == text[1:]
    assert Color.parse(text) == color


def test_gravity_names_are_cloudinarys() -> None:
    assert [g.value for g in Gravity][:3] == ["north_west", "north", "north_east"]


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        pytest.param(A.upper(), A, id="upper-case"),
        pytest.param(A, A, id="canonical"),
        pytest.param("3bc669b21d8e", None, id="public-id"),
        pytest.param(A + "0", None, id="too-long"),
    ],
)
def test_image_ids_normalise_to_lower_case_uuids(
    value: str, normal: str | None
) -> None:
    assert normalise_image_id(value) == normal


def test_different_transformations_hash_apart() -> None:
    made = [
        Transformation(),
        Transformation(steps=(Adjust(resize=Fit(width=2)),)),
        Transformation(steps=(Adjust(resize=Fit(width=3)),)),
        Transformation(steps=(Overlay(image=A),)),
    ]
    assert len({hash(t) for t in made}) == len(made)
