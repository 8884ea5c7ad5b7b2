"""Compile a transformation into a signed Cloudinary delivery URL with the official SDK.

Only this module of `transforms` imports `cloudinary`. Every call passes the
account, and every other option that shapes a URL, explicitly: the SDK fills a
process-global config from `CLOUDINARY_*` variables at import time, and explicit
options keep our URLs independent of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import cloudinary.utils

from transforms.cloudinary.account import CloudinaryAccount, CloudinaryAsset
from transforms.model import (
    Adjust,
    Bitonal,
    Crop,
    CropMode,
    Edit,
    Effect,
    Fill,
    Fit,
    Grayscale,
    LFill,
    Limit,
    LPad,
    Mirror,
    Negate,
    Opacity,
    Overlay,
    Pad,
    Resize,
    Rotate,
    Scale,
    Size,
    Step,
    Thumb,
    Transformation,
)

__all__ = ["AuthToken", "to_cloudinary_chain", "to_cloudinary_url"]

# The SDK's option names and values; it writes them out sorted by short key.
_Options = dict[str, object]

# The SDK falls back to its global config (CLOUDINARY_URL's query, which the
# gateway's account ignores) for any option a call leaves out. These pin the
# options that would otherwise move the host (`res-3.cloudinary.com`), rewrite
# the path (`shorten`, `use_root_path`, `use_fetch_format`) or add parameters
# and components (`dpr`, `responsive_width`) behind our back; `auth_token`
# (which drops the signature) is passed by every call, False or in full.
_URL_OPTIONS: Final[_Options] = {
    "cdn_subdomain": False,
    "secure_cdn_subdomain": False,
    "shorten": False,
    "use_root_path": False,
    "use_fetch_format": False,
}
# Read again for every component of the chain, and for the chain itself.
_COMPONENT_OPTIONS: Final[_Options] = {"dpr": None, "responsive_width": False}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthToken:
    """Cloudinary's token-based authentication: `__cld_token__`, good until `expiration`."""

    key: str = field(repr=False)  # hex, as Cloudinary's console shows it
    expiration: int  # epoch seconds

    def options(self) -> _Options:
        # Every field the SDK reads, so that none comes from its global config
        # (which it merges under ours): no `acl`, `ip`, `start_time`, `duration`.
        return {
            "key": self.key,
            "expiration": self.expiration,
            "start_time": None,
            "duration": None,
            "acl": None,
            "ip": None,
            "token_name": "__cld_token__",
            "set_url_signature": False,
        }


def to_cloudinary_url(
    transformation: Transformation,
    *,
    asset: CloudinaryAsset,
    overlays: Mapping[str, CloudinaryAsset],
    account: CloudinaryAccount,
    base_chain: tuple[str, ...] = (),
    auth_token: AuthToken | None = None,
) -> str:
    """The signed delivery URL: base chain, then one component per step.

    With `auth_token`, the URL carries `__cld_token__` (and, as the SDK does
    then, no `s--…--` signature): the CDN refuses it after `expiration`.
    """
    url, _ = cloudinary.utils.cloudinary_url(
        asset.public_id,
        transformation=_chain(transformation, overlays, base_chain),
        type=asset.delivery_type,
        resource_type="image",
        version=asset.version,
        format=asset.format,
        sign_url=True,
        signature_algorithm="sha1",
        long_url_signature=False,
        secure=True,
        cloud_name=account.cloud_name,
        api_key=account.api_key,
        api_secret=account.api_secret,
        secure_distribution=account.secure_distribution,
        private_cdn=account.private_cdn,
        force_version=asset.version is not None,
        **_URL_OPTIONS,
        auth_token=False if auth_token is None else auth_token.options(),
        **_COMPONENT_OPTIONS,
    )
    assert isinstance(url, str)  # noqa: S101 - the SDK is untyped
    return url


def to_cloudinary_chain(
    transformation: Transformation,
    *,
    overlays: Mapping[str, CloudinaryAsset],
    base_chain: tuple[str, ...] = (),
) -> str:
    """The chain part of `to_cloudinary_url`'s URL (`c_fit,w_800/...`), exactly."""
    text, _ = cloudinary.utils.generate_transformation_string(
        transformation=_chain(transformation, overlays, base_chain),
        **_COMPONENT_OPTIONS,
    )
    assert isinstance(text, str)  # noqa: S101 - the SDK is untyped
    return text


def _chain(
    transformation: Transformation,
    overlays: Mapping[str, CloudinaryAsset],
    base_chain: tuple[str, ...],
) -> list[_Options]:
    chain: list[_Options] = [{"raw_transformation": c} for c in base_chain]
    chain.extend(_component(step, overlays) for step in transformation.steps)
    return [{**options, **_COMPONENT_OPTIONS} for options in chain]


def _component(step: Step, overlays: Mapping[str, CloudinaryAsset]) -> _Options:
    """R12: one component per step; an overlay's gravity and x/y are placement."""
    match step:
        case Adjust(resize=resize, edits=edits):
            return {**_resize(resize), **_edits(edits)}
        case Overlay(image=image, resize=resize, edits=edits, placement=placement):
            layer = overlays[image]
            options: _Options = {
                **_resize(resize),
                **_edits(edits),
                "overlay": {"public_id": layer.public_id, "type": layer.delivery_type},
            }
            if placement.gravity is not None:
                options["gravity"] = str(placement.gravity)
            if placement.x is not None:
                options["x"] = placement.x
            if placement.y is not None:
                options["y"] = placement.y
            return options


def _resize(resize: Resize | None) -> _Options:
    match resize:
        case None:
            return {}
        case Size(width=w, height=h):
            return _box(None, w, h)
        case Scale(width=w, height=h):
            return _box(CropMode.SCALE, w, h)
        case Fit(width=w, height=h):
            return _box(CropMode.FIT, w, h)
        case Limit(width=w, height=h):
            return _box(CropMode.LIMIT, w, h)
        case Fill(width=w, height=h, gravity=g):
            return _box(CropMode.FILL, w, h, gravity=g)
        case LFill(width=w, height=h, gravity=g):
            return _box(CropMode.LFILL, w, h, gravity=g)
        case Thumb(width=w, height=h, gravity=g):
            return _box(CropMode.THUMB, w, h, gravity=g)
        case Pad(width=w, height=h, gravity=g, background=b):
            background = None if b is None else "rgb:" + b.hex
            return _box(CropMode.PAD, w, h, gravity=g, background=background)
        case LPad(width=w, height=h, gravity=g, background=b):
            background = None if b is None else "rgb:" + b.hex
            return _box(CropMode.LPAD, w, h, gravity=g, background=background)
        case Crop(width=w, height=h, gravity=g, x=x, y=y):
            return _box(CropMode.CROP, w, h, gravity=g, x=x, y=y)


def _box(
    crop: CropMode | None, width: int | None, height: int | None, **more: object
) -> _Options:
    options = {"crop": crop, "width": width, "height": height, **more}
    return {
        name: str(value) if isinstance(value, StrEnum) else value
        for name, value in options.items()
        if value is not None
    }


def _edits(edits: tuple[Edit, ...]) -> _Options:
    options: _Options = {}
    for edit in edits:
        match edit:
            case Rotate(angle=angle):
                options["angle"] = angle
            case Mirror():
                options["angle"] = "hflip"
            case Grayscale():
                options["effect"] = str(Effect.GRAYSCALE)
            case Negate():
                options["effect"] = str(Effect.NEGATE)
            case Bitonal():
                options["effect"] = str(Effect.BLACKWHITE)
            case Opacity(percent=percent):
                options["opacity"] = percent
    return options
