"""Checking Cloudinary's delivery URL signatures: `s--…--` and `__cld_token__`.

What `cloudinary.utils.cloudinary_url` signs, checked the way Cloudinary's
CDN checks it, so that a stand-in refuses exactly what Cloudinary would:

- `s--…--`: the URL-safe base64 of SHA-1 (8 characters, the short form) or
  SHA-256 (32 characters, `long_url_signature`) of the chain and the public id
  (the version is not signed), followed by the API secret;
- `__cld_token__=[st=…~]exp=…~hmac=…`: token-based authentication, an
  HMAC-SHA256 with the hex token key over the fields and the URL's path,
  computed by the SDK's own `auth_token.generate`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

__all__ = [
    "AUTH_TOKEN_NAME",
    "TokenCheck",
    "check_auth_token",
    "check_signature",
    "url_signature",
]

AUTH_TOKEN_NAME: Final = "__cld_token__"  # noqa: S105 - a parameter name

# Signature length in characters -> the hash the SDK uses for it.
_HASHES: Final[Mapping[int, str]] = {8: "sha1", 32: "sha256"}
# The only token fields our compiler emits: no `ip` (a CDN sees it, a stand-in
# behind a proxy may not) and no `acl` (a token for many URLs).
_TOKEN: Final = re.compile(r"(?:st=(\d{1,12})~)?exp=(\d{1,12})~hmac=([0-9a-f]{64})")


def url_signature(to_sign: str, api_secret: str, *, long: bool = False) -> str:
    """The `s--…--` component the SDK writes for `to_sign` (chain/public_id.ext)."""
    length = 32 if long else 8
    digest = hashlib.new(_HASHES[length], (to_sign + api_secret).encode()).digest()
    return "s--" + base64.urlsafe_b64encode(digest)[:length].decode() + "--"


def check_signature(component: str, to_sign: str, api_secret: str) -> bool:
    """Whether `component` (`s--…--`) signs `to_sign`, short or long, in constant time."""
    inner = component.removeprefix("s--").removesuffix("--")
    if len(inner) + 5 != len(component) or len(inner) not in _HASHES:
        return False
    expected = url_signature(to_sign, api_secret, long=len(inner) == 32)
    return hmac.compare_digest(expected.encode(), component.encode())


class TokenCheck(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    INVALID = "invalid"


def check_auth_token(
    token: str, url_path: str, key: str, *, now: float
) -> tuple[TokenCheck, int | None]:
    """Whether `token` (the value of `__cld_token__`) opens `url_path` at `now`,
    and until when (once its HMAC is known to be good).

    `url_path` is the path as the SDK saw it (`/cloud/image/...` on the shared
    host). The HMAC is checked before the times, so that an expiry is only
    reported for a token this key signed.
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        return TokenCheck.INVALID, None
    start = None if match[1] is None else int(match[1])
    expiration = int(match[2])
    # Imported here: the SDK reads (and may refuse) CLOUDINARY_URL when imported.
    from cloudinary import auth_token

    expected = auth_token.generate(
        url=url_path,
        start_time=start,
        expiration=expiration,
        key=key,
        token_name=AUTH_TOKEN_NAME,
    )
    if not isinstance(expected, str):  # the SDK is untyped
        raise TypeError("the SDK's token is not a string")
    if not hmac.compare_digest(
        expected.encode(), f"{AUTH_TOKEN_NAME}={token}".encode()
    ):
        return TokenCheck.INVALID, None
    if now > expiration:
        return TokenCheck.EXPIRED, expiration
    if start is not None and now < start:
        return TokenCheck.NOT_YET_VALID, expiration
    return TokenCheck.VALID, expiration
