"""The catalog commands: issuers, keys, images and tokens, one catalog call each."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.catalog import CatalogStore, ImageRecord, open_store
from gateway.catalog.location import upgrade
from gateway.catalog.postgres import redacted
from gateway.catalog.transfer import copy_catalog
from gateway.config import Settings
from gateway.delivery.links import delivery_url
from gateway.env import as_database_url
from gateway.originals.ingest import add_original, discard
from gateway.originals.store import OriginalStore
from signing import IssuerPolicy, mint
from transforms import TransformError, parse_transformations
from transforms.cloudinary import CloudinaryAsset

__all__ = [
    "CommandError",
    "api_key_create",
    "api_key_list",
    "api_key_revoke",
    "db_upgrade",
    "image_add",
    "image_list",
    "image_rm",
    "issuer_add",
    "issuer_list",
    "migrate",
    "signing_key_add",
    "signing_key_revoke",
    "token_mint",
]


class CommandError(Exception):
    """A command could not do what was asked; the message says why."""


def _print(doc: object) -> None:
    print(json.dumps(doc, indent=2))


_Command = Callable[[CatalogStore, Settings, argparse.Namespace], Awaitable[None]]


def with_catalog(command: _Command) -> Callable[[Settings, argparse.Namespace], None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        async def main() -> None:
            catalog = await open_store(settings)
            try:
                await command(catalog, settings, args)
            finally:
                await catalog.close()

        asyncio.run(main())

    return run


@with_catalog
async def issuer_add(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    issuer, key = await catalog.add_issuer(
        issuer_id=args.id,
        name=args.name or "",
        secret=args.secret,
        kid=args.kid,
        algorithm=args.algorithm,
        policy=IssuerPolicy(
            require_exp=args.require_exp, max_lifetime=args.max_lifetime
        ),
    )
    api_key = await catalog.add_api_key(issuer.id)
    _print(
        {
            "id": issuer.id,
            "name": issuer.name,
            "kid": key.kid,
            "algorithm": key.algorithm,
            "secret": key.secret,
            "api_key": api_key,
        }
    )


@with_catalog
async def api_key_create(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    _print({"issuer": args.issuer, "api_key": await catalog.add_api_key(args.issuer)})


@with_catalog
async def api_key_list(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    _print(
        [
            {
                "prefix": f"sk_{k.prefix}",
                "createdAt": k.created_at,
                "revokedAt": k.revoked_at,
            }
            for k in await catalog.api_keys(args.issuer)
        ]
    )


@with_catalog
async def api_key_revoke(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    await catalog.revoke_api_key(args.issuer, args.prefix)
    _print({"issuer": args.issuer, "prefix": args.prefix, "revoked": True})


@with_catalog
async def issuer_list(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    _print(
        [
            {"id": i.id, "name": i.name, "kids": [k.kid for k in i.keys]}
            for i in await catalog.issuers()
        ]
    )


@with_catalog
async def signing_key_add(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    key = await catalog.add_key(
        args.issuer, secret=args.secret, kid=args.kid, algorithm=args.algorithm
    )
    _print({"issuer": args.issuer, "kid": key.kid, "secret": key.secret})


@with_catalog
async def signing_key_revoke(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    await catalog.revoke_key(args.issuer, args.kid)
    _print({"issuer": args.issuer, "kid": args.kid, "revoked": True})


@with_catalog
async def image_add(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    if args.file is None and args.public_id is None:
        raise CommandError("give --file, --public-id, or both")
    asset = None
    if args.public_id is not None:
        try:
            asset = CloudinaryAsset(
                public_id=args.public_id,
                version=args.version,
                format=args.format,
                delivery_type=args.delivery_type or settings.upstream.delivery_type,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
    if args.file is None:
        record = await catalog.add_image(
            issuer_id=args.issuer, image_id=args.id, cloudinary=asset
        )
    else:
        path = Path(args.file)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            record = await add_original(
                catalog,
                OriginalStore(settings.originals),
                settings.limits,
                issuer_id=args.issuer,
                data=data,
                filename=path.name,
                image_id=args.id,
                cloudinary=asset,
            )
        except TransformError as exc:
            raise CommandError(f"{path}: {exc.detail}") from exc
    _print(_image_doc(record))


@with_catalog
async def image_rm(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    record = await catalog.remove_image(args.id)
    if record is None:
        raise CommandError(f"no image {args.id}")
    if record.original is not None and not args.preserve_on_disk:
        await discard(catalog, OriginalStore(settings.originals), record.original)
    _print({"id": args.id, "removed": True})


@with_catalog
async def image_list(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    _print([_image_doc(r) for r in await catalog.images(args.issuer)])


def _image_doc(record: ImageRecord) -> dict[str, object]:
    doc: dict[str, object] = {"id": record.id, "issuer": record.issuer_id}
    if (asset := record.cloudinary) is not None:
        doc.update(
            publicId=asset.public_id,
            version=asset.version,
            format=asset.format,
            deliveryType=asset.delivery_type,
        )
    if (original := record.original) is not None:
        doc.update(
            originalFilename=record.original_filename,
            mediaType=original.media_type,
            fileSize=original.file_size,
            width=original.width,
            height=original.height,
            sha256=original.sha256,
        )
    return doc


@with_catalog
async def token_mint(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    try:
        transformations = json.loads(args.transformations)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--transformations is not JSON: {exc}") from exc
    try:
        parse_transformations(transformations, settings.limits)
    except TransformError as exc:
        raise CommandError(f"{exc.pointer}: {exc.detail}") from exc
    issuer = await catalog.issuer(args.issuer)
    key = None
    if issuer is not None:
        key = issuer.key(args.kid) if args.kid else issuer.signing_key
    if issuer is None or key is None or key.verify_only:
        which = f"key {args.kid}" if args.kid else "signing key"
        raise CommandError(f"no issuer {args.issuer} with an active {which}")
    token = mint(
        key,
        issuer_id=issuer.id,
        transformations=transformations,
        ttl=args.ttl,
        subject=args.image if args.bind else None,
        audience=settings.tokens.audience,
    )
    url = delivery_url(settings.base_url, args.image, token)
    _print({"token": token, "url": str(url)})


def db_upgrade(settings: Settings, args: argparse.Namespace) -> None:
    before, after = asyncio.run(upgrade(settings))
    _print({"schemaVersion": after, "applied": after - before})


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    """Copy this SQLite catalog into PostgreSQL (again: finish, or bring up to date)."""
    if settings.catalog.postgres_url is not None:
        raise CommandError(
            "the catalog to copy is SQLite's: unset GATEWAY_DATABASE_URL or set it "
            "to the sqlite:/// file"
        )
    target = as_database_url("--catalog-to", args.catalog_to)
    if target.startswith("sqlite:"):
        raise CommandError("--catalog-to must be a postgresql:// URL")
    copies = asyncio.run(
        copy_catalog(
            settings.database, target, timeout=settings.catalog.database_timeout
        )
    )
    _print(
        {
            "catalog": {
                "from": str(settings.database),
                "to": redacted(target),
                "verified": True,
                "tables": [
                    {
                        "table": c.table,
                        "rows": c.rows,
                        "written": c.written,
                        "sha256": c.sha256,
                    }
                    for c in copies
                ],
            }
        }
    )
