"""Settings from the environment: strict casts, named failures, a documented table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import ConfigError, Settings
from transforms import DEFAULT_BASE_CHAIN

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_render_locally_without_cloudinary() -> None:
    settings = Settings.from_env({})
    assert settings.delivery == "render"
    assert settings.cloudinary is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path("var")
    assert settings.base_chain == DEFAULT_BASE_CHAIN
    assert settings.token_leeway == 30.0
    assert settings.limits.max_size == 4096


def test_cloudinary_url_in_the_sdks_format_selects_redirects() -> None:
    settings = Settings.from_env(
        {
            "CLOUDINARY_URL": "cloudinary://123:abc@demo?secure_distribution=img.example.com"
        }
    )
    assert settings.delivery == "redirect"
    assert settings.cloudinary is not None
    assert settings.cloudinary.cloud_name == "demo"
    assert settings.cloudinary.api_key == "123"
    assert settings.cloudinary.api_secret == "abc"
    assert settings.cloudinary.secure_distribution == "img.example.com"
    assert "abc" not in repr(settings)


def test_render_can_be_forced_with_cloudinary_configured() -> None:
    settings = Settings.from_env(
        {"CLOUDINARY_URL": "cloudinary://1:2@c", "GATEWAY_DELIVERY": "render"}
    )
    assert settings.delivery == "render"


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
    assert settings.port == 9000
    assert settings.limits.max_size == 2000
    assert settings.limits.max_steps == 4
    assert settings.token_leeway == 5.0
    assert settings.access_log is False


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
            {"GATEWAY_BASE_CHAIN": "l_fetch:aHR0cA"}, "GATEWAY_BASE_CHAIN", id="chain"
        ),
        pytest.param(
            {"GATEWAY_DELIVERY_TYPE": "fetch"}, "GATEWAY_DELIVERY_TYPE", id="type"
        ),
        pytest.param({"GATEWAY_PUBLIC_URL": "ftp://x"}, "GATEWAY_PUBLIC_URL", id="url"),
        pytest.param({"GATEWAY_LOG_LEVEL": "LOUD"}, "GATEWAY_LOG_LEVEL", id="level"),
        pytest.param(
            {"GATEWAY_TOKEN_LEEWAY": "-1"}, "GATEWAY_TOKEN_LEEWAY", id="negative-leeway"
        ),
    ],
)
def test_bad_setting_names_its_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(environ)


def test_readme_documents_every_variable() -> None:
    source = (ROOT / "gateway" / "config.py").read_text()
    read = set(re.findall(r'"((?:GATEWAY_[A-Z_]+)|CLOUDINARY_URL)"', source))
    readme = (ROOT / "README.md").read_text()
    documented = set(
        re.findall(r"^\| `((?:GATEWAY_[A-Z_]+)|CLOUDINARY_URL)` \|", readme, re.M)
    )
    assert read
    assert read == documented
