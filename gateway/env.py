"""Environment variables' text into typed values; each error names its variable."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from yarl import URL

from gateway.hostnames import ipv4_spelled
from transforms.cloudinary import CloudinaryAccount

__all__ = [
    "Cdn",
    "ConfigError",
    "Delivery",
    "S3Location",
    "as_bool",
    "as_cdn",
    "as_cloudinary",
    "as_database_url",
    "as_delivery",
    "as_hex_key",
    "as_hosts",
    "as_http_url",
    "as_ladder",
    "as_log_level",
    "as_networks",
    "as_origins",
    "as_path",
    "as_port",
    "as_positive",
    "as_s3_url",
    "as_seconds",
    "as_str",
    "as_timeout",
    "as_token_name",
    "as_uuid",
    "at_most",
    "timeout_range",
]

Delivery = Literal["redirect", "render"]
Cdn = Literal["cloudinary", "local"]


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def as_str(name: str, raw: str) -> str:
    return raw


def as_uuid(name: str, raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a UUID") from None


# A DNS label in its ASCII form (RFC 1123): letters, digits and inner hyphens.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def as_hosts(name: str, raw: str) -> frozenset[str]:
    """Host names in their ASCII form, `.example.com` for its subdomains.

    An allow-list: a value that names no host is refused, never read as "any
    host" (empty is unset). An international name is encoded as yarl encodes
    an origin's (`bücher.example` is `xn--bcher-kva.example`), so the two
    compare equal. A name ending in a number is an IPv4 address to every
    resolver: only its one spelling an origin may use (`127.0.0.1`, not
    `127.1`), and never as a suffix.
    """
    hosts = set()
    for written in (h.strip() for h in raw.split(",")):
        if not written:
            continue
        subdomains = written.startswith(".")
        host = _ascii_host(written.removeprefix(".").removesuffix("."))
        if host is None or (subdomains and ipv4_spelled(host) is not None):
            raise ConfigError(
                f"{name}: {written!r} is not a host name (labels of letters,"
                " digits and inner hyphens, or an international name, between"
                " dots; `.example.com` for its subdomains) nor an IPv4 address"
            )
        hosts.add(f".{host}" if subdomains else host)
    if not hosts:
        raise ConfigError(f"{name} names no host; unset it to allow any public host")
    return frozenset(hosts)


def _ascii_host(written: str) -> str | None:
    """`written` as yarl encodes an origin's host, if every label is one and
    an address is spelled as origins must spell it."""
    try:
        url = URL.build(scheme="http", host=written)
        url.host  # noqa: B018 - decodes `xn--` labels: raises for bad punycode
    except ValueError:  # UnicodeError too: a name IDNA cannot encode or decode
        return None
    host = url.raw_host
    if not host or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        return None
    try:
        ipv4_spelled(host)
    except ValueError:  # an address, in a spelling no origin may use
        return None
    return host


def as_networks(
    name: str, raw: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or networks (`10.0.0.0/8, ::1`)."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in raw.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def as_path(name: str, raw: str) -> Path:
    return Path(raw)


# Past any real setting, and within what every consumer takes (an LRU cache
# of 10^20 entries raised OverflowError, a traceback, at start-up).
_MOST: Final = 2**53


def as_positive(name: str, raw: str) -> int:
    return _whole(name, raw, _MOST)


def at_most(high: int) -> Callable[[str, str], int]:
    """A cast to a whole number from 1 to `high`: a setting's real range
    (JPEG quality to 100), or a bound past any sane setting (a token limit
    of 100 MB would let a request line be a GB)."""

    def cast(name: str, raw: str) -> int:
        return _whole(name, raw, high)

    return cast


def at_least(low: int) -> Callable[[str, str], int]:
    """A cast to a whole number from `low`, where less cannot work (a URL
    lifetime rounded down to the minute needs two)."""

    def cast(name: str, raw: str) -> int:
        return _whole(name, raw, _MOST, low)

    return cast


def _whole(name: str, raw: str, high: int, low: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be from {low} to {high}")
    return value


def as_port(name: str, raw: str) -> int:
    """1 to 65535: the port printed and signed URLs name (`serve --port 0`
    picks a free one, and those URLs follow it)."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise ConfigError(
            f"{name} must be a TCP port from 1 to 65535, not {raw!r} "
            "(`serve --port 0` picks a free one)"
        )
    return value


def as_seconds(name: str, raw: str) -> float:
    value = _seconds(name, raw)
    if not 0 <= value < 86_400:
        raise ConfigError(f"{name} must be from 0 to less than 86400 seconds")
    return value


def as_timeout(name: str, raw: str) -> float:
    """Seconds, never 0: a wait of nothing (see `Settings.validate`)."""
    value = _seconds(name, raw)
    if not 0 < value < 86_400:
        raise ConfigError(timeout_range(name))
    return value


def timeout_range(name: str) -> str:
    return f"{name} must be more than 0 and less than 86400 seconds"


def _seconds(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None


def as_bool(name: str, raw: str) -> bool:
    match raw.lower():
        case "1" | "true":
            return True
        case "0" | "false":
            return False
        case _:
            raise ConfigError(f"{name} must be one of 1, true, 0, false")


def as_delivery(name: str, raw: str) -> Delivery:
    if raw == "redirect":
        return "redirect"
    if raw == "render":
        return "render"
    raise ConfigError(f"{name} must be 'redirect' or 'render'")


def as_cdn(name: str, raw: str) -> Cdn:
    if raw == "cloudinary":
        return "cloudinary"
    if raw == "local":
        return "local"
    raise ConfigError(f"{name} must be 'cloudinary' or 'local'")


def as_hex_key(name: str, raw: str) -> str:
    """A key written in hex, as Cloudinary's console shows a token key."""
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError(f"{name} must be written in hex digits") from None
    if len(key) < 16:
        raise ConfigError(f"{name} must be at least 16 bytes (32 hex digits)")
    return raw.lower()


_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def as_log_level(name: str, raw: str) -> str:
    if raw.upper() not in _LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(_LOG_LEVELS)}")
    return raw.upper()


def as_http_url(name: str, raw: str) -> str:
    """An absolute http(s) URL that paths are appended to: no user or
    password (they would be copied into every printed URL), query or
    fragment (a path appended after them is no path)."""
    url = _parsed_url(raw)
    if url is None or url.scheme not in {"http", "https"} or not url.host:
        raise ConfigError(f"{name} must be an absolute http(s) URL")
    if url.user is not None or url.password is not None:
        raise ConfigError(f"{name} must not carry a user name or password")
    if url.query_string or url.fragment or "?" in raw or "#" in raw:
        raise ConfigError(f"{name} must not have a query or fragment")
    return str(url).rstrip("/")


def _parsed_url(raw: str) -> URL | None:
    """`raw` parsed, its port checked; None where yarl refuses it (a bad IPv6
    host, a port out of range)."""
    try:
        url = URL(raw)
        url.port  # noqa: B018 - yarl checks the port when it is read
    except ValueError:
        return None
    return url


def as_database_url(name: str, raw: str) -> str:
    """`sqlite:///relative/path`, `sqlite:////absolute/path` or `postgresql://…`.

    Never echoed back: a PostgreSQL URL may carry a password.
    """
    if raw.startswith("sqlite:///") and len(raw) > len("sqlite:///"):
        return raw
    try:
        url = URL(raw)
    except ValueError:
        url = URL()
    if url.scheme in {"postgresql", "postgres"} and url.host:
        authority = re.split(r"[/?#]", raw.partition("://")[2], maxsplit=1)[0]
        if authority.count("@") > 1:
            # yarl takes the last `@` for the host's start, asyncpg the first:
            # the gateway would connect to one host and name another.
            raise ConfigError(
                f"{name}: write an '@' in the user name or password as %40"
            )
        return raw
    raise ConfigError(
        f"{name} must be sqlite:///path/to/catalog.sqlite3 or "
        "postgresql://user:password@host:port/database"
    )


# Cloudinary's cloud names: letters, digits and `-` (its naming conventions);
# `_` too, for older accounts'.
_CLOUD_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")


def as_cloudinary(name: str, raw: str) -> CloudinaryAccount:
    """`cloudinary://api_key:api_secret@cloud_name[?secure_distribution=…&private_cdn=true&upload_prefix=…]`."""
    try:
        url = URL(raw)
    except ValueError:
        raise ConfigError(f"{name} is not a URL") from None
    if (
        url.scheme != "cloudinary"
        or not url.raw_host
        or not url.user
        or not url.password
    ):
        raise ConfigError(
            f"{name} must look like cloudinary://api_key:api_secret@cloud_name"
        )
    if url.path not in {"", "/"} or url.raw_fragment:
        # Nothing reads them: a cloud name with a slash, a URL of another kind.
        raise ConfigError(
            f"{name} must look like cloudinary://api_key:api_secret@cloud_name"
            " (no path or fragment)"
        )
    if not _CLOUD_NAME.fullmatch(url.raw_host):
        # Else it went as written into every redirect and Upload API URL
        # (`c%zz`: a malformed URL; `c%2Fx`: another path), serve up.
        raise ConfigError(
            f"{name}: {url.raw_host!r} is not a cloud name (letters, digits, - and _)"
        )
    private_cdn = url.query.get("private_cdn", "false")
    upload_prefix = url.query.get("upload_prefix") or None
    if upload_prefix is not None:
        upload_prefix = as_http_url(f"{name} upload_prefix", upload_prefix)
    return CloudinaryAccount(
        cloud_name=url.raw_host,
        api_key=url.user,
        api_secret=url.password,
        secure_distribution=url.query.get("secure_distribution") or None,
        private_cdn=as_bool(f"{name} private_cdn", private_cdn),
        upload_prefix=upload_prefix,
    )


def as_ladder(name: str, raw: str) -> tuple[int, ...]:
    """Comma-separated sizes in pixels, ascending (`64,128,256`)."""
    try:
        rungs = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be whole numbers separated by commas") from None
    if not rungs or any(r < 1 for r in rungs) or list(rungs) != sorted(set(rungs)):
        raise ConfigError(f"{name} must be positive sizes in ascending order")
    if len(rungs) > 64:
        raise ConfigError(f"{name} may have at most 64 sizes")
    return rungs


def as_origins(name: str, raw: str) -> frozenset[str]:
    """`*`, or comma-separated origins (`https://app.example, http://localhost:3000`)."""
    origins = frozenset(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins - {"*"}:
        url = _parsed_url(origin)
        if (
            url is None
            or url.scheme not in {"http", "https"}
            or not url.host
            or url.path not in {"", "/"}
            or url.query_string
        ):
            raise ConfigError(
                f"{name}: {origin!r} is not an origin (scheme://host[:port])"
            )
    return origins


def as_token_name(name: str, raw: str) -> str:
    """A cookie name: an RFC 6265 token."""
    if not raw or any(
        c in '()<>@,;:\\"/[]?={} \t' or not 32 < ord(c) < 127 for c in raw
    ):
        raise ConfigError(f"{name} must be a cookie name (letters, digits, - _ .)")
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Location:
    """Where originals live in an S3-compatible store: a bucket, and a key prefix
    (empty, or ending in `/`)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


# S3's bucket naming rules (no upper case, no underscores: names are DNS labels).
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART: Final = re.compile(r"[A-Za-z0-9._-]+")


def as_s3_url(name: str, raw: str) -> S3Location:
    """`s3://bucket` or `s3://bucket/some/prefix`."""
    scheme, sep, rest = raw.partition("://")
    if scheme != "s3" or not sep:
        raise ConfigError(f"{name} must look like s3://bucket/prefix")
    bucket, _, path = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(f"{name}: {bucket!r} is not an S3 bucket name")
    parts = [part for part in path.split("/") if part]
    if any(part in {".", ".."} or not _PREFIX_PART.fullmatch(part) for part in parts):
        raise ConfigError(
            f"{name}: the prefix may hold only letters, digits and . _ - /"
        )
    return S3Location(bucket=bucket, prefix="".join(f"{part}/" for part in parts))
