"""The operator's base chain, in Cloudinary URL syntax, checked and parsed without the SDK.

It is prepended to every token's steps. For redirects it is passed to Cloudinary
as raw components; for local rendering it is parsed into the same typed steps as
a token's, through the same strict parser, plus the delivery-only options that
change no pixels (`fl_attachment`, `f_`, `q_`, `dpr_`: R22-R24 of the geometry
notes).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from transforms.claims import parse_step
from transforms.errors import InvalidTransformError
from transforms.limits import Limits
from transforms.model import Adjust, Overlay, Step

__all__ = [
    "DEFAULT_BASE_CHAIN",
    "Delivery",
    "parse_base_chain",
    "parse_render_base",
]

DEFAULT_BASE_CHAIN: Final = "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto"

# A base chain comes from the operator's configuration, never from a token, but it
# is still held to Cloudinary's plain `key_value` grammar: no layers, no fetch.
_BASE_PARAM: Final = re.compile(r"(?!l_|u_|fetch)[a-z]{1,3}_[a-z0-9_.]{1,32}")

# Cloudinary's short keys for the options a rendered base chain may hold.
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


def parse_base_chain(chain: str) -> tuple[str, ...]:
    """Validate an operator's base chain (`c_fit,w_1920/fl_attachment`) into components."""
    if not chain:
        return ()
    components = tuple(chain.split("/"))
    for component in components:
        params = component.split(",")
        if not all(_BASE_PARAM.fullmatch(p) for p in params):
            raise InvalidTransformError(
                f"invalid base chain component {component!r}", parameter="base_chain"
            )
    return components


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """How the result is delivered; none of it changes pixels (dpr aside)."""

    attachment: bool = False
    format: str | None = None  # "auto", an extension, or None: the image's own
    quality: int | None = None  # None: automatic (the gateway's default)
    dpr: float = 1.0  # dpr_auto is 1.0 without client hints


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
            match parse_step(options, limits, f"/base_chain/{index}"):
                case Adjust() as step:
                    steps.append(step)
                case Overlay():  # pragma: no cover - no l_ passes the grammar
                    raise InvalidTransformError(
                        "no overlays in a base chain", parameter="base_chain"
                    )
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
