"""Settings, parsed once from the environment into frozen sections.

Each field names its environment variable in its metadata (`_var`); `from_env`
and the README's configuration table (checked by a test) both read that, so a
setting cannot exist without its variable, nor be undocumented. The variable
names are a public contract: sections group them, never rename them.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self, TypeVar

from yarl import URL

from transforms import (
    DEFAULT_BASE_CHAIN,
    Limits,
    TransformError,
    parse_base_chain,
    parse_render_base,
)
from transforms.cloudinary import DELIVERY_TYPES, CloudinaryAccount

__all__ = [
    "CatalogSettings",
    "ConfigError",
    "Delivery",
    "IngestSettings",
    "RenderSettings",
    "ServerSettings",
    "Settings",
    "TokenSettings",
    "UpstreamSettings",
    "variables",
]

Delivery = Literal["redirect", "render"]
_T = TypeVar("_T")
Cast = Callable[[str, str], Any]


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    cast: Cast


def _var(name: str, cast: Cast) -> dict[str, _Var]:
    return {"var": _Var(name, cast)}


# Casts: each names the variable in its error.


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


_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


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


# Sections


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = field(default="127.0.0.1", metadata=_var("GATEWAY_HOST", _str))
    port: int = field(default=8080, metadata=_var("GATEWAY_PORT", _port))
    # How clients reach us; default http://host:port.
    public_url: str | None = field(
        default=None, metadata=_var("GATEWAY_PUBLIC_URL", _http_url)
    )
    access_log: bool = field(default=True, metadata=_var("GATEWAY_ACCESS_LOG", _bool))
    log_level: str = field(
        default="INFO", metadata=_var("GATEWAY_LOG_LEVEL", _log_level)
    )
    demo: bool = field(default=False, metadata=_var("GATEWAY_DEMO", _bool))


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSettings:
    leeway: float = field(default=30.0, metadata=_var("GATEWAY_TOKEN_LEEWAY", _seconds))
    max_bytes: int = field(
        default=4096, metadata=_var("GATEWAY_TOKEN_MAX_BYTES", _positive)
    )
    audience: str | None = field(
        default=None, metadata=_var("GATEWAY_TOKEN_AUDIENCE", _str)
    )
    cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_TOKEN_CACHE_SIZE", _positive)
    )
    url_cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_URL_CACHE_SIZE", _positive)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_CATALOG_CACHE_SIZE", _positive)
    )
    poll_interval: float = field(
        default=1.0, metadata=_var("GATEWAY_CATALOG_POLL_INTERVAL", _seconds)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderSettings:
    workers: int = field(
        default_factory=lambda: os.cpu_count() or 2,
        metadata=_var("GATEWAY_RENDER_WORKERS", _positive),
    )
    # Renders waiting for a worker before 503s.
    queue: int = field(default=16, metadata=_var("GATEWAY_RENDER_QUEUE", _positive))
    cache_bytes: int = field(
        default=64 * 1024 * 1024, metadata=_var("GATEWAY_RENDER_CACHE_BYTES", _positive)
    )
    max_age: int = field(
        default=3600, metadata=_var("GATEWAY_RENDER_MAX_AGE", _positive)
    )
    # Also WebP/AVIF quality, when the chain says q_auto.
    jpeg_quality: int = field(
        default=82, metadata=_var("GATEWAY_JPEG_QUALITY", _positive)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    max_upload_bytes: int = field(
        default=10 * 1024 * 1024,
        metadata=_var("GATEWAY_MAX_UPLOAD_BYTES", _positive),
    )
    guest_uploads: bool = field(
        default=False, metadata=_var("GATEWAY_GUEST_UPLOADS", _bool)
    )
    guest_issuer: str | None = field(
        default=None, metadata=_var("GATEWAY_GUEST_ISSUER", _uuid)
    )
    guest_max_upload_bytes: int = field(
        default=2 * 1024 * 1024,
        metadata=_var("GATEWAY_GUEST_MAX_UPLOAD_BYTES", _positive),
    )
    # Empty: any public host.
    allowed_hosts: frozenset[str] = field(
        default=frozenset(), metadata=_var("GATEWAY_INGEST_ALLOWED_HOSTS", _hosts)
    )
    # Development and tests only.
    allow_private: bool = field(
        default=False, metadata=_var("GATEWAY_INGEST_ALLOW_PRIVATE", _bool)
    )
    timeout: float = field(
        default=20.0, metadata=_var("GATEWAY_INGEST_TIMEOUT", _seconds)
    )
    concurrency: int = field(
        default=4, metadata=_var("GATEWAY_INGEST_CONCURRENCY", _positive)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    """Cloudinary, and how delivery uses it."""

    cloudinary: CloudinaryAccount | None = field(
        default=None, repr=False, metadata=_var("CLOUDINARY_URL", _cloudinary)
    )
    # Default: redirect with CLOUDINARY_URL, else render (see `from_env`).
    delivery: Delivery = field(
        default="render", metadata=_var("GATEWAY_DELIVERY", _delivery)
    )
    base_chain: str = field(
        default=DEFAULT_BASE_CHAIN, metadata=_var("GATEWAY_BASE_CHAIN", _str)
    )
    delivery_type: str = field(
        default="authenticated", metadata=_var("GATEWAY_DELIVERY_TYPE", _str)
    )
    timeout: float = field(
        default=30.0, metadata=_var("GATEWAY_UPSTREAM_TIMEOUT", _seconds)
    )


# `transforms.Limits` is pure and knows no environment: its variables live here.
_LIMIT_VARS: Final[Mapping[str, _Var]] = {
    "max_size": _Var("GATEWAY_MAX_SIZE", _positive),
    "max_offset": _Var("GATEWAY_MAX_OFFSET", _positive),
    "max_steps": _Var("GATEWAY_MAX_STEPS", _positive),
    "max_overlays": _Var("GATEWAY_MAX_OVERLAYS", _positive),
    "max_source_pixels": _Var("GATEWAY_MAX_SOURCE_PIXELS", _positive),
    "max_output_pixels": _Var("GATEWAY_MAX_OUTPUT_PIXELS", _positive),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = field(
        default=Path("var"), metadata=_var("GATEWAY_DATA_DIR", _path)
    )
    server: ServerSettings = ServerSettings()
    tokens: TokenSettings = TokenSettings()
    catalog: CatalogSettings = CatalogSettings()
    render: RenderSettings = field(default_factory=RenderSettings)
    ingest: IngestSettings = IngestSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    limits: Limits = Limits()

    def __post_init__(self) -> None:
        upstream = self.upstream
        try:
            parse_base_chain(upstream.base_chain)
        except TransformError as exc:
            raise ConfigError(f"GATEWAY_BASE_CHAIN: {exc.detail}") from exc
        if upstream.delivery == "redirect" and upstream.cloudinary is None:
            raise ConfigError("GATEWAY_DELIVERY=redirect needs CLOUDINARY_URL")
        try:
            parse_render_base(upstream.base_chain, self.limits)
        except TransformError as exc:
            if upstream.delivery == "render":
                raise ConfigError(f"GATEWAY_BASE_CHAIN: {exc.detail}") from exc
        if self.ingest.guest_uploads and self.ingest.guest_issuer is None:
            raise ConfigError("GATEWAY_GUEST_UPLOADS needs GATEWAY_GUEST_ISSUER")
        if not 1 <= self.render.jpeg_quality <= 100:
            raise ConfigError("GATEWAY_JPEG_QUALITY must be between 1 and 100")
        if upstream.delivery_type not in DELIVERY_TYPES:
            raise ConfigError(
                f"GATEWAY_DELIVERY_TYPE must be one of {', '.join(sorted(DELIVERY_TYPES))}"
            )

    @property
    def base_url(self) -> URL:
        if self.server.public_url is not None:
            return URL(self.server.public_url)
        return URL.build(scheme="http", host=self.server.host, port=self.server.port)

    @property
    def database(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def originals(self) -> Path:
        return self.data_dir / "originals"

    @property
    def uploads(self) -> Path:
        """Where multipart uploads are spooled while they arrive."""
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Build from `GATEWAY_*` variables and the SDK's own `CLOUDINARY_URL`."""

        def read(section: type[_T]) -> _T:
            values = {}
            for f in dataclasses.fields(section):  # type: ignore[arg-type]
                var = f.metadata.get("var")
                raw = environ.get(var.name) if var is not None else None
                if raw:
                    values[f.name] = var.cast(var.name, raw)  # type: ignore[union-attr]
            return section(**values)

        upstream = read(UpstreamSettings)
        if "GATEWAY_DELIVERY" not in environ or not environ["GATEWAY_DELIVERY"]:
            delivery: Delivery = "redirect" if upstream.cloudinary else "render"
            upstream = dataclasses.replace(upstream, delivery=delivery)
        limits = Limits(
            **{
                name: var.cast(var.name, environ[var.name])
                for name, var in _LIMIT_VARS.items()
                if environ.get(var.name)
            }
        )
        data_dir = environ.get("GATEWAY_DATA_DIR")
        return cls(
            **({"data_dir": _path("GATEWAY_DATA_DIR", data_dir)} if data_dir else {}),
            server=read(ServerSettings),
            tokens=read(TokenSettings),
            catalog=read(CatalogSettings),
            render=read(RenderSettings),
            ingest=read(IngestSettings),
            upstream=upstream,
            limits=limits,
        )


def variables() -> Iterator[str]:
    """Every environment variable a setting is read from (for the README check)."""
    yield from (v.name for v in _LIMIT_VARS.values())
    for section in (Settings, ServerSettings, TokenSettings, CatalogSettings,
                    RenderSettings, IngestSettings, UpstreamSettings):  # fmt: skip
        for f in dataclasses.fields(section):
            if (var := f.metadata.get("var")) is not None:
                yield var.name
