"""Start-up mistakes in one line, health probes, and a shutdown that drains."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.ops.conftest import Served, served_once, serving
from tests.helpers import announced, eventually
from tests.images import RED, solid


def _demo_started(
    env: dict[str, str], *, merged: bool = False
) -> subprocess.Popen[str]:
    """`serve --demo` on a free port, its stdout and stderr each a pipe of its
    own, or (`merged`) one pipe for both, as `2>&1`."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
    )


def test_a_port_in_use_is_one_line_and_nothing_claims_to_be_up(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = served_once(
            {
                "GATEWAY_DATA_DIR": str(tmp_path),
                "GATEWAY_PORT": str(port),
                "GATEWAY_DEMO": "1",
            }
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    # The reason once: socket.create_server's own message names the address again.
    assert line == (
        f"image-gateway: cannot listen on 127.0.0.1:{port} (GATEWAY_HOST or"
        f" --host, GATEWAY_PORT or --port): {os.strerror(errno.EADDRINUSE)}"
    )
    assert "listening" not in result.stdout
    assert "demo page" not in result.stdout


@pytest.mark.parametrize("host", ["::1", "[::1]"])  # as URLs write it, too
def test_an_ipv6_address_in_use_is_named_in_brackets(tmp_path: Path, host: str) -> None:
    try:
        taken = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with taken:
        port = taken.getsockname()[1]
        result = served_once(
            {
                "GATEWAY_DATA_DIR": str(tmp_path),
                "GATEWAY_HOST": host,
                "GATEWAY_PORT": str(port),
            }
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"image-gateway: cannot listen on [::1]:{port} (")
    # The address itself, in use: `[::1]` was looked up as a host name.
    assert line.endswith(os.strerror(errno.EADDRINUSE))


def test_a_data_dir_that_cannot_be_one_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = served_once({"GATEWAY_DATA_DIR": str(tmp_path / "a-file" / "data")})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("image-gateway: GATEWAY_DATA_DIR")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("issuer", "list")])
def test_a_sqlite_file_named_elsewhere_that_cannot_be_made_is_named(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`GATEWAY_DATABASE_URL`'s file under a file: the line named the data
    directory instead, which was fine."""
    (tmp_path / "a-file").write_text("not a folder")
    database = tmp_path / "a-file" / "catalog.sqlite3"
    result = served_once(
        {
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
        },
        command,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"image-gateway: GATEWAY_DATABASE_URL {database}: not a directory"
    assert result.stdout == ""


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}{path}", timeout=5
        ) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_live_and_ready_while_serving(serve: Served) -> None:
    port = serve()
    assert _get(port, "/livez") == (200, {"status": "live"})
    assert _get(port, "/readyz") == (200, {"status": "ready"})


async def test_a_stop_turns_readiness_off_first_and_lets_requests_finish(
    serve: Served,
) -> None:
    """SIGTERM: /readyz is 503 during the drain delay; a request under way
    still gets its answer; then the process exits 0."""
    port = serve(GATEWAY_DRAIN_DELAY="1", GATEWAY_SHUTDOWN_TIMEOUT="10")
    (server,) = serve.processes
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # A request whose body is still on its way when the signal comes.
    writer.write(
        b"PATCH /v1/images/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{"
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    server.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    status, body = await asyncio.to_thread(_get, port, "/readyz")
    assert (status, body) == (503, {"status": "draining"})
    writer.write(b"}")
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 401 ")  # answered (no key), not cut
    writer.close()
    output, _ = await asyncio.to_thread(server.communicate, timeout=15)
    assert server.returncode == 0, output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_either_signal_stops_it_cleanly(serve: Served, signum: int) -> None:
    serve()
    (server,) = serve.processes
    server.send_signal(signum)
    output, _ = server.communicate(timeout=15)
    assert server.returncode == 0, output
    assert "Traceback" not in output


async def _issuer_added(data_dir: Path) -> dict[str, Any]:
    """A new issuer and its API key, through the CLI (`issuer add`)."""
    added = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "issuer", "add"],
        env={**os.environ, "GATEWAY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    issuer: dict[str, Any] = json.loads(added.stdout)
    return issuer


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_an_upload_still_arriving_when_the_listener_closes_is_answered(
    serve: Served, tmp_path: Path, workers: str
) -> None:
    """aiohttp stops reading every connection as its shutdown begins: an
    upload whose body was still arriving waited for bytes nobody read, then
    was cut at GATEWAY_SHUTDOWN_TIMEOUT (30 s by default), unanswered. Now the
    requests under way finish first, their connections read, and the process
    exits as soon as they have."""
    issuer = await _issuer_added(tmp_path)
    port = serve(GATEWAY_WORKERS=workers, GATEWAY_SHUTDOWN_TIMEOUT="30")
    (server,) = serve.processes
    # A worker still starting at the stop holds the listener open meanwhile.
    await asyncio.to_thread(serving, port, int(workers))
    boundary = "xyzzy"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=image; "
            "filename=a.png\r\nContent-Type: image/png\r\n\r\n"
        ).encode()
        + solid((8, 8), RED, "PNG")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    # The part's headers and the file's first bytes: the rest still to come.
    sent = body.index(b"\r\n\r\n") + 4 + 8
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /v1/images HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {issuer['api_key']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[:sent]
    )
    await writer.drain()
    # In the worker's hands once it spools the file; a stop before, and
    # nothing was under way.
    await eventually(lambda: any((tmp_path / "uploads").glob("upload-*")))
    signalled = time.monotonic()
    server.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)  # the listener has closed meanwhile (no drain delay)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    writer.write(body[sent:])
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert b"Connection: close" in answer.split(b"\r\n\r\n")[0]
    writer.close()
    output, _ = await asyncio.to_thread(server.communicate, timeout=15)
    assert server.returncode == 0, output
    assert time.monotonic() - signalled < 10  # not the shutdown timeout


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_request_still_under_way_at_the_shutdown_timeout_is_cut(
    serve: Served, tmp_path: Path, workers: str
) -> None:
    """Once GATEWAY_SHUTDOWN_TIMEOUT is spent, aiohttp's own shutdown was
    handed what was left of it, 0, which aiohttp reads as no timeout at all:
    an upload whose client stalled kept the process up for as long as the
    client kept its connection open. Now it is cut and the process exits 0."""
    issuer = await _issuer_added(tmp_path)
    port = serve(GATEWAY_WORKERS=workers, GATEWAY_SHUTDOWN_TIMEOUT="1")
    (server,) = serve.processes
    # A worker still starting at the stop adds its start-up to the exit's time.
    await asyncio.to_thread(serving, port, int(workers))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # A file's first bytes, the rest announced and never sent: the client stalls.
        writer.write(
            (
                f"POST /v1/images HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {issuer['api_key']}\r\n"
                "X-Request-Id: cut-upload-0001\r\n"
                "Content-Type: multipart/form-data; boundary=xyzzy\r\n"
                "Content-Length: 100000\r\n\r\n--xyzzy\r\n"
                "Content-Disposition: form-data; name=image; filename=a.png\r\n"
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + solid((8, 8), RED, "PNG")[:8]
        )
        await writer.drain()
        # In the worker's hands once it spools the file; a stop before, and
        # nothing was under way.
        await eventually(lambda: any((tmp_path / "uploads").glob("upload-*")))
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(server.communicate, timeout=15)
        assert server.returncode == 0, output
        assert time.monotonic() - signalled < 5  # the timeout, not the client
        assert await asyncio.wait_for(reader.read(), 5) == b""  # cut, unanswered
        # No access-log line (no answer), but one line that says it was cut.
        (cut,) = [
            record
            for line in output.splitlines()
            if line.startswith("{")
            and (record := json.loads(line)).get("request_id") == "cut-upload-0001"
        ]
        assert cut["level"] == "WARNING"
        assert cut["message"].startswith("cut by the shutdown after ")
        assert cut["message"].endswith(" POST create_image, unanswered")
    finally:
        writer.close()


def _starting_behind_a_lock(
    tmp_path: Path,
) -> tuple[subprocess.Popen[str], sqlite3.Connection]:
    """`serve --demo` waiting in start-up for another process's write lock
    on its catalog (the demo's seeding waits for it), and that lock's holder."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_WORKERS": "1"}
    env.pop("CLOUDINARY_URL", None)
    subprocess.run(
        [sys.executable, "-m", "gateway", "db", "upgrade"],
        env=env,
        capture_output=True,
        check=True,
    )
    catalog = (tmp_path / "catalog.sqlite3").resolve()
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    server = _demo_started(env)
    deadline = time.monotonic() + 30
    while not _has_open(server.pid, catalog):
        assert time.monotonic() < deadline, "the catalog was never opened"
        time.sleep(0.05)
    time.sleep(0.3)  # waiting for the lock
    return server, holder


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` holds `path` open (Linux's /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        return any(fd.readlink() == path for fd in fds.iterdir())
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_starting_up_is_quiet_and_exits_0(
    tmp_path: Path, signum: int
) -> None:
    """A signal while the catalog opens and the demo is seeded (here: waiting
    for another process's write lock) was a KeyboardInterrupt traceback
    (SIGINT) or a death by signal (SIGTERM). Now start-up finishes, nothing
    is announced as if up, and the exit is 0."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs Linux's /proc to see the catalog opened")
    server, holder = _starting_behind_a_lock(tmp_path)
    try:
        server.send_signal(signum)
        time.sleep(0.3)
    finally:
        holder.execute("COMMIT")
        holder.close()
    output, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors
    assert errors == ""
    assert "listening" not in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_stop_while_starting_up_exits_at_once(
    tmp_path: Path, signum: int
) -> None:
    """The first stop lets start-up finish (its waits are bounded, but may
    take seconds); a second one means it: the process exits at once, with
    one line and the shell's status for that signal."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs Linux's /proc to see the catalog opened")
    server, holder = _starting_behind_a_lock(tmp_path)
    try:
        server.send_signal(signum)
        time.sleep(0.2)
        server.send_signal(signum)
        # Exited while the lock is still held, not when start-up finished.
        output, errors = server.communicate(timeout=3)
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert server.returncode == 128 + signum
    assert errors == "image-gateway: stopped again while starting; exiting now\n"
    assert "listening" not in output


@pytest.mark.parametrize("merged", [False, True], ids=["stdout", "both"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_standard_output_closed_is_said_once_and_serving_goes_on(
    tmp_path: Path, workers: str, merged: bool
) -> None:
    """`serve | head`: the reader of its logs goes away. Every line written
    after was a traceback on stderr (and, with workers, the start-up's stopped
    `serve`); now one line says so per process, and requests are answered.
    With `2>&1 | head` there is nowhere to say it: serving goes on all the same,
    and the exit is clean (what stdout still buffered is not flushed into the
    dead pipe at exit)."""
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_WORKERS": workers,
    }
    env.pop("CLOUDINARY_URL", None)
    env.pop("PYTHONUNBUFFERED", None)  # stdout buffered, as it is deployed
    server = _demo_started(env, merged=merged)
    assert server.stdout is not None
    try:
        for line in server.stdout:
            if announced(line).startswith("image-gateway listening on"):
                port = int(announced(line).rsplit(":", 1)[1])
                break
        else:
            raise AssertionError("the gateway did not start")
        server.stdout.close()  # as `head` exits
        for _ in range(6):  # each flushed alone, on whichever worker answers
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/livez", timeout=10
            ) as answer:
                assert answer.status == 200
            time.sleep(0.3)
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    if merged:
        assert server.returncode == 0
        return
    assert server.returncode == 0, errors
    said = errors.splitlines()
    assert said, "the lost logs went unsaid"
    assert 1 <= len(said) <= 1 + int(workers), errors
    assert set(said) == {
        "image-gateway: standard output was closed (its reader went away);"
        " serving goes on, its log lines are dropped"
    }, errors
