"""The chain to render: base steps then the token's, scaled by dpr (R24)."""

from __future__ import annotations

from transforms import (
    DEFAULT_BASE_CHAIN,
    Adjust,
    Crop,
    Delivery,
    Fit,
    Limits,
    Overlay,
    Placement,
    Scale,
    parse_render_base,
    parse_transformations,
)
from transforms.render import RenderChain, plan

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
LIMITS = Limits()
NO_BASE: tuple[tuple[()], Delivery] = ((), Delivery())


def chain(steps: object, base: str | None = None) -> RenderChain:
    parsed = parse_render_base(base, LIMITS) if base else NO_BASE
    return RenderChain.build(parsed, parse_transformations(steps))


def test_chain_is_the_base_steps_then_the_tokens() -> None:
    c = chain([{"crop": "fit", "width": 800}], DEFAULT_BASE_CHAIN)
    assert c.steps == (
        Adjust(resize=Fit(width=1920, height=1920)),
        Adjust(resize=Fit(width=800)),
    )
    assert c.token_start == 1
    assert c.delivery.attachment


def test_dpr_multiplies_dimensions() -> None:
    """R24: dpr_2 doubles the pixel dimensions."""
    c = RenderChain.build(
        parse_render_base("dpr_2.0", LIMITS), parse_transformations([{"width": 50}])
    )
    assert plan(c, (100, 100), {}, LIMITS, alpha_output=False).size == (100, 100)


def test_dpr_scales_sizes_and_offsets_of_every_step() -> None:
    """R24: widths, heights, crop offsets and overlay placements all scale."""
    c = chain(
        [
            {"crop": "crop", "width": 5, "x": 3, "y": -3},
            {"overlay": A, "crop": "scale", "width": 7, "height": 1, "x": 2},
        ],
        "dpr_1.5",
    )
    assert c.steps == (
        Adjust(resize=Crop(width=8, x=4, y=-4)),
        Overlay(image=A, resize=Scale(width=11, height=2), placement=Placement(x=3)),
    )
