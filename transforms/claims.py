"""A token's `transformations` claim, parsed strictly into the model and dumped back.

The claim is a list of flat, Cloudinary-like components
(`{"crop": "fit", "width": 800, "overlay": "<image id>", "x": 800}`). Every
string comes from an allow-list or a strict pattern, so nothing in a token can
inject `,` `/` `:` or a layer of its own into a compiled Cloudinary chain. This
module owns the JSON pointers of every error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Final, TypeAlias, TypeVar

from transforms.errors import (
    InvalidTransformError,
    TooManyOverlaysError,
    TooManyStepsError,
)
from transforms.limits import Limits
from transforms.model import (
    Adjust,
    Bitonal,
    Color,
    Crop,
    CropMode,
    Edit,
    Effect,
    Fill,
    Fit,
    Gravity,
    Grayscale,
    LFill,
    Limit,
    LPad,
    Mirror,
    Negate,
    Opacity,
    Overlay,
    Pad,
    Placement,
    Resize,
    Rotate,
    Scale,
    Size,
    Step,
    Thumb,
    Transformation,
    normalise_image_id,
)

__all__ = [
    "dump_transformations",
    "json_int",
    "parse_step",
    "parse_transformations",
]


def json_int(value: object) -> int | None:
    """`value` if it is a JSON integer, else None: a bool is not an int."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def parse_transformations(
    doc: object,
    limits: Limits = Limits(),
    *,
    pointer: str = "/transformations",
) -> Transformation:
    """The model of a claim, remembered for claims made of flat steps.

    Fresh tokens for one tiling carry the same claim, so a parse is worth
    remembering. Failures are never remembered.
    """
    key = _memo_key(doc, limits)
    if key is None:
        return _parse(doc, limits, pointer)
    return _parse_remembered(key, limits, pointer)


def dump_transformations(transformation: Transformation) -> list[dict[str, object]]:
    """The canonical claim: keys sorted, unset options omitted."""
    return [_dump_step(step) for step in transformation.steps]


def parse_step(item: object, limits: Limits, pointer: str) -> Step:
    """One step from its flat JSON form; errors point below `pointer`."""
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

    # Every value is parsed first, in this order, so that a claim with several
    # errors always reports the same one.
    crop = get("crop", _crop)
    width = get("width", _size)
    height = get("height", _size)
    gravity = get("gravity", _gravity)
    x = get("x", _offset)
    y = get("y", _offset)
    background = get("background", _color)
    opacity = get("opacity", _opacity)
    angle = get("angle", _angle)
    effect = get("effect", _effect)
    overlay = get("overlay", _image_id)
    if crop is not None and width is None and height is None:
        raise InvalidTransformError(
            "a crop mode needs a width or a height", pointer=f"{pointer}/crop"
        )
    if overlay is None:
        # Outside an overlay, gravity and x/y only mean something for the crop
        # modes that choose a region; elsewhere Cloudinary ignores them silently.
        if gravity is not None and crop not in _GRAVITY_CROPS:
            raise InvalidTransformError(
                "gravity needs crop fill, lfill, pad, lpad, crop or thumb",
                pointer=f"{pointer}/gravity",
            )
        for axis, value in (("x", x), ("y", y)):
            if value is not None and crop is not CropMode.CROP:
                raise InvalidTransformError(
                    f"{axis} needs crop 'crop' or an overlay",
                    pointer=f"{pointer}/{axis}",
                )
    if background is not None and crop not in _PAD_CROPS:
        raise InvalidTransformError(
            "background needs crop pad or lpad", pointer=f"{pointer}/background"
        )
    edits: list[Edit] = []
    if angle is not None:
        edits.append(Rotate(angle=angle) if isinstance(angle, int) else Mirror())
    if effect is not None:
        edits.append(_EFFECTS[effect])
    if opacity is not None:
        edits.append(Opacity(percent=opacity))
    if overlay is not None:
        # In an overlay, gravity and x/y are placement (R12); the renderer also
        # anchors the overlay's own fill, pad or crop with them.
        return Overlay(
            image=overlay,
            resize=_resize(crop, width, height, background, None, None, None),
            edits=tuple(edits),
            placement=Placement(gravity=gravity, x=x, y=y),
        )
    return Adjust(
        resize=_resize(crop, width, height, background, gravity, x, y),
        edits=tuple(edits),
    )


def _resize(
    crop: CropMode | None,
    width: int | None,
    height: int | None,
    background: Color | None,
    gravity: Gravity | None,
    x: int | None,
    y: int | None,
) -> Resize | None:
    if width is None and height is None:
        return None
    w, h = width, height
    match crop:
        case None:
            return Size(width=w, height=h)
        case CropMode.SCALE:
            return Scale(width=w, height=h)
        case CropMode.FIT:
            return Fit(width=w, height=h)
        case CropMode.LIMIT:
            return Limit(width=w, height=h)
        case CropMode.FILL:
            return Fill(width=w, height=h, gravity=gravity)
        case CropMode.LFILL:
            return LFill(width=w, height=h, gravity=gravity)
        case CropMode.THUMB:
            return Thumb(width=w, height=h, gravity=gravity)
        case CropMode.PAD:
            return Pad(width=w, height=h, gravity=gravity, background=background)
        case CropMode.LPAD:
            return LPad(width=w, height=h, gravity=gravity, background=background)
        case CropMode.CROP:
            return Crop(width=w, height=h, gravity=gravity, x=x, y=y)


def _dump_step(step: Step) -> dict[str, object]:
    out: dict[str, object]
    match step:
        case Adjust(resize=resize, edits=edits):
            out = {**_dump_resize(resize), **_dump_edits(edits)}
        case Overlay(image=image, resize=resize, edits=edits, placement=placement):
            out = {
                **_dump_resize(resize),
                **_dump_edits(edits),
                "overlay": image,
                "gravity": placement.gravity,
                "x": placement.x,
                "y": placement.y,
            }
    return {
        key: _dump_value(value)
        for key, value in sorted(out.items())
        if value is not None
    }


def _dump_value(value: object) -> object:
    if isinstance(value, Color):
        return value.to_json()
    return str(value) if isinstance(value, StrEnum) else value


def _dump_resize(resize: Resize | None) -> dict[str, object]:
    match resize:
        case None:
            return {}
        case Size():
            return _box(None, resize)
        case Scale():
            return _box(CropMode.SCALE, resize)
        case Fit():
            return _box(CropMode.FIT, resize)
        case Limit():
            return _box(CropMode.LIMIT, resize)
        case Fill(gravity=g):
            return _box(CropMode.FILL, resize, gravity=g)
        case LFill(gravity=g):
            return _box(CropMode.LFILL, resize, gravity=g)
        case Thumb(gravity=g):
            return _box(CropMode.THUMB, resize, gravity=g)
        case Pad(gravity=g, background=b):
            return _box(CropMode.PAD, resize, gravity=g, background=b)
        case LPad(gravity=g, background=b):
            return _box(CropMode.LPAD, resize, gravity=g, background=b)
        case Crop(gravity=g, x=x, y=y):
            return _box(CropMode.CROP, resize, gravity=g, x=x, y=y)


def _box(crop: CropMode | None, resize: Resize, **more: object) -> dict[str, object]:
    return {"crop": crop, "width": resize.width, "height": resize.height, **more}


def _dump_edits(edits: tuple[Edit, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for edit in edits:
        match edit:
            case Rotate(angle=angle):
                out["angle"] = angle
            case Mirror():
                out["angle"] = _HFLIP
            case Grayscale():
                out["effect"] = Effect.GRAYSCALE.value
            case Negate():
                out["effect"] = Effect.NEGATE.value
            case Bitonal():
                out["effect"] = Effect.BLACKWHITE.value
            case Opacity(percent=percent):
                out["opacity"] = percent
    return out


def _int_in(value: object, pointer: str, low: int, high: int) -> int:
    number = json_int(value)
    if number is None:
        raise InvalidTransformError("must be an integer", pointer=pointer)
    if not low <= number <= high:
        raise InvalidTransformError(
            f"must be between {low} and {high}", pointer=pointer
        )
    return number


# The value parsers, one per option; each is called only when parsing, never at
# import, so that mutation testing reaches every rule they apply.


def _size(value: object, pointer: str, limits: Limits) -> int:
    return _int_in(value, pointer, 1, limits.max_size)


def _offset(value: object, pointer: str, limits: Limits) -> int:
    return _int_in(value, pointer, -limits.max_offset, limits.max_offset)


def _opacity(value: object, pointer: str, limits: Limits) -> int:
    return _int_in(value, pointer, 0, 100)


def _angle(value: object, pointer: str, limits: Limits) -> int | str:
    if value == _HFLIP:
        return _HFLIP
    try:
        return _int_in(value, pointer, -360, 360)
    except InvalidTransformError:
        raise InvalidTransformError(
            "must be an integer between -360 and 360, or hflip", pointer=pointer
        ) from None


_E = TypeVar("_E", CropMode, Gravity, Effect)


def _one_of(enum: type[_E], value: object, pointer: str) -> _E:
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise InvalidTransformError(f"must be one of: {allowed}", pointer=pointer)


def _crop(value: object, pointer: str, limits: Limits) -> CropMode:
    return _one_of(CropMode, value, pointer)


def _gravity(value: object, pointer: str, limits: Limits) -> Gravity:
    return _one_of(Gravity, value, pointer)


def _effect(value: object, pointer: str, limits: Limits) -> Effect:
    return _one_of(Effect, value, pointer)


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


# Cloudinary's `a_hflip`: the one word `angle` takes besides a number.
_HFLIP: Final = "hflip"
_EFFECTS: Final[Mapping[Effect, Edit]] = {
    Effect.GRAYSCALE: Grayscale(),
    Effect.NEGATE: Negate(),
    Effect.BLACKWHITE: Bitonal(),
}


_KEYS: Final = frozenset(
    {
        "angle",
        "background",
        "crop",
        "effect",
        "gravity",
        "height",
        "opacity",
        "overlay",
        "width",
        "x",
        "y",
    }
)
# The modes that choose a region: only they give gravity a meaning.
_GRAVITY_CROPS: Final = frozenset(CropMode) - {
    CropMode.SCALE,
    CropMode.FIT,
    CropMode.LIMIT,
}
_PAD_CROPS: Final = frozenset({CropMode.PAD, CropMode.LPAD})
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
        parse_step(item, limits, f"{pointer}/{i}") for i, item in enumerate(doc)
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


def _parse_key(key: _MemoKey, limits: Limits, pointer: str) -> Transformation:
    return _parse([{k: v for k, _, v in step} for step in key], limits, pointer)


# Wrapped by a call, not a decorator: mutation testing skips decorated functions.
_parse_remembered: Final = functools.lru_cache(maxsize=4096)(_parse_key)


def _escape(key: str) -> str:
    """RFC 6901: a JSON pointer token escapes `~` and `/`."""
    return key.replace("~", "~0").replace("/", "~1")
