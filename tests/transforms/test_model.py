"""The model's value classes: hashable, immutable, and guarded against impossible values."""

from __future__ import annotations

import dataclasses

import pytest

from transforms import (
    Adjust,
    Color,
    Crop,
    Fill,
    Fit,
    Gravity,
    Grayscale,
    LPad,
    Opacity,
    Overlay,
    Placement,
    Rotate,
    Scale,
    Size,
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


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Fit(), id="resize-without-size"),
        pytest.param(lambda: Scale(width=0), id="zero-width"),
        pytest.param(lambda: Opacity(percent=101), id="opacity-over-100"),
        pytest.param(lambda: Adjust(), id="empty-adjust"),
        pytest.param(
            lambda: Adjust(edits=(Opacity(percent=5), Rotate(angle=1))),
            id="edits-out-of-order",
        ),
        pytest.param(lambda: Adjust(edits=(Grayscale(), Grayscale())), id="edit-twice"),
        pytest.param(lambda: Overlay(image=A.upper()), id="overlay-id-not-canonical"),
        pytest.param(
            lambda: Overlay(image=A, resize=Fill(width=2, gravity=Gravity.NORTH)),
            id="overlay-fill-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=LPad(width=2, gravity=Gravity.NORTH)),
            id="overlay-pad-with-its-own-gravity",
        ),
        pytest.param(
            lambda: Overlay(image=A, resize=Crop(width=2, x=1)),
            id="overlay-crop-with-its-own-offset",
        ),
    ],
)
def test_impossible_values_are_refused(make: object) -> None:
    assert callable(make)
    with pytest.raises(ValueError):  # noqa: PT011 - each message differs
        make()


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
