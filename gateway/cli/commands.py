"""The catalog commands: issuers, keys, images and tokens, one catalog call each."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.catalog import CatalogStore, ImageRecord, open_catalog
from gateway.catalog.location import upgrade
from gateway.catalog.postgres import redacted
from gateway.catalog.rows import api_key_label, api_key_prefix
from gateway.catalog.transfer import copy_catalog
from gateway.cloudinary.uploaders import uploader
from gateway.config import Settings, data_dir_faults
from gateway.delivery.links import delivery_url
from gateway.env import as_database_url
from gateway.errors import ApiError, OriginalsUnavailableError
from gateway.originals.configured import open_store
from gateway.originals.ingest import discard, kept, prepare_original
from gateway.originals.store import OriginalStore
from signing import (
    SCOPES,
    Issuer,
    IssuerKey,
    IssuerPolicy,
    mint,
    mint_access_token,
    parse_roles,
)
from transforms import TransformError, normalise_image_id, parse_transformations
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
    "token_access",
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
            # Run from another directory, the default `./var` names no
            # catalog: a new one is made, and said so, whether the command
            # then succeeds (`issuer list` printed `[]`) or not.
            new = settings.catalog.postgres_url is None and not settings.database.exists()  # fmt: skip
            with data_dir_faults(settings):
                catalog = await open_catalog(settings)
            if new:
                _made(settings)
            try:
                await command(catalog, settings, args)
            finally:
                await catalog.close()

        asyncio.run(main())

    return run


def _made(settings: Settings) -> None:
    where = (
        "GATEWAY_DATABASE_URL"
        if settings.catalog.database_url is not None
        else "GATEWAY_DATA_DIR"
    )
    print(
        f"image-gateway: no catalog was at {settings.database.resolve()}; made a"
        f" new one there ({where} says where)",
        file=sys.stderr,
    )


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
            "api_key_prefix": api_key_label(api_key_prefix(api_key)),
        }
    )


@with_catalog
async def api_key_create(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    roles = _roles(args.roles)
    api_key = await catalog.add_api_key(args.issuer, roles=roles)
    _print(
        {
            "issuer": args.issuer,
            "api_key": api_key,
            # What `issuer key list` shows and `issuer key revoke` takes.
            "prefix": api_key_label(api_key_prefix(api_key)),
            "roles": sorted(roles),
        }
    )


def _roles(raw: str | None) -> frozenset[str]:
    """`--roles staff,editor`, checked as everywhere else roles arrive."""
    names = [] if raw is None else [r.strip() for r in raw.split(",") if r.strip()]
    try:
        return parse_roles(names)
    except ValueError as exc:
        raise CommandError(f"--roles: {exc}") from None


@with_catalog
async def api_key_list(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    await _known_issuer(catalog, args.issuer)  # an unknown one is no empty list
    _print(
        [
            {
                "prefix": api_key_label(k.prefix),
                "roles": sorted(k.roles),
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
    # As `key list` names it; a whole key given as the prefix is not echoed.
    label = api_key_label(api_key_prefix(args.prefix))
    _print({"issuer": args.issuer, "prefix": label, "revoked": True})


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


def _signing_key(issuer: Issuer, kid: str | None) -> IssuerKey:
    """The key `--kid` names, else the newest; never a verify-only one."""
    key = issuer.key(kid) if kid else issuer.signing_key
    if key is None or key.verify_only:
        which = f"key {kid}" if kid else "signing key"
        raise CommandError(f"issuer {issuer.id} has no active {which}")
    return key


async def _known_issuer(catalog: CatalogStore, issuer_id: str) -> Issuer:
    issuer = await catalog.issuer(issuer_id)
    if issuer is None:
        raise CommandError(f"no issuer {issuer_id}")
    return issuer


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
    # Before anything is read or stored: the catalog's own refusal would
    # name the random id it was about to give the image.
    await _known_issuer(catalog, args.issuer)
    if args.file is None:
        record = await catalog.add_image(
            issuer_id=args.issuer, image_id=args.id, cloudinary=asset
        )
    else:
        record = await _add_file(catalog, settings, args, asset)
    _print(_image_doc(record))


async def _add_file(
    catalog: CatalogStore,
    settings: Settings,
    args: argparse.Namespace,
    asset: CloudinaryAsset | None,
) -> ImageRecord:
    """Probe and store the original and, with a CDN configured, upload it as the
    API does (the upload's answer names the asset); nothing is left on failure."""
    path = Path(args.file)
    limit = settings.ingest.max_upload_bytes
    try:
        data = await asyncio.to_thread(_read_at_most, path, limit + 1)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > limit:
        # The API's bound (GATEWAY_MAX_UPLOAD_BYTES), read no further: a
        # device or a growing file would otherwise be read until memory ends.
        raise CommandError(
            f"{path} is larger than GATEWAY_MAX_UPLOAD_BYTES ({limit} bytes)"
        )
    async with open_store(settings) as originals:
        return await _store_file(catalog, settings, args, asset, originals, path, data)


async def _store_file(
    catalog: CatalogStore,
    settings: Settings,
    args: argparse.Namespace,
    asset: CloudinaryAsset | None,
    originals: OriginalStore,
    path: Path,
    data: bytes,
) -> ImageRecord:
    try:
        original = await prepare_original(originals, settings.limits, data, None)
    except TransformError as exc:
        raise CommandError(f"{path}: {exc.detail}") from exc
    image_id = args.id
    try:
        async with uploader(settings, originals) as cdn:
            if cdn is not None:
                if args.version is not None or args.format is not None:
                    raise CommandError("--version and --format come from the upload")
                if await catalog.issuer(args.issuer) is None:
                    raise CommandError(f"no issuer {args.issuer}")
                image_id = image_id or str(uuid.uuid4())
                try:
                    uploaded = await cdn.upload(
                        data,
                        public_id=args.public_id or image_id,
                        delivery_type=args.delivery_type
                        or settings.upstream.delivery_type,
                    )
                except ApiError as exc:
                    raise CommandError(
                        f"{path}: the upload failed: {exc.detail}"
                    ) from exc
                asset, original = uploaded.asset, uploaded.onto(original)
        record = await catalog.add_image(
            issuer_id=args.issuer,
            image_id=image_id,
            cloudinary=asset,
            original=original,
            original_filename=path.name,
        )
    except BaseException:
        await discard(catalog, originals, original)
        raise
    await kept(originals, data)
    return record


@with_catalog
async def image_rm(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    """Remove an image; its asset goes first, where it was uploaded (as the API does)."""
    async with open_store(settings) as originals:
        found = await catalog.image(args.id)
        if found is not None and found.cloudinary is not None:
            async with uploader(settings, originals) as cdn:
                if cdn is not None:
                    try:
                        await cdn.destroy(found.cloudinary)
                    except ApiError as exc:
                        raise CommandError(
                            f"the asset was not destroyed: {exc.detail}"
                        ) from exc
        record = await catalog.remove_image(args.id)
        if record is None:
            raise CommandError(f"no image {args.id}")
        if record.original is not None and not args.preserve_on_disk:
            await discard(catalog, originals, record.original)
    _print({"id": args.id, "removed": True})


@with_catalog
async def image_list(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    await _known_issuer(catalog, args.issuer)
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


def _read_at_most(path: Path, size: int) -> bytes:
    with path.open("rb") as file:
        return file.read(size)


@with_catalog
async def token_mint(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    if args.ttl is not None and args.ttl <= 0:
        raise CommandError("--ttl must be a positive number of seconds")
    try:
        transformations = json.loads(args.transformations)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--transformations is not JSON: {exc}") from exc
    except RecursionError:
        raise CommandError("--transformations is nested too deeply") from None
    try:
        parsed = parse_transformations(transformations, settings.limits)
    except TransformError as exc:
        raise CommandError(f"{exc.pointer}: {exc.detail}") from exc
    issuer = await _known_issuer(catalog, args.issuer)
    key = _signing_key(issuer, args.kid)
    # A token its issuer's own policy refuses would only ever get 401s.
    policy = issuer.policy
    if args.ttl is None and policy.require_exp:
        raise CommandError(f"issuer {issuer.id} requires exp: give --ttl")
    limit = policy.max_lifetime
    if args.ttl is not None and limit is not None and args.ttl > limit:
        raise CommandError(
            f"--ttl: issuer {issuer.id} allows tokens of at most {limit} s"
        )
    # A token for an image the issuer does not own would only ever get 404s.
    for image_id, where in (
        (args.image, "--image"),
        *(
            (layer, f"/transformations/{index}/overlay")
            for layer, index in parsed.overlay_steps.items()
        ),
    ):
        canonical = normalise_image_id(image_id)
        record = None if canonical is None else await catalog.image(canonical)
        if record is None or record.issuer_id != issuer.id:
            raise CommandError(f"{where}: issuer {issuer.id} has no image {image_id}")
    token = mint(
        key,
        issuer_id=issuer.id,
        transformations=transformations,
        ttl=args.ttl,
        subject=args.image if args.bind else None,
        audience=settings.tokens.audience,
    )
    url = delivery_url(settings.base_url, args.image, token)
    _print({"token": token, "url": url})


@with_catalog
async def token_access(
    catalog: CatalogStore, settings: Settings, args: argparse.Namespace
) -> None:
    """An access token for one of an issuer's users (`/v1`, `/v3`, `/image`)."""
    if args.ttl <= 0:
        raise CommandError("--ttl must be a positive number of seconds")
    if args.ttl > settings.access.max_lifetime:
        raise CommandError(
            f"--ttl is at most {settings.access.max_lifetime} s "
            "(GATEWAY_ACCESS_TOKEN_MAX_LIFETIME)"
        )
    scopes = [s for s in args.scope.replace(",", " ").split() if s]
    if unknown := set(scopes) - SCOPES:
        raise CommandError(
            f"--scope: unknown {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(SCOPES))}"
        )
    roles = _roles(args.roles)
    issuer = await _known_issuer(catalog, args.issuer)
    key = _signing_key(issuer, args.kid)
    try:
        token = mint_access_token(
            key,
            issuer_id=issuer.id,
            subject=args.sub,
            ttl=args.ttl,
            scopes=scopes,
            roles=roles,
            audience=settings.tokens.audience,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    _print(
        {
            "token": token,
            "issuer": issuer.id,
            "sub": args.sub,
            "scope": " ".join(sorted(scopes)),
            "roles": sorted(roles),
            "expiresIn": args.ttl,
        }
    )


def db_upgrade(settings: Settings, args: argparse.Namespace) -> None:
    with data_dir_faults(settings):
        before, after = asyncio.run(upgrade(settings))
    _print({"schemaVersion": after, "applied": after - before})


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    """Copy this SQLite catalog into PostgreSQL and the local originals into S3
    (again: finish, or bring up to date); print what each copy verified."""
    if args.catalog_to is None and args.originals_to is None:
        raise CommandError("give --catalog-to, --originals-to, or both")
    target = None
    if args.catalog_to is not None:
        if settings.catalog.postgres_url is not None:
            raise CommandError(
                "the catalog to copy is SQLite's: unset GATEWAY_DATABASE_URL or set "
                "it to the sqlite:/// file"
            )
        target = as_database_url("--catalog-to", args.catalog_to)
        if target.startswith("sqlite:"):
            raise CommandError("--catalog-to must be a postgresql:// URL")
    doc = asyncio.run(
        _migrate(settings, target, originals=args.originals_to is not None)
    )
    _print(doc)
    originals = doc.get("originals")
    if isinstance(originals, dict) and (damaged := originals["damaged"]):
        raise CommandError(
            f"{len(damaged)} local original(s) do not hash to their names and were "
            "not copied (listed under originals.damaged): restore them from a "
            "backup, or remove their images"
        )


async def _migrate(
    settings: Settings, catalog_to: str | None, *, originals: bool
) -> dict[str, object]:
    doc: dict[str, object] = {}
    if catalog_to is not None:
        copies = await copy_catalog(
            settings.database, catalog_to, timeout=settings.catalog.database_timeout
        )
        doc["catalog"] = {
            "from": str(settings.database),
            "to": redacted(catalog_to),
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
    if originals:  # into GATEWAY_ORIGINALS_URL, which main set to --originals-to
        doc["originals"] = await _migrate_originals(settings)
    return doc


async def _migrate_originals(settings: Settings) -> dict[str, object]:
    # Imported only here, as `open_store` does: the SDK is slow to import.
    from gateway.originals.migrate import copy_originals
    from gateway.originals.s3 import open_s3_store

    # Its log lines would repeat on stderr what the printed report says.
    logging.getLogger("gateway.originals").addHandler(logging.NullHandler())
    async with open_s3_store(
        settings.store, read_timeout=settings.upstream.timeout
    ) as store:
        await store.check()
        try:
            report = await copy_originals(settings.originals, store)
        except (OriginalsUnavailableError, OSError) as exc:
            raise CommandError(
                f"{store.location}: the copy stopped ({exc}); run the command "
                "again to resume it"
            ) from None
    return {
        "from": str(settings.originals),
        "to": str(store.location),
        "copied": report.copied,
        "alreadyThere": report.present,
        "verified": report.verified,
        "damaged": sorted(report.damaged),
    }
