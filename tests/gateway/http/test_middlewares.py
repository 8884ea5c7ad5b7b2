"""Request ids: kept when a client's is plain, unique per process, fork included."""

from __future__ import annotations

import os

from gateway.http.middlewares import new_request_id


def test_request_ids_are_uuid_shaped_and_distinct() -> None:
    first, second = new_request_id(), new_request_id()
    assert first != second
    assert [len(part) for part in first.split("-")] == [8, 4, 4, 4, 12]


def test_a_forked_process_draws_its_own_request_id_prefix() -> None:
    """Workers fork after import: they must not share the parent's prefix."""
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    assert os.waitstatus_to_exitcode(status) == 0
    assert child[:24] != parent[:24]
