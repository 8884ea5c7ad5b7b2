"""Several workers on one port: distinct request ids, and they agree at once."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.ops.metrics import SCRAPE_TTL
from tests.gateway.ops.conftest import Served, served_once, serving
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


def _livez_count(port: int) -> float:
    """The livez answers a scrape of this serve reports (0 when none)."""
    _, _, text = _fetch(f"http://127.0.0.1:{port}/metrics")
    prefix = 'gateway_requests_total{route="livez",status="200"}'
    found = [line for line in text.decode().splitlines() if line.startswith(prefix)]
    return float(found[0].split()[-1]) if found else 0.0


def _counted(port: int, sent: int) -> None:
    """Wait until every scrape counts all `sent` livez answers: a sibling's
    once it publishes them, every second (later on a loaded machine)."""
    deadline = time.monotonic() + 10
    while (counted := _livez_count(port)) != sent:
        assert time.monotonic() < deadline, (counted, sent)
        time.sleep(0.1)
    # A worker serves its last scrape's text again for SCRAPE_TTL: one built
    # before the count was whole expires meanwhile.
    time.sleep(SCRAPE_TTL)


def _on_both_workers(url: str, method: str = "GET") -> list[tuple[int, str]]:
    """`url` fetched until both workers have answered: (status, the answering
    worker's request-id prefix) of each answer.

    Each on a new connection, several at once, so that a worker busy with one
    leaves the next to the other; for as long as a second worker may take to
    start on a loaded machine (one after another, 200 requests once all went
    to the first, the second still starting).

    Hundreds of requests: serve them with `GATEWAY_ACCESS_LOG=0`. The fixture
    reads the server's stdout only up to its start-up line, and past a full
    pipe's worth of lines (64 KiB) a worker blocks writing its access log.
    """
    answers: list[tuple[int, str]] = []
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(8) as pool:
        while len({worker for _, worker in answers}) < 2:
            assert time.monotonic() < deadline, answers[-4:]
            for status, headers, _ in pool.map(
                lambda _: _fetch(url, method), range(16)
            ):
                answers.append((status, headers["X-Request-Id"][:24]))
    return answers


def test_workers_share_the_port_and_draw_their_own_request_ids(serve: Served) -> None:
    port = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    answers = _on_both_workers(f"http://127.0.0.1:{port}/livez")
    assert {status for status, _ in answers} == {200}
    assert len({worker for _, worker in answers}) == 2


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
    port = serve(
        GATEWAY_WORKERS="2",
        GATEWAY_CATALOG_POLL_INTERVAL="3600",
        GATEWAY_ACCESS_LOG="0",
    )
    base = f"http://127.0.0.1:{port}"
    body, content_type = _multipart(solid((8, 8), RED, "PNG"))
    status, _, created = _fetch(
        f"{base}/v1/images", "POST", {**key, "Content-Type": content_type}, body
    )
    assert status == 201, created
    document = json.loads(created)["data"]
    link = document["links"]["delivery"]
    # Both workers now remember the answer.
    assert {status for status, _ in _on_both_workers(link)} == {200}
    status, _, _ = _fetch(f"{base}/v1/images/{document['id']}", "DELETE", key)
    assert status == 204
    assert {status for status, _ in _on_both_workers(link)} == {404}


def test_a_scrape_reports_every_workers_requests(serve: Served) -> None:
    """Whichever worker answers `/metrics`, it counts its siblings' requests too
    (as they published them, at most a second ago)."""
    port = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    answers = _on_both_workers(f"http://127.0.0.1:{port}/livez")
    assert {status for status, _ in answers} == {200}
    _counted(port, len(answers))  # every worker has published since
    for _ in range(6):  # either worker may answer the scrape
        assert _livez_count(port) == len(answers)


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


def test_two_serves_on_one_data_dir_count_their_own(serve: Served) -> None:
    """Blue/green on one host: each serve's scrape sums its own workers. They
    shared `metrics/` (each counted the other's requests), and each start
    emptied it, the other's kept counters included."""
    first = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    second = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    answers = _on_both_workers(f"http://127.0.0.1:{first}/livez")
    _counted(first, len(answers))  # every worker has published since
    # Either worker may answer a scrape; each must say the same.
    assert {_livez_count(first) for _ in range(6)} == {len(answers)}
    assert {_livez_count(second) for _ in range(6)} == {0.0}


def test_a_start_sweeps_what_stopped_serves_left(serve: Served, tmp_path: Path) -> None:
    root = tmp_path / "metrics"
    gone = root / "4194999"  # past Linux's largest pid: no such process
    gone.mkdir(parents=True)
    (gone / "1.json").write_text("{}")
    (root / "2.json").write_text("{}")  # an earlier release's layout
    (root / ("9" * 30)).mkdir()  # no pid at all (os.kill would overflow)
    (root / "0").mkdir()  # nor this (kill(0) signals the process group)
    running = root / str(os.getpid())  # this test's process: still running
    running.mkdir()
    serve(GATEWAY_WORKERS="2")
    assert sorted(
        p.name for p in root.iterdir() if p.name != str(serve.processes[0].pid)
    ) == [str(os.getpid())]


def test_each_workers_process_figures_are_its_own_series(serve: Served) -> None:
    """One unlabelled `process_cpu_seconds_total`, the answering worker's,
    went backwards from scrape to scrape as the other answered."""
    port = serve(GATEWAY_WORKERS="2")
    serving(port, 2)  # both have published
    # A worker serves its last scrape's text again for SCRAPE_TTL: one built
    # before the other had published expires meanwhile.
    time.sleep(SCRAPE_TTL)
    for _ in range(4):  # either worker may answer the scrape
        _, _, text = _fetch(f"http://127.0.0.1:{port}/metrics")
        lines = text.decode().splitlines()
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            series = {line.split()[0] for line in lines if line.startswith(name)}
            assert series == {f'{name}{{worker="0"}}', f'{name}{{worker="1"}}'}


def test_a_killed_workers_counts_never_fall_below_what_it_reported(
    serve: Served,
) -> None:
    """A worker publishes what its scrape reports: its file is no older than
    its last answer. It published once a second only, so a worker killed
    after a scrape (SIGKILL: no last publication) was counted for good at its
    figures of up to a second before, and the counter went backwards."""
    port = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    (server,) = serve.processes
    workers = child_pids(server.pid)
    assert len(workers) == 2
    prefix = 'gateway_requests_total{route="livez",status="200"}'
    # One connection, one worker: its requests for longer than a publication's
    # second, then its scrape at once.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    until = time.monotonic() + 1.2
    while time.monotonic() < until:
        connection.request("GET", "/livez")
        connection.getresponse().read()
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    (reported,) = [
        float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)
    ]
    # Both killed: whichever answered the scrape.
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    connection.close()
    deadline = time.monotonic() + 15
    while len(child_pids(server.pid) - workers) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The new workers count what the killed ones left.
    assert _livez_count(port) >= reported


def test_a_metrics_directory_that_cannot_be_made_stops_start_up(
    tmp_path: Path,
) -> None:
    """With several workers; a single one publishes nothing. The workers'
    publications failed unseen, and every scrape counted its worker alone."""
    (tmp_path / "metrics").write_text("not a folder")
    result = served_once(
        {"GATEWAY_DATA_DIR": str(tmp_path)},
        ("serve", "--port", "0", "--workers", "2"),
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"image-gateway: GATEWAY_DATA_DIR {tmp_path}: not a directory"
    assert result.stdout == ""


def test_a_scrape_answers_when_its_worker_cannot_publish(
    serve: Served, tmp_path: Path
) -> None:
    """A scrape publishes its worker's figures (a full disk, the directory
    gone): it still answers, and a warning says so once per worker."""
    port = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    shutil.rmtree(tmp_path / "metrics")
    (tmp_path / "metrics").write_text("not a folder")
    for _ in range(6):  # either worker may answer
        status, _, text = _fetch(f"http://127.0.0.1:{port}/metrics")
        assert status == 200, text
    (server,) = serve.processes
    server.terminate()
    output, _ = server.communicate(timeout=15)
    warnings = [line for line in output.splitlines() if "cannot publish" in line]
    assert 1 <= len(warnings) <= 2, output


def test_a_wedged_worker_is_killed_once_its_shutdown_is_long_over(
    serve: Served,
) -> None:
    """A worker that cannot run its shutdown (stopped here; a blocked event
    loop alike) held `serve` after SIGTERM for ever."""
    serve(GATEWAY_WORKERS="2", GATEWAY_SHUTDOWN_TIMEOUT="0.5")
    (server,) = serve.processes
    wedged = min(child_pids(server.pid))
    os.kill(wedged, signal.SIGSTOP)
    try:
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=20)
        took = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(wedged, signal.SIGCONT)
    assert server.returncode == 0, output
    assert f"(pid {wedged}) still running 5.5 s after the stop; killing it" in output
    assert 5.5 <= took < 15


def test_a_worker_that_cannot_start_says_why_and_is_started_again(
    serve: Served, tmp_path: Path
) -> None:
    """A worker restarted while the catalog cannot be read: the parent said
    "exited with 1" at each try, nothing said why but an asyncio traceback
    of the originals' store left open."""
    port = serve(GATEWAY_WORKERS="2", GATEWAY_ACCESS_LOG="0")
    _on_both_workers(f"http://127.0.0.1:{port}/livez")  # both started
    (server,) = serve.processes
    catalog = tmp_path / "catalog.sqlite3"
    for suffix in ("-wal", "-shm"):
        catalog.with_name(catalog.name + suffix).unlink(missing_ok=True)
    catalog.write_bytes(b"not a catalog" * 512)
    killed = min(child_pids(server.pid))
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while len(child_pids(server.pid) - {killed}) < 2:  # one restart tried
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.5)
    server.terminate()
    output, _ = server.communicate(timeout=15)
    assert server.returncode == 0, output
    assert " could not start: " in output
    assert "is not a readable catalog" in output
    assert "Traceback" not in output


def test_workers_that_crash_together_are_replaced_after_one_pause(
    serve: Served,
) -> None:
    """The parent slept each one's pause in turn: three at once were all
    back after three seconds (and a stop waited out the pause under way)."""
    serve(GATEWAY_WORKERS="3", GATEWAY_ACCESS_LOG="0")
    (server,) = serve.processes
    workers = child_pids(server.pid)
    assert len(workers) == 3
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    # When each new worker appears: after the same pause, not one after
    # another. Timed from the kill, it held a loaded machine's delays too.
    appeared: dict[int, float] = {}
    deadline = time.monotonic() + 15
    while len(appeared) < 3:
        assert time.monotonic() < deadline, child_pids(server.pid)
        for pid in child_pids(server.pid) - workers:
            appeared.setdefault(pid, time.monotonic())
        time.sleep(0.02)
    assert max(appeared.values()) - min(appeared.values()) < 1.0, appeared
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=15)
    assert server.returncode == 0, output
    assert output.count("starting another") == 3
