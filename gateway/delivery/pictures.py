"""The chains of the paths without transformation tokens: sized and public pictures.

Both compile into the same transformation model as a token and are answered
by the same renderer or signed URL; only their grammar and their sizing rules
are theirs. The operator's base chain (`fl_attachment`, `f_auto`, its cap)
belongs to the token path and is not applied here: these paths name their
format and are bounded by `GATEWAY_MAX_SIZE` and the output budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gateway.catalog import ImageRecord
from gateway.delivery.policy import delivered_size
from gateway.errors import AmbiguousParameterError, InvalidParameterError
from transforms import Limits, Transformation
from transforms.model import Adjust, Fill, Limit, Resize

__all__ = [
    "EXTENSIONS",
    "Picture",
    "parse_crop",
    "parse_dimension",
    "parse_extension",
    "parse_size",
    "public_picture",
    "sized_picture",
]

# `/image/{id}.{ext}`: the formats a public URL may name, and what each means.
EXTENSIONS: Final = {
    "jpg": "jpg",
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "gif": "gif",
    "avif": "avif",
}
_SIZE: Final = re.compile(r"([1-9][0-9]{0,5})\.([1-9][0-9]{0,5})\.jpg")
_DIGITS: Final = re.compile(r"[1-9][0-9]{0,5}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Picture:
    """What to deliver, and the longest side it will have (for the access policy)."""

    transformation: Transformation
    extension: str
    size: int


def parse_size(raw: str, limits: Limits) -> tuple[int, int]:
    """`{w}.{h}.jpg`, each side 1 to `GATEWAY_MAX_SIZE`; anything else a 400 naming `size`."""
    match = _SIZE.fullmatch(raw)
    if match is None:
        raise InvalidParameterError(
            "the size is {width}.{height}.jpg, e.g. 400.300.jpg", parameter="size"
        )
    width, height = int(match[1]), int(match[2])
    if max(width, height) > limits.max_size:
        raise InvalidParameterError(
            f"width and height are at most {limits.max_size}", parameter="size"
        )
    return width, height


def parse_extension(raw: str) -> str:
    extension = EXTENSIONS.get(raw)
    if extension is None:
        raise InvalidParameterError(
            f"the format is one of {', '.join(sorted(EXTENSIONS))}", parameter="ext"
        )
    return extension


def parse_dimension(values: Sequence[str], name: str, limits: Limits) -> int | None:
    """An optional `w`/`h` query parameter: one positive whole number, bounded."""
    if not values:
        return None
    if len(values) > 1:
        raise AmbiguousParameterError(f"give {name} once", parameter=name)
    (raw,) = values
    if _DIGITS.fullmatch(raw) is None or int(raw) > limits.max_size:
        raise InvalidParameterError(
            f"{name} is a whole number from 1 to {limits.max_size}", parameter=name
        )
    return int(raw)


def parse_crop(values: Sequence[str]) -> bool:
    if not values:
        return False
    if len(values) > 1:
        raise AmbiguousParameterError("give crop once", parameter="crop")
    if values[0] not in ("true", "false"):
        raise InvalidParameterError("crop is true or false", parameter="crop")
    return values[0] == "true"


def sized_picture(
    image: ImageRecord, width: int, height: int, limits: Limits
) -> Picture:
    """The image fitted inside width x height, never enlarged (`c_limit`), as JPEG."""
    resize = Limit(width=width, height=height)
    return _picture(image, resize, "jpg", limits, bound=max(width, height))


def public_picture(
    image: ImageRecord,
    *,
    width: int | None,
    height: int | None,
    crop: bool,
    extension: str,
    ladder: Sequence[int],
    limits: Limits,
) -> Picture:
    """A public picture with its longer side snapped up to the ladder.

    An unsigned URL must not be a free renderer: only the ladder's sizes
    exist, a few dozen variants per image at most. Snapping never crosses the
    image's anonymous cap: a request at or under it is served at most at it.
    With neither width nor height, the image fits the cap (or the top rung).
    """
    if width is None or height is None:
        # With one side there is no box to fill: the picture is fitted instead
        # (a fill by one side would only enlarge it).
        crop = False
    rungs = [r for r in ladder if r <= limits.max_size] or [limits.max_size]
    cap = image.max_unauthorised
    if width is None and height is None:
        # Past the top rung, the top: a cap may be larger than any side served.
        side = min(cap, rungs[-1]) if cap else rungs[-1]
        return _picture(
            image, Limit(width=side, height=side), extension, limits, bound=side
        )
    longest = max(width or 0, height or 0)
    rung = next((r for r in rungs if r >= longest), rungs[-1])
    if cap and longest <= cap < rung:
        rung = cap
    if rung != longest:
        width, height = _scaled(width, rung / longest), _scaled(height, rung / longest)
    resize: Resize = (
        Fill(width=width, height=height) if crop else Limit(width=width, height=height)
    )
    return _picture(image, resize, extension, limits, bound=rung)


def _scaled(value: int | None, factor: float) -> int | None:
    return None if value is None else max(1, round(value * factor))


def _picture(
    image: ImageRecord, resize: Resize, extension: str, limits: Limits, *, bound: int
) -> Picture:
    transformation = Transformation(steps=(Adjust(resize=resize),))
    size = delivered_size(image, transformation, limits)
    # Dimensions unknown (a Cloudinary-only asset): the box bounds the picture.
    return Picture(
        transformation=transformation,
        extension=extension,
        size=bound if size is None else size,
    )
