"""Shared benchmark plumbing: servers in subprocesses on loopback, wrk as the load."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "Load",
    "free_port",
    "pinned",
    "ratio",
    "require_wrk",
    "server",
    "summarise",
    "wrk",
]

SERVER_CPU: Final = 0
LOAD_CPU: Final = 1

LUA_PATHS = """
local paths = {}
local n = 0
for line in io.lines("%s") do n = n + 1; paths[n] = line end
local i = 0
request = function()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("GET", paths[i])
end
"""


def pinned(argv: Sequence[str], cpu: int) -> list[str]:
    """`argv` bound to one CPU (`taskset`), when the machine has another to spare.

    Servers run on CPU 0 and wrk on CPU 1: neither steals the other's core,
    so a round measures the server, not the scheduler's placement of the two.
    """
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    rps: float
    p99_ms: float
    bad: int  # responses that were not 2xx/3xx, plus socket errors


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert isinstance(port, int)
        return port


@contextmanager
def server(argv: Sequence[str], port: int, env: Mapping[str, str]) -> Iterator[None]:
    """Start a server process and wait until it answers on 127.0.0.1:port."""
    process = subprocess.Popen(
        pinned(argv, SERVER_CPU),
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"server did not start: {err}") from None
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    paths_file: Path | None = None,
    lua_dir: Path | None = None,
    headers: Mapping[str, str] | None = None,
    script_tag: str = "",
) -> Load:
    """One wrk run; `script_tag` keeps the Lua scripts of two runs at once apart."""
    argv = [
        require_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if paths_file is not None:
        assert lua_dir is not None
        script = lua_dir / f"{paths_file.stem}{script_tag}.lua"
        script.write_text(LUA_PATHS % paths_file)
        argv += ["-s", str(script)]
    out = subprocess.run(
        pinned([*argv, url], LOAD_CPU), capture_output=True, text=True, check=True
    ).stdout
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    requests = int(_find(r"(\d+) requests in", out))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    if p99 is None:
        raise RuntimeError(f"wrk printed no 99th percentile:\n{out}")
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    bad = int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", out, default="0"))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if errors:
        bad += sum(int(g) for g in errors.groups())
    return Load(requests=requests, rps=rps, p99_ms=p99_ms, bad=bad)


def _find(
    pattern: str, text: str, *, group: int = 1, default: str | None = None
) -> str:
    match = re.search(pattern, text)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f"wrk output lacks {pattern!r}:\n{text}")
    return match.group(group)


def summarise(loads: Sequence[Load]) -> Load:
    """Median of the rounds: the machine's speed drifts, a median resists it."""
    return Load(
        requests=sum(x.requests for x in loads),
        rps=statistics.median(x.rps for x in loads),
        p99_ms=statistics.median(x.p99_ms for x in loads),
        bad=sum(x.bad for x in loads),
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
