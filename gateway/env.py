"""Environment variables' text into typed values; each error names its variable."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from typing import Final, Literal

from yarl import URL

from transforms.cloudinary import CloudinaryAccount

__all__ = [
    "ConfigError",
    "Delivery",
    "as_bool",
    "as_cloudinary",
    "as_database_url",
    "as_delivery",
    "as_hosts",
    "as_http_url",
    "as_log_level",
    "as_networks",
    "as_path",
    "as_port",
    "as_positive",
    "as_seconds",
    "as_str",
    "as_uuid",
]

Delivery = Literal["redirect", "render"]


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def as_str(name: str, raw: str) -> str:
    return raw


def as_uuid(name: str, raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a UUID") from None


def as_hosts(name: str, raw: str) -> frozenset[str]:
    hosts = frozenset(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not all(
            part.isalnum() or "-" in part for part in host.strip(".").split(".")
        ):
            raise ConfigError(f"{name}: {host!r} is not a host name")
    return hosts


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


def as_positive(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def as_port(name: str, raw: str) -> int:
    value = as_positive(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535)")
    return value


def as_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value < 86_400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds")
    return value


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


_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def as_log_level(name: str, raw: str) -> str:
    if raw.upper() not in _LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(_LOG_LEVELS)}")
    return raw.upper()


def as_http_url(name: str, raw: str) -> str:
    url = URL(raw)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigError(f"{name} must be an absolute http(s) URL")
    return str(url).rstrip("/")


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
        return raw
    raise ConfigError(
        f"{name} must be sqlite:///path/to/catalog.sqlite3 or "
        "postgresql://user:password@host:port/database"
    )


def as_cloudinary(name: str, raw: str) -> CloudinaryAccount:
    """`cloudinary://api_key:api_secret@cloud_name[?secure_distribution=…&private_cdn=true]`."""
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
    private_cdn = url.query.get("private_cdn", "false")
    return CloudinaryAccount(
        cloud_name=url.raw_host,
        api_key=url.user,
        api_secret=url.password,
        secure_distribution=url.query.get("secure_distribution") or None,
        private_cdn=as_bool(f"{name} private_cdn", private_cdn),
    )
