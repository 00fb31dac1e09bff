"""One operation per source at a time: a lease object in the store.

A backup, a restore into a source, a retire or a policy change holds the
lease ``leases/<source id>.json`` for as long as it runs. Another operation
on the same source is refused with LeaseHeldError naming the running one,
its owner and when it started. The lease expires ``ttl`` seconds after its
last renewal (a holder renews it every ``ttl / 3`` from a thread), so a
crashed holder blocks the source for at most ``ttl``; the next operation
then takes the lease over and logs that it did.

Acquiring is an exclusive put, so of two processes racing for a free lease
exactly one wins. Taking over an expired lease deletes it and races the same
way. Releasing deletes the lease only if it is still this holder's.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from rdbkit.catalog.manifest import format_time, parse_time
from rdbkit.catalog.policy import source_id
from rdbkit.errors import CatalogError, ObjectExistsError, ObjectNotFoundError, RdbkitError
from rdbkit.storage import Store

_log = logging.getLogger(__name__)

PREFIX = "leases/"
#: Seconds a lease lives without renewal (RDBKIT_LEASE_TTL overrides, e.g. for tests).
DEFAULT_TTL_S = 60.0


class LeaseHeldError(CatalogError):
    """Another operation holds the source's lease; ``lease`` describes it."""

    def __init__(self, message: str, *, lease: LeaseRecord) -> None:
        super().__init__(message)
        self.lease = lease


@dataclass(frozen=True)
class LeaseRecord:
    source: str
    operation: str
    owner: str  # host:pid
    token: str
    acquired_at: str
    expires_at: str

    def expired(self, now: datetime) -> bool:
        return parse_time(self.expires_at) <= now


def default_ttl() -> float:
    return float(os.environ.get("RDBKIT_LEASE_TTL", DEFAULT_TTL_S))


class Lease:
    """Hold the lease of ``source`` for ``operation``; use as a context manager."""

    def __init__(
        self,
        store: Store,
        source: str,
        operation: str,
        *,
        ttl: float | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        on_takeover: Callable[[LeaseRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.operation = operation
        self.ttl = default_ttl() if ttl is None else ttl
        self.clock = clock
        self.on_takeover = on_takeover
        self.key = f"{PREFIX}{source_id(source)}.json"
        self.record: LeaseRecord | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _new_record(self, acquired_at: str | None = None) -> LeaseRecord:
        now = self.clock()
        return LeaseRecord(
            source=self.source,
            operation=self.operation,
            owner=f"{socket.gethostname()}:{os.getpid()}",
            token=self.record.token if self.record else secrets.token_hex(8),
            acquired_at=acquired_at or format_time(now),
            expires_at=format_time(now + timedelta(seconds=self.ttl)),
        )

    def current(self) -> LeaseRecord | None:
        """The lease as stored now, or None."""
        try:
            with self.store.get(self.key) as fh:
                return LeaseRecord(**json.loads(fh.read()))
        except ObjectNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise CatalogError(f"lease {self.key!r} is malformed: {exc}") from exc

    def acquire(self) -> LeaseRecord:
        """Take the lease, or raise LeaseHeldError naming the operation that holds it."""
        for _ in range(3):
            record = self._new_record()
            try:
                self.store.put(self.key, json.dumps(asdict(record)).encode(), exclusive=True)
            except ObjectExistsError:
                held = self.current()
                if held is None:
                    continue  # released meanwhile: try again
                if not held.expired(self.clock()):
                    raise LeaseHeldError(
                        f"{held.operation} of {self.source} is running (by {held.owner} since "
                        f"{held.acquired_at}, lease until {held.expires_at}); {self.operation} "
                        "refused", lease=held) from None
                self.store.delete(self.key)  # expired: the holder is gone
                if self.on_takeover is not None:
                    self.on_takeover(held)
                continue
            self.record = record
            self._renewer = threading.Thread(target=self._renew, daemon=True,
                                             name="rdbkit-lease")
            self._renewer.start()
            return record
        raise CatalogError(f"could not take the lease of {self.source}: it keeps changing hands")

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            record = self.record
            if record is None:
                return
            try:
                held = self.current()
                if held is None or held.token != record.token:
                    return  # taken over (we were too slow)
                self.record = self._new_record(record.acquired_at)
                self.store.put(self.key, json.dumps(asdict(self.record)).encode())
            except RdbkitError as exc:  # the store is unreachable: try again next time
                _log.warning("could not renew the lease of %s: %s", self.source, exc)

    def release(self) -> None:
        """Give the lease back (only if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.record is None:
            return
        held = self.current()
        if held is not None and held.token == self.record.token:
            self.store.delete(self.key)
        self.record = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
