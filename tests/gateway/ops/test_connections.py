"""The served process bounds its connections: how many, how slow to start, how idle."""

from __future__ import annotations

import asyncio
import signal
import time

from gateway.ops import ConnectionGuard
from tests.gateway.ops.conftest import Served


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection, within `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_connections_past_the_bound_are_503_and_closed(
    serve: Served,
) -> None:
    port = serve(GATEWAY_MAX_CONNECTIONS="2", GATEWAY_WORKERS="1")  # per worker
    held = [await _connect(port) for _ in range(2)]
    await asyncio.sleep(0.1)
    reader, writer = await _connect(port)
    answer = await _closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 1" in answer
    writer.close()
    for _, held_writer in held:
        held_writer.close()
    # Room again, once the server has seen the two close (a moment, or more
    # on a loaded machine): until then, 503 as above, or a reset (the 503 sent
    # and the connection closed with the request unread).
    deadline = time.monotonic() + 10
    while True:
        reader, writer = await _connect(port)
        writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            answer = await _closed_within(reader, 5)
        except ConnectionResetError:
            answer = b"reset"
        writer.close()
        refused = answer == b"reset" or answer.startswith(b"HTTP/1.1 503 ")
        if not refused or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]


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


async def test_a_burst_of_connections_is_bounded_too() -> None:
    """asyncio makes the protocols of a burst of accepted connections (queued
    while the loop was busy, at start-up say) one after another before any
    connection is made: counted at `connection_made`, all passed the bound."""
    guard = ConnectionGuard(asyncio.Protocol, max_connections=2, header_timeout=5)
    protocols = [guard() for _ in range(3)]
    assert [type(p).__name__ for p in protocols] == ["_Guarded", "_Guarded", "_Refused"]
    assert guard.open == 2
    for protocol in protocols[:2]:
        protocol.connection_lost(None)  # never made: the count still comes back
    assert guard.open == 0
