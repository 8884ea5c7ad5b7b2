"""Settings, parsed once from the environment into frozen sections.

Each field names its environment variable in its metadata (`_var`); `from_env`
and the README's configuration table (checked by a test) both read that, so a
setting cannot exist without its variable, nor be undocumented. The variable
names are a public contract: sections group them, never rename them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import ipaddress
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from yarl import URL

from gateway.env import (
    Cdn,
    ConfigError,
    Delivery,
    S3Location,
    as_bool,
    as_cdn,
    as_cloudinary,
    as_database_url,
    as_delivery,
    as_hex_key,
    as_hosts,
    as_http_url,
    as_ladder,
    as_log_level,
    as_networks,
    as_origins,
    as_path,
    as_port,
    as_positive,
    as_s3_url,
    as_seconds,
    as_str,
    as_timeout,
    as_token_name,
    as_uuid,
    at_least,
    at_most,
    timeout_range,
)
from transforms import (
    DEFAULT_BASE_CHAIN,
    MAX_SIDE,
    Limits,
    TransformError,
    parse_base_chain,
    parse_render_base,
)
from transforms.cloudinary import DELIVERY_TYPES, CloudinaryAccount

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_PUBLIC_SIZES",
    "MAX_WORKERS",
    "MIN_CDN_URL_MAX_AGE",
    "AccessSettings",
    "CatalogSettings",
    "ConfigError",
    "Delivery",
    "IngestSettings",
    "OriginalsSettings",
    "RenderSettings",
    "S3Location",
    "ServerSettings",
    "Settings",
    "TokenSettings",
    "UpstreamSettings",
    "available_cpus",
    "data_dir_faults",
    "unknown_variables",
    "variables",
]

Cast = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class _Var:
    name: str
    cast: Cast


def _var(name: str, cast: Cast) -> dict[str, _Var]:
    return {"var": _Var(name, cast)}


# Worker processes of a `serve`, and render threads of a worker: a typo of a
# few digits would fork (or spawn) until the machine stops.
MAX_WORKERS: Final = 256
# Seconds: a redirect's `__cld_token__` expiry is rounded down to the minute,
# so anything shorter could hand out a URL that has already expired.
MIN_CDN_URL_MAX_AGE: Final = 120


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity (`taskset`, a cpuset),
    and a cgroup v2 CPU quota (a container's `--cpus`), rounded up; not every
    core of the machine, which a container limited to 2 CPUs on a 64-core
    node would otherwise start 64 workers for."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    count = count or os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return count


# Sections


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = field(default="127.0.0.1", metadata=_var("GATEWAY_HOST", as_str))
    port: int = field(default=8080, metadata=_var("GATEWAY_PORT", as_port))
    # How clients reach us; default http://host:port.
    public_url: str | None = field(
        default=None, metadata=_var("GATEWAY_PUBLIC_URL", as_http_url)
    )
    access_log: bool = field(default=True, metadata=_var("GATEWAY_ACCESS_LOG", as_bool))
    # Proxies whose X-Forwarded-For the access log believes.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default=(), metadata=_var("GATEWAY_TRUSTED_PROXIES", as_networks)
    )
    log_level: str = field(
        default="INFO", metadata=_var("GATEWAY_LOG_LEVEL", as_log_level)
    )
    demo: bool = field(default=False, metadata=_var("GATEWAY_DEMO", as_bool))
    # Processes serving the one port (`serve`); each has its own event loop.
    workers: int = field(
        default_factory=lambda: min(available_cpus(), MAX_WORKERS),
        metadata=_var("GATEWAY_WORKERS", at_most(MAX_WORKERS)),
    )
    # Connections open at once; past it, a new one is answered 503 and closed.
    max_connections: int = field(
        default=1024, metadata=_var("GATEWAY_MAX_CONNECTIONS", as_positive)
    )
    # Seconds a new connection may take to send its first request's head.
    header_timeout: float = field(
        default=10.0, metadata=_var("GATEWAY_HEADER_TIMEOUT", as_timeout)
    )
    # On SIGTERM: seconds /readyz says 503 while still accepting (a load
    # balancer's time to notice), then seconds requests in flight may take.
    drain_delay: float = field(
        default=0.0, metadata=_var("GATEWAY_DRAIN_DELAY", as_seconds)
    )
    shutdown_timeout: float = field(
        default=30.0, metadata=_var("GATEWAY_SHUTDOWN_TIMEOUT", as_seconds)
    )
    # Seconds a kept-alive connection may sit idle between requests.
    idle_timeout: float = field(
        default=30.0, metadata=_var("GATEWAY_IDLE_TIMEOUT", as_seconds)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSettings:
    leeway: float = field(
        default=30.0, metadata=_var("GATEWAY_TOKEN_LEEWAY", as_seconds)
    )
    max_bytes: int = field(
        default=4096, metadata=_var("GATEWAY_TOKEN_MAX_BYTES", at_most(65_536))
    )
    audience: str | None = field(
        default=None, metadata=_var("GATEWAY_TOKEN_AUDIENCE", as_str)
    )
    cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_TOKEN_CACHE_SIZE", at_most(10_000_000))
    )
    url_cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_URL_CACHE_SIZE", at_most(10_000_000))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    cache_size: int = field(
        default=10_000, metadata=_var("GATEWAY_CATALOG_CACHE_SIZE", at_most(10_000_000))
    )
    # At most this many seconds after a change, every process sees it (the
    # version check behind PostgreSQL's notifications, and SQLite's check);
    # also how long cached answers are served after the last successful check.
    poll_interval: float = field(
        default=1.0, metadata=_var("GATEWAY_CATALOG_POLL_INTERVAL", as_seconds)
    )
    # Unset: SQLite in GATEWAY_DATA_DIR. sqlite:///path or postgresql://….
    database_url: str | None = field(
        default=None,
        repr=False,
        metadata=_var("GATEWAY_DATABASE_URL", as_database_url),
    )
    # PostgreSQL connections per worker process (plus one that listens).
    pool_size: int = field(
        default=4, metadata=_var("GATEWAY_DATABASE_POOL_SIZE", as_positive)
    )
    # Seconds to connect or run one query before the answer is 503.
    database_timeout: float = field(
        default=5.0, metadata=_var("GATEWAY_DATABASE_TIMEOUT", as_timeout)
    )

    @property
    def postgres_url(self) -> str | None:
        url = self.database_url
        return None if url is None or url.startswith("sqlite:") else url


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderSettings:
    workers: int = field(
        default_factory=lambda: min(max(available_cpus(), 2), MAX_WORKERS),
        metadata=_var("GATEWAY_RENDER_WORKERS", at_most(MAX_WORKERS)),
    )
    # Renders waiting for a worker before 503s.
    queue: int = field(default=16, metadata=_var("GATEWAY_RENDER_QUEUE", as_positive))
    # A render's longest wait for its answer: then 503 with Retry-After, the
    # render going on to the cache for the retry. Below CDNs' origin timeouts.
    timeout: float = field(
        default=20.0, metadata=_var("GATEWAY_RENDER_TIMEOUT", as_timeout)
    )
    cache_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_var("GATEWAY_RENDER_CACHE_BYTES", as_positive),
    )
    max_age: int = field(
        default=3600, metadata=_var("GATEWAY_RENDER_MAX_AGE", as_positive)
    )
    # Decoded pyramid levels of originals, for IIIF tiles.
    level_cache_bytes: int = field(
        default=256 * 1024 * 1024,
        metadata=_var("GATEWAY_RENDER_LEVEL_CACHE_BYTES", as_positive),
    )
    # Pixels the renders in flight may hold in all (4 bytes each: 150 M is
    # 600 MB); renders past it wait their turn.
    pixel_budget: int = field(
        default=150_000_000, metadata=_var("GATEWAY_RENDER_PIXEL_BUDGET", as_positive)
    )
    # Also WebP/AVIF quality, when the chain says q_auto.
    jpeg_quality: int = field(
        default=82, metadata=_var("GATEWAY_JPEG_QUALITY", at_most(100))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    max_upload_bytes: int = field(
        default=10 * 1024 * 1024,
        metadata=_var("GATEWAY_MAX_UPLOAD_BYTES", as_positive),
    )
    guest_uploads: bool = field(
        default=False, metadata=_var("GATEWAY_GUEST_UPLOADS", as_bool)
    )
    guest_issuer: str | None = field(
        default=None, metadata=_var("GATEWAY_GUEST_ISSUER", as_uuid)
    )
    guest_max_upload_bytes: int = field(
        default=2 * 1024 * 1024,
        metadata=_var("GATEWAY_GUEST_MAX_UPLOAD_BYTES", as_positive),
    )
    # Empty: any public host.
    allowed_hosts: frozenset[str] = field(
        default=frozenset(), metadata=_var("GATEWAY_INGEST_ALLOWED_HOSTS", as_hosts)
    )
    # Development and tests only.
    allow_private: bool = field(
        default=False, metadata=_var("GATEWAY_INGEST_ALLOW_PRIVATE", as_bool)
    )
    timeout: float = field(
        default=20.0, metadata=_var("GATEWAY_INGEST_TIMEOUT", as_timeout)
    )
    concurrency: int = field(
        default=4, metadata=_var("GATEWAY_INGEST_CONCURRENCY", as_positive)
    )
    # Seconds a request body may take to arrive, whole: a client that sends
    # a byte a second holds no slot, spool file or lock for longer.
    body_timeout: float = field(
        default=60.0, metadata=_var("GATEWAY_BODY_TIMEOUT", as_timeout)
    )
    uploads_per_key: int = field(
        default=4, metadata=_var("GATEWAY_UPLOADS_PER_KEY", as_positive)
    )
    uploads_in_flight: int = field(
        default=32, metadata=_var("GATEWAY_UPLOADS_IN_FLIGHT", as_positive)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    """Cloudinary, and how delivery uses it."""

    cloudinary: CloudinaryAccount | None = field(
        default=None, repr=False, metadata=_var("CLOUDINARY_URL", as_cloudinary)
    )
    # `local`: a stand-in of Cloudinary's delivery endpoint, served under
    # /cdn by the gateway itself, with an account of its own in the data dir.
    cdn: Cdn = field(default="cloudinary", metadata=_var("GATEWAY_CDN", as_cdn))
    # Cloudinary's token-based authentication: redirects expire with tokens.
    cdn_token_key: str | None = field(
        default=None, repr=False, metadata=_var("GATEWAY_CDN_TOKEN_KEY", as_hex_key)
    )
    cdn_url_max_age: int = field(
        default=3600,
        metadata=_var("GATEWAY_CDN_URL_MAX_AGE", at_least(MIN_CDN_URL_MAX_AGE)),
    )
    # Default: redirect with CLOUDINARY_URL or GATEWAY_CDN=local, else render
    # (see `from_env`).
    delivery: Delivery = field(
        default="render", metadata=_var("GATEWAY_DELIVERY", as_delivery)
    )
    base_chain: str = field(
        default=DEFAULT_BASE_CHAIN, metadata=_var("GATEWAY_BASE_CHAIN", as_str)
    )
    delivery_type: str = field(
        default="authenticated", metadata=_var("GATEWAY_DELIVERY_TYPE", as_str)
    )
    timeout: float = field(
        default=30.0, metadata=_var("GATEWAY_UPSTREAM_TIMEOUT", as_timeout)
    )
    # Proxied images (`gateway.delivery.proxy`): the largest passed through,
    # and the pool of connections to Cloudinary's delivery hosts.
    proxy_max_bytes: int = field(
        default=25 * 1024 * 1024,
        metadata=_var("GATEWAY_PROXY_MAX_BYTES", as_positive),
    )
    # Connecting, waiting for a free pooled connection included.
    proxy_connect_timeout: float = field(
        default=5.0, metadata=_var("GATEWAY_PROXY_CONNECT_TIMEOUT", as_timeout)
    )
    # The longest silence: before the answer (a first transformation takes
    # Cloudinary a while), and between two chunks of it.
    proxy_read_timeout: float = field(
        default=15.0, metadata=_var("GATEWAY_PROXY_READ_TIMEOUT", as_timeout)
    )
    proxy_connections: int = field(
        default=100, metadata=_var("GATEWAY_PROXY_CONNECTIONS", as_positive)
    )


# The sizes unsigned public URLs are served at: every few hundred pixels up to 4K.
DEFAULT_PUBLIC_SIZES: Final = (
    64, 96, 128, 160, 200, 256, 320, 400, 480, 560, 640, 720, 800, 960, 1080,
    1200, 1280, 1440, 1600, 1920, 2048, 2560, 3200, 3840, 4096,
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessSettings:
    """Who may get pixels without a transformation token, and how."""

    max_lifetime: int = field(
        default=86_400,
        metadata=_var("GATEWAY_ACCESS_TOKEN_MAX_LIFETIME", as_positive),
    )
    session_cookie: str = field(
        default="gateway_session",
        metadata=_var("GATEWAY_SESSION_COOKIE", as_token_name),
    )
    cors_origins: frozenset[str] = field(
        default=frozenset(), metadata=_var("GATEWAY_CORS_ORIGINS", as_origins)
    )
    public_sizes: tuple[int, ...] = field(
        default=DEFAULT_PUBLIC_SIZES,
        metadata=_var("GATEWAY_PUBLIC_SIZES", as_ladder),
    )
    public_max_age: int = field(
        default=86_400, metadata=_var("GATEWAY_PUBLIC_MAX_AGE", as_positive)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginalsSettings:
    """Where originals are stored: `GATEWAY_DATA_DIR/originals`, or an
    S3-compatible store that many replicas share.

    The credentials are the usual AWS variables, read here like every other
    setting and handed to the SDK explicitly: its own chain (profiles, and the
    instance-metadata service it would otherwise ask over the network) is
    never consulted.
    """

    # Unset: the local directory; s3://bucket/prefix: an S3-compatible store.
    url: S3Location | None = field(
        default=None, metadata=_var("GATEWAY_ORIGINALS_URL", as_s3_url)
    )
    # Unset: AWS's own endpoint for the region.
    s3_endpoint: str | None = field(
        default=None, metadata=_var("GATEWAY_S3_ENDPOINT", as_http_url)
    )
    s3_region: str = field(default="us-east-1", metadata=_var("AWS_REGION", as_str))
    access_key_id: str | None = field(
        default=None, repr=False, metadata=_var("AWS_ACCESS_KEY_ID", as_str)
    )
    secret_access_key: str | None = field(
        default=None, repr=False, metadata=_var("AWS_SECRET_ACCESS_KEY", as_str)
    )
    session_token: str | None = field(
        default=None, repr=False, metadata=_var("AWS_SESSION_TOKEN", as_str)
    )
    # Bytes of originals read from S3 each worker keeps for the next render.
    cache_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_var("GATEWAY_ORIGINALS_CACHE_BYTES", as_positive),
    )

    def __post_init__(self) -> None:
        if self.url is None:
            if self.s3_endpoint is not None:
                raise ConfigError(
                    "GATEWAY_S3_ENDPOINT needs GATEWAY_ORIGINALS_URL=s3://bucket/prefix"
                )
        elif self.access_key_id is None or self.secret_access_key is None:
            raise ConfigError(
                "GATEWAY_ORIGINALS_URL=s3://… needs AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            )


# `transforms.Limits` is pure and knows no environment: its variables live here.
_LIMIT_VARS: Final[Mapping[str, _Var]] = {
    "max_size": _Var("GATEWAY_MAX_SIZE", at_most(MAX_SIDE)),
    "max_offset": _Var("GATEWAY_MAX_OFFSET", at_most(MAX_SIDE)),
    "max_steps": _Var("GATEWAY_MAX_STEPS", at_most(256)),
    "max_overlays": _Var("GATEWAY_MAX_OVERLAYS", at_most(256)),
    "max_source_pixels": _Var("GATEWAY_MAX_SOURCE_PIXELS", as_positive),
    "max_output_pixels": _Var("GATEWAY_MAX_OUTPUT_PIXELS", as_positive),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = field(
        default=Path("var"), metadata=_var("GATEWAY_DATA_DIR", as_path)
    )
    server: ServerSettings = ServerSettings()
    tokens: TokenSettings = TokenSettings()
    catalog: CatalogSettings = CatalogSettings()
    render: RenderSettings = field(default_factory=RenderSettings)
    ingest: IngestSettings = IngestSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    access: AccessSettings = AccessSettings()

    store: OriginalsSettings = OriginalsSettings()
    limits: Limits = Limits()

    def __post_init__(self) -> None:
        upstream = self.upstream
        try:
            parse_base_chain(upstream.base_chain)
        except TransformError as exc:
            raise ConfigError(f"GATEWAY_BASE_CHAIN: {exc.detail}") from exc
        if upstream.cdn == "local" and upstream.cloudinary is not None:
            raise ConfigError(
                "GATEWAY_CDN=local stands in for Cloudinary: unset CLOUDINARY_URL, "
                "or set GATEWAY_CDN=cloudinary"
            )
        if (
            upstream.delivery == "redirect"
            and upstream.cloudinary is None
            and upstream.cdn != "local"
        ):
            raise ConfigError(
                "GATEWAY_DELIVERY=redirect needs CLOUDINARY_URL (or GATEWAY_CDN=local)"
            )
        try:
            parse_render_base(upstream.base_chain, self.limits)
        except TransformError as exc:
            if upstream.delivery == "render":
                raise ConfigError(_base_chain_fault(upstream.base_chain, exc)) from exc
        ladder, max_size = self.access.public_sizes, self.limits.max_size
        if ladder != DEFAULT_PUBLIC_SIZES and ladder[-1] > max_size:
            # The default ladder is cut at a lowered GATEWAY_MAX_SIZE (the
            # operator changed the max, not the ladder); a ladder of one's own
            # is not silently served short of its top.
            over = ", ".join(str(r) for r in ladder if r > max_size)
            raise ConfigError(
                f"GATEWAY_PUBLIC_SIZES: {over} over GATEWAY_MAX_SIZE ({max_size}); "
                "drop them or raise GATEWAY_MAX_SIZE"
            )
        if self.ingest.guest_uploads and self.ingest.guest_issuer is None:
            raise ConfigError("GATEWAY_GUEST_UPLOADS needs GATEWAY_GUEST_ISSUER")
        if not 1 <= self.render.jpeg_quality <= 100:
            raise ConfigError("GATEWAY_JPEG_QUALITY must be from 1 to 100")
        # A wait of nothing: aiohttp reads a zero timeout as none at all (a
        # proxied fetch could hang); the others would refuse everything at
        # once (every render 503, every new connection closed at its start).
        for name, seconds in (
            ("GATEWAY_PROXY_CONNECT_TIMEOUT", upstream.proxy_connect_timeout),
            ("GATEWAY_PROXY_READ_TIMEOUT", upstream.proxy_read_timeout),
            ("GATEWAY_UPSTREAM_TIMEOUT", upstream.timeout),
            ("GATEWAY_HEADER_TIMEOUT", self.server.header_timeout),
            ("GATEWAY_DATABASE_TIMEOUT", self.catalog.database_timeout),
            ("GATEWAY_RENDER_TIMEOUT", self.render.timeout),
            ("GATEWAY_INGEST_TIMEOUT", self.ingest.timeout),
            ("GATEWAY_BODY_TIMEOUT", self.ingest.body_timeout),
        ):
            if not 0 < seconds < 86_400:
                raise ConfigError(timeout_range(name))
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
        """The SQLite catalog's file (unless GATEWAY_DATABASE_URL names PostgreSQL)."""
        url = self.catalog.database_url
        if url is not None and url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///"))
        return self.data_dir / "catalog.sqlite3"

    @property
    def originals(self) -> Path:
        """The local originals' directory (unless `store.url` names S3)."""
        return self.data_dir / "originals"

    @property
    def cdn(self) -> Path:
        """The local stand-in's account and asset index (GATEWAY_CDN=local)."""
        return self.data_dir / "cdn"

    @property
    def uploads(self) -> Path:
        """Where multipart uploads are spooled while they arrive."""
        return self.data_dir / "uploads"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Build from `GATEWAY_*` variables and the SDK's own `CLOUDINARY_URL`."""
        upstream = UpstreamSettings(**_values(_vars(UpstreamSettings), environ))
        if not environ.get("GATEWAY_DELIVERY"):
            cdn = upstream.cloudinary is not None or upstream.cdn == "local"
            delivery: Delivery = "redirect" if cdn else "render"
            upstream = dataclasses.replace(upstream, delivery=delivery)
        return cls(
            **_values(_vars(cls), environ),
            server=ServerSettings(**_values(_vars(ServerSettings), environ)),
            tokens=TokenSettings(**_values(_vars(TokenSettings), environ)),
            catalog=CatalogSettings(**_values(_vars(CatalogSettings), environ)),
            render=RenderSettings(**_values(_vars(RenderSettings), environ)),
            ingest=IngestSettings(**_values(_vars(IngestSettings), environ)),
            upstream=upstream,
            access=AccessSettings(**_values(_vars(AccessSettings), environ)),
            store=OriginalsSettings(**_values(_vars(OriginalsSettings), environ)),
            limits=Limits(**_values(_LIMIT_VARS.items(), environ)),
        )


_SECTIONS: Final = (
    Settings,
    ServerSettings,
    TokenSettings,
    CatalogSettings,
    RenderSettings,
    IngestSettings,
    UpstreamSettings,
    AccessSettings,
    OriginalsSettings,
)


def _vars(section: type[DataclassInstance]) -> Iterator[tuple[str, _Var]]:
    """Each field of a section that is read from a variable, with its variable."""
    for f in dataclasses.fields(section):
        if isinstance(var := f.metadata.get("var"), _Var):
            yield f.name, var


def _values(
    fields: Iterable[tuple[str, _Var]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The fields whose variable is set (and not empty), cast."""
    return {
        name: var.cast(var.name, environ[var.name])
        for name, var in fields
        if environ.get(var.name)
    }


def variables() -> Iterator[str]:
    """Every environment variable a setting is read from (for the README check)."""
    for section in _SECTIONS:
        yield from (var.name for _, var in _vars(section))
    yield from (var.name for var in _LIMIT_VARS.values())


def unknown_variables(environ: Mapping[str, str]) -> Iterator[str]:
    """A warning for each `GATEWAY_*` variable that names no setting: a typo
    (`GATEWAY_PROT`) would otherwise leave the default in force in silence."""
    known = frozenset(variables())
    for name in sorted(environ):
        if name.startswith("GATEWAY_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield f"{name} is not a setting; ignored{hint}"


@contextlib.contextmanager
def data_dir_faults(settings: Settings) -> Iterator[None]:
    """The data directory's faults (a file, no rights) as one line naming it;
    or `GATEWAY_DATABASE_URL`'s, when the SQLite file it names elsewhere is
    what failed."""
    try:
        yield
    except OSError as exc:
        # A file where the directory should be: `mkdir` says "File exists".
        reason = (
            "not a directory"
            if isinstance(exc, FileExistsError | NotADirectoryError)
            else exc.strerror or str(exc)
        )
        raise ConfigError(f"{_faulty(settings, exc)}: {reason}") from None


def _faulty(settings: Settings, exc: OSError) -> str:
    """What an operator should look at: the data directory, unless the path
    that failed is the SQLite file `GATEWAY_DATABASE_URL` names outside it
    (or a directory on its way). The data directory was named, a fine one."""
    data_dir = settings.data_dir.resolve()
    if settings.catalog.database_url is not None and exc.filename is not None:
        failed = Path(os.fsdecode(exc.filename)).resolve()
        database = settings.database.resolve()
        if (failed == database or failed in database.parents) and not (
            failed.is_relative_to(data_dir)
        ):
            return f"GATEWAY_DATABASE_URL {settings.database}"
    return f"GATEWAY_DATA_DIR {settings.data_dir}"


def _base_chain_fault(chain: str, exc: TransformError) -> str:
    """Which part of the chain, and, when it is the default one, that it is:
    a lowered GATEWAY_MAX_SIZE is what the operator changed, not the chain."""
    step, _, option = (exc.pointer or "").removeprefix("/base_chain/").partition("/")
    part = f" (step {step}, {option})" if option else ""
    if chain != DEFAULT_BASE_CHAIN:
        return f"GATEWAY_BASE_CHAIN{part}: {exc.detail}"
    return (
        f"the default GATEWAY_BASE_CHAIN ({chain}){part}: {exc.detail}; "
        "set GATEWAY_BASE_CHAIN to one within GATEWAY_MAX_SIZE"
    )
