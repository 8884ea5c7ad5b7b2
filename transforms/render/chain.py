"""The chain to render: the operator's base steps, then a token's, at the delivery's dpr."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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
            chain = tuple(_scaled(step, delivery.dpr) for step in chain)
        return cls(steps=chain, delivery=delivery, token_start=len(steps))


def _scaled(step: Step, dpr: float) -> Step:
    """R24: `dpr_N` multiplies the pixel dimensions of the transformation."""

    def offset(value: int | None) -> int | None:
        return None if value is None else int(value * dpr)

    match step:
        case Adjust(resize=resize):
            return dataclasses.replace(step, resize=_scaled_resize(resize, dpr))
        case Overlay(resize=resize, placement=Placement(x=x, y=y)):
            placement = dataclasses.replace(step.placement, x=offset(x), y=offset(y))
            return dataclasses.replace(
                step, resize=_scaled_resize(resize, dpr), placement=placement
            )


def _scaled_resize(resize: Resize | None, dpr: float) -> Resize | None:
    def size(value: int | None) -> int | None:
        return None if value is None else max(1, int(value * dpr + 0.5))

    match resize:
        case None:
            return None
        case Crop(width=w, height=h, x=x, y=y):
            return dataclasses.replace(
                resize,
                width=size(w),
                height=size(h),
                x=None if x is None else int(x * dpr),
                y=None if y is None else int(y * dpr),
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
