"""Cloudinary delivery URLs read back: the path's parts, and the chain as the model.

The exact inverse of `transforms.cloudinary.compile`: a chain parses only if it
is, byte for byte, what the compiler emits for the operator's base chain and
some transformation; anything else (another parameter order, `w_0800`, an
option or a layer of Cloudinary's we never emit) is an `InvalidTransformError`.
Every value goes through the token claims' own parser, so a URL can ask for
nothing a token could not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from transforms.claims import parse_transformations
from transforms.cloudinary.account import DELIVERY_TYPES, CloudinaryAsset
from transforms.cloudinary.compile import to_cloudinary_chain
from transforms.errors import InvalidTransformError
from transforms.limits import Limits
from transforms.model import Transformation

__all__ = ["DeliveryPath", "parse_chain", "parse_delivery_path"]

_SIGNATURE: Final = re.compile(r"s--[A-Za-z0-9_-]{1,64}--")
_VERSION: Final = re.compile(r"v([1-9][0-9]{0,15})")
_FILE: Final = re.compile(r"([A-Za-z0-9_-]+)\.([a-z0-9]{1,5})")
_INT: Final = re.compile(r"-?[0-9]{1,10}")
# Cloudinary's short keys for the options of one of our components.
_NUMBERS: Final[Mapping[str, str]] = {
    "w": "width",
    "h": "height",
    "x": "x",
    "y": "y",
    "o": "opacity",
    "a": "angle",
}
_WORDS: Final[Mapping[str, str]] = {"c": "crop", "g": "gravity", "e": "effect"}
# A layer's public id has its `/` written as `:`, after the type unless `upload`.
_LAYER_TYPES: Final = DELIVERY_TYPES - {"upload"}
# What Cloudinary reads at the head of a layer as a kind of layer, not a folder:
# an `upload` public id starting so is refused rather than guessed.
_LAYER_KINDS: Final = frozenset(
    {"fetch", "text", "subtitles", "video", "raw", "image", "upload", "youtube"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPath:
    """`/{cloud}/image/{type}/[s--…--/]{chain}/v{version}/{public_id}.{format}`."""

    cloud_name: str
    delivery_type: str
    signature: str | None
    chain: str  # the components joined by `/`; "" when there are none
    version: int
    public_id: str
    format: str

    @property
    def signed(self) -> str:
        """What `s--…--` signs: the chain and the file, not the version."""
        file = f"{self.public_id}.{self.format}"
        return f"{self.chain}/{file}" if self.chain else file


def parse_delivery_path(path: str) -> DeliveryPath | None:
    """The parts of a shared-host delivery path, or None if it is not one.

    The version is required (our compiler writes it for every asset that has
    one, and every asset the stand-in stores does), and it ends the chain:
    a component always holds a `_`, a version never.
    """
    segments = path.split("/")
    if len(segments) < 6 or segments[0] or segments[2] != "image":
        return None
    cloud_name, delivery_type, rest = segments[1], segments[3], segments[4:]
    if delivery_type not in DELIVERY_TYPES:
        return None
    signature = None
    if _SIGNATURE.fullmatch(rest[0]):
        signature, rest = rest[0], rest[1:]
    at = next((i for i, s in enumerate(rest) if _VERSION.fullmatch(s)), None)
    if at is None or at == len(rest) - 1:
        return None
    chain, version, file = rest[:at], int(rest[at][1:]), rest[at + 1 :]
    last = _FILE.fullmatch(file[-1])
    if last is None or not all(chain) or not all(file):
        return None
    public_id = "/".join([*file[:-1], last[1]])
    try:
        CloudinaryAsset(public_id=public_id)
    except ValueError:
        return None
    return DeliveryPath(
        cloud_name=cloud_name,
        delivery_type=delivery_type,
        signature=signature,
        chain="/".join(chain),
        version=version,
        public_id=public_id,
        format=last[2],
    )


def parse_chain(
    chain: str,
    *,
    base_chain: tuple[str, ...],
    layer_id: Callable[[CloudinaryAsset], str],
    limits: Limits,
) -> tuple[Transformation, Mapping[str, CloudinaryAsset]]:
    """The transformation `chain` was compiled from, and the asset of each overlay.

    `layer_id` names the image an overlay's asset stands for (a UUID, as the
    model wants); distinct assets must get distinct ids.
    """
    components = chain.split("/") if chain else []
    if tuple(components[: len(base_chain)]) != base_chain:
        raise InvalidTransformError(
            "the chain does not start with this gateway's base chain",
            parameter="path",
        )
    layers: dict[str, CloudinaryAsset] = {}
    steps: list[dict[str, object]] = []
    for index, component in enumerate(components[len(base_chain) :]):
        step: dict[str, object] = {}
        for param in component.split(","):
            key, _, value = param.partition("_")
            name, parsed = _option(key, value, index, layers, layer_id)
            if name in step:
                raise _unknown(index, "repeats an option")
            step[name] = parsed
        steps.append(step)
    try:
        transformation = parse_transformations(steps, limits)
    except InvalidTransformError as exc:
        raise InvalidTransformError(
            f"{exc.detail} (at {exc.pointer})", parameter="path"
        ) from exc
    compiled = to_cloudinary_chain(
        transformation, overlays=layers, base_chain=base_chain
    )
    if compiled != chain:
        raise InvalidTransformError(
            "the chain is not written as this gateway compiles it", parameter="path"
        )
    return transformation, layers


def _option(
    key: str,
    value: str,
    index: int,
    layers: dict[str, CloudinaryAsset],
    layer_id: Callable[[CloudinaryAsset], str],
) -> tuple[str, object]:
    """One `key_value` parameter as the claim's option; refused if we never emit it."""
    if key in _NUMBERS and _INT.fullmatch(value):
        return _NUMBERS[key], int(value)
    if key in _WORDS:
        return _WORDS[key], value
    if key == "a" and value == "hflip":
        return "angle", value
    if key == "b" and value.startswith("rgb:"):
        return "background", "#" + value.removeprefix("rgb:")
    if key == "l":
        asset = _layer(value, index)
        image = layer_id(asset)
        layers[image] = asset
        return "overlay", image
    raise _unknown(index, "has an option this gateway never compiles")


def _layer(value: str, index: int) -> CloudinaryAsset:
    """`l_[type:]folder:name`: the SDK's `overlay` with a public id and type."""
    first, _, rest = value.partition(":")
    if first in _LAYER_KINDS:
        raise _unknown(index, "has a kind of layer this gateway never compiles")
    delivery_type, public_id = (
        (first, rest) if first in _LAYER_TYPES and rest else ("upload", value)
    )
    try:
        return CloudinaryAsset(
            public_id=public_id.replace(":", "/"), delivery_type=delivery_type
        )
    except ValueError:
        raise _unknown(index, "names no asset") from None


def _unknown(index: int, what: str) -> InvalidTransformError:
    return InvalidTransformError(
        f"component {index + 1} after the base chain {what}", parameter="path"
    )
