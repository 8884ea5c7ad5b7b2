"""Assertions shared by the HTTP tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import asyncpg
from aiohttp import ClientResponse

from gateway import Settings


async def assert_error(
    response: ClientResponse,
    status: int,
    code: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> dict[str, object]:
    """A JSON:API error document with one error, its id the response's request id."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/vnd.api+json"
    assert response.headers["Cache-Control"] == "no-store"
    doc = await response.json(content_type=None)
    assert isinstance(doc, dict)
    (error,) = doc["errors"]
    assert error["id"] == response.headers["X-Request-Id"]
    assert error["status"] == str(status)
    assert error["code"] == code
    assert error["title"]
    assert error["detail"]
    source = error.get("source", {})
    if pointer is not None:
        assert source.get("pointer") == pointer
    if parameter is not None:
        assert source.get("parameter") == parameter
    assert "Traceback" not in str(doc)
    assert isinstance(error, dict)
    return error


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `condition()` holds: polling, since what it watches (files, a
    counter) has no event to await. Fails the test after `seconds`."""
    step = 0.01
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {seconds} s")


async def stored_bytes(settings: Settings) -> bytes:
    """Everything the catalog stores, as bytes: the SQLite file, or every row
    of every table of the PostgreSQL catalog's schema, as text."""
    url = settings.catalog.postgres_url
    if url is None:
        return await asyncio.to_thread(settings.database.read_bytes)
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        rows = [
            await conn.fetchval(
                f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM {name} t"  # noqa: S608 - the catalog's own table names
            )
            for (name,) in tables
        ]
    finally:
        await conn.close()
    return "\n".join(rows).encode()


def exactly(text: str) -> str:
    """A `pytest.raises(match=…)` pattern for the whole message, not a part of it."""
    return f"^{re.escape(text)}$"


def child_pids(parent: int) -> set[int]:
    """The processes whose parent is `parent`, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # pid (comm) state ppid …: comm may hold spaces, so from its `)`
            if int(stat.rpartition(")")[2].split()[1]) == parent:
                found.add(int(entry.name))
    return found


async def exchange(
    host: str, port: int, request: bytes
) -> tuple[str, dict[str, str], bytes]:
    """`request` sent as is on a new connection; the status line, the headers
    (names lower-cased) and the body of all that comes back until it closes,
    within 10 s."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parsed(answer)


def parsed(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    """The status line, headers (names lower-cased) and the rest of an answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


def announced(line: str | bytes) -> str:
    """The text of a line `serve` printed: its start-up lines are JSON records
    (`message`) when stdout is no terminal, as under a test."""
    text = line.decode() if isinstance(line, bytes) else line
    text = text.strip()
    if text.startswith("{"):
        message = json.loads(text).get("message")
        if isinstance(message, str):
            return message
    return text
