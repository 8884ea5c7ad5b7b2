"""The PostgreSQL catalog: migrations under an advisory lock, coherence across
replicas within the bound, and what losing the database does.

The behaviour both stores share is tested on both (`BOTH_CATALOGS` in the
catalog and /v1 suites); here is what only a shared server has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient
from yarl import URL

from gateway import Settings, create_app
from gateway.catalog import CachedCatalog, CatalogError, CatalogStore, open_catalog
from gateway.catalog.location import upgrade
from gateway.catalog.postgres import MIGRATIONS, PoolOutagesInOneLine, redacted
from gateway.catalog.postgres import images as postgres_images
from gateway.catalog.postgres import issuers as postgres_issuers
from gateway.catalog.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from gateway.demo import DEMO_ISSUER, seed_demo
from gateway.errors import CatalogUnavailableError
from gateway.keys import CATALOG
from gateway.originals import open_store
from scripts.pg_cluster import Cluster
from tests.conftest import (
    API_SECRET,
    OTHER_ISSUER,
    SEED_CLOUD,
    SEED_IMAGE,
    SEED_ISSUER,
    SEED_KEY,
    Client,
    Mint,
    make_settings,
)
from tests.gateway.http.support import bearer, form, image_file
from tests.helpers import assert_error, child_pids, eventually
from tests.images import RED, solid
from transforms.cloudinary import CloudinaryAccount


@pytest.fixture
def backend() -> str:
    """Every catalog here is PostgreSQL."""
    return "postgresql"


# The consistency bound the README states.
BOUND = 1.0


def test_migrations_mirror_sqlites_one_to_one() -> None:
    """Each SQLite migration has its PostgreSQL twin, of the same number and name."""
    folder = Path(__file__).parents[3] / "gateway" / "catalog"
    names = sorted(p.name for p in (folder / "migrations").glob("*.sql"))
    assert (
        sorted(p.name for p in (folder / "postgres/migrations").glob("*.sql")) == names
    )
    assert len(MIGRATIONS) == len(SQLITE_MIGRATIONS)


async def test_replicas_migrating_at_once_apply_each_version_once(
    settings: Settings,
) -> None:
    """Eight replicas start together on an empty database: the advisory lock
    lets one create the schema; the others find nothing left to do."""
    results = await asyncio.gather(*(upgrade(settings) for _ in range(8)))
    assert sorted(before for before, _ in results) == [0] + [len(MIGRATIONS)] * 7
    assert {after for _, after in results} == {len(MIGRATIONS)}


async def test_replicas_starting_at_once_with_the_demo_seed_it_once(
    tmp_path: Path, database_url: str
) -> None:
    """`serve --demo` (`GATEWAY_DEMO`) on three replicas started together:
    each finds the demo missing, and all but the first to write it stopped
    with 'issuer … already exists'."""
    replicas = [
        make_settings(tmp_path / name, database_url=database_url)
        for name in ("a", "b", "c")
    ]
    async with contextlib.AsyncExitStack() as stack:
        catalogs = [await open_catalog(settings) for settings in replicas]
        for catalog in catalogs:
            stack.push_async_callback(catalog.close)
        demos = await asyncio.gather(
            *[
                seed_demo(
                    catalog,
                    await stack.enter_async_context(open_store(settings)),
                    settings,
                )
                for catalog, settings in zip(catalogs, replicas, strict=True)
            ]
        )
        assert {demo.issuer.id for demo in demos} == {DEMO_ISSUER}
        assert len(await catalogs[0].images(DEMO_ISSUER)) == len(demos[0].images)


def _cli(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_db_upgrade_creates_the_schema_then_finds_it_current(
    database_url: str,
) -> None:
    first = _cli(database_url, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert f'"applied": {len(MIGRATIONS)}' in first.stdout
    again = _cli(database_url, "db", "upgrade")
    assert '"applied": 0' in again.stdout


async def test_a_schema_newer_than_this_release_is_refused(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "CREATE TABLE gateway_catalog (one BOOLEAN PRIMARY KEY, schema_version"
            " INTEGER, data_version BIGINT);"
            " INSERT INTO gateway_catalog VALUES (TRUE, 0, 0)"
        )
        await conn.execute(
            "UPDATE gateway_catalog SET schema_version = $1", len(MIGRATIONS) + 1
        )
    finally:
        await conn.close()
    with pytest.raises(CatalogError, match="newer than this release"):
        await open_catalog(make_settings(Path("unused"), database_url=database_url))


async def test_another_programs_tables_are_never_taken_for_a_catalog(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE orders (id INTEGER)")
    finally:
        await conn.close()
    with pytest.raises(CatalogError, match="another program"):
        await open_catalog(make_settings(Path("unused"), database_url=database_url))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://gw:hunter2@h/db", "postgresql://gw@h/db"),
        ("postgresql://gw@h/db?password=hunter2&x=1", "postgresql://gw@h/db?x=1"),
        ("postgresql://gw@h/db?sslpassword=hunter2", "postgresql://gw@h/db"),
        # Nothing to hide: as written, not as yarl would normalise it.
        ("postgresql://us%65r@HOST.Example/db?x=%20", None),
    ],
)
def test_a_database_url_is_shown_without_its_passwords(
    url: str, shown: str | None
) -> None:
    assert redacted(url) == (url if shown is None else shown)


@pytest.mark.parametrize(
    "where",
    [
        "postgresql://gw:hunter2@127.0.0.1:{port}/gateway",
        "postgresql://gw@127.0.0.1:{port}/gateway?password=hunter2",
        "postgresql://gw@127.0.0.1:{port}/gateway?sslmode=disable&password=hunter2",
        "postgresql://gw:p%40hunter2@127.0.0.1:{port}/gateway",
    ],
    ids=["userinfo", "query", "query-after", "escaped-at"],
)
def test_an_unreachable_database_at_start_is_one_line_without_the_password(
    postgres_cluster: Cluster, where: str
) -> None:
    """asyncpg reads a password from the query as well (libpq's `password=`)."""
    with socketless_port() as port:
        url = where.format(port=port)
        result = _cli(url, "issuer", "list")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"cannot reach the catalog database postgresql://gw@127.0.0.1:{port}/" in (
        result.stderr
    )
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("command", [("issuer", "list"), ("db", "upgrade")])
def test_a_schema_that_does_not_exist_is_one_line_at_migration(
    database_url: str, command: tuple[str, ...]
) -> None:
    """`?search_path=` naming no schema: the migration cannot create its
    tables. It was a traceback and exit 1."""
    result = _cli(f"{database_url}?search_path=no_such_schema", *command)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "catalog database" in result.stderr


class socketless_port:  # noqa: N801 - a context manager read as a phrase
    """A loopback port nothing listens on, while the block runs."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # bound, never listening: refused
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


# Two replicas


def _replica_settings(
    tmp_path: Path, url: str, poll_interval: float, *, render: bool = False
) -> Settings:
    """Redirects to Cloudinary, or (`render`) local rendering of uploaded originals."""
    account = CloudinaryAccount(
        cloud_name=SEED_CLOUD, api_key="1234", api_secret=API_SECRET
    )
    return make_settings(
        tmp_path,
        cloudinary=None if render else account,
        poll_interval=poll_interval,
        database_url=url,
    )


@pytest.fixture
async def replicas(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    database_url: str,
    catalog: CatalogStore,
) -> tuple[Client, Client]:
    """Two gateway apps on one database, each with its own pool and caches;
    polls far apart, so that only notifications can keep them coherent."""
    settings = _replica_settings(tmp_path, database_url, 3600.0, render=True)
    return (
        await aiohttp_client(create_app(settings)),
        await aiohttp_client(create_app(settings)),
    )


async def _within_bound(client: Client, path: str, status: int, **kw: object) -> float:
    """Seconds until `path` answers `status` on `client`; fails past the bound."""
    started = time.monotonic()
    while True:
        response = await client.get(path, allow_redirects=False, **kw)  # type: ignore[arg-type]
        if response.status == status:
            return time.monotonic() - started
        assert time.monotonic() - started < BOUND, await response.text()
        await asyncio.sleep(0.01)


async def test_a_delete_on_one_replica_is_a_404_on_the_other_within_the_bound(
    replicas: tuple[Client, Client], catalog: CatalogStore, mint_token: Mint
) -> None:
    a, b = replicas
    key = await catalog.add_api_key(SEED_ISSUER)
    uploaded = await a.post(
        "/v1/images",
        data=form(image_file(solid((40, 30), RED, "PNG"), "a.png", "image/png")),
        headers=bearer(key),
    )
    assert uploaded.status == 201, await uploaded.text()
    image_id = (await uploaded.json(content_type=None))["data"]["id"]
    delivery = f"/images/{image_id}?token={mint_token([{'width': 8}])}"
    assert (await b.get(delivery)).status == 200  # resolved, and cached, on B
    deleted = await a.delete(f"/v1/images/{image_id}", headers=bearer(key))
    assert deleted.status == 204
    await _within_bound(b, delivery, 404)


async def test_a_key_revoked_on_one_replica_is_refused_by_the_other(
    replicas: tuple[Client, Client], catalog: CatalogStore, mint_token: Mint
) -> None:
    a, b = replicas
    api_key = await catalog.add_api_key(SEED_ISSUER)
    assert (await a.get("/v1/images", headers=bearer(api_key))).status == 200
    await b.app[CATALOG].store.revoke_api_key(SEED_ISSUER, api_key)
    await _within_bound(a, "/v1/images", 401, headers=bearer(api_key))
    # And a signing key: B revokes it, A refuses its tokens.
    delivery = f"/images/{SEED_IMAGE}?token={mint_token()}"
    assert (await a.get(delivery)).status == 404  # verified: no local original
    await b.app[CATALOG].store.revoke_key(SEED_ISSUER, SEED_KEY.kid)
    await _within_bound(a, delivery, 401)


async def test_uploads_split_across_replicas_list_once_in_one_order_on_both(
    replicas: tuple[Client, Client], catalog: CatalogStore
) -> None:
    """200 concurrent uploads, half through each replica: either lists every
    image exactly once, and both in the same order (keyset pages of 30)."""
    key = await catalog.add_api_key(SEED_ISSUER)
    png = solid((4, 3), RED, "PNG")

    async def upload(client: Client, slots: asyncio.Semaphore, n: int) -> str:
        async with slots:  # GATEWAY_UPLOADS_PER_KEY per process
            response = await client.post(
                "/v1/images",
                data=form(image_file(png, f"{n}.png", "image/png")),
                headers=bearer(key),
            )
            assert response.status == 201, await response.text()
            image_id: str = (await response.json(content_type=None))["data"]["id"]
            return image_id

    slots = {id(c): asyncio.Semaphore(4) for c in replicas}
    uploaded = await asyncio.gather(
        *(upload(c, slots[id(c)], n) for n in range(100) for c in replicas)
    )

    async def listed(client: Client) -> list[str]:
        seen: list[str] = []
        path: str | None = "/v1/images?page[size]=30&sort=createdAt"
        while path:
            response = await client.get(path, headers=bearer(key))
            doc = await response.json(content_type=None)
            assert doc["meta"] == {"total": 203}  # and seed 004's three
            seen += [item["id"] for item in doc["data"]]
            following = doc["links"].get("next")  # a URL under the public URL
            path = following and URL(following).raw_path_qs
        return seen

    on_a, on_b = await asyncio.gather(*(listed(c) for c in replicas))
    assert on_a == on_b
    assert len(set(on_a)) == len(on_a) == 203
    assert set(uploaded) <= set(on_a)


async def test_a_missed_notification_is_caught_by_the_version_check(
    settings: Settings, catalog: CatalogStore, database_url: str
) -> None:
    """A change whose NOTIFY never arrived (as across a reconnect) is seen
    once a poll is due: the data version moved."""
    view = CachedCatalog(await open_catalog(settings), size=16, poll_interval=0.3)
    try:
        await view.refresh()
        assert view.issuer(SEED_ISSUER) is not None
        await asyncio.wait_for(view.store.listening.wait(), 5)  # type: ignore[attr-defined]
        generation = view.generation
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await conn.execute("UPDATE issuer_keys SET revoked_at = 'now'")
                await conn.execute(
                    "UPDATE gateway_catalog SET data_version = data_version + 1"
                )
        finally:
            await conn.close()
        await asyncio.sleep(0.1)
        assert view.generation == generation  # no notification came
        await eventually(view.due, seconds=BOUND)
        await view.refresh()
        issuer = view.issuer(SEED_ISSUER)
        assert issuer is not None
        assert issuer.keys == ()
    finally:
        await view.store.close()


# Losing the database


async def _terminate_backends(cluster: Cluster) -> int:
    """pg_terminate_backend on every other connection to the tests' database."""
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        killed: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = 'gateway' AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return killed


async def test_terminated_connections_are_replaced_and_listening_resumes(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    database_url: str,
    catalog: CatalogStore,
    postgres_cluster: Cluster,
) -> None:
    client = await aiohttp_client(
        create_app(_replica_settings(tmp_path, database_url, 3600.0))
    )
    store = client.app[CATALOG].store
    api_key = await catalog.add_api_key(SEED_ISSUER)
    assert (await client.get("/v1/images", headers=bearer(api_key))).status == 200
    # The pool's connections and the listener's.
    assert await _terminate_backends(postgres_cluster) >= 2
    # Each read right after: on a connection the pool replaced, or on one
    # whose termination notice was not yet acted on, then again on a new one.
    for _ in range(20):
        await _terminate_backends(postgres_cluster)
        listing = await client.get("/v1/images", headers=bearer(api_key))
        assert listing.status == 200, await listing.text()
    await eventually(store.listening.is_set, seconds=5.0)  # type: ignore[attr-defined]
    # Notifications flow again: another replica's revocation is seen at once.
    other = await open_catalog(make_settings(tmp_path, database_url=database_url))
    try:
        await other.revoke_api_key(SEED_ISSUER, api_key)
    finally:
        await other.close()
    await _within_bound(client, "/v1/images", 401, headers=bearer(api_key))


async def _dying(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """This connection's backend terminated under it, inside its transaction."""
    await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    raise AssertionError("the backend outlived its termination")


async def test_a_connection_lost_inside_a_read_transaction_is_read_again(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg's transaction exit, on a connection that died inside it, raises
    an InterfaceError about the closed connection instead of the loss: it is
    still a lost connection (the read tried again), never a 500."""
    real = postgres_issuers.issuers
    calls = 0

    async def issuers_once_dying(conn: asyncpg.Connection[asyncpg.Record]) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            await _dying(conn)
        return await real(conn)

    monkeypatch.setattr(postgres_issuers, "issuers", issuers_once_dying)
    assert [i.id for i in await catalog.issuers()] == [SEED_ISSUER, OTHER_ISSUER]
    assert calls == 2


async def test_a_connection_lost_inside_a_write_transaction_is_503(
    catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not repeated (whether it was committed cannot be told), but a 503."""

    async def update_dying(
        conn: asyncpg.Connection[asyncpg.Record], *args: object
    ) -> None:
        await _dying(conn)

    monkeypatch.setattr(postgres_images, "update_image", update_dying)
    with pytest.raises(CatalogUnavailableError):
        await catalog.update_image(SEED_IMAGE, {"description": "lost"})


async def test_a_login_refused_under_running_replicas_is_503(
    tmp_path: Path, database_url: str, postgres_cluster: Cluster
) -> None:
    """A password rotated, a role disabled while replicas run: the server
    answers, but refuses the pool's new connections. An outage like the
    others (503), never a 500 with a traceback."""
    role = f"gateway_{secrets.token_hex(4)}"
    schema = URL(database_url).query["search_path"]
    admin = await asyncpg.connect(postgres_cluster.url())
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
    url = str(URL(database_url).with_user(role))
    store = await open_catalog(make_settings(tmp_path, database_url=url))
    try:
        await admin.execute(f"ALTER ROLE {role} NOLOGIN")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            role,
        )
        with pytest.raises(CatalogUnavailableError):
            await store.issuers()
    finally:
        await store.close()
        await admin.execute(f"REASSIGN OWNED BY {role} TO postgres")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def test_the_pools_retries_after_a_refused_login_are_one_line() -> None:
    refused = asyncpg.InvalidPasswordError(
        'password authentication failed for user "g"'
    )
    record = logging.LogRecord(
        "asyncpg.pool",
        logging.WARNING,
        __file__,
        1,
        "Failed to restore the pool connection floor; retrying",
        (),
        (type(refused), refused, None),
    )
    assert PoolOutagesInOneLine().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == (
        "Failed to restore the pool connection floor; retrying: "
        'password authentication failed for user "g"'
    )


async def test_a_stopped_server_gives_cached_answers_within_the_bound_then_503(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    database_url: str,
    catalog: CatalogStore,
    postgres_cluster: Cluster,
    mint_token: Mint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stop the server: what is in memory is served until a poll interval
    after the last good check, then 503 with Retry-After; what needs the
    database is a 503 at once; started again, it all comes back unaided.
    asyncpg's pool says it is retrying in one line each time, as `serve` logs it."""
    pool_log = logging.getLogger("asyncpg.pool")
    one_line = PoolOutagesInOneLine()
    pool_log.addFilter(one_line)
    poll = 2.0
    # The key is made before the app opens its catalog and the app is listening
    # before the first request: a notification of it arriving after that request
    # would rightly drop what is in memory, leaving nothing to answer from.
    api_key = await catalog.add_api_key(SEED_ISSUER)
    # The last good check is the app's start-up refresh, somewhere between these.
    before = time.monotonic()
    client = await aiohttp_client(
        create_app(_replica_settings(tmp_path, database_url, poll))
    )
    store = client.app[CATALOG].store
    await asyncio.wait_for(store.listening.wait(), 5)  # type: ignore[attr-defined]
    checked = time.monotonic()
    delivery = f"/images/{SEED_IMAGE}?token={mint_token()}"
    assert (await client.get(delivery, allow_redirects=False)).status == 302
    postgres_cluster.stop()
    try:
        assert time.monotonic() - before < poll
        # Still within the bound: the cached answer.
        assert (await client.get(delivery, allow_redirects=False)).status == 302
        # What needs the database: 503 at once.
        listing = await client.get("/v1/images", headers=bearer(api_key))
        await assert_error(listing, 503, "catalog_unavailable")
        assert listing.headers["Retry-After"] == "1"
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/metrics")).status == 200  # its own figures
        # Past the bound: no more answers from memory.
        await asyncio.sleep(max(0.0, checked + poll - time.monotonic()) + 0.1)
        for _ in range(3):  # each one: a failed check moves no poll on
            stale = await client.get(delivery, allow_redirects=False)
            await assert_error(stale, 503, "catalog_unavailable")
            assert stale.headers["Retry-After"] == "1"
            await asyncio.sleep(0.3)  # past the store's fail-fast moment too
    finally:
        postgres_cluster.start()
    await _eventually_status(client, delivery, 302)
    await _eventually_status(client, "/v1/images", 200, headers=bearer(api_key))
    assert (await client.get("/readyz")).status == 200
    pool_log.removeFilter(one_line)
    retries = [r for r in caplog.records if r.name == "asyncpg.pool"]
    assert retries, "the pool lost its connections without a word"
    for record in retries:
        assert record.exc_info is None
        assert record.getMessage().startswith(
            "Failed to restore the pool connection floor; retrying: "
        ), record.getMessage()
        assert "\n" not in record.getMessage()


async def _eventually_status(
    client: Client, path: str, status: int, **kw: object
) -> None:
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(path, allow_redirects=False, **kw)  # type: ignore[arg-type]
        if response.status == status:
            return
        assert time.monotonic() < deadline, await response.text()
        await asyncio.sleep(0.1)


async def test_a_hung_server_costs_a_request_the_timeout_once_then_503s_at_once(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    database_url: str,
    catalog: CatalogStore,
    postgres_cluster: Cluster,
) -> None:
    """A server that stops answering (not refusing): a query was asked twice,
    each waiting the timeout, and every request after paid it again."""
    settings = _replica_settings(tmp_path, database_url, 3600.0)
    timeout = 1.0
    settings = replace(
        settings, catalog=replace(settings.catalog, database_timeout=timeout)
    )
    client = await aiohttp_client(create_app(settings))
    api_key = await catalog.add_api_key(SEED_ISSUER)
    assert (await client.get("/v1/images", headers=bearer(api_key))).status == 200
    postmaster = int(
        (postgres_cluster.data_dir / "postmaster.pid").read_text().split()[0]
    )
    hung = [postmaster, *child_pids(postmaster)]
    for pid in hung:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        first = await client.get("/v1/images", headers=bearer(api_key))
        waited = time.monotonic() - started
        await assert_error(first, 503, "catalog_unavailable")
        assert timeout * 0.9 <= waited < timeout * 1.8, waited
        started = time.monotonic()
        second = await client.get("/v1/images", headers=bearer(api_key))
        await assert_error(second, 503, "catalog_unavailable")
        assert time.monotonic() - started < timeout / 2
    finally:
        for pid in hung:
            os.kill(pid, signal.SIGCONT)
    await _eventually_status(client, "/v1/images", 200, headers=bearer(api_key))
