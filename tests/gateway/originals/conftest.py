"""A fake resolver for the origin tests (names answer from the `dns` fixture),
and each kind of originals store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest
from aiohttp.resolver import ThreadedResolver

from gateway import Settings
from gateway.originals import OriginalStore, open_store, origin_fetch
from tests.conftest import render_settings
from tests.s3 import S3Server, s3_settings

_AddrInfo = tuple[
    socket.AddressFamily | int,
    socket.SocketKind | int,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int],
]


@pytest.fixture
def dns() -> Mapping[str, Sequence[str]]:
    """Name -> addresses; a module overrides it with the names it needs."""
    return {}


@pytest.fixture
async def fake_dns(
    dns: Mapping[str, Sequence[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answer from `dns`, and refuse every other name as a resolver would."""

    async def getaddrinfo(
        host: str,
        port: int,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[_AddrInfo]:
        if host not in dns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[_AddrInfo] = []
        for address in dns[host]:
            if ":" in address:
                sockaddr: tuple[str, int] | tuple[str, int, int, int] = (
                    address,
                    port,
                    0,
                    0,
                )
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", sockaddr))
            else:
                infos.append(
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                )
        return infos

    # The thread-pool resolver (not c-ares, should aiodns be installed) calls
    # the loop's getaddrinfo, which is what the fake replaces.
    monkeypatch.setattr(origin_fetch, "DefaultResolver", ThreadedResolver)
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each kind of originals store: the tests run against both."""
    settings = render_settings(tmp_path)
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket: str = request.getfixturevalue("s3_bucket")
        settings = s3_settings(settings, server, bucket)
    return settings


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[OriginalStore]:
    async with open_store(store_settings) as store:
        yield store
