"""Compile a transformation into a signed Cloudinary delivery URL with the official SDK.

Only this module imports `cloudinary`. Every call passes the account explicitly:
the SDK fills a process-global config from `CLOUDINARY_*` variables at import
time, and explicit options keep our URLs independent of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import cloudinary.utils

from transforms.errors import InvalidTransformError
from transforms.model import Adjust, Overlay, Step, Transformation

__all__ = [
    "DEFAULT_BASE_CHAIN",
    "CloudinaryAccount",
    "CloudinaryAsset",
    "parse_base_chain",
    "signed_params",
    "to_cloudinary_url",
]

DEFAULT_BASE_CHAIN: Final = "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto"

# A base chain comes from the operator's configuration, never from a token, but it
# is still held to Cloudinary's plain `key_value` grammar: no layers, no fetch.
_BASE_PARAM: Final = re.compile(r"(?!l_|u_|fetch)[a-z]{1,3}_[a-z0-9_.]{1,32}")
DELIVERY_TYPES: Final = frozenset({"upload", "authenticated", "private"})
PUBLIC_ID: Final = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
FORMATS: Final = frozenset({"jpg", "jpeg", "png", "webp", "gif", "avif"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudinaryAccount:
    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    secure_distribution: str | None = None
    private_cdn: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudinaryAsset:
    """Where an image lives on Cloudinary."""

    public_id: str
    version: int | None = None
    format: str | None = None
    delivery_type: str = "authenticated"

    def __post_init__(self) -> None:
        if len(self.public_id) > 255 or not PUBLIC_ID.fullmatch(self.public_id):
            raise ValueError(f"invalid public id {self.public_id!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        if self.delivery_type not in DELIVERY_TYPES:
            raise ValueError(f"delivery type must be one of {sorted(DELIVERY_TYPES)}")
        if self.version is not None and self.version < 1:
            raise ValueError("version must be positive")


def signed_params(
    params: Mapping[str, str], account: CloudinaryAccount
) -> dict[str, str]:
    """Upload API parameters with `api_key` and the SDK's request `signature`."""
    signature = cloudinary.utils.api_sign_request(
        dict(params), account.api_secret, "sha1"
    )
    assert isinstance(signature, str)  # noqa: S101 - the SDK is untyped
    return {**params, "api_key": account.api_key, "signature": signature}


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


def to_cloudinary_url(
    transformation: Transformation,
    *,
    asset: CloudinaryAsset,
    overlays: Mapping[str, CloudinaryAsset],
    account: CloudinaryAccount,
    base_chain: tuple[str, ...] = (),
) -> str:
    """The signed delivery URL: base chain, then one component per step."""
    chain: list[dict[str, object]] = [{"raw_transformation": c} for c in base_chain]
    chain.extend(_component(step, overlays) for step in transformation.steps)
    url, _ = cloudinary.utils.cloudinary_url(
        asset.public_id,
        transformation=chain,
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
    )
    assert isinstance(url, str)  # noqa: S101 - the SDK is untyped
    return url


def _component(
    step: Step, overlays: Mapping[str, CloudinaryAsset]
) -> dict[str, object]:
    options: dict[str, object] = {}
    match step:
        case Overlay(image=image):
            layer = overlays[image]
            options["overlay"] = {
                "public_id": layer.public_id,
                "type": layer.delivery_type,
            }
        case Adjust():
            pass
    for name in ("crop", "gravity", "effect"):
        if (value := getattr(step, name)) is not None:
            options[name] = str(value)
    for name in ("width", "height", "x", "y", "opacity", "angle"):
        if (value := getattr(step, name)) is not None:
            options[name] = value
    if step.background is not None:
        options["background"] = "rgb:" + step.background.hex
    return options
