"""Several worker processes on one listening socket, supervised.

The parent binds the socket once (so `--port 0` is one port for all), forks
the workers, restarts one that crashes (after a pause, so a crash at once
does not spin), and forwards SIGTERM and SIGINT; it exits when they have,
or kills (SIGKILL) one still running once its shutdown should be long over.
A worker that exits with status 2 met a configuration error it cannot
outlive: the parent stops the others and exits 2 as well. Each worker
draws its own request-id prefix after the fork (`os.register_at_fork`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final, NoReturn

__all__ = ["hold_signals", "lifeline", "stop_requested", "supervise"]

log = logging.getLogger("gateway.workers")
_EXIT_CONFIG: Final = 2
_RESTART_PAUSE: Final = 1.0
_STOPS: Final = (signal.SIGTERM, signal.SIGINT)
_requested: list[int] = []
# In a worker: the read end of a pipe whose write end only the parent holds.
# It reads as closed once the parent stops (or dies): a signal can be lost
# in a worker's start-up, a closed pipe cannot.
_lifeline: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    if _requested:
        # A second stop while start-up is still waiting (a catalog, a store
        # slow to answer): the operator means it. Nothing is bound or written
        # yet, so there is nothing to finish; exit as the shell expects.
        os.write(2, b"image-gateway: stopped again while starting; exiting now\n")
        os._exit(128 + signum)
    _requested.append(signum)


def hold_signals() -> None:
    """Remember a stop signal that comes before its handler is in place
    (start-up), rather than die of it mid-way; a second one exits at once."""
    for signum in _STOPS:
        signal.signal(signum, _remember)


def lifeline() -> int | None:
    """In a worker: a descriptor that becomes readable (EOF) when it must stop."""
    return _lifeline[0] if _lifeline else None


def stop_requested() -> bool:
    """Whether a stop signal came while `hold_signals` was in force."""
    return bool(_requested)


def supervise(
    count: int,
    sock: socket.socket,
    work: Callable[[int], int],
    announce: Callable[[], None],
    *,
    stop_within: float,
) -> int:
    """Run `work(slot)` in `count` forked processes until told to stop;
    `announce` once they are started and signals are forwarded. A worker
    still running `stop_within` seconds after the stop is killed: its own
    shutdown is bounded, but not a worker that is wedged (its event loop
    blocked, the process stopped), for which `serve` waited for ever."""
    children: dict[int, int] = {}  # pid -> slot
    stopping = False
    failed = False
    deadline: float | None = None  # once stopping: when the rest are killed
    read_end, write_end = os.pipe()
    # The parent sleeps in `select` on a wakeup pipe, never in a bare
    # `os.wait()`: a signal landing just before that call would leave its
    # Python handler waiting for the call to return, which only a worker's
    # exit ends, and the workers wait for the forwarded signal (a stop hung
    # about once in 30 starts). Every signal writes its byte to the pipe,
    # whenever it lands; SIGCHLD too, so an exit wakes the parent.
    wake_read, wake_write = os.pipe()
    for end in (wake_read, wake_write):
        os.set_blocking(end, False)

    def spawn(slot: int) -> None:
        # Stop signals wait while forking: one landing in a new worker before
        # it holds them would run the parent's `forward` there (stopping its
        # siblings); pending ones reach the parent once unblocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            if stopping:  # a stop came since the caller looked
                return
            pid = os.fork()
            if pid == 0:
                _worker(slot)
            children[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)

    def _worker(slot: int) -> NoReturn:
        """The forked worker; it never returns into the supervisor's code."""
        code = 1
        try:
            # It holds signals as the parent did at the fork (a signal the
            # parent remembered means stop: the parent stops too).
            hold_signals()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for end in (write_end, wake_read, wake_write):
                os.close(end)
            _lifeline[:] = [read_end]
            code = work(slot)
        except Exception:
            # `os._exit` below drops an exception unprinted: the parent said
            # "exited with 1" at every restart, and nothing said why.
            log.exception("worker %d (pid %d) failed", slot, os.getpid())
        finally:
            os._exit(code)

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping, deadline
        if not stopping:
            deadline = time.monotonic() + stop_within
            os.close(write_end)  # every worker's lifeline reads as closed
            # The port listens while any process holds the socket: the
            # workers' copies for their drain delay, not the parent's until
            # the last worker is done (the kernel queued connections nobody
            # would accept, then reset them).
            sock.close()
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signum)

    def ended() -> Iterator[tuple[int, int]]:
        """The workers that have exited, and their exit codes, without blocking."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in children:
                yield pid, os.waitstatus_to_exitcode(status)

    hold_signals()
    previous_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, _wake)
    try:
        for slot in range(count):
            spawn(slot)
        for signum in _STOPS:
            signal.signal(signum, forward)
        if _requested:  # told to stop while starting them
            forward(_requested[-1], None)
        announce()
        # Slots whose worker exited, and when another starts there: each after
        # its own pause, while the parent goes on waiting (it slept the pause
        # through, one crashed worker after another, a stop meanwhile too).
        restarts: dict[int, float] = {}
        while children or (restarts and not stopping):
            now = time.monotonic()
            for slot, at in sorted(restarts.items()):
                if stopping or at <= now:
                    del restarts[slot]
                    spawn(slot)  # not once stopping
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None  # once: SIGKILL is not refused
                for pid, slot in children.items():
                    log.warning(
                        "worker %d (pid %d) still running %g s after the stop; killing it",
                        slot,
                        pid,
                        stop_within,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            due = [] if deadline is None else [deadline]
            if not stopping:
                due.extend(restarts.values())
            wait = max(0.0, min(due) - time.monotonic()) if due else None
            select.select([wake_read], [], [], wait)
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_read, 512):
                    pass
            for pid, code in ended():
                slot = children.pop(pid)
                if stopping:
                    continue
                if code == _EXIT_CONFIG:
                    failed = True
                    forward(signal.SIGTERM, None)
                    continue
                log.warning(
                    "worker %d (pid %d) exited with %d; starting another",
                    slot,
                    pid,
                    code,
                )
                restarts[slot] = time.monotonic() + _RESTART_PAUSE
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(previous_wakeup)
        for end in (wake_read, wake_write):
            os.close(end)
    sock.close()
    os.close(read_end)
    if not stopping:
        os.close(write_end)
    return _EXIT_CONFIG if failed else 0


def _wake(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD's handler: its byte on the wakeup pipe is what matters."""
