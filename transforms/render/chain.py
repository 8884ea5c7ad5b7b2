"""The chain to render: the operator's base steps, then a token's, at the delivery's dpr."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from transforms.basechain import Delivery
from transforms.model import (
    Adjust,
    Crop,
    Fill,
    Fit,
    LFill,
    Limit,
    LPad,
    Overlay,
    Pad,
    Placement,
    Resize,
    Scale,
    Size,
    Step,
    Thumb,
    Transformation,
)

__all__ = ["RenderChain"]

_HALF: Final = Fraction(1, 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderChain:
    """The operator's base steps then a token's, with the delivery options.

    `token_start` is the index of the token's first step: errors name the
    token's own step, or the base chain.
    """

    steps: tuple[Step, ...]
    delivery: Delivery
    token_start: int = 0

    @classmethod
    def build(
        cls,
        base: tuple[tuple[Step, ...], Delivery],
        transformation: Transformation,
    ) -> RenderChain:
        steps, delivery = base
        chain = steps + transformation.steps
        if delivery.dpr != 1.0:
            # The DPR as written (`dpr_0.7` is 7/10), so that R11's half up
            # is exact: 45 x 0.7 in doubles is 31.499..., where 31.5 is 32.
            dpr = Fraction(str(delivery.dpr))
            chain = tuple(_scaled(step, dpr) for step in chain)
        return cls(steps=chain, delivery=delivery, token_start=len(steps))


def _scaled(step: Step, dpr: Fraction) -> Step:
    """R24: `dpr_N` multiplies the pixel dimensions of the transformation."""

    def offset(value: int | None) -> int | None:
        return None if value is None else math.trunc(value * dpr)

    match step:
        case Adjust(resize=resize):
            return dataclasses.replace(step, resize=_scaled_resize(resize, dpr))
        case Overlay(resize=resize, placement=Placement(x=x, y=y)):
            placement = dataclasses.replace(step.placement, x=offset(x), y=offset(y))
            return dataclasses.replace(
                step, resize=_scaled_resize(resize, dpr), placement=placement
            )


def _scaled_resize(resize: Resize | None, dpr: Fraction) -> Resize | None:
    def size(value: int | None) -> int | None:
        # R11: half up, at least a pixel.
        return None if value is None else max(1, math.floor(value * dpr + _HALF))

    match resize:
        case None:
            return None
        case Crop(width=w, height=h, x=x, y=y):
            return dataclasses.replace(
                resize,
                width=size(w),
                height=size(h),
                x=None if x is None else math.trunc(x * dpr),
                y=None if y is None else math.trunc(y * dpr),
            )
        case (
            Size(width=w, height=h)
            | Scale(width=w, height=h)
            | Fit(width=w, height=h)
            | Limit(width=w, height=h)
            | Fill(width=w, height=h)
            | LFill(width=w, height=h)
            | Thumb(width=w, height=h)
            | Pad(width=w, height=h)
            | LPad(width=w, height=h)
        ):
            return dataclasses.replace(resize, width=size(w), height=size(h))
