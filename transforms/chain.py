"""The whole chain to render: the operator's base chain (Cloudinary syntax) and a token's steps.

The base chain is parsed into the same typed steps as a token's, through the
same strict parser, plus the delivery-only options that change no pixels
(`fl_attachment`, `f_`, `q_`, `dpr_`: R22-R24 of the geometry notes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from transforms.cloudinary import parse_base_chain
from transforms.errors import InvalidTransformError
from transforms.limits import Limits
from transforms.model import Overlay, Step, Transformation, parse_step

__all__ = ["Delivery", "RenderChain", "parse_render_base"]

# Cloudinary's short keys for the options a base chain may hold.
_KEYS: Final[Mapping[str, str]] = {
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
_FLAGS: Final = frozenset({"attachment"})
_FORMATS: Final = frozenset({"auto", "jpg", "png", "webp", "avif"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """How the result is delivered; none of it changes pixels (dpr aside)."""

    attachment: bool = False
    format: str | None = None  # "auto", an extension, or None: the image's own
    quality: int | None = None  # None: automatic (the gateway's default)
    dpr: float = 1.0  # dpr_auto is 1.0 without client hints


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderChain:
    steps: tuple[Step, ...]
    delivery: Delivery

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
        return cls(steps=chain, delivery=delivery)


def _scaled(step: Step, dpr: float) -> Step:
    """R24: `dpr_N` multiplies the pixel dimensions of the transformation."""

    def size(value: int | None) -> int | None:
        return None if value is None else max(1, int(value * dpr + 0.5))

    def offset(value: int | None) -> int | None:
        return None if value is None else int(value * dpr)

    return dataclasses.replace(
        step,
        width=size(step.width),
        height=size(step.height),
        x=offset(step.x),
        y=offset(step.y),
    )


def parse_render_base(chain: str, limits: Limits) -> tuple[tuple[Step, ...], Delivery]:
    """The base chain as typed steps and delivery options, or `InvalidTransformError`."""
    steps: list[Step] = []
    delivery = Delivery()
    for index, component in enumerate(parse_base_chain(chain)):
        options: dict[str, object] = {}
        for param in component.split(","):
            key, _, value = param.partition("_")
            if key in _KEYS:
                options[_KEYS[key]] = _int(value, param) if key in "whxyoa" else value
            elif key == "fl" and value in _FLAGS:
                delivery = dataclasses.replace(delivery, attachment=True)
            elif key == "f" and value in _FORMATS:
                delivery = dataclasses.replace(delivery, format=value)
            elif key == "q":
                quality = None if value == "auto" else _int(value, param)
                if quality is not None and not 1 <= quality <= 100:
                    raise InvalidTransformError(
                        f"{param!r}: quality is 1 to 100", parameter="base_chain"
                    )
                delivery = dataclasses.replace(delivery, quality=quality)
            elif key == "dpr":
                dpr = 1.0 if value == "auto" else _float(value, param)
                if not 0.1 <= dpr <= 4.0:
                    raise InvalidTransformError(
                        f"{param!r}: dpr is 0.1 to 4", parameter="base_chain"
                    )
                delivery = dataclasses.replace(delivery, dpr=dpr)
            else:
                raise InvalidTransformError(
                    f"the local renderer does not know {param!r}",
                    parameter="base_chain",
                )
        if options:
            step = parse_step(options, limits, f"/base_chain/{index}")
            if isinstance(step, Overlay):  # pragma: no cover - no l_ passes the grammar
                raise InvalidTransformError("no overlays in a base chain")
            steps.append(step)
    return tuple(steps), delivery


def _int(value: str, param: str) -> int:
    return _cast(int, value, param, "a whole number")


def _float(value: str, param: str) -> float:
    return _cast(float, value, param, "a number")


_N = TypeVar("_N", int, float)


def _cast(kind: type[_N], value: str, param: str, what: str) -> _N:
    try:
        return kind(value)
    except ValueError:
        raise InvalidTransformError(
            f"{param!r} needs {what}", parameter="base_chain"
        ) from None
