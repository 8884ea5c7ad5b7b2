"""A throwaway S3 protocol server on a loopback port: moto's standalone server
in a child process (so no SDK in the caller is patched), for the S3 tests and
`scripts/replicas.py`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["ACCESS_KEY", "SECRET_KEY", "MotoError", "MotoServer", "start_moto"]

# Moto accepts any credentials; these only have to be present.
ACCESS_KEY: Final = "test-access-key"
SECRET_KEY: Final = "test-secret-key"  # noqa: S105 - moto takes any
_START_TIMEOUT: Final = 30.0


class MotoError(Exception):
    """The server could not be started; the message says why."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback, http
            return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto(log: Path) -> MotoServer:
    """Start moto's server on a free loopback port, its output in `log`;
    `MotoError` if it does not answer."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise MotoError(f"cannot run moto.server: {exc}") from None
    server = MotoServer(endpoint, process)
    deadline = time.monotonic() + _START_TIMEOUT
    while not _answers(f"{endpoint}/moto-api/"):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log.read_text(errors="replace")[-300:]
            raise MotoError(f"moto.server did not start: {tail.strip()}")
        time.sleep(0.1)
    return server
