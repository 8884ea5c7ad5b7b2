"""Planning a render from sizes alone: budgets, decode hints, dpr, error pointers."""

from __future__ import annotations

import pytest

from transforms import (
    DEFAULT_BASE_CHAIN,
    Delivery,
    Limits,
    OutputTooLargeError,
    parse_render_base,
    parse_transformations,
)
from transforms.render import Encoder, RenderChain, plan

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"
LIMITS = Limits()
NO_BASE: tuple[tuple[()], Delivery] = ((), Delivery())
# A 4096x4096 canvas, then overlays that each widen it by 4096 pixels.
OVER_BUDGET = [{"crop": "scale", "width": 4096, "height": 4096}] + [
    {"overlay": A, "crop": "scale", "width": 4096, "height": 4096, "x": 4096 * (i + 1)}
    for i in range(8)
]


def chain(steps: object, base: str | None = None) -> RenderChain:
    parsed = parse_render_base(base, LIMITS) if base else NO_BASE
    return RenderChain.build(parsed, parse_transformations(steps))


def test_output_budget_is_enforced_on_the_plan() -> None:
    """A chain that would grow a 4096x4096 canvas sixteen times is refused unrendered."""
    with pytest.raises(OutputTooLargeError) as caught:
        plan(chain(OVER_BUDGET), (10, 10), {A: (10, 10)}, LIMITS, alpha_output=False)
    assert caught.value.pointer == "/transformations/1"


def test_over_budget_token_step_is_named_by_its_own_index_after_a_base_chain() -> None:
    """The base chain's steps come first, but the pointer names the token's step."""
    c = chain(OVER_BUDGET, DEFAULT_BASE_CHAIN)
    with pytest.raises(OutputTooLargeError) as caught:
        plan(c, (10, 10), {A: (10, 10)}, LIMITS, alpha_output=False)
    assert caught.value.pointer == "/transformations/1"
    assert caught.value.parameter is None


def test_over_budget_base_chain_step_names_the_base_chain() -> None:
    c = chain([], "c_scale,h_200,w_200")
    with pytest.raises(OutputTooLargeError) as caught:
        plan(c, (10, 10), {}, Limits(max_output_pixels=100), alpha_output=False)
    assert caught.value.parameter == "base_chain"
    assert caught.value.pointer is None


def test_over_budget_overlay_is_refused_before_its_placement() -> None:
    steps = [{"overlay": A, "crop": "scale", "width": 20, "height": 20}]
    with pytest.raises(OutputTooLargeError) as caught:
        plan(
            chain(steps),
            (5, 5),
            {A: (5, 5)},
            Limits(max_output_pixels=399),
            alpha_output=False,
        )
    assert caught.value.pointer == "/transformations/0"


@pytest.mark.parametrize(
    ("steps", "hints"),
    [
        pytest.param(
            [{"crop": "fit", "width": 400}], {"": (400, 267)}, id="resize-then-output"
        ),
        pytest.param(
            [{"crop": "fit", "width": 400}, {"crop": "fit", "width": 100}],
            {"": (100, 67)},
            id="consecutive-resizes-need-the-last",
        ),
        pytest.param(
            [{"crop": "fit", "width": 400}, {"angle": 30}, {"width": 100}],
            {"": (400, 267)},
            id="an-edit-needs-pixels-at-its-size",
        ),
        pytest.param(
            [{"overlay": A, "crop": "fit", "width": 30}],
            {"": (3000, 2000), A: (30, 20)},
            id="overlay-needed-at-its-placed-size",
        ),
        pytest.param(
            [{"overlay": A, "width": 30}, {"overlay": A, "width": 60}],
            {"": (3000, 2000), A: None},
            id="overlay-used-twice-gets-no-hint",
        ),
    ],
)
def test_plan_hints_the_size_each_source_is_first_needed_at(
    steps: object, hints: dict[str, tuple[int, int] | None]
) -> None:
    p = plan(chain(steps), (3000, 2000), {A: (300, 200)}, LIMITS, alpha_output=False)
    assert dict(p.hints) == hints


def test_plan_of_an_overlay_grows_the_canvas_r21() -> None:
    """R17, R21: the worked example's sizes, planned without pixels."""
    steps = [
        {"crop": "fit", "width": 800},
        {"overlay": A, "crop": "fit", "width": 800, "x": 800},
        {"overlay": B, "crop": "fit", "width": 800, "x": 1200},
    ]
    p = plan(
        chain(steps),
        (1000, 750),
        {A: (600, 900), B: (800, 400)},
        LIMITS,
        alpha_output=False,
    )
    assert p.size == (2400, 1200)


def test_a_fill_whose_cover_is_over_the_source_budget_is_refused_unrendered() -> None:
    """A 1x4000 image filled to 4096x1 would be covered at 4096x16384000 first."""
    with pytest.raises(OutputTooLargeError) as caught:
        plan(
            chain([{"width": 1}, {"crop": "fill", "width": 4096, "height": 1}]),
            (1, 4000),
            {},
            LIMITS,
            alpha_output=False,
        )
    assert caught.value.pointer == "/transformations/1"
    assert caught.value.detail == (
        "step 1 makes a 4096x16384000 image; at most 50000000 pixels are rendered"
    )


def test_an_overlay_thumb_whose_cover_is_over_the_source_budget_is_refused() -> None:
    steps = [{"overlay": A, "crop": "thumb", "width": 1, "height": 4096}]
    with pytest.raises(OutputTooLargeError) as caught:
        plan(chain(steps), (10, 10), {A: (8000, 1)}, LIMITS, alpha_output=False)
    assert caught.value.pointer == "/transformations/0"


def test_a_fill_whose_cover_is_within_the_source_budget_is_planned() -> None:
    # 3000x2000 covers 4096x4096 at 6144x4096: more than the output budget (25
    # Mpx) but within the source budget (50 Mpx), as any large source is.
    steps = [{"crop": "fill", "width": 4096, "height": 4096}]
    p = plan(chain(steps), (3000, 2000), {}, LIMITS, alpha_output=False)
    assert p.size == (4096, 4096)
    assert p.hints == {"": (6144, 4096)}


def test_an_output_of_exactly_the_budget_is_planned() -> None:
    p = plan(chain([{"crop": "scale", "width": 10, "height": 10}]), (5, 5), {},
             Limits(max_output_pixels=100), alpha_output=False)  # fmt: skip
    assert p.size == (10, 10)


def test_an_over_budget_base_chain_step_says_so() -> None:
    c = chain([], "c_scale,h_11,w_10")
    with pytest.raises(OutputTooLargeError) as caught:
        plan(c, (10, 10), {}, Limits(max_output_pixels=100), alpha_output=False)
    assert caught.value.detail == (
        "base chain step 0 makes a 10x11 image; at most 100 pixels are rendered"
    )


WEBP = Encoder(name="WebP", max_side=16383)
JPEG = Encoder(name="JPEG", max_side=65500)


@pytest.mark.parametrize(
    ("steps", "base_chain", "encoder", "pointer", "detail"),
    [
        pytest.param(
            [{"width": 1, "height": 2000}, {"crop": "fit", "width": 100}],
            None,
            JPEG,
            "/transformations/1",
            "step 1 makes a 100x200000 image; JPEG holds at most 65500 pixels a side",
            id="20-megapixels-100x200000",
        ),
        pytest.param(
            [
                {"crop": "scale", "width": 10, "height": 10},
                {"overlay": A, "crop": "scale", "width": 10, "height": 10, "x": 20000},
            ],
            None,
            WEBP,
            "/transformations/1",
            "step 1 makes a 20010x10 image; WebP holds at most 16383 pixels a side",
            id="an-overlay-grows-the-canvas",
        ),
        pytest.param(
            [
                {"width": 1, "height": 2000},
                {"crop": "fit", "width": 100},
                {"effect": "grayscale"},
            ],
            None,
            JPEG,
            "/transformations/1",
            "step 1 makes a 100x200000 image",
            id="the-step-that-made-the-side-not-the-last",
        ),
        pytest.param(
            [{"effect": "grayscale"}],
            "c_scale,h_2000,w_1/c_fit,w_100",
            JPEG,
            None,
            "base chain step 1 makes a 100x200000 image",
            id="the-base-chain",
        ),
    ],
)
def test_an_output_longer_than_its_encoder_writes_is_refused(
    steps: object,
    base_chain: str | None,
    encoder: Encoder,
    pointer: str | None,
    detail: str,
) -> None:
    c = chain(steps, base_chain)
    with pytest.raises(OutputTooLargeError) as caught:
        plan(c, (1200, 800), {A: (100, 100)}, LIMITS, alpha_output=False,
             encoder=encoder)  # fmt: skip
    assert caught.value.pointer == pointer
    assert caught.value.parameter == (None if pointer else "base_chain")
    assert detail in caught.value.detail


def test_a_source_longer_than_the_encoder_writes_is_refused_without_a_step() -> None:
    with pytest.raises(OutputTooLargeError) as caught:
        plan(chain([]), (20000, 10), {}, LIMITS, alpha_output=False, encoder=WEBP)
    assert caught.value.detail == (
        "the image is 20000x10 pixels; WebP holds at most 16383 pixels a side"
    )
    assert (caught.value.pointer, caught.value.parameter) == (None, None)


@pytest.mark.parametrize(
    "size",
    [pytest.param((16383, 10), id="wide"), pytest.param((10, 16383), id="tall")],
)
def test_an_output_of_exactly_the_encoders_side_is_planned(
    size: tuple[int, int],
) -> None:
    p = plan(chain([]), size, {}, LIMITS, alpha_output=False, encoder=WEBP)
    assert p.size == size


def test_without_an_encoder_only_the_pixel_budget_is_checked() -> None:
    """The size policy plans for the longest side, whatever the format."""
    p = plan(chain([]), (20000, 10), {}, LIMITS, alpha_output=False)
    assert p.size == (20000, 10)
