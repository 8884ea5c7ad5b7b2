"""Standard output that fails under the logs: said once, never a traceback per line."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator

import pytest

from gateway.ops.logs import Output

CLOSED = (
    "image-gateway: standard output was closed (its reader went away);"
    " serving goes on, its log lines are dropped\n"
)


class Failing(io.StringIO):
    """A stream whose flushes fail with `errno` while `failing`; its writes kept."""

    def __init__(self, fileno: int) -> None:
        super().__init__()
        self.error: int | None = None
        self.flushes = 0
        self._fileno = fileno

    def fileno(self) -> int:
        return self._fileno

    def flush(self) -> None:
        self.flushes += 1
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))


@pytest.fixture
def spare_fd() -> Iterator[int]:
    """A descriptor of our own for `Output` to point at /dev/null, not fd 1."""
    read, write = os.pipe()
    yield write
    os.close(read)
    os.close(write)


def test_a_reader_gone_is_said_once_and_nothing_more_is_written(
    capfd: pytest.CaptureFixture[str],
) -> None:
    read, write = os.pipe()
    stream = os.fdopen(write, "w")
    output = Output(stream)
    output.write("first\n")
    output.flush()
    assert os.read(read, 100) == b"first\n"
    os.close(read)  # as `head -1` exits
    for n in range(5):
        output.write(f"line {n}\n")
        output.flush()
    stream.close()  # its buffer flushed into /dev/null, not failing again
    assert capfd.readouterr().err == CLOSED


@pytest.mark.parametrize("gone", [errno.EPIPE, errno.ECONNRESET, errno.EIO])
def test_each_way_a_reader_goes_closes_it(
    capfd: pytest.CaptureFixture[str], spare_fd: int, gone: int
) -> None:
    stream = Failing(spare_fd)
    output = Output(stream)
    stream.error = gone
    output.flush()
    stream.error = None
    output.write("after\n")
    output.flush()
    assert stream.flushes == 1
    assert "after" not in stream.getvalue()
    assert capfd.readouterr().err == CLOSED


def test_another_failure_drops_lines_while_it_lasts_said_once_each_time(
    capfd: pytest.CaptureFixture[str], spare_fd: int
) -> None:
    """A full disk under `serve > file`: said when it starts, not per line;
    the lines go out again once it has passed, and a second one is said again."""
    stream = Failing(spare_fd)
    output = Output(stream)
    stream.error = errno.ENOSPC
    for _ in range(3):
        output.write("lost\n")
        output.flush()
    stream.error = None
    output.write("back\n")
    output.flush()
    stream.error = errno.ENOSPC
    output.flush()
    assert stream.flushes == 5
    assert "back" in stream.getvalue()
    said = capfd.readouterr().err.splitlines()
    assert (
        said
        == [
            "image-gateway: standard output failed (No space left on device);"
            " log lines are dropped while it does"
        ]
        * 2
    )
