"""The typed, immutable transformation model and its strict parser.

A token's `transformations` claim is a list of flat, Cloudinary-like components
(`{"crop": "fit", "width": 800, "overlay": "<image id>", "x": 800}`). Each becomes
an `Adjust` (edits the current canvas) or an `Overlay` (sizes another image and
places it on the canvas). Every string comes from an allow-list or a strict
pattern, so nothing in a token can inject `,` `/` `:` or a layer of its own into
a compiled Cloudinary chain.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Self, TypeAlias, TypedDict, TypeVar

from transforms.errors import (
    InvalidTransformError,
    TooManyOverlaysError,
    TooManyStepsError,
)
from transforms.limits import Limits

__all__ = [
    "Adjust",
    "Color",
    "CropMode",
    "Effect",
    "Gravity",
    "Overlay",
    "Step",
    "Transformation",
    "normalise_image_id",
    "parse_step",
]

_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_HEX_COLOR: Final = re.compile(r"#([0-9a-f]{6}|[0-9a-f]{8})", re.IGNORECASE)


def normalise_image_id(value: str) -> str | None:
    """The canonical (lower-case UUID) form of an image id, or None."""
    return value.lower() if _UUID.fullmatch(value) else None


class CropMode(StrEnum):
    SCALE = "scale"
    FIT = "fit"
    LIMIT = "limit"
    FILL = "fill"
    LFILL = "lfill"
    PAD = "pad"
    LPAD = "lpad"
    CROP = "crop"
    THUMB = "thumb"


GRAVITY_CROPS: Final = frozenset(
    {
        CropMode.FILL,
        CropMode.LFILL,
        CropMode.PAD,
        CropMode.LPAD,
        CropMode.CROP,
        CropMode.THUMB,
    }
)
PAD_CROPS: Final = frozenset({CropMode.PAD, CropMode.LPAD})


class Gravity(StrEnum):
    NORTH_WEST = "north_west"
    NORTH = "north"
    NORTH_EAST = "north_east"
    WEST = "west"
    CENTER = "center"
    EAST = "east"
    SOUTH_WEST = "south_west"
    SOUTH = "south"
    SOUTH_EAST = "south_east"


class Effect(StrEnum):
    GRAYSCALE = "grayscale"
    NEGATE = "negate"


_NAMED_COLORS: Final[Mapping[str, tuple[int, int, int, int]]] = {
    "white": (255, 255, 255, 255),
    "black": (0, 0, 0, 255),
    "transparent": (0, 0, 0, 0),
}


@dataclass(frozen=True, slots=True)
class Color:
    """An RGBA colour; written `#rrggbb`, `#rrggbbaa` or white/black/transparent."""

    rgba: tuple[int, int, int, int]

    @classmethod
    def parse(cls, text: str) -> Self | None:
        if (named := _NAMED_COLORS.get(text)) is not None:
            return cls(named)
        if not _HEX_COLOR.fullmatch(text):
            return None
        digits = text[1:].lower() + ("ff" if len(text) == 7 else "")
        r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
        return cls((r, g, b, a))

    @property
    def hex(self) -> str:
        r, g, b, a = self.rgba
        return f"{r:02x}{g:02x}{b:02x}" + ("" if a == 255 else f"{a:02x}")

    def to_json(self) -> str:
        return "#" + self.hex


@dataclass(frozen=True, slots=True, kw_only=True)
class _Component:
    crop: CropMode | None = None
    width: int | None = None
    height: int | None = None
    gravity: Gravity | None = None
    x: int | None = None
    y: int | None = None
    background: Color | None = None
    opacity: int | None = None
    angle: int | None = None
    effect: Effect | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Adjust(_Component):
    """Resize, crop or pad the current canvas, then apply its effects."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Overlay(_Component):
    """Size another image with this step's options and place it at gravity + x/y."""

    image: str


Step: TypeAlias = Adjust | Overlay


@dataclass(frozen=True, slots=True, kw_only=True)
class Transformation:
    steps: tuple[Step, ...] = ()
    # Computed once: a transformation is a cache key on every request.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self.steps))

    def __hash__(self) -> int:
        return self._hash

    @property
    def overlay_steps(self) -> Mapping[str, int]:
        """Each distinct overlay image id, with the index of the step that first uses it."""
        first: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if isinstance(step, Overlay):
                first.setdefault(step.image, index)
        return first

    @classmethod
    def from_json(
        cls,
        doc: object,
        limits: Limits = Limits(),
        *,
        pointer: str = "/transformations",
    ) -> Transformation:
        """The model of a claim, remembered for claims made of flat steps.

        Fresh tokens for one tiling carry the same claim; parsing it again was a
        third of the cost of a new token. Failures are never remembered.
        """
        key = _memo_key(doc, limits)
        if key is None:
            return _parse(doc, limits, pointer)
        return _parse_remembered(key, limits, pointer)

    def to_json(self) -> list[dict[str, object]]:
        """The canonical form: keys sorted, unset options omitted."""
        return [_step_to_json(s) for s in self.steps]


_FIELDS: Final = (
    "angle",
    "background",
    "crop",
    "effect",
    "gravity",
    "height",
    "opacity",
    "width",
    "x",
    "y",
)


def _step_to_json(step: Step) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in _FIELDS:
        value = getattr(step, name)
        if isinstance(value, Color):
            out[name] = value.to_json()
        elif value is not None:
            out[name] = str(value) if isinstance(value, StrEnum) else value
    if isinstance(step, Overlay):
        out["overlay"] = step.image
    return dict(sorted(out.items()))


def _int_in(low: int, high: int) -> Callable[[object, str, Limits], int]:
    def parse(value: object, pointer: str, limits: Limits) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidTransformError("must be an integer", pointer=pointer)
        if not low <= value <= high:
            raise InvalidTransformError(
                f"must be between {low} and {high}", pointer=pointer
            )
        return value

    return parse


def _size(value: object, pointer: str, limits: Limits) -> int:
    return _int_in(1, limits.max_size)(value, pointer, limits)


def _offset(value: object, pointer: str, limits: Limits) -> int:
    return _int_in(-limits.max_offset, limits.max_offset)(value, pointer, limits)


_E = TypeVar("_E", CropMode, Gravity, Effect)


def _choice(enum: type[_E]) -> Callable[[object, str, Limits], _E]:
    allowed = ", ".join(m.value for m in enum)

    def parse(value: object, pointer: str, limits: Limits) -> _E:
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        raise InvalidTransformError(f"must be one of: {allowed}", pointer=pointer)

    return parse


def _color(value: object, pointer: str, limits: Limits) -> Color:
    color = Color.parse(value) if isinstance(value, str) else None
    if color is None:
        raise InvalidTransformError(
            "must be #rrggbb, #rrggbbaa, white, black or transparent", pointer=pointer
        )
    return color


def _image_id(value: object, pointer: str, limits: Limits) -> str:
    image_id = normalise_image_id(value) if isinstance(value, str) else None
    if image_id is None:
        raise InvalidTransformError("must be an image id (a UUID)", pointer=pointer)
    return image_id


_crop = _choice(CropMode)
_gravity = _choice(Gravity)
_effect = _choice(Effect)
_opacity = _int_in(0, 100)
_angle = _int_in(-360, 360)
_KEYS: Final = frozenset({*_FIELDS, "overlay"})
_T = TypeVar("_T")


def _parse(doc: object, limits: Limits, pointer: str) -> Transformation:
    if not isinstance(doc, list):
        raise InvalidTransformError(
            "transformations must be a list of objects", pointer=pointer
        )
    if len(doc) > limits.max_steps:
        raise TooManyStepsError(
            f"{len(doc)} steps; at most {limits.max_steps} are allowed",
            pointer=pointer,
        )
    steps = tuple(
        _parse_step(item, limits, f"{pointer}/{i}") for i, item in enumerate(doc)
    )
    overlays = sum(isinstance(s, Overlay) for s in steps)
    if overlays > limits.max_overlays:
        raise TooManyOverlaysError(
            f"{overlays} overlays; at most {limits.max_overlays} are allowed",
            pointer=pointer,
        )
    return Transformation(steps=steps)


_SCALARS: Final = frozenset({str, int, float, bool})
_MemoKey: TypeAlias = tuple[tuple[tuple[str, type, object], ...], ...]


def _memo_key(doc: object, limits: Limits) -> _MemoKey | None:
    """A claim of at most `max_steps` flat steps as a hashable key, else None.

    The type is part of the key: True == 1 == 1.0 hash alike, and a bool must
    never reuse the parse of an int.
    """
    if type(doc) is not list or len(doc) > limits.max_steps:
        return None
    key = []
    for item in doc:
        if type(item) is not dict:
            return None
        step = tuple((k, type(v), v) for k, v in item.items())
        if not all(type(k) is str and t in _SCALARS for k, t, _ in step):
            return None
        key.append(step)
    return tuple(key)


@functools.lru_cache(maxsize=4096)
def _parse_remembered(key: _MemoKey, limits: Limits, pointer: str) -> Transformation:
    return _parse([{k: v for k, _, v in step} for step in key], limits, pointer)


def parse_step(item: object, limits: Limits, pointer: str) -> Step:
    """One step from its flat JSON form; errors point below `pointer`."""
    return _parse_step(item, limits, pointer)


def _parse_step(item: object, limits: Limits, pointer: str) -> Step:
    if not isinstance(item, dict):
        raise InvalidTransformError("a step must be an object", pointer=pointer)
    if not item:
        raise InvalidTransformError("a step must not be empty", pointer=pointer)
    for key in item:
        if key not in _KEYS:
            raise InvalidTransformError(
                f"unknown option {key!r}; allowed: {', '.join(sorted(_KEYS))}",
                pointer=f"{pointer}/{_escape(key)}",
            )

    def get(key: str, parse: Callable[[object, str, Limits], _T]) -> _T | None:
        return None if key not in item else parse(item[key], f"{pointer}/{key}", limits)

    options = _Options(
        crop=get("crop", _crop),
        width=get("width", _size),
        height=get("height", _size),
        gravity=get("gravity", _gravity),
        x=get("x", _offset),
        y=get("y", _offset),
        background=get("background", _color),
        opacity=get("opacity", _opacity),
        angle=get("angle", _angle),
        effect=get("effect", _effect),
    )
    overlay = get("overlay", _image_id)
    crop = options["crop"]
    if crop is not None and options["width"] is None and options["height"] is None:
        raise InvalidTransformError(
            "a crop mode needs a width or a height", pointer=f"{pointer}/crop"
        )
    if overlay is None:
        # Outside an overlay, gravity and x/y only mean something for the crop
        # modes that choose a region; elsewhere Cloudinary ignores them silently.
        if options["gravity"] is not None and crop not in GRAVITY_CROPS:
            raise InvalidTransformError(
                "gravity needs crop fill, lfill, pad, lpad, crop or thumb",
                pointer=f"{pointer}/gravity",
            )
        for axis, value in (("x", options["x"]), ("y", options["y"])):
            if value is not None and crop is not CropMode.CROP:
                raise InvalidTransformError(
                    f"{axis} needs crop 'crop' or an overlay",
                    pointer=f"{pointer}/{axis}",
                )
    if options["background"] is not None and crop not in PAD_CROPS:
        raise InvalidTransformError(
            "background needs crop pad or lpad", pointer=f"{pointer}/background"
        )
    if overlay is not None:
        return Overlay(image=overlay, **options)
    return Adjust(**options)


class _Options(TypedDict):
    crop: CropMode | None
    width: int | None
    height: int | None
    gravity: Gravity | None
    x: int | None
    y: int | None
    background: Color | None
    opacity: int | None
    angle: int | None
    effect: Effect | None


def _escape(key: str) -> str:
    """RFC 6901: a JSON pointer token escapes `~` and `/`."""
    return key.replace("~", "~0").replace("/", "~1")
