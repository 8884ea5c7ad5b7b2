"""Size-based access control: who may have an image, at which size.

One policy for every path that serves pixels without a transformation token
(`/v3`, `/image`, and IIIF). A transformation token is its issuer's own grant
for exactly the chain it names, and is not subject to it.

The size of a request is the longest side of the picture delivered, worked
out by the same planner that renders it. Each image has `maxUnauthorised`
(None: no cap; 0: nothing; N: at most N pixels) and a set of roles:

- anonymous callers (and callers of another issuer, on paths open to anyone)
  get public images only, up to the cap; over it, 401 (403 for a caller who
  did authenticate);
- callers of the image's issuer get an image without roles at any size; an
  image with roles up to its cap, and above it only when their roles meet
  the image's (else 403).
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Protocol

from gateway.catalog import ImageRecord
from gateway.errors import (
    CredentialRequiredError,
    ImageNotFoundError,
    RoleRequiredError,
)
from transforms import Limits, Transformation
from transforms.basechain import Delivery
from transforms.render import RenderChain, plan

__all__ = ["Caller", "Grant", "decide", "delivered_size"]


class Caller(Protocol):
    """What the policy needs of a principal."""

    @property
    def issuer_id(self) -> str: ...

    @property
    def roles(self) -> frozenset[str]: ...


class Grant(Enum):
    """Whom an answer may be shared with, for `Cache-Control`."""

    ANYONE = (
        "public"  # an anonymous caller would get the same: shared caches may keep it
    )
    CALLER = "private"  # it needed this caller's credential


def decide(
    image: ImageRecord,
    caller: Caller | None,
    size: int,
    *,
    anonymous_path: bool,
) -> Grant:
    """Serve `image` at `size` (longest side, pixels) to `caller`, or raise.

    `anonymous_path`: the route is open to anyone (public images), so a caller
    of another issuer is judged as anonymous; elsewhere another issuer's
    image is a 404, exactly like a missing one.
    """
    owner = caller is not None and caller.issuer_id == image.issuer_id
    if owner:
        assert caller is not None  # noqa: S101 - narrowed above
        if _within_anonymous(image, size) and anonymous_path:
            return Grant.ANYONE
        if not image.roles or _under_cap(image, size):
            return Grant.CALLER
        if caller.roles & image.roles:
            return Grant.CALLER
        raise RoleRequiredError(
            f"over {image.max_unauthorised} px this image needs one of its roles"
        )
    if not anonymous_path or not image.is_public:
        raise ImageNotFoundError("no such image", parameter="image_id")
    if _under_cap(image, size):
        return Grant.ANYONE
    # A caller of another issuer holds no role of this image: it is judged
    # as anyone, and told so rather than told to bring a credential.
    anyone = "without a credential" if caller is None else "to another issuer's caller"
    detail = (
        f"this image is not served {anyone}"
        if image.max_unauthorised == 0
        else f"{anyone} this image is served up to {image.max_unauthorised} px"
    )
    if caller is None:
        raise CredentialRequiredError(detail)
    raise RoleRequiredError(detail)


def _under_cap(image: ImageRecord, size: int) -> bool:
    cap = image.max_unauthorised
    return cap is None or size <= cap


def _within_anonymous(image: ImageRecord, size: int) -> bool:
    return image.is_public and _under_cap(image, size)


def delivered_size(
    image: ImageRecord, transformation: Transformation, limits: Limits
) -> int | None:
    """The longest side of the picture `transformation` makes of `image`.

    None when the image's dimensions are not known (an asset registered by
    its Cloudinary id alone): callers then judge by the requested box, an
    upper bound.
    """
    original = image.original
    if original is None:
        return None
    return _longest(original.width, original.height, transformation, limits)


@functools.lru_cache(maxsize=4096)
def _longest(
    width: int, height: int, transformation: Transformation, limits: Limits
) -> int:
    """Pure in its arguments, and asked on every request of a cached picture."""
    planned = plan(
        RenderChain.build(((), Delivery()), transformation),
        (width, height),
        {},
        limits,
        alpha_output=False,
    )
    return max(planned.size)
