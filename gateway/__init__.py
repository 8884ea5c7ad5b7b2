"""The aiohttp gateway: configuration, catalog, delivery, HTTP interface and CLI."""

from gateway.app import create_app
from gateway.config import ConfigError, Settings

__all__ = ["ConfigError", "Settings", "create_app"]
