"""A throwaway PostgreSQL cluster on a loopback port: the PostgreSQL catalog's tests and benchmark.

PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to
the unprivileged `postgres` user, with its data directory made under /tmp
(pytest's own temporary root is private to root, 0700). Writes are not made
durable (`fsync=off`): nothing here outlives the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["DATABASE", "Cluster", "ClusterError", "start_cluster"]

_USER: Final = "postgres"
# The tests' database; each test has a schema of its own in it (cheaper than
# a database each, and just as separate).
DATABASE: Final = "gateway"
_TIMEOUT: Final = 60


class ClusterError(Exception):
    """The cluster could not be started; the message says why."""


def _bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: (
            int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0
        ),
    )
    if not found:
        raise ClusterError(
            "no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    bin_dir: Path
    data_dir: Path
    port: int
    user: str | None  # run the server as this user (when we are root)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir.parent / "server.log"

    def url(self, database: str = DATABASE, *, schema: str | None = None) -> str:
        """A URL of the cluster; with `schema`, its tables are made and read there."""
        url = f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"
        # asyncpg passes query parameters it does not know on as server settings.
        return url if schema is None else f"{url}?search_path={schema}"

    def _run(self, *args: str) -> None:
        try:
            subprocess.run(
                [str(self.bin_dir / args[0]), *args[1:]],
                check=True,
                capture_output=True,
                timeout=_TIMEOUT,
                user=self.user,
                # Somewhere that user may enter: the checkout may be root's only.
                cwd=self.data_dir.parent,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip()
            raise ClusterError(f"{args[0]} failed: {detail}") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClusterError(f"{args[0]} failed: {exc}") from None

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                "-c unix_socket_directories=''",
                "-c max_connections=200",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log), "-o", options,
            "-w", "-t", str(_TIMEOUT), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb and start a new cluster; `ClusterError` if this machine cannot."""
    bin_dir = _bin_dir()
    user = _USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="gateway-pg-", dir="/tmp"))
    data_dir = root / "data"
    cluster = None
    try:
        if user is not None:
            shutil.chown(root, user=user)
        cluster = Cluster(bin_dir, data_dir, _free_port(), user)
        cluster._run(
            "initdb", "-D", str(data_dir), "-U", _USER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        cluster.start()
        cluster._run(
            "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", _USER, DATABASE
        )  # fmt: skip
    except BaseException as exc:
        # A server already started (createdb failed, or Ctrl-C) is stopped too.
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(exc, ClusterError | OSError | LookupError):
            raise ClusterError(str(exc)) from None
        raise
    return cluster
