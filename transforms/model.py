"""The typed, immutable transformation model: one frozen class per operation.

A step is an `Adjust` (resize and edit the current canvas) or an `Overlay` (size
and edit another image, then place it on the canvas). A resize is one class per
Cloudinary crop mode, carrying only the options that mode uses, so a compiler
that `match`es on the classes is checked exhaustively by mypy: a new operation
fails type-checking until every compiler handles it.

The claims parser (`transforms.claims`) owns JSON and its pointers; the
`__post_init__` guards here only keep impossible values out of the model.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Self, TypeAlias

__all__ = [
    "Adjust",
    "Bitonal",
    "Color",
    "Crop",
    "CropMode",
    "Edit",
    "Effect",
    "Fill",
    "Fit",
    "Gravity",
    "Grayscale",
    "LFill",
    "LPad",
    "Limit",
    "Mirror",
    "Negate",
    "Opacity",
    "Overlay",
    "Pad",
    "Placement",
    "Resize",
    "Rotate",
    "Scale",
    "Size",
    "Step",
    "Thumb",
    "Transformation",
    "normalise_image_id",
]

_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_HEX_COLOR: Final = re.compile(r"#([0-9a-f]{6}|[0-9a-f]{8})", re.IGNORECASE)


def normalise_image_id(value: str) -> str | None:
    """The canonical (lower-case UUID) form of an image id, or None."""
    return value.lower() if _UUID.fullmatch(value) else None


class CropMode(StrEnum):
    """The `crop` values of a token, Cloudinary's `c_` modes."""

    SCALE = "scale"
    FIT = "fit"
    LIMIT = "limit"
    FILL = "fill"
    LFILL = "lfill"
    PAD = "pad"
    LPAD = "lpad"
    CROP = "crop"
    THUMB = "thumb"


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
    """The `effect` values of a token, Cloudinary's `e_` effects."""

    GRAYSCALE = "grayscale"
    NEGATE = "negate"
    BLACKWHITE = "blackwhite"


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


# Resizes: one class per crop mode. Every mode needs a width or a height.


@dataclass(frozen=True, slots=True, kw_only=True)
class _Box:
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.width is None and self.height is None:
            raise ValueError("a resize needs a width or a height")
        if any(v is not None and v < 1 for v in (self.width, self.height)):
            raise ValueError("width and height are at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Size(_Box):
    """A width and/or height with no crop mode: Cloudinary scales (`w_800`, no `c_`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale(_Box):
    """`c_scale`: exactly w x h, or one side with the aspect ratio kept."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit(_Box):
    """`c_fit`: the largest size inside w x h, upscaling included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit(_Box):
    """`c_limit`: `c_fit` that never upscales."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill(_Box):
    """`c_fill`: cover w x h, then crop at gravity."""

    gravity: Gravity | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LFill(_Box):
    """`c_lfill`: `c_fill` that never upscales."""

    gravity: Gravity | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Thumb(_Box):
    """`c_thumb`: rendered locally as `c_fill`, having no face detection."""

    gravity: Gravity | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pad(_Box):
    """`c_pad`: fit, then place on a w x h canvas of `background`."""

    gravity: Gravity | None = None
    background: Color | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LPad(_Box):
    """`c_lpad`: `c_pad` that never upscales."""

    gravity: Gravity | None = None
    background: Color | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Crop(_Box):
    """`c_crop`: cut out w x h without scaling, at gravity moved by x/y."""

    gravity: Gravity | None = None
    x: int | None = None
    y: int | None = None


Resize: TypeAlias = (
    Size | Scale | Fit | Limit | Fill | LFill | Thumb | Pad | LPad | Crop
)


# Edits: applied after the resize, in the order angle (a turn or a mirror),
# effect, opacity.


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotate:
    """`a_`: turn clockwise by `angle` degrees, growing to fit."""

    angle: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Mirror:
    """`a_hflip`: flip left to right (IIIF's `!` rotation, before any turn)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Grayscale:
    """`e_grayscale`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Negate:
    """`e_negate`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bitonal:
    """`e_blackwhite`: every pixel black or white (IIIF's `bitonal` quality)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Opacity:
    """`o_`: scale the alpha channel to `percent`."""

    percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError("opacity is 0 to 100")


Edit: TypeAlias = Rotate | Mirror | Grayscale | Negate | Bitonal | Opacity


def _rank(edit: Edit) -> int:
    """An edit's place in a component: a flat component holds one of each kind."""
    match edit:
        case Rotate() | Mirror():
            return 0
        case Grayscale() | Negate() | Bitonal():
            return 1
        case Opacity():
            return 2


def _check_edits(edits: tuple[Edit, ...]) -> None:
    ranks = [_rank(edit) for edit in edits]
    if any(a >= b for a, b in itertools.pairwise(ranks)):
        raise ValueError("edits are at most one angle, effect and opacity, in order")


@dataclass(frozen=True, slots=True, kw_only=True)
class Adjust:
    """Resize the current canvas, then edit it."""

    resize: Resize | None = None
    edits: tuple[Edit, ...] = ()

    def __post_init__(self) -> None:
        if self.resize is None and not self.edits:
            raise ValueError("a step must not be empty")
        _check_edits(self.edits)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where an overlay goes (R13/R14): gravity, and offsets pointing inwards."""

    gravity: Gravity | None = None
    x: int | None = None
    y: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Overlay:
    """Size and edit another image, then place it on the canvas.

    As in one Cloudinary component (R12), `placement` also anchors the overlay's
    own fill, pad or crop, and its x/y are a `Crop`'s offsets; so the resize
    itself carries no gravity or offsets.
    """

    image: str
    resize: Resize | None = None
    edits: tuple[Edit, ...] = ()
    placement: Placement = Placement()

    def __post_init__(self) -> None:
        if normalise_image_id(self.image) != self.image:
            raise ValueError("an overlay's image is a lower-case UUID")
        if _anchored(self.resize):
            raise ValueError("an overlay's gravity and offsets are its placement")
        _check_edits(self.edits)


def _anchored(resize: Resize | None) -> bool:
    """Whether a resize carries its own gravity or offsets."""
    match resize:
        case Fill(gravity=g) | LFill(gravity=g) | Thumb(gravity=g):
            return g is not None
        case Pad(gravity=g) | LPad(gravity=g):
            return g is not None
        case Crop(gravity=g, x=x, y=y):
            return g is not None or x is not None or y is not None
        case None | Size() | Scale() | Fit() | Limit():
            return False


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
