"""Settings from the environment: strict casts, named failures, a documented table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import ConfigError, Settings
from gateway.config import (
    DEFAULT_PUBLIC_SIZES,
    CatalogSettings,
    S3Location,
    variables,
)
from transforms import DEFAULT_BASE_CHAIN

ROOT = Path(__file__).resolve().parents[2]
_S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIDVALUE",
    "AWS_SECRET_ACCESS_KEY": "secret-access-key-value",
}


def test_defaults_render_locally_without_cloudinary() -> None:
    settings = Settings.from_env({})
    assert settings.upstream.delivery == "render"
    assert settings.upstream.cloudinary is None
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path("var")
    assert settings.upstream.base_chain == DEFAULT_BASE_CHAIN
    assert settings.tokens.leeway == 30.0
    assert settings.limits.max_size == 4096


def test_cloudinary_url_in_the_sdks_format_selects_redirects() -> None:
    settings = Settings.from_env(
        {
            "CLOUDINARY_URL": "cloudinary://123:abc@demo?secure_distribution=img.example.com"
        }
    )
    assert settings.upstream.delivery == "redirect"
    assert settings.upstream.cloudinary is not None
    assert settings.upstream.cloudinary.cloud_name == "demo"
    assert settings.upstream.cloudinary.api_key == "123"
    assert settings.upstream.cloudinary.api_secret == "abc"
    assert settings.upstream.cloudinary.secure_distribution == "img.example.com"
    assert "abc" not in repr(settings)


def test_render_can_be_forced_with_cloudinary_configured() -> None:
    settings = Settings.from_env(
        {"CLOUDINARY_URL": "cloudinary://1:2@c", "GATEWAY_DELIVERY": "render"}
    )
    assert settings.upstream.delivery == "render"


def test_numbers_and_limits_are_read() -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_PORT": "9000",
            "GATEWAY_MAX_SIZE": "2000",
            "GATEWAY_MAX_STEPS": "4",
            "GATEWAY_TOKEN_LEEWAY": "5",
            "GATEWAY_ACCESS_LOG": "false",
        }
    )
    assert settings.server.port == 9000
    assert settings.limits.max_size == 2000
    assert settings.limits.max_steps == 4
    assert settings.tokens.leeway == 5.0
    assert settings.server.access_log is False


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        pytest.param({"GATEWAY_PORT": "http"}, "GATEWAY_PORT", id="port-not-a-number"),
        pytest.param({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT", id="port-too-big"),
        pytest.param({"GATEWAY_MAX_SIZE": "0"}, "GATEWAY_MAX_SIZE", id="zero-limit"),
        pytest.param({"GATEWAY_ACCESS_LOG": "yes"}, "GATEWAY_ACCESS_LOG", id="bool"),
        pytest.param({"GATEWAY_DELIVERY": "proxy"}, "GATEWAY_DELIVERY", id="delivery"),
        pytest.param(
            {"GATEWAY_DELIVERY": "redirect"},
            "CLOUDINARY_URL",
            id="redirect-needs-cloud",
        ),
        pytest.param({"CLOUDINARY_URL": "https://x"}, "CLOUDINARY_URL", id="cloud-url"),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://key@cloud"},
            "CLOUDINARY_URL",
            id="no-secret",
        ),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://1:2@c%zz"},
            "CLOUDINARY_URL",
            id="cloud-name-escape",
        ),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://1:2@c%2Fx"},
            "CLOUDINARY_URL",
            id="cloud-name-slash",
        ),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://1:2@c/extra"},
            "CLOUDINARY_URL",
            id="cloud-path",
        ),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://1:2@c#x"},
            "CLOUDINARY_URL",
            id="cloud-fragment",
        ),
        pytest.param(
            {"GATEWAY_BASE_CHAIN": "l_fetch:aHR0cA"}, "GATEWAY_BASE_CHAIN", id="chain"
        ),
        pytest.param(
            {"GATEWAY_DELIVERY_TYPE": "fetch"}, "GATEWAY_DELIVERY_TYPE", id="type"
        ),
        pytest.param({"GATEWAY_PUBLIC_URL": "ftp://x"}, "GATEWAY_PUBLIC_URL", id="url"),
        pytest.param({"GATEWAY_LOG_LEVEL": "LOUD"}, "GATEWAY_LOG_LEVEL", id="level"),
        pytest.param(
            {"GATEWAY_SESSION_COOKIE": "a b"}, "GATEWAY_SESSION_COOKIE", id="cookie"
        ),
        pytest.param(
            {"GATEWAY_SESSION_COOKIE": "a;b"}, "GATEWAY_SESSION_COOKIE", id="cookie;"
        ),
        pytest.param(
            {"GATEWAY_CORS_ORIGINS": "app.example"}, "GATEWAY_CORS_ORIGINS", id="origin"
        ),
        pytest.param(
            {"GATEWAY_CORS_ORIGINS": "https://a.example/path"},
            "GATEWAY_CORS_ORIGINS",
            id="origin-path",
        ),
        pytest.param(
            {"GATEWAY_PUBLIC_SIZES": "100,50"},
            "GATEWAY_PUBLIC_SIZES",
            id="ladder-order",
        ),
        pytest.param(
            {"GATEWAY_PUBLIC_SIZES": "0,50"}, "GATEWAY_PUBLIC_SIZES", id="ladder-zero"
        ),
        pytest.param(
            {"GATEWAY_PUBLIC_SIZES": "a"}, "GATEWAY_PUBLIC_SIZES", id="ladder-text"
        ),
        pytest.param(
            {**_S3_CREDENTIALS, "GATEWAY_ORIGINALS_URL": "https://bucket/x"},
            "GATEWAY_ORIGINALS_URL",
            id="originals-not-s3",
        ),
        pytest.param(
            {**_S3_CREDENTIALS, "GATEWAY_ORIGINALS_URL": "s3://Not_A_Bucket"},
            "GATEWAY_ORIGINALS_URL",
            id="originals-bucket-name",
        ),
        pytest.param(
            {**_S3_CREDENTIALS, "GATEWAY_ORIGINALS_URL": "s3://bucket/a/../b"},
            "GATEWAY_ORIGINALS_URL",
            id="originals-dot-dot",
        ),
        pytest.param(
            {"GATEWAY_ORIGINALS_URL": "s3://bucket/originals"},
            "GATEWAY_ORIGINALS_URL",
            id="originals-without-credentials",
        ),
        pytest.param(
            {"GATEWAY_S3_ENDPOINT": "http://127.0.0.1:9000"},
            "GATEWAY_S3_ENDPOINT",
            id="endpoint-without-originals-url",
        ),
        pytest.param(
            {
                **_S3_CREDENTIALS,
                "GATEWAY_ORIGINALS_URL": "s3://bucket",
                "GATEWAY_S3_ENDPOINT": "ftp://127.0.0.1",
            },
            "GATEWAY_S3_ENDPOINT",
            id="endpoint-not-http",
        ),
        pytest.param(
            {"GATEWAY_TOKEN_LEEWAY": "-1"}, "GATEWAY_TOKEN_LEEWAY", id="negative-leeway"
        ),
        # aiohttp reads 0 as "no timeout": a proxied fetch could hang.
        pytest.param(
            {"GATEWAY_PROXY_READ_TIMEOUT": "0"},
            "GATEWAY_PROXY_READ_TIMEOUT",
            id="zero-read-timeout",
        ),
        pytest.param(
            {"GATEWAY_PROXY_CONNECT_TIMEOUT": "0"},
            "GATEWAY_PROXY_CONNECT_TIMEOUT",
            id="zero-connect-timeout",
        ),
        # Each refused everything at once: every render 503, every new
        # connection closed at its start, every query a 503.
        *(
            pytest.param({name: "0"}, name, id=f"zero-{name.lower()}")
            for name in (
                "GATEWAY_UPSTREAM_TIMEOUT",
                "GATEWAY_HEADER_TIMEOUT",
                "GATEWAY_DATABASE_TIMEOUT",
                "GATEWAY_RENDER_TIMEOUT",
                "GATEWAY_INGEST_TIMEOUT",
                "GATEWAY_BODY_TIMEOUT",
            )
        ),
        # An allow-list: one that names no host, or not a host, was read as
        # "any public host" or a host no origin can have.
        *(
            pytest.param(
                {"GATEWAY_INGEST_ALLOWED_HOSTS": hosts},
                "GATEWAY_INGEST_ALLOWED_HOSTS",
                id=f"allowed-hosts-{hosts!r}",
            )
            for hosts in (
                " ",
                ",",
                " , ,",
                "-1",
                "a b-c.example",
                "example..com",
                "ex_ample.com",
                "example.com-",
                "https://example.com",
                "example.com:443",
                "*.example.com",
                "a" * 64 + ".example",
                # Ending in a number: IPv4 to a resolver, in its one spelling.
                "127.1",
                "0x7f.1",
                "1.2.3.04",
                "a.00",
                ".0.1",
                "9",
                "xn--zz.example",
            )
        ),
        pytest.param({"GATEWAY_CDN": "akamai"}, "GATEWAY_CDN", id="cdn"),
        pytest.param(
            {"GATEWAY_CDN": "local", "CLOUDINARY_URL": "cloudinary://1:2@c"},
            "GATEWAY_CDN=local stands in for Cloudinary: unset CLOUDINARY_URL",
            id="local-cdn-and-cloudinary",
        ),
        pytest.param(
            {"GATEWAY_CDN_TOKEN_KEY": "not hex"}, "GATEWAY_CDN_TOKEN_KEY", id="key-hex"
        ),
        pytest.param(
            {"GATEWAY_CDN_TOKEN_KEY": "abcd"}, "GATEWAY_CDN_TOKEN_KEY", id="key-short"
        ),
        pytest.param(
            {"CLOUDINARY_URL": "cloudinary://1:2@c?upload_prefix=ftp://x"},
            "CLOUDINARY_URL upload_prefix",
            id="upload-prefix",
        ),
        pytest.param(
            {"GATEWAY_DATABASE_URL": "mysql://u:p@h/db"},
            "GATEWAY_DATABASE_URL",
            id="database-scheme",
        ),
        pytest.param(
            {"GATEWAY_DATABASE_URL": "postgresql:///no-host"},
            "GATEWAY_DATABASE_URL",
            id="database-host",
        ),
        pytest.param(
            {"GATEWAY_DATABASE_URL": "sqlite:///"}, "GATEWAY_DATABASE_URL", id="no-path"
        ),
    ],
)
def test_bad_setting_names_its_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("raw", "hosts"),
    [
        ("example.org", {"example.org"}),
        (" Example.ORG , .cdn.example ,", {"example.org", ".cdn.example"}),
        ("xn--bcher-kva.example", {"xn--bcher-kva.example"}),
        # As yarl encodes an origin's host, so that the two compare equal.
        (
            "Bücher.example, .bücher.example",
            {"xn--bcher-kva.example", ".xn--bcher-kva.example"},
        ),
        ("203.0.113.5", {"203.0.113.5"}),
        ("a-b.c1.example", {"a-b.c1.example"}),
        ("example.org., .cdn.example.", {"example.org", ".cdn.example"}),
    ],
)
def test_allowed_hosts_are_read_in_their_ascii_form(raw: str, hosts: set[str]) -> None:
    settings = Settings.from_env({"GATEWAY_INGEST_ALLOWED_HOSTS": raw})
    assert settings.ingest.allowed_hosts == hosts


@pytest.mark.parametrize(
    ("raw", "bucket", "prefix"),
    [
        pytest.param("s3://originals", "originals", "", id="bucket"),
        pytest.param("s3://my.bucket-1/a/b", "my.bucket-1", "a/b/", id="prefix"),
        pytest.param("s3://b12//a//", "b12", "a/", id="slashes"),
    ],
)
def test_originals_url_names_a_bucket_and_a_prefix(
    raw: str, bucket: str, prefix: str
) -> None:
    settings = Settings.from_env({**_S3_CREDENTIALS, "GATEWAY_ORIGINALS_URL": raw})
    assert settings.store.url == S3Location(bucket=bucket, prefix=prefix)


def test_s3_credentials_never_appear_in_the_settings_repr() -> None:
    settings = Settings.from_env(
        {
            **_S3_CREDENTIALS,
            "AWS_SESSION_TOKEN": "session-token-value",
            "GATEWAY_ORIGINALS_URL": "s3://bucket",
        }
    )
    assert settings.store.secret_access_key == "secret-access-key-value"
    for secret in ("secret-access-key-value", "session-token-value", "AKIDVALUE"):
        assert secret not in repr(settings)


def test_a_local_cdn_redirects_without_cloudinary() -> None:
    settings = Settings.from_env({"GATEWAY_CDN": "local"})
    assert settings.upstream.cdn == "local"
    assert settings.upstream.delivery == "redirect"
    assert settings.upstream.cloudinary is None
    assert settings.cdn == Path("var") / "cdn"


def test_the_cdn_token_key_stays_out_of_repr() -> None:
    key = "0123456789abcdef" * 4
    settings = Settings.from_env({"GATEWAY_CDN_TOKEN_KEY": key.upper()})
    assert settings.upstream.cdn_token_key == key
    assert key not in repr(settings).lower()


def test_readme_documents_every_variable() -> None:
    """The README's table lists exactly the variables the settings read."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(
        r"^\| `((?:GATEWAY_[A-Z0-9_]+)|(?:AWS_[A-Z_]+)|CLOUDINARY_URL)` \| ([^|]+) \| ([^|]+) \|$",
        readme,
        re.M,
    )
    documented = [name for name, _, _ in rows]
    assert sorted(documented) == sorted(set(variables()))
    assert len(documented) == len(set(documented))
    assert all(default.strip() and meaning.strip() for _, default, meaning in rows)


def test_every_variable_is_read_into_its_field() -> None:
    """Each variable reaches the field whose metadata names it (none ignored)."""
    environ = dict.fromkeys(variables(), "7")
    environ |= {
        "GATEWAY_HOST": "0.0.0.0",  # noqa: S104 - a value, not a bind
        "GATEWAY_PUBLIC_URL": "https://img.example.com",
        "GATEWAY_DATA_DIR": "/srv/gateway",
        "CLOUDINARY_URL": "cloudinary://k:s@cloud",
        "GATEWAY_DELIVERY": "redirect",
        "GATEWAY_BASE_CHAIN": "c_fit,w_7",
        "GATEWAY_DELIVERY_TYPE": "upload",
        "GATEWAY_TOKEN_AUDIENCE": "aud",
        "GATEWAY_GUEST_UPLOADS": "true",
        "GATEWAY_GUEST_ISSUER": "6b6fdb7b-65cb-4acf-97b9-d25eff795348",
        "GATEWAY_INGEST_ALLOWED_HOSTS": "example.org",
        "GATEWAY_INGEST_ALLOW_PRIVATE": "true",
        "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        "GATEWAY_ACCESS_LOG": "false",
        "GATEWAY_LOG_LEVEL": "debug",
        "GATEWAY_DEMO": "true",
        "GATEWAY_SESSION_COOKIE": "sid",
        "GATEWAY_CORS_ORIGINS": "https://app.example",
        "GATEWAY_PUBLIC_SIZES": "3,7",
        "GATEWAY_ORIGINALS_URL": "s3://bucket/originals",
        "GATEWAY_S3_ENDPOINT": "http://127.0.0.1:9000",
        # GATEWAY_CDN=local refuses CLOUDINARY_URL: read in its own test.
        "GATEWAY_CDN": "cloudinary",
        "GATEWAY_CDN_TOKEN_KEY": "ab" * 16,
        "GATEWAY_DATABASE_URL": "postgresql://gw@db.internal/gateway",
        "GATEWAY_CDN_URL_MAX_AGE": "700",  # at least 120
    }
    settings = Settings.from_env(environ)
    assert settings != Settings()
    defaults = Settings()
    for section in (
        "server",
        "tokens",
        "catalog",
        "render",
        "ingest",
        "upstream",
        "store",
        "access",
    ):
        changed = getattr(settings, section)
        default = getattr(defaults, section)
        for name in changed.__dataclass_fields__:
            if (section, name) == ("upstream", "cdn"):
                continue
            assert getattr(changed, name) != getattr(default, name), (section, name)
    for name in settings.limits.__dataclass_fields__:
        assert getattr(settings.limits, name) == 7, name
    assert settings.data_dir == Path("/srv/gateway")


@pytest.mark.parametrize(
    ("url", "sqlite", "postgres"),
    [
        pytest.param(None, Path("/srv/gw/catalog.sqlite3"), None, id="unset"),
        pytest.param(
            "sqlite:///db/c.sqlite3", Path("db/c.sqlite3"), None, id="relative"
        ),
        pytest.param(
            "sqlite:////abs/c.sqlite3", Path("/abs/c.sqlite3"), None, id="abs"
        ),
        pytest.param("postgresql://u:p@h:5/d", None, "postgresql://u:p@h:5/d", id="pg"),
    ],
)
def test_the_database_url_picks_the_catalog(
    url: str | None, sqlite: Path | None, postgres: str | None
) -> None:
    environ = {"GATEWAY_DATA_DIR": "/srv/gw"}
    if url is not None:
        environ["GATEWAY_DATABASE_URL"] = url
    settings = Settings.from_env(environ)
    assert settings.catalog.postgres_url == postgres
    if sqlite is not None:
        assert settings.database == sqlite


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:p@ss@h/db", "postgresql://u@x:p@h:5/db?a=b", "postgresql://a@b@h"],
)
def test_a_database_url_with_a_bare_at_in_its_userinfo_is_refused(url: str) -> None:
    """yarl reads the host from the last `@`, asyncpg from the first: it would
    connect to one host and every message would name the other."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GATEWAY_DATABASE_URL": url})
    assert str(refused.value) == (
        "GATEWAY_DATABASE_URL: write an '@' in the user name or password as %40"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40ss@h/db",
        "postgresql://u@h/db?application_name=a@b",
        "postgresql://u@h/db#a@b",
        "postgresql://u@[::1]:5432/db",
    ],
)
def test_an_at_outside_the_userinfo_is_no_fault(url: str) -> None:
    settings = Settings.from_env({"GATEWAY_DATABASE_URL": url})
    assert settings.catalog.postgres_url == url


def test_a_bad_database_url_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    """It may carry a password."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GATEWAY_DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(
        Settings(catalog=CatalogSettings(database_url="postgresql://u:hunter2@h/db"))
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param(
            {"GATEWAY_MAX_SIZE": "1000"},
            f"the default GATEWAY_BASE_CHAIN ({DEFAULT_BASE_CHAIN}) (step 0, width): "
            "must be between 1 and 1000; set GATEWAY_BASE_CHAIN to one within "
            "GATEWAY_MAX_SIZE",
            id="default-chain-over-a-lowered-max",
        ),
        pytest.param(
            {"GATEWAY_MAX_SIZE": "1000", "GATEWAY_BASE_CHAIN": "c_fit,w_1500"},
            "GATEWAY_BASE_CHAIN (step 0, width): must be between 1 and 1000",
            id="own-chain-over-max",
        ),
    ],
)
def test_a_base_chain_over_the_size_limit_says_which_and_why(
    environ: dict[str, str], message: str
) -> None:
    """Lowering GATEWAY_MAX_SIZE alone used to blame a chain never set."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(environ)
    assert str(refused.value) == message


def test_a_base_chain_within_a_lowered_max_is_taken() -> None:
    settings = Settings.from_env(
        {"GATEWAY_MAX_SIZE": "1000", "GATEWAY_BASE_CHAIN": "c_fit,w_900"}
    )
    assert settings.upstream.base_chain == "c_fit,w_900"


def test_a_ladder_of_ones_own_over_the_max_size_is_refused() -> None:
    """Sizes set and never served would be a silent surprise: refused at start."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"GATEWAY_PUBLIC_SIZES": "100,4000,5000,6000"})
    assert str(refused.value) == (
        "GATEWAY_PUBLIC_SIZES: 5000, 6000 over GATEWAY_MAX_SIZE (4096); "
        "drop them or raise GATEWAY_MAX_SIZE"
    )
    settings = Settings.from_env(
        {"GATEWAY_PUBLIC_SIZES": "100,5000", "GATEWAY_MAX_SIZE": "5000"}
    )
    assert settings.access.public_sizes == (100, 5000)


def test_the_default_ladder_starts_with_a_lowered_max_size() -> None:
    """Lowering the max alone must not make the operator restate the ladder."""
    settings = Settings.from_env(
        {"GATEWAY_MAX_SIZE": "1000", "GATEWAY_BASE_CHAIN": "c_fit,w_900"}
    )
    assert settings.access.public_sizes == DEFAULT_PUBLIC_SIZES


def test_the_default_worker_counts_follow_the_cpus_this_process_may_use() -> None:
    """Its affinity, not the machine's cores: pinned to one CPU, one worker
    (a container's CPU quota counts the same way, read from cgroup v2)."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from gateway.config import Settings; s = Settings(); "
        "print(s.server.workers, s.render.workers)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["1", "2"]  # render threads: at least 2
