"""Several workers on one port: distinct request ids, and they agree at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.gateway.ops.conftest import Served
from tests.helpers import child_pids
from tests.images import RED, solid


def _fetch(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, method=method, headers=headers or {}, data=data
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def test_workers_share_the_port_and_draw_their_own_request_ids(serve: Served) -> None:
    port = serve(GATEWAY_WORKERS="2")
    prefixes = set()
    for _ in range(200):  # each on a new connection: either worker may take it
        _, headers, _ = _fetch(f"http://127.0.0.1:{port}/livez")
        prefixes.add(headers["X-Request-Id"][:24])
        if len(prefixes) == 2:
            break
    assert len(prefixes) == 2


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "xyzzy"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n"
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_delete_by_one_worker_is_seen_by_every_worker_at_once(
    serve: Served, tmp_path: Path
) -> None:
    """No poll in play (an hour): the shared change signal carries the delete."""
    issuer = json.loads(
        subprocess.run(
            [sys.executable, "-m", "gateway", "issuer", "add"],
            env={"GATEWAY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    key = {"Authorization": f"Bearer {issuer['api_key']}"}
    port = serve(GATEWAY_WORKERS="2", GATEWAY_CATALOG_POLL_INTERVAL="3600")
    base = f"http://127.0.0.1:{port}"
    body, content_type = _multipart(solid((8, 8), RED, "PNG"))
    status, _, created = _fetch(
        f"{base}/v1/images", "POST", {**key, "Content-Type": content_type}, body
    )
    assert status == 201, created
    document = json.loads(created)["data"]
    link = document["links"]["delivery"]
    for _ in range(40):  # both workers now remember the answer
        assert _fetch(link)[0] == 200
    status, _, _ = _fetch(f"{base}/v1/images/{document['id']}", "DELETE", key)
    assert status == 204
    assert [_fetch(link)[0] for _ in range(40)] == [404] * 40


def test_a_scrape_reports_every_workers_requests(serve: Served) -> None:
    """Whichever worker answers `/metrics`, it counts its siblings' requests too
    (as they published them, at most a second ago)."""
    port = serve(GATEWAY_WORKERS="2")
    for _ in range(60):  # each on a new connection: both workers answer some
        assert _fetch(f"http://127.0.0.1:{port}/livez")[0] == 200
    time.sleep(1.5)  # every worker has published since
    for _ in range(6):  # either worker may answer the scrape
        _, _, text = _fetch(f"http://127.0.0.1:{port}/metrics")
        line = next(
            line
            for line in text.decode().splitlines()
            if line.startswith('gateway_requests_total{route="livez",status="200"}')
        )
        assert float(line.split()[-1]) == 60


def test_a_crashed_worker_is_replaced_and_a_stop_still_ends_all(
    serve: Served,
) -> None:
    port = serve(GATEWAY_WORKERS="2")
    (server,) = serve.processes
    workers = child_pids(server.pid)
    assert len(workers) == 2
    crashed = min(workers)
    os.kill(crashed, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (now := child_pids(server.pid)) == workers or len(now) < 2:
        assert time.monotonic() < deadline, now
        time.sleep(0.05)
    assert crashed not in now
    assert len(now) == 2
    for _ in range(10):
        assert _fetch(f"http://127.0.0.1:{port}/livez")[0] == 200
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=15)
    assert server.returncode == 0, output
    assert f"(pid {crashed}) exited with -9; starting another" in output
    assert all(not Path(f"/proc/{pid}").exists() for pid in now)
