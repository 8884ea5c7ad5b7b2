"""The catalog in PostgreSQL: many gateway replicas sharing one database.

A bounded pool of connections per process serves reads and writes. Every
write bumps `gateway_catalog.data_version` and NOTIFYs, in its own
transaction; each process LISTENs on one more connection of its own and
tells its caches at once. The version is the fallback: `check`, run by the
cached view at least every `GATEWAY_CATALOG_POLL_INTERVAL`, notices a change
whose notification was missed (across a reconnect, say).

When the server cannot be reached, calls raise `CatalogUnavailableError`
(503, Retry-After), failing fast for a moment after each failure rather than
queueing behind connection attempts; the pool and the listener reconnect by
themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Final, TypeVar

import asyncpg
from yarl import URL

from gateway.catalog.postgres import images, ingests, issuers, schema
from gateway.catalog.postgres.schema import CHANNEL, UNAVAILABLE, Conn
from gateway.catalog.records import (
    ApiKey,
    CatalogError,
    Cursor,
    ImageRecord,
    Original,
    Page,
    SortKey,
)
from gateway.catalog.store import Change, Listener
from gateway.errors import CatalogUnavailableError
from signing import Issuer, IssuerKey, IssuerPolicy
from transforms.cloudinary import CloudinaryAsset

__all__ = ["PostgresCatalog", "reaching", "redacted", "upgrade"]

log = logging.getLogger("gateway.catalog")

_T = TypeVar("_T")

# After a failure, calls fail at once for this long instead of each waiting
# for a connection attempt of its own (a recovering server is not stormed).
_FAIL_FAST: Final = 0.25
# The listener's reconnection delays, doubling up to the last.
_RECONNECT: Final = (0.05, 0.1, 0.2, 0.5, 1.0)
# How often an idle listener proves its connection alive.
_PING: Final = 5.0


# The server answers, but refuses a new connection's login: a password
# rotated, a role disabled or dropped, under a running gateway. An outage
# too, until the operator sets it right.
_REFUSED: Final = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
)
# A connection that failed this way is dead, or the server is unreachable.
# `InternalClientError`: a query sent on a connection whose termination
# notice arrived but was not yet acted on confuses the driver's protocol state.
_DEAD: Final = (*UNAVAILABLE, *_REFUSED, asyncpg.exceptions.InternalClientError)


# Query parameters asyncpg reads a secret from (libpq's names).
_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs: the one before
    the host, and any the driver also reads from the query."""
    parsed = URL(url)
    secret_query = _SECRET_PARAMETERS.intersection(parsed.query)
    if not parsed.password and not secret_query:
        return url  # as the operator wrote it
    if parsed.password:
        parsed = parsed.with_password(None)
    if secret_query:
        parsed = parsed.without_query_params(*_SECRET_PARAMETERS)
    return str(parsed)


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """Failures to connect (at start-up, in the CLI) as one-line `CatalogError`s
    naming the database, never its password."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise CatalogError(
            f"cannot reach the catalog database {redacted(url)}: {_reason(exc)}"
        ) from None
    except asyncpg.PostgresError as exc:
        # No such database, a refused login; at migration, a schema that does
        # not exist (`?search_path=`) or a user who may not create in it.
        raise CatalogError(f"catalog database {redacted(url)}: {exc}") from None


class PoolOutagesInOneLine(logging.Filter):
    """asyncpg's log of a failed attempt to restore its pool's connections,
    as one line with the reason.

    In an outage its pool retries, backing off from a second to a minute, and
    logs each failure with a full traceback: one known fact, repeated by
    every worker. `serve` adds this filter to the `asyncpg.pool` logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(
            record.exc_info[1], (*UNAVAILABLE, *_REFUSED)
        ):
            record.msg = f"{record.getMessage()}: {_reason(record.exc_info[1])}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def _reason(exc: BaseException) -> str:
    """What went wrong, also for exceptions that say nothing (a timeout)."""
    if str(exc):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer within GATEWAY_DATABASE_TIMEOUT"
    return type(exc).__name__


async def upgrade(url: str, *, timeout: float) -> tuple[int, int]:  # noqa: ASYNC109 - the driver's own
    """Migrate the schema at `url`: its version before and after."""
    with reaching(url):
        conn = await asyncpg.connect(url, timeout=timeout, command_timeout=timeout)
    try:
        with reaching(url):
            applied = await schema.migrate(conn)
    finally:
        await conn.close()
    return len(schema.MIGRATIONS) - applied, len(schema.MIGRATIONS)


class PostgresCatalog:
    """`CatalogStore` and `ChangeFeed` over a PostgreSQL database."""

    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], url: str, *, timeout: float
    ) -> None:
        self._pool = pool
        self._url = url
        self._timeout = timeout
        # Tells this process's notifications from the other replicas'.
        self._origin = secrets.token_hex(8)
        self._version = 0
        self._listeners: list[Listener] = []
        self._failed_until = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 4,
        timeout: float = 5.0,  # noqa: ASYNC109 - the driver's own
    ) -> PostgresCatalog:
        """Connect, and create or migrate the schema (see `schema.migrate`)."""
        with reaching(url):
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=timeout,
                command_timeout=timeout,
                # Pool connections idle for a minute are closed: replicas
                # hold what their load needs, not `pool_size` each, always.
                max_inactive_connection_lifetime=60.0,
            )
        store = cls(pool, url, timeout=timeout)
        try:
            with reaching(url):
                async with pool.acquire() as conn:
                    applied = await schema.migrate(conn)
                    store._version = await _data_version(conn)
        except BaseException:
            await pool.close()
            raise
        if applied:
            log.info("catalog schema migrated: %d version(s) applied", applied)
        return store

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        try:
            await asyncio.wait_for(self._pool.close(), self._timeout)
        except (TimeoutError, *UNAVAILABLE):
            self._pool.terminate()

    # Connections

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection; after one found dead, all are replaced.

        The pool replaces the connections it finds closed, but one whose
        backend was terminated (a restart, `pg_terminate_backend`) may be
        handed out before the notice is read: its first query then fails, as
        `_DEAD` says. Its siblings most likely went the same way: every
        connection open now is replaced on its next use.
        """
        if time.monotonic() < self._failed_until:
            raise CatalogUnavailableError("the catalog database is unreachable")
        try:
            conn = await self._pool.acquire(timeout=self._timeout)
        except _DEAD:
            await self._pool.expire_connections()
            raise
        try:
            yield conn
        except _DEAD:
            # Not handed back to be reset: against a server that hangs, the
            # reset waits the timeout a second time. One the server closed
            # has already gone back to the pool, detached: nothing to end.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
            await self._pool.expire_connections()
            raise
        finally:
            await self._pool.release(conn)

    def _unavailable(self, exc: BaseException) -> CatalogUnavailableError:
        """Fail fast for a moment: callers meanwhile are not queued behind
        connection attempts to a server that is down."""
        log.warning("catalog database unreachable: %s", _reason(exc))
        # A refused connection fails at once, a hung server after the whole
        # timeout: then the next callers are refused at once for as long,
        # rather than each waiting the timeout again.
        pause = self._timeout if isinstance(exc, TimeoutError) else _FAIL_FAST
        self._failed_until = time.monotonic() + pause
        return CatalogUnavailableError("the catalog database is unreachable")

    async def _read(
        self,
        op: Callable[..., Awaitable[_T]],
        *args: object,
        snapshot: bool = False,
    ) -> _T:
        """A read; `snapshot`: its queries all see one state of the database.

        A read is safe to repeat: one that met a dead connection is tried
        once more, on a new one (a server that is down fails both at once).
        """
        for attempt in (1, 2):
            try:
                async with self._connection() as conn:
                    if not snapshot:
                        return await op(conn, *args)
                    async with _transaction(conn, snapshot=True):
                        return await op(conn, *args)
            except _DEAD as exc:
                # A server that hangs is not asked twice: a query waits at
                # most the timeout once, as documented.
                if attempt == 2 or isinstance(exc, TimeoutError):
                    raise self._unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(
        self, change: Change | None, op: Callable[..., Awaitable[_T]], *args: object
    ) -> _T:
        """A write in one transaction, then the listeners told at once.

        A change bumps the data version and NOTIFYs the other replicas in the
        same transaction: they hear of it exactly when it is committed. As
        with SQLite, a caller cancelled meanwhile waits for the write to end,
        so that its clean-up sees it committed, and so do the caches.
        """
        work = asyncio.ensure_future(self._commit(change, op, args))
        cancelled = False
        while not work.done():
            try:
                await asyncio.wait([work])
            except asyncio.CancelledError:
                cancelled = True
        try:
            result, version = work.result()
        finally:
            if cancelled:
                raise asyncio.CancelledError
        if change is not None:
            if version != self._version + 1:
                change = Change.EVERYTHING  # another replica's write came between
            self._version = max(self._version, version)
            self._changed(change)
        return result

    async def _commit(
        self,
        change: Change | None,
        op: Callable[..., Awaitable[_T]],
        args: tuple[object, ...],
    ) -> tuple[_T, int]:
        try:
            async with self._connection() as conn, _transaction(conn):
                return await self._apply(conn, change, op, args)
        except _DEAD as exc:
            # Not repeated: whether it was committed cannot be told.
            raise self._unavailable(exc) from None

    async def _apply(
        self,
        conn: Conn,
        change: Change | None,
        op: Callable[..., Awaitable[_T]],
        args: tuple[object, ...],
    ) -> tuple[_T, int]:
        result = await op(conn, *args)
        if change is None:  # bookkeeping no reader sees
            return result, self._version
        version: int = await conn.fetchval(
            "UPDATE gateway_catalog SET data_version = data_version + 1"
            " RETURNING data_version"
        )
        await conn.execute(
            "SELECT pg_notify($1, $2)",
            CHANNEL,
            f"{version} {change.value} {self._origin}",
        )
        return result, version

    # ChangeFeed

    def subscribe(self, listener: Listener) -> None:
        """Also starts listening for the other replicas' notifications."""
        self._listeners.append(listener)
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def hinted(self) -> bool:
        # Notifications reach the listeners directly; `check` is the fallback.
        return False

    @property
    def revision(self) -> int:
        """The database's data version as this process last saw it."""
        return self._version

    async def check(self) -> bool:
        return self._caught_up(await self._read(_data_version))

    def _caught_up(self, version: int) -> bool:
        """Tell the listeners of a data version newer than the last seen."""
        if version <= self._version:
            return False
        self._version = version
        self._changed(Change.EVERYTHING)
        return True

    def _changed(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        """Another replica's (or process's) committed change."""
        try:
            number, kind, origin = str(payload).split(" ")
            version, change = int(number), Change(kind)
        except ValueError:
            version, change, origin = 0, Change.EVERYTHING, ""
        if origin == self._origin:
            return
        self._version = max(self._version, version)
        self._changed(change)

    async def _watch(self) -> None:
        """LISTEN on a connection of its own, reconnecting whenever it is lost.

        Whatever was committed while not listening is caught up by a version
        check as soon as the connection is back; `listening` is set from then
        on. Until then the cached view's own checks keep the bound.
        """
        failures = 0
        while True:
            try:
                conn = await asyncpg.connect(
                    self._url, timeout=self._timeout, command_timeout=self._timeout
                )
            except (*_DEAD, asyncpg.PostgresError) as exc:
                if failures == 0:
                    log.warning("catalog notifications lost: %s; reconnecting", exc)
                await asyncio.sleep(_RECONNECT[min(failures, len(_RECONNECT) - 1)])
                failures += 1
                continue
            try:
                await conn.add_listener(CHANNEL, self._notified)
                # What was committed while not listening, read on this very
                # connection: the pool's may be dead too, or failing fast.
                self._caught_up(await _data_version(conn))
                self.listening.set()
                if failures:
                    log.info("catalog notifications restored")
                failures = 0
                await self._until_lost(conn)
            except (*_DEAD, asyncpg.PostgresError, CatalogUnavailableError):
                failures += 1
            except Exception:  # the listener must outlive any failure
                log.exception("catalog notifications: unexpected failure")
                failures += 1
            finally:
                self.listening.clear()
                conn.terminate()
            await asyncio.sleep(_RECONNECT[0])

    async def _until_lost(self, conn: asyncpg.Connection[Any]) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), _PING)
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=self._timeout)

    # Issuers and keys

    async def add_issuer(
        self,
        *,
        issuer_id: str | None = None,
        name: str = "",
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
        policy: IssuerPolicy = IssuerPolicy(),
    ) -> tuple[Issuer, IssuerKey]:
        return await self._write(
            Change.EVERYTHING,
            issuers.add_issuer,
            issuer_id,
            name,
            secret,
            kid,
            algorithm,
            policy,
        )

    async def add_key(
        self,
        issuer_id: str,
        *,
        secret: str | None = None,
        kid: str | None = None,
        algorithm: str = "HS256",
    ) -> IssuerKey:
        return await self._write(
            Change.EVERYTHING, issuers.add_key, issuer_id, secret, kid, algorithm
        )

    async def revoke_key(self, issuer_id: str, kid: str) -> None:
        await self._write(Change.EVERYTHING, issuers.revoke_key, issuer_id, kid)

    async def issuer(self, issuer_id: str) -> Issuer | None:
        return await self._read(issuers.issuer, issuer_id, snapshot=True)

    async def issuers(self) -> list[Issuer]:
        return await self._read(issuers.issuers, snapshot=True)

    # API keys

    async def add_api_key(
        self, issuer_id: str, *, roles: frozenset[str] = frozenset()
    ) -> str:
        return await self._write(
            Change.EVERYTHING, issuers.add_api_key, issuer_id, roles
        )

    async def api_key(self, key: str) -> ApiKey | None:
        return await self._read(issuers.api_key, key)

    async def api_keys(self, issuer_id: str) -> list[ApiKey]:
        return await self._read(issuers.api_keys, issuer_id)

    async def revoke_api_key(self, issuer_id: str, prefix: str) -> None:
        await self._write(Change.EVERYTHING, issuers.revoke_api_key, issuer_id, prefix)

    # Images

    async def add_image(
        self,
        *,
        issuer_id: str,
        image_id: str | None = None,
        cloudinary: CloudinaryAsset | None = None,
        original: Original | None = None,
        original_filename: str | None = None,
        origin: str | None = None,
    ) -> ImageRecord:
        return await self._write(
            Change.IMAGES,
            images.add_image,
            issuer_id,
            image_id,
            cloudinary,
            original,
            original_filename,
            origin,
        )

    async def image(self, image_id: str) -> ImageRecord | None:
        return await self._read(images.image, image_id)

    async def images(self, issuer_id: str) -> list[ImageRecord]:
        return await self._read(images.images, issuer_id)

    async def page(
        self,
        issuer_id: str,
        *,
        sort: SortKey = SortKey.CREATED_AT,
        descending: bool = True,
        size: int = 10,
        after: Cursor | None = None,
        before: Cursor | None = None,
        search: str | None = None,
        tag: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> Page:
        return await self._read(
            images.page,
            issuer_id,
            sort,
            descending,
            size,
            after,
            before,
            search,
            tag,
            ids,
            snapshot=True,
        )

    async def update_image(
        self,
        image_id: str,
        changes: Mapping[str, object],
        *,
        unchanged_since: str | None = None,
    ) -> ImageRecord:
        return await self._write(
            Change.IMAGES, images.update_image, image_id, changes, unchanged_since
        )

    async def finish_ingest(
        self,
        image_id: str,
        *,
        original: Original | None = None,
        cloudinary: CloudinaryAsset | None = None,
        filename: str | None = None,
        error: str | None = None,
    ) -> None:
        await self._write(
            Change.IMAGES,
            images.finish_ingest,
            image_id,
            original,
            cloudinary,
            filename,
            error,
        )

    async def remove_image(
        self, image_id: str, *, unchanged_since: str | None = None
    ) -> ImageRecord | None:
        return await self._write(
            Change.IMAGES, images.remove_image, image_id, unchanged_since
        )

    async def originals_in_use(self, sha256: str) -> int:
        return await self._read(images.originals_in_use, sha256)

    # Ingest leases

    async def claim_ingest(self, image_id: str, *, owner: str, until: str) -> bool:
        return await self._write(None, ingests.claim_ingest, image_id, owner, until)

    async def claim_abandoned_ingests(
        self, *, owner: str, until: str, limit: int
    ) -> list[tuple[str, str]]:
        return await self._write(
            None, ingests.claim_abandoned_ingests, owner, until, limit
        )

    async def renew_ingests(self, *, owner: str, until: str) -> None:
        await self._write(None, ingests.renew_ingests, owner, until)

    async def release_ingest(self, image_id: str, *, owner: str, note: str) -> None:
        await self._write(Change.IMAGES, ingests.release_ingest, image_id, owner, note)

    async def originals(self) -> set[str]:
        return await self._read(ingests.originals)

    async def ingest_counts(self) -> dict[str, int]:
        return await self._read(ingests.ingest_counts)


@contextlib.asynccontextmanager
async def _transaction(conn: Conn, *, snapshot: bool = False) -> AsyncIterator[None]:
    """`conn.transaction()` (`snapshot`: a read-only one that sees one state
    of the database), raising a connection's loss inside it as the loss.

    On a connection that died inside the transaction, asyncpg's exit raises
    an `InterfaceError` ("the underlying connection is closed") in place of
    the loss (`_DEAD`), which then read as a bug (a 500), not an outage.
    """
    transaction = (
        conn.transaction(isolation="repeatable_read", readonly=True)
        if snapshot
        else conn.transaction()
    )
    try:
        async with transaction:
            yield
    except asyncpg.InterfaceError as exc:
        if isinstance(exc.__context__, _DEAD):
            raise exc.__context__ from None
        raise


async def _data_version(conn: Conn) -> int:
    version: int = await conn.fetchval("SELECT data_version FROM gateway_catalog")
    return version
