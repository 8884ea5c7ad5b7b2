"""`python -m gateway serve` in a process of its own, as an operator runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import announced


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def served_once(
    env: dict[str, str], command: tuple[str, ...] = ("serve",)
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway serve` (or `command`) run to its end, with extra
    environment: for start-up that stops, its status not checked."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


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
            if announced(line).startswith("image-gateway listening on"):
                return int(announced(line).rsplit(":", 1)[1])
        raise AssertionError("the gateway did not start")


def serving(port: int, workers: int = 1) -> None:
    """Wait until every worker serves `port`. The listening line comes as
    they are forked, before they start (one alone: before it starts at all).

    One worker: its /livez answer. Several each publish their figures once
    serving, each its own `worker` series, which any one's scrape shows.
    """
    if workers == 1:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=10):
            return
    series: set[str] = set()
    deadline = time.monotonic() + 10
    while len(series) < workers:
        assert time.monotonic() < deadline, series
        time.sleep(0.05)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics", timeout=10
        ) as answer:
            lines = answer.read().decode().splitlines()
        series = {
            line.split()[0]
            for line in lines
            if line.startswith("process_cpu_seconds_total{worker=")
        }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    for server in served.processes:
        if server.returncode is None:
            server.terminate()
        server.communicate(timeout=10)
