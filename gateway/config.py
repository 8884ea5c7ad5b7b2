"""Settings, parsed once from the environment into a frozen object."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Self, TypeVar

from yarl import URL

from transforms import (
    DEFAULT_BASE_CHAIN,
    CloudinaryAccount,
    Limits,
    TransformError,
    parse_base_chain,
)
from transforms.chain import parse_render_base
from transforms.cloudinary import DELIVERY_TYPES

__all__ = ["ConfigError", "Delivery", "Settings"]

Delivery = Literal["redirect", "render"]
_T = TypeVar("_T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # how clients reach us; default http://host:port
    data_dir: Path = Path("var")
    cloudinary: CloudinaryAccount | None = field(default=None, repr=False)
    delivery: Delivery = "render"
    base_chain: str = DEFAULT_BASE_CHAIN
    delivery_type: str = "authenticated"
    token_leeway: float = 30.0
    token_max_bytes: int = 4096
    token_audience: str | None = None
    token_cache_size: int = 10_000
    catalog_cache_size: int = 10_000
    url_cache_size: int = 10_000
    catalog_poll_interval: float = 1.0
    limits: Limits = Limits()
    render_workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    render_queue: int = 16  # renders waiting for a worker before 503s
    render_cache_bytes: int = 64 * 1024 * 1024
    render_max_age: int = 3600  # Cache-Control max-age of a rendered image
    jpeg_quality: int = 82  # also WebP/AVIF quality, when the chain says q_auto
    max_upload_bytes: int = 10 * 1024 * 1024
    guest_uploads: bool = False
    guest_issuer: str | None = None
    guest_max_upload_bytes: int = 2 * 1024 * 1024
    ingest_allowed_hosts: frozenset[str] = frozenset()  # empty: any public host
    ingest_allow_private: bool = False  # development and tests only
    ingest_timeout: float = 20.0
    ingest_concurrency: int = 4
    upstream_timeout: float = 30.0
    access_log: bool = True
    log_level: str = "INFO"
    demo: bool = False

    def __post_init__(self) -> None:
        try:
            parse_base_chain(self.base_chain)
        except TransformError as exc:
            raise ConfigError(f"GATEWAY_BASE_CHAIN: {exc.detail}") from exc
        if self.delivery == "redirect" and self.cloudinary is None:
            raise ConfigError("GATEWAY_DELIVERY=redirect needs CLOUDINARY_URL")
        try:
            parse_render_base(self.base_chain, self.limits)
        except TransformError as exc:
            if self.delivery == "render":
                raise ConfigError(f"GATEWAY_BASE_CHAIN: {exc.detail}") from exc
        if self.guest_uploads and self.guest_issuer is None:
            raise ConfigError("GATEWAY_GUEST_UPLOADS needs GATEWAY_GUEST_ISSUER")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError("GATEWAY_JPEG_QUALITY must be between 1 and 100")
        if self.delivery_type not in DELIVERY_TYPES:
            raise ConfigError(
                f"GATEWAY_DELIVERY_TYPE must be one of {', '.join(sorted(DELIVERY_TYPES))}"
            )

    @property
    def base_url(self) -> URL:
        if self.public_url is not None:
            return URL(self.public_url)
        return URL.build(scheme="http", host=self.host, port=self.port)

    @property
    def database(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def originals(self) -> Path:
        return self.data_dir / "originals"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Build from `GATEWAY_*` variables and the SDK's own `CLOUDINARY_URL`."""

        def get(name: str, cast: Callable[[str, str], _T], default: _T) -> _T:
            raw = environ.get(name)
            return default if raw is None or raw == "" else cast(name, raw)

        d = cls()  # the defaults live in the field declarations only
        cloudinary = get("CLOUDINARY_URL", _cloudinary, None)
        lim = d.limits
        limits = Limits(
            max_size=get("GATEWAY_MAX_SIZE", _positive, lim.max_size),
            max_offset=get("GATEWAY_MAX_OFFSET", _positive, lim.max_offset),
            max_steps=get("GATEWAY_MAX_STEPS", _positive, lim.max_steps),
            max_overlays=get("GATEWAY_MAX_OVERLAYS", _positive, lim.max_overlays),
            max_source_pixels=get(
                "GATEWAY_MAX_SOURCE_PIXELS", _positive, lim.max_source_pixels
            ),
            max_output_pixels=get(
                "GATEWAY_MAX_OUTPUT_PIXELS", _positive, lim.max_output_pixels
            ),
        )
        default_delivery: Delivery = "redirect" if cloudinary else "render"
        return cls(
            host=get("GATEWAY_HOST", _str, d.host),
            port=get("GATEWAY_PORT", _port, d.port),
            public_url=get("GATEWAY_PUBLIC_URL", _http_url, d.public_url),
            data_dir=get("GATEWAY_DATA_DIR", _path, d.data_dir),
            cloudinary=cloudinary,
            delivery=get("GATEWAY_DELIVERY", _delivery, default_delivery),
            base_chain=get("GATEWAY_BASE_CHAIN", _str, d.base_chain),
            delivery_type=get("GATEWAY_DELIVERY_TYPE", _str, d.delivery_type),
            token_leeway=get("GATEWAY_TOKEN_LEEWAY", _seconds, d.token_leeway),
            token_max_bytes=get(
                "GATEWAY_TOKEN_MAX_BYTES", _positive, d.token_max_bytes
            ),
            token_audience=get("GATEWAY_TOKEN_AUDIENCE", _str, d.token_audience),
            token_cache_size=get(
                "GATEWAY_TOKEN_CACHE_SIZE", _positive, d.token_cache_size
            ),
            catalog_cache_size=get(
                "GATEWAY_CATALOG_CACHE_SIZE", _positive, d.catalog_cache_size
            ),
            url_cache_size=get("GATEWAY_URL_CACHE_SIZE", _positive, d.url_cache_size),
            catalog_poll_interval=get(
                "GATEWAY_CATALOG_POLL_INTERVAL", _seconds, d.catalog_poll_interval
            ),
            limits=limits,
            render_workers=get("GATEWAY_RENDER_WORKERS", _positive, d.render_workers),
            render_queue=get("GATEWAY_RENDER_QUEUE", _positive, d.render_queue),
            render_cache_bytes=get(
                "GATEWAY_RENDER_CACHE_BYTES", _positive, d.render_cache_bytes
            ),
            render_max_age=get("GATEWAY_RENDER_MAX_AGE", _positive, d.render_max_age),
            jpeg_quality=get("GATEWAY_JPEG_QUALITY", _positive, d.jpeg_quality),
            max_upload_bytes=get(
                "GATEWAY_MAX_UPLOAD_BYTES", _positive, d.max_upload_bytes
            ),
            guest_uploads=get("GATEWAY_GUEST_UPLOADS", _bool, d.guest_uploads),
            guest_issuer=get("GATEWAY_GUEST_ISSUER", _uuid, d.guest_issuer),
            guest_max_upload_bytes=get(
                "GATEWAY_GUEST_MAX_UPLOAD_BYTES", _positive, d.guest_max_upload_bytes
            ),
            ingest_allowed_hosts=get(
                "GATEWAY_INGEST_ALLOWED_HOSTS", _hosts, d.ingest_allowed_hosts
            ),
            ingest_allow_private=get(
                "GATEWAY_INGEST_ALLOW_PRIVATE", _bool, d.ingest_allow_private
            ),
            ingest_timeout=get("GATEWAY_INGEST_TIMEOUT", _seconds, d.ingest_timeout),
            ingest_concurrency=get(
                "GATEWAY_INGEST_CONCURRENCY", _positive, d.ingest_concurrency
            ),
            upstream_timeout=get(
                "GATEWAY_UPSTREAM_TIMEOUT", _seconds, d.upstream_timeout
            ),
            access_log=get("GATEWAY_ACCESS_LOG", _bool, d.access_log),
            log_level=get("GATEWAY_LOG_LEVEL", _log_level, d.log_level),
            demo=get("GATEWAY_DEMO", _bool, d.demo),
        )


_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def _str(name: str, raw: str) -> str:
    return raw


def _uuid(name: str, raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a UUID") from None


def _hosts(name: str, raw: str) -> frozenset[str]:
    hosts = frozenset(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not all(
            part.isalnum() or "-" in part for part in host.strip(".").split(".")
        ):
            raise ConfigError(f"{name}: {host!r} is not a host name")
    return hosts


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _positive(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def _port(name: str, raw: str) -> int:
    value = _positive(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535)")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value < 86_400:
        raise ConfigError(f"{name} must be between 0 and 86400 seconds")
    return value


def _bool(name: str, raw: str) -> bool:
    match raw.lower():
        case "1" | "true":
            return True
        case "0" | "false":
            return False
        case _:
            raise ConfigError(f"{name} must be one of 1, true, 0, false")


def _delivery(name: str, raw: str) -> Delivery:
    if raw == "redirect":
        return "redirect"
    if raw == "render":
        return "render"
    raise ConfigError(f"{name} must be 'redirect' or 'render'")


def _log_level(name: str, raw: str) -> str:
    if raw.upper() not in _LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(_LOG_LEVELS)}")
    return raw.upper()


def _http_url(name: str, raw: str) -> str:
    url = URL(raw)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigError(f"{name} must be an absolute http(s) URL")
    return str(url).rstrip("/")


def _cloudinary(name: str, raw: str) -> CloudinaryAccount:
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
        private_cdn=_bool(f"{name} private_cdn", private_cdn),
    )
