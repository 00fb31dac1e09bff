"""Snapshots as named, governed things in a store.

Layout of a store the catalog manages (every name a store key)::

    catalog.json                      owner account, written once (exclusive)
    snapshots/<name>.json             manifests: the commit point of a snapshot
    data/<name>/<token>/shard-NNNN.rdb[.lz4]   shard objects (token: one attempt)
    policies/<source id>.json         per-source policy
    events/YYYY/MM/DD/...json         the event log

A snapshot is written shards first, manifest last with an exclusive put, so
of two processes racing for one name exactly one commits; the loser deletes
its shards (they live under its own attempt token, so it never touches the
winner's). A crash leaves only unreferenced shards and pending uploads, which
:meth:`Catalog.gc` removes.

Accounts: a store belongs to the account recorded in ``catalog.json`` (the
first writer's). A catalog opened by another account may list and describe,
but every operation that writes to the store or moves snapshot data out of it
(create, import, delete, prune, copy, export, fetch, open) is refused with
AccountMismatchError naming both accounts, and the refusal is logged. There is
no override.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from rdbkit.catalog.events import Event, EventLog
from rdbkit.catalog.lease import Lease, LeaseRecord
from rdbkit.catalog.manifest import KINDS, Manifest, ShardRecord, SourceInfo, validate_name
from rdbkit.catalog.policy import Policy, next_manual_allowed, source_id
from rdbkit.catalog.probe import RdbProbe
from rdbkit.errors import (
    AccountMismatchError,
    CatalogError,
    CorruptObjectError,
    DecodeError,
    ObjectExistsError,
    ObjectNotFoundError,
    PolicyError,
    QuotaExceededError,
    RdbkitError,
    SnapshotChecksumError,
    SnapshotExistsError,
    SnapshotNotFoundError,
    StorageError,
)
from rdbkit.storage import CompressedStore, ObjectInfo, Store
from rdbkit.storage.base import CHUNK_SIZE, Source

MARKER_KEY = "catalog.json"
SNAPSHOTS = "snapshots/"
DATA = "data/"
POLICIES = "policies/"
#: Shards written at once when a snapshot has several.
MAX_PARALLEL_SHARDS = 8

Clock = Callable[[], datetime]
#: Called as shard data moves: (bytes, keys) added since the last call.
Progress = Callable[[int, int], None]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ShardInput:
    """One shard's RDB bytes as a capture hands them over (a stream of unknown length)."""

    data: Source
    size_hint: int | None = None
    slots: tuple[tuple[int, int], ...] | None = None
    node: str | None = None


@dataclass
class Capture:
    """What a capture produced: where from, the shard streams, how consistent."""

    source: SourceInfo
    shards: list[ShardInput]
    consistency: str = "point-in-time"


#: Takes a source URL, returns its capture (file import now, live nodes later).
CaptureFn = Callable[[str], Capture]


@dataclass
class GcReport:
    """What :meth:`Catalog.gc` found (and removed, unless it was a dry run)."""

    pending_uploads: list = field(default_factory=list)
    orphan_objects: list[ObjectInfo] = field(default_factory=list)
    applied: bool = False


class Catalog:
    """Named snapshots in ``store``, owned by one account; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        account: str | None = None,
        compression: str | None = None,
        clock: Clock = utcnow,
        progress: Progress | None = None,
    ) -> None:
        """``account`` defaults to the store's (``store.owner_account()``).

        ``compression`` ("lz4" or None) applies to snapshots this catalog
        writes; reads follow each manifest. ``clock`` returns aware UTC times
        (tests inject one); ``progress(bytes, keys)`` is called with what each
        chunk of shard data added (from several threads for several shards).
        """
        if compression not in (None, "lz4"):
            raise CatalogError(f"unknown compression {compression!r} (expected None or 'lz4')")
        self.store = store
        self.account = account if account is not None else store.owner_account()
        self.compression = compression
        self.clock = clock
        self.progress = progress
        self.events = EventLog(store)
        self._owner: str | None = None

    def __repr__(self) -> str:
        return f"Catalog({self.store!r}, account={self.account!r})"

    # -- ownership -------------------------------------------------------------

    def owner(self) -> str | None:
        """The account the store belongs to (None until something was written)."""
        if self._owner is None:
            try:
                with self.store.get(MARKER_KEY) as fh:
                    data = json.loads(fh.read())
                self._owner = str(data["owner_account"])
            except ObjectNotFoundError:
                return None
            except (ValueError, KeyError, TypeError) as exc:
                raise CatalogError(f"{MARKER_KEY} in {self.store} is malformed: {exc}") from exc
        return self._owner

    def _claim(self) -> None:
        """Record this account as the store's owner if nobody has yet."""
        if self.owner() is not None:
            return
        marker = {"schema_version": 1, "owner_account": self.account}
        try:
            self.store.put(MARKER_KEY, json.dumps(marker).encode(), exclusive=True)
        except ObjectExistsError:
            pass  # another process claimed it first; owner() reads who
        self._owner = None

    def _refuse(self, action: str, owner: str, other: str, message: str, **log) -> None:
        self._log("refuse", detail={"refused": action, "owner": owner, "other": other}, **log)
        raise AccountMismatchError(message, owner=owner, other=other)

    def _check_store(self, action: str, name: str | None = None) -> None:
        """Refuse ``action`` unless this catalog's account owns the store."""
        if action != "read":
            self._claim()
        owner = self.owner()
        if owner is not None and owner != self.account:
            self._refuse(
                action,
                owner,
                self.account,
                f"cannot {action} in {self.store}: the store belongs to account {owner!r}, "
                f"not {self.account!r}",
                name=name,
            )

    def _check_snapshot(self, manifest: Manifest, action: str, other: str) -> None:
        """Refuse ``action`` moving ``manifest`` to account ``other`` unless it owns it."""
        self._check_store(action, manifest.name)
        if manifest.owner_account != other:
            self._refuse(
                action,
                manifest.owner_account,
                other,
                f"cannot {action} snapshot {manifest.name!r}: it belongs to account "
                f"{manifest.owner_account!r} and the target belongs to {other!r}",
                name=manifest.name,
                source=manifest.source.url,
            )

    def _log(self, action: str, **fields) -> None:
        self.events.append(Event(at=self.clock(), action=action, account=self.account, **fields))

    # -- reading the catalog -------------------------------------------------

    @staticmethod
    def manifest_key(name: str) -> str:
        return f"{SNAPSHOTS}{validate_name(name)}.json"

    def describe(self, name: str) -> Manifest:
        """The manifest of snapshot ``name``; SnapshotNotFoundError if none."""
        key = self.manifest_key(name)
        try:
            with self.store.get(key) as fh:
                raw = fh.read()
        except ObjectNotFoundError:
            raise SnapshotNotFoundError(f"no snapshot {name!r} in {self.store}") from None
        return Manifest.from_json(raw, where=f"manifest {key!r}")

    def exists(self, name: str) -> bool:
        return self.store.exists(self.manifest_key(name))

    def list(self, *, source: str | None = None, kind: str | None = None) -> list[Manifest]:
        """Every snapshot (optionally of one source URL or kind), oldest first."""
        found = []
        for info in self.store.list(SNAPSHOTS):
            name = info.key[len(SNAPSHOTS) :]
            if "/" in name or not name.endswith(".json"):
                continue
            try:
                manifest = self.describe(name[: -len(".json")])
            except SnapshotNotFoundError:
                continue  # deleted while we listed
            if source is not None and manifest.source.url != source:
                continue
            if kind is not None and manifest.kind != kind:
                continue
            found.append(manifest)
        return sorted(found, key=lambda m: (m.created_at, m.name))

    # -- one operation per source ---------------------------------------------

    def lease(self, source_url: str, operation: str, *, ttl: float | None = None) -> Lease:
        """The lease of ``source_url`` for ``operation`` (a context manager; see rdbkit.catalog.lease).

        Entering it raises LeaseHeldError while another operation runs on that source.
        """
        def taken_over(held: LeaseRecord) -> None:
            self._log("takeover", source=source_url,
                      detail={"operation": held.operation, "owner": held.owner,
                              "expired_at": held.expires_at})

        return Lease(self.store, source_url, operation, ttl=ttl, on_takeover=taken_over)

    # -- policies ------------------------------------------------------------

    def policy(self, source_url: str) -> Policy:
        """The stored policy of a source, or the default one."""
        key = f"{POLICIES}{source_id(source_url)}.json"
        try:
            with self.store.get(key) as fh:
                return Policy.from_json(fh.read(), where=f"policy {key!r}")
        except ObjectNotFoundError:
            return Policy(source_url)

    def policies(self) -> list[Policy]:
        out = []
        for info in self.store.list(POLICIES):
            with self.store.get(info.key) as fh:
                out.append(Policy.from_json(fh.read(), where=f"policy {info.key!r}"))
        return out

    def set_policy(
        self,
        source_url: str,
        *,
        retention_days: int | None = None,
        window: str | None = None,
    ) -> Policy:
        """Change a source's retention and/or window (PolicyError when out of range)."""
        with self.lease(source_url, "policy change"):
            return self._set_policy(source_url, retention_days, window)

    def _set_policy(self, source_url: str, retention_days: int | None,
                    window: str | None) -> Policy:
        current = self.policy(source_url)
        if current.retired:
            raise CatalogError(f"source {source_url!r} is retired; its policy is final")
        policy = Policy(
            source_url,
            retention_days=current.retention_days if retention_days is None else retention_days,
            window=current.window if window is None else window,
        )
        self._write_policy(policy)
        self._log(
            "policy",
            source=source_url,
            detail={"retention_days": policy.retention_days, "window": policy.window},
        )
        return policy

    def _write_policy(self, policy: Policy) -> None:
        self._check_store("set a policy")
        self.store.put(f"{POLICIES}{source_id(policy.source_url)}.json", policy.to_json())

    # -- creating ------------------------------------------------------------

    def manual_quota_next(self, source_url: str, now: datetime | None = None) -> datetime | None:
        """None if a manual snapshot of the source is allowed now, else when it will be."""
        now = now or self.clock()
        created = [
            e.at
            for e in self.events.read(since=now - timedelta(hours=24), until=now)
            if e.action == "create" and e.kind == "manual" and e.source == source_url
        ]
        return next_manual_allowed(created, now)

    def create(self, name: str, capture: Capture, *, kind: str = "manual") -> Manifest:
        """Store ``capture`` as snapshot ``name``; the manifest is written last.

        Rules: the name must be free (SnapshotExistsError, also when another
        process wins a race for it); a manual snapshot must fit the quota
        (QuotaExceededError with the next allowed time); an automatic one
        needs retention > 0 and gets its expiry. A retired source takes no new
        snapshots but its final one. An RDB that does not decode fails with
        the decoder's error and leaves nothing behind.
        """
        return self._write(name, capture, kind=kind)

    def _write(
        self, name: str, capture: Capture, *, kind: str, copied_from: str | None = None
    ) -> Manifest:
        validate_name(name)
        if kind not in KINDS:
            raise CatalogError(f"unknown snapshot kind {kind!r} (expected one of {KINDS})")
        if not capture.shards:
            raise CatalogError("a snapshot needs at least one shard")
        self._check_store("create a snapshot", name)
        source = capture.source
        now = self.clock()
        policy = self.policy(source.url)
        if policy.retired and kind in ("manual", "automatic"):
            raise CatalogError(f"source {source.url!r} is retired: it takes no new snapshots")
        expires_at = None
        if kind == "automatic":
            if policy.retention_days == 0:
                raise PolicyError(
                    f"automatic snapshots of {source.url!r} are off (retention 0 days)"
                )
            expires_at = policy.expiry_for(now)
        if kind == "manual":
            allowed = self.manual_quota_next(source.url, now)
            if allowed is not None:
                raise QuotaExceededError(
                    f"source {source.url!r} already has 20 manual snapshots in the last 24 "
                    f"hours; the next is allowed at {allowed.isoformat()}",
                    next_allowed_at=allowed,
                )
        if self.exists(name):
            raise SnapshotExistsError(f"a snapshot named {name!r} already exists in {self.store}")

        prefix = f"{DATA}{name}/{secrets.token_hex(8)}/"
        records = self._write_shards(prefix, capture.shards)
        manifest = Manifest(
            name=name,
            kind=kind,
            created_at=now,
            owner_account=self.account,
            source=source,
            shards=tuple(records),
            compression=self.compression,
            expires_at=expires_at,
            consistency=capture.consistency,
            copied_from=copied_from,
        )
        try:
            self.store.put(self.manifest_key(name), manifest.to_json(), exclusive=True)
        except BaseException as exc:
            self._delete_keys([r.key for r in records])
            if isinstance(exc, ObjectExistsError):
                raise SnapshotExistsError(
                    f"a snapshot named {name!r} was created in {self.store} by another writer"
                ) from exc
            raise
        self._log(
            "create",
            name=name,
            source=source.url,
            kind=kind,
            detail={"keys": manifest.keys, "rdb_size": manifest.rdb_size, "copied_from": copied_from},
        )
        return manifest

    def _write_shards(self, prefix: str, shards: list[ShardInput]) -> list[ShardRecord]:
        """Upload every shard (several at once); on any failure delete them all."""
        target = CompressedStore(self.store) if self.compression == "lz4" else self.store
        suffix = ".rdb.lz4" if self.compression == "lz4" else ".rdb"
        keys = [f"{prefix}shard-{i:04d}{suffix}" for i in range(len(shards))]

        def one(index: int) -> ShardRecord:
            shard = shards[index]
            probe = RdbProbe(shard.data, progress=self.progress)
            try:
                # Uncompressed, the stored bytes are the RDB bytes the probe hashes already.
                info = target.put(keys[index], probe, size_hint=shard.size_hint,
                                  checksum=self.compression is not None)
            except StorageError as exc:
                if probe.error is not None:
                    raise probe.error from None
                cause = _source_error(exc)
                if cause is not None:  # the capture failed (link cut, damaged copy source, ...)
                    raise cause from None
                raise
            assert probe.complete and probe.version is not None
            return ShardRecord(
                index=index,
                key=keys[index],
                rdb_version=probe.version,
                rdb_size=probe.size,
                rdb_sha256=probe.sha256,
                stored_size=info.size,
                stored_sha256=info.checksum or probe.sha256,
                keys=probe.keys,
                keys_by_type=dict(sorted(probe.keys_by_type.items())),
                dbs=tuple(sorted(probe.dbs)),
                slots=shard.slots,
                node=shard.node,
            )

        try:
            if len(shards) == 1:
                return [one(0)]
            with ThreadPoolExecutor(min(len(shards), MAX_PARALLEL_SHARDS)) as pool:
                futures = [pool.submit(one, i) for i in range(len(shards))]
                return [f.result() for f in futures]  # first error (in shard order) wins
        except BaseException:
            self._delete_keys(keys)
            raise

    def _delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except StorageError:
                pass  # gc removes what could not be deleted now

    def import_file(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        source_url: str | None = None,
        kind: str = "manual",
    ) -> Manifest:
        """Make a snapshot from an existing RDB file (how users seed from their own RDB)."""
        capture = file_capture(str(path), source_url=source_url)
        if name is None:
            stem = Path(path).name.removesuffix(".rdb") or "import"
            stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).lstrip("._-")
            name = f"{stem or 'import'}-{self.clock():%Y%m%d-%H%M%S}"
        return self.create(name, capture, kind=kind)

    # -- reading snapshot data ----------------------------------------------

    def open_shard(
        self, manifest: Manifest | str, index: int = 0, *, account: str | None = None
    ) -> BinaryIO:
        """A stream of shard ``index``'s RDB bytes, verified as it is read.

        ``account`` is the account of where the bytes go (default: this
        catalog's); another account than the snapshot's is refused. Reading
        to the end raises SnapshotChecksumError when the bytes differ from
        the manifest, so a consumer must not commit before EOF.
        """
        if isinstance(manifest, str):
            manifest = self.describe(manifest)
        self._check_snapshot(manifest, "read", self.account if account is None else account)
        try:
            shard = manifest.shards[index]
        except IndexError:
            raise CatalogError(
                f"snapshot {manifest.name!r} has {len(manifest.shards)} shard(s), no shard {index}"
            ) from None
        source = CompressedStore(self.store) if manifest.compression == "lz4" else self.store
        try:
            raw = source.get(shard.key)
        except ObjectNotFoundError:
            raise SnapshotChecksumError(
                f"snapshot {manifest.name!r} is damaged: shard object {shard.key!r} is missing"
            ) from None
        return _VerifiedReader(raw, shard, f"snapshot {manifest.name!r} shard {index}")  # type: ignore[return-value]

    def fetch(
        self, name: str, directory: str | os.PathLike[str], *, account: str | None = None
    ) -> list[Path]:
        """Write every shard as a plain RDB file into ``directory``, all verified first.

        Files appear under their final names (``<name>.rdb``, or
        ``<name>-shard-NNNN.rdb`` for several shards) only after every shard
        has been read and matched its checksum; on any failure nothing is
        left in ``directory``.
        """
        manifest = self.describe(name)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        finals = [directory / n for n in export_names(manifest, None)]
        temps: list[str] = []
        try:
            for index, final in enumerate(finals):
                fd, tmp = tempfile.mkstemp(prefix=".rdbkit-fetch-", dir=directory)
                temps.append(tmp)
                with os.fdopen(fd, "wb") as out, self.open_shard(manifest, index, account=account) as src:
                    while chunk := src.read(CHUNK_SIZE):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            for tmp, final in zip(temps, finals):
                os.replace(tmp, final)
            temps = []
        finally:
            for tmp in temps:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        return finals

    # -- copy, export, delete, prune -------------------------------------------

    def copy(self, name: str, new_name: str, *, target: Catalog | None = None) -> Manifest:
        """Copy snapshot ``name`` as ``new_name`` (into ``target``, default this catalog).

        The copy's kind is "copy": kept until deleted, whatever the original
        was. Copying to a catalog of another account is refused.
        """
        target = target or self
        manifest = self.describe(name)
        self._check_snapshot(manifest, "copy", target.account)
        target._check_store("copy a snapshot into", new_name)
        streams = [self.open_shard(manifest, i) for i in range(len(manifest.shards))]
        try:
            capture = Capture(
                source=manifest.source,
                shards=[
                    ShardInput(s, size_hint=r.rdb_size, slots=r.slots, node=r.node)
                    for s, r in zip(streams, manifest.shards)
                ],
                consistency=manifest.consistency,
            )
            copied = target._write(new_name, capture, kind="copy", copied_from=name)
        except DecodeError as exc:  # it decoded when stored, so the stored bytes changed
            raise SnapshotChecksumError(
                f"snapshot {name!r} is corrupt: its stored bytes no longer decode ({exc})"
            ) from exc
        finally:
            for s in streams:
                s.close()
        self._log("copy", name=name, source=manifest.source.url, detail={"to": new_name, "store": repr(target.store)})
        return copied

    def export(self, name: str, dest: Store, key: str | None = None) -> list[ObjectInfo]:
        """Write snapshot ``name`` as plain ``.rdb`` object(s) into ``dest``.

        ``dest`` must belong to the snapshot's account. ``key`` names the
        object (default ``<name>.rdb``; several shards get ``-shard-NNNN``
        before the suffix). Existing objects are not overwritten.
        """
        manifest = self.describe(name)
        self._check_snapshot(manifest, "export", dest.owner_account())
        written = []
        try:
            for index, obj_key in enumerate(export_names(manifest, key)):
                with self.open_shard(manifest, index) as src:
                    try:
                        info = dest.put(
                            obj_key, src, size_hint=manifest.shards[index].rdb_size, exclusive=True
                        )
                    except StorageError as exc:  # dest wraps what its source raised
                        if isinstance(exc.__cause__, SnapshotChecksumError):
                            raise exc.__cause__ from None
                        raise
                    written.append(info)
        except BaseException:
            for info in written:
                dest.delete(info.key)
            raise
        self._log(
            "export",
            name=name,
            source=manifest.source.url,
            detail={"to": repr(dest), "keys": [i.key for i in written]},
        )
        return written

    def delete(self, name: str, *, _action: str = "delete") -> Manifest:
        """Delete snapshot ``name``: the manifest first (it is gone at once), then its shards."""
        manifest = self.describe(name)
        self._check_store("delete", name)
        self.store.delete(self.manifest_key(name))
        self._delete_keys([s.key for s in manifest.shards])
        self._log(_action, name=name, source=manifest.source.url, kind=manifest.kind)
        return manifest

    def expired(self, now: datetime | None = None) -> list[Manifest]:
        """Automatic snapshots whose retention has run out."""
        now = now or self.clock()
        return [
            m for m in self.list(kind="automatic") if m.expires_at is not None and m.expires_at <= now
        ]

    def prune(self, *, dry_run: bool = False) -> list[Manifest]:
        """Delete expired automatic snapshots (only list them with ``dry_run``)."""
        expired = self.expired()
        if not dry_run:
            self._check_store("prune")
            for manifest in expired:
                self.delete(manifest.name, _action="prune")
        return expired

    # -- retiring a source -----------------------------------------------------

    def retire(
        self,
        source_url: str,
        *,
        final_snapshot: str | None = None,
        capture: CaptureFn | None = None,
    ) -> tuple[Manifest | None, list[Manifest]]:
        """Give up a source: take its final snapshot first (if named), then stop
        automatic snapshots and delete the automatic ones it has.

        If the final snapshot fails, nothing else changes and the error
        propagates. Returns (final manifest or None, deleted automatic ones).
        """
        with self.lease(source_url, "retire"):
            return self._retire(source_url, final_snapshot, capture)

    def _retire(self, source_url: str, final_snapshot: str | None,
                capture: CaptureFn | None) -> tuple[Manifest | None, list[Manifest]]:
        self._check_store("retire a source")
        policy = self.policy(source_url)
        if policy.retired:
            raise CatalogError(f"source {source_url!r} is already retired")
        final = None
        if final_snapshot is not None:
            validate_name(final_snapshot)
            if self.exists(final_snapshot):
                raise SnapshotExistsError(f"a snapshot named {final_snapshot!r} already exists")
            if capture is None:
                raise CatalogError("a final snapshot needs a capture of the source")
            final = self._write(final_snapshot, capture(source_url), kind="final")
        self._write_policy(Policy(source_url, policy.retention_days, policy.window, retired=True))
        deleted = [self.delete(m.name) for m in self.list(source=source_url, kind="automatic")]
        self._log(
            "retire",
            name=final_snapshot,
            source=source_url,
            detail={"deleted_automatic": [m.name for m in deleted]},
        )
        return final, deleted

    # -- garbage ---------------------------------------------------------------

    def gc(self, *, older_than: timedelta = timedelta(hours=24), apply: bool = False) -> GcReport:
        """Find leftovers of crashed writers older than ``older_than``; remove them with ``apply``.

        Leftovers: pending (never completed) uploads anywhere in the store,
        and shard objects under ``data/`` that no manifest references.
        """
        if apply:
            self._check_store("gc")
        cutoff = self.clock() - older_than
        referenced = {s.key for m in self.list() for s in m.shards}
        report = GcReport(applied=apply)
        report.pending_uploads = [u for u in self.store.list_pending("") if u.started_at < cutoff]
        report.orphan_objects = [
            info
            for info in self.store.list(DATA)
            if info.key not in referenced and info.modified_at < cutoff
        ]
        if apply:
            for upload in report.pending_uploads:
                self.store.abort_pending(upload)
            self._delete_keys([info.key for info in report.orphan_objects])
            if report.pending_uploads or report.orphan_objects:
                self._log(
                    "gc",
                    detail={
                        "aborted_uploads": [u.key for u in report.pending_uploads],
                        "deleted_objects": [i.key for i in report.orphan_objects],
                    },
                )
        return report


def _source_error(exc: BaseException) -> RdbkitError | None:
    """The rdbkit error a store's source raised, found under the StorageError it was wrapped in."""
    seen = exc.__cause__
    while seen is not None:
        if isinstance(seen, RdbkitError) and not isinstance(seen, StorageError):
            return seen
        seen = seen.__cause__
    return None


def export_names(manifest: Manifest, key: str | None) -> list[str]:
    """Object/file names for a snapshot's shards as plain RDB files."""
    base = key or f"{manifest.name}.rdb"
    if len(manifest.shards) == 1:
        return [base]
    stem, dot, ext = base.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = base, "rdb"
    return [f"{stem}-shard-{i:04d}.{ext}" for i in range(len(manifest.shards))]


def file_capture(path: str, *, source_url: str | None = None) -> Capture:
    """A capture of an RDB file: the file is read lazily when the catalog stores it."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    resolved = Path(path).resolve()
    size = resolved.stat().st_size  # FileNotFoundError now, not mid-upload

    def chunks() -> Iterator[bytes]:
        with open(resolved, "rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                yield chunk

    return Capture(
        source=SourceInfo(url=source_url or resolved.as_uri(), engine="file"),
        shards=[ShardInput(chunks(), size_hint=size)],
    )


class _VerifiedReader:
    """A shard stream that checks size and sha256 against its manifest record at EOF."""

    def __init__(self, raw: BinaryIO, shard: ShardRecord, where: str) -> None:
        self._raw = raw
        self._shard = shard
        self._where = where
        self._digest = hashlib.sha256()
        self._seen = 0
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except CorruptObjectError as exc:
            raise SnapshotChecksumError(f"{self._where} is corrupt: {exc}") from exc
        self._seen += len(data)
        self._digest.update(data)
        if self._seen > self._shard.rdb_size:
            self._fail(f"it is longer than the {self._shard.rdb_size} bytes recorded")
        at_end = size is None or size < 0 or (not data and size != 0)  # read(-1) reads to EOF
        if at_end and not self._checked:
            self._checked = True
            if self._seen != self._shard.rdb_size:
                self._fail(f"it has {self._seen} bytes, the manifest records {self._shard.rdb_size}")
            actual = "sha256:" + self._digest.hexdigest()
            if actual != self._shard.rdb_sha256:
                self._fail(f"sha256 {actual} != recorded {self._shard.rdb_sha256}")
        return data

    def _fail(self, why: str) -> None:
        raise SnapshotChecksumError(f"{self._where} is corrupt: {why}")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _VerifiedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
