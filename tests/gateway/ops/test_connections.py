"""The served process bounds its connections: how many, how slow to start, how idle."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """`python -m gateway serve` processes started by a test, stopped after it."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.processes: list[subprocess.Popen[str]] = []

    def __call__(self, **environ: str) -> int:
        """Start one with extra environment; its port once it listens."""
        env = {**os.environ, "GATEWAY_DATA_DIR": str(self._data_dir)}
        env["GATEWAY_PORT"] = str(_free_port())
        env.pop("CLOUDINARY_URL", None)
        env.update(environ)
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(server)
        assert server.stdout is not None
        for line in server.stdout:
            if line.startswith("image-gateway listening on"):
                return int(line.rsplit(":", 1)[1])
        raise AssertionError("the gateway did not start")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    for server in served.processes:
        if server.returncode is None:
            server.terminate()
        server.communicate(timeout=10)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection, within `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_connections_past_the_bound_are_503_and_closed(
    serve: Served,
) -> None:
    port = serve(GATEWAY_MAX_CONNECTIONS="2")
    held = [await _connect(port) for _ in range(2)]
    await asyncio.sleep(0.1)
    reader, writer = await _connect(port)
    answer = await _closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 1" in answer
    writer.close()
    for _, held_writer in held:
        held_writer.close()
    await asyncio.sleep(0.1)
    reader, writer = await _connect(port)  # room again
    writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await _closed_within(reader, 5)).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_a_request_head_slower_than_the_timeout_is_cut(
    serve: Served,
) -> None:
    port = serve(GATEWAY_HEADER_TIMEOUT="0.5")
    reader, writer = await _connect(port)
    started = time.monotonic()
    writer.write(b"GET /status HTTP/1.1\r\n")
    for _ in range(3):
        await asyncio.sleep(0.2)
        writer.write(b"X-Slow: y\r\n")
    assert await _closed_within(reader, 5) == b""
    assert time.monotonic() - started < 3
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed(
    serve: Served,
) -> None:
    port = serve(GATEWAY_IDLE_TIMEOUT="0.5", GATEWAY_HEADER_TIMEOUT="5")
    reader, writer = await _connect(port)
    writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    rest = await _closed_within(reader, 5)  # the body, then the close
    assert rest.endswith(b"}")
    assert time.monotonic() - started < 3
    writer.close()


def test_sigterm_stops_the_server_cleanly(serve: Served) -> None:
    serve()
    (server,) = serve.processes
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=10)
    assert server.returncode == 0, output
    assert "Traceback" not in output
