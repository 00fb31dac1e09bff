"""A store in an S3 bucket (or any S3-compatible endpoint) through boto3.

Keys live under an optional prefix: key ``a/b`` in ``s3://bucket/snaps`` is
the S3 object ``snaps/a/b``. Credentials come from boto3's normal chain; every
other setting is an :class:`~rdbkit.storage.transfer.UploadConfig`.

Puts: a source no larger than one part goes up in a single PutObject.
Anything larger is a multipart upload: the source is cut into parts (sized by
:func:`~rdbkit.storage.transfer.part_size_at`), and a thread pool uploads up
to ``max_concurrency`` of them at once while a semaphore keeps at most
``max_parts_in_flight`` parts in memory. Each PUT and part carries an S3
additional checksum (CRC32 by default) that S3 verifies. On any failure --
an S3 error, the source raising, KeyboardInterrupt -- the in-flight parts are
waited for and the upload is aborted, so no parts are left behind; then
Exceptions surface as StorageError and other BaseExceptions re-raise as they
are (as in LocalStore). The object becomes visible only on
CompleteMultipartUpload, so a reader never sees part of it.

Exclusive puts send ``If-None-Match: *`` on PutObject and
CompleteMultipartUpload, which S3 (and moto) honour atomically: of two racing
writers exactly one wins. A HEAD before the upload also refuses a name that
already exists without uploading anything. With
``conditional_writes=False`` (endpoints without conditional writes) that HEAD
is the only check: a check-then-write, racy between two writers.

Checksums: the sha256 of the bytes is computed while streaming and returned
by put(). A single PutObject also stores it as user metadata
``x-amz-meta-rdbkit-sha256``, which head() reports and get() verifies when
the stream is read to its end. A multipart upload cannot: its metadata is
fixed by CreateMultipartUpload, before the bytes are seen, so head() reports
None and the catalog manifest is where the checksum lives (S3 still verifies
every part's CRC). list() reports None for every object, since S3 listings
carry no user metadata; head() one object to get it.

Gets: get() first asks for the object's first ``part_size`` bytes in one
ranged GET. An object that fits (the answer's Content-Range says how big it
is) streams from that single GET. A larger one is read with ranged GETs of
``part_size`` each -- the first answer serves as the first range -- fetched by
up to ``max_concurrency`` threads and delivered in order. Memory is bounded:
at most ``max_parts_in_flight`` ranges are fetching, buffered or being read
at once, so a get holds at most ``max_parts_in_flight × part_size`` bytes
(80 MiB with the defaults) plus the stream's 1 MiB buffer. Every later range
sends ``If-Match`` with the first answer's ETag, so an object replaced during
the read fails with StorageError instead of mixing two versions. A range
whose body breaks off is asked for again (botocore already retries failed
requests); one that still fails surfaces as StorageError from read().
Closing the stream early cancels the ranges not yet fetched and waits for the
running ones to stop (at most one 1 MiB read each), so no thread outlives it.

Unfinished uploads: list_pending() lists the multipart uploads under the
store prefix (a crashed writer's, or one still running) and abort_pending()
aborts one. owner_account() is ``account``, else ``expected_bucket_owner``,
else the account STS GetCallerIdentity reports for the credentials in use.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import fields, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

try:
    import boto3
    import botocore.config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as _exc:  # pragma: no cover - exercised only without boto3
    raise ImportError("the S3 store needs boto3: pip install boto3") from _exc

from rdbkit.errors import CorruptObjectError, ObjectExistsError, ObjectNotFoundError, StorageError
from rdbkit.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    PendingUpload,
    Source,
    Store,
    iter_chunks,
    validate_key,
    validate_prefix,
)
from rdbkit.storage.transfer import MAX_PARTS, UploadConfig, part_size_at, part_size_for

_log = logging.getLogger(__name__)

#: User metadata name (S3 sends it as x-amz-meta-rdbkit-sha256).
SHA256_METADATA = "rdbkit-sha256"

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_CHANGED = {"PreconditionFailed", "412"}
_NO_UPLOAD = {"NoSuchUpload", "404"}
#: Name prefix of the threads that fetch ranges for get().
RANGE_THREAD_PREFIX = "rdbkit-s3-range"
_CONFIG_FIELDS = {f.name for f in fields(UploadConfig)}


class S3Store(Store):
    """Objects in ``bucket`` under ``prefix``; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        config: UploadConfig | None = None,
        client: Any = None,
        **settings: Any,
    ) -> None:
        """Open the store; ``settings`` override fields of ``config`` (endpoint_url=...).

        ``client`` is a boto3 S3 client to use instead of making one (its own
        endpoint, region and retry settings then apply). Raises ValueError for
        an unknown or invalid setting. No request is made here.
        """
        unknown = set(settings) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown S3 store setting(s): {', '.join(sorted(unknown))}")
        if not bucket:
            raise StorageError("an S3 store needs a bucket")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix.strip("/"))
        self.config = replace(config or UploadConfig(), **settings)
        if client is None:
            session = boto3.session.Session()
            client = session.client(
                "s3",
                endpoint_url=self.config.endpoint_url,
                region_name=self.config.region_name,
                config=botocore.config.Config(
                    retries={"mode": "standard", "max_attempts": self.config.retries},
                    max_pool_connections=max(10, self.config.max_concurrency),
                ),
            )
        self.client = client
        self._account: str | None = None
        self._account_lock = threading.Lock()

    def __repr__(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"S3Store({where!r})"

    # -- naming and common request arguments --------------------------------

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _args(self, name: str | None = None, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket}
        if name is not None:
            args["Key"] = name
        if self.config.expected_bucket_owner is not None:
            args["ExpectedBucketOwner"] = self.config.expected_bucket_owner
        args.update(extra)
        return args

    def _write_args(self) -> dict[str, Any]:
        """Arguments shared by PutObject and CreateMultipartUpload."""
        args: dict[str, Any] = {}
        if self.config.checksum_algorithm:
            args["ChecksumAlgorithm"] = self.config.checksum_algorithm
        if self.config.sse:
            args["ServerSideEncryption"] = self.config.sse
        if self.config.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.config.sse_kms_key_id
        return args

    def _error(self, exc: Exception, action: str, key: str) -> StorageError:
        where = f"{key!r} in {self}"
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                return ObjectNotFoundError(f"no object {where}")
            if action == "put" and code in _EXISTS:
                return ObjectExistsError(f"cannot put {where}: it already exists")
        return StorageError(f"cannot {action} {where}: {exc}")

    # -- put -----------------------------------------------------------------

    def put(
        self,
        key: str,
        data: Source,
        *,
        size_hint: int | None = None,
        exclusive: bool = False,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Upload ``data`` under ``key``: one PutObject or a multipart upload.

        ``size_hint`` sizes the parts (see :func:`part_size_for`); a stream
        longer than announced still works, with growing parts.
        """
        name = self._name(key)
        try:
            part_size_for(size_hint, self.config.part_size)  # refuse > 5 TiB up front
            if exclusive and self._exists_name(name, key):
                raise ObjectExistsError(f"cannot put {key!r} in {self}: it already exists")
            reader = _PartReader(data, hashing=checksum)
            try:
                first_size = part_size_at(1, size_hint, self.config.part_size)
                first = reader.read(first_size)
                if len(first) < first_size or reader.at_eof():
                    recorded = reader.checksum()
                    response = self._put_single(name, first, recorded, exclusive)
                else:
                    response = self._put_multipart(name, first, reader, size_hint, exclusive)
                    recorded = reader.checksum()
            finally:
                reader.close()
        except BaseException as exc:
            if isinstance(exc, StorageError) or not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and friends pass through unchanged
            raise self._error(exc, "put", key) from exc
        return ObjectInfo(
            key=key, size=reader.total, modified_at=_response_time(response), checksum=recorded
        )

    def _exists_name(self, name: str, key: str) -> bool:
        try:
            self.client.head_object(**self._args(name))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND:
                return False
            raise
        return True

    def _put_single(self, name: str, body: bytes, checksum: str | None, exclusive: bool) -> dict:
        metadata = {SHA256_METADATA: checksum} if checksum else {}
        args = self._args(name, Body=body, Metadata=metadata, **self._write_args())
        if exclusive and self.config.conditional_writes:
            args["IfNoneMatch"] = "*"
        return self.client.put_object(**args)

    def _put_multipart(
        self,
        name: str,
        first: bytes,
        reader: _PartReader,
        size_hint: int | None,
        exclusive: bool,
    ) -> dict:
        create = self.client.create_multipart_upload(**self._args(name, **self._write_args()))
        upload_id = create["UploadId"]
        in_flight = threading.BoundedSemaphore(self.config.max_parts_in_flight)
        executor = ThreadPoolExecutor(
            max_workers=self.config.max_concurrency, thread_name_prefix="rdbkit-s3-part"
        )
        pending: list[Future] = []
        done: list[dict] = []
        try:
            in_flight.acquire()
            pending.append(executor.submit(self._upload_part, name, upload_id, 1, first, in_flight))
            del first
            number = 1
            while not reader.at_eof():
                number += 1
                if number > MAX_PARTS:
                    raise StorageError(
                        f"upload of {name!r} needs more than {MAX_PARTS} parts; "
                        "pass a size_hint or a larger part_size"
                    )
                pending = _collect(pending, done)  # fail fast on a part's error
                in_flight.acquire()
                try:
                    body = reader.read(part_size_at(number, size_hint, self.config.part_size))
                except BaseException:
                    in_flight.release()
                    raise
                pending.append(
                    executor.submit(self._upload_part, name, upload_id, number, body, in_flight)
                )
                del body
            for future in pending:
                done.append(future.result())
            done.sort(key=lambda part: part["PartNumber"])
            args = self._args(name, UploadId=upload_id, MultipartUpload={"Parts": done})
            if exclusive and self.config.conditional_writes:
                args["IfNoneMatch"] = "*"
            return self.client.complete_multipart_upload(**args)
        except BaseException:
            for future in pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)  # no part may land after the abort
            self._abort(name, upload_id)
            raise
        finally:
            executor.shutdown(wait=True)

    def _upload_part(
        self, name: str, upload_id: str, number: int, body: bytes, in_flight: threading.Semaphore
    ) -> dict:
        try:
            args = self._args(name, UploadId=upload_id, PartNumber=number, Body=body)
            algorithm = self.config.checksum_algorithm
            if algorithm:
                args["ChecksumAlgorithm"] = algorithm
            response = self.client.upload_part(**args)
        finally:
            del body
            in_flight.release()
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if algorithm and f"Checksum{algorithm}" in response:
            part[f"Checksum{algorithm}"] = response[f"Checksum{algorithm}"]
        return part

    def _abort(self, name: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(**self._args(name, UploadId=upload_id))
        except (ClientError, BotoCoreError) as exc:
            # Cannot raise over the original failure; `rdbkit gc` cleans these.
            _log.warning("could not abort multipart upload %s of %r: %s", upload_id, name, exc)

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> BinaryIO:
        """Open the object as a stream; a recorded sha256 is verified at its end.

        One GET for an object of at most ``part_size`` bytes, parallel ranged
        GETs for a larger one (see the module docstring).
        """
        name = self._name(key)
        part_size = self.config.part_size
        try:
            try:
                first = self._args(name, Range=f"bytes=0-{part_size - 1}")
                response = self.client.get_object(**first)
            except ClientError as exc:
                if _code(exc) != "InvalidRange":
                    raise
                response = self.client.get_object(**self._args(name))  # empty: no byte 0
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "get", key) from exc
        expected = response.get("Metadata", {}).get(SHA256_METADATA)
        length = response.get("ContentLength")
        size = _total_size(response.get("ContentRange"), length)
        raw: io.RawIOBase
        if size is None or size <= part_size:
            raw = _S3Reader(response["Body"], key, expected, length)
        else:
            raw = _RangeReader(self, name, key, size, response["ETag"], expected, response["Body"])
        return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)  # type: ignore[return-value]

    def _fetch_range(
        self,
        name: str,
        key: str,
        start: int,
        end: int,
        etag: str,
        cancel: threading.Event,
        body: Any = None,
    ) -> bytearray | None:
        """Bytes ``[start, end)`` of version ``etag`` (from ``body`` if given); None if cancelled.

        A body that breaks off is asked for again, up to ``retries`` times;
        the request itself is retried by botocore. Runs in a reader thread.
        """
        buf = bytearray(end - start)
        view = memoryview(buf)
        problem: Exception | None = None
        for attempt in range(self.config.retries):
            if attempt and cancel.wait(min(0.1 * 2**attempt, 2.0)):
                return None
            if cancel.is_set():
                return None
            if body is None:
                args = self._args(name, Range=f"bytes={start}-{end - 1}", IfMatch=etag)
                try:
                    body = self.client.get_object(**args)["Body"]
                except ClientError as exc:
                    if _code(exc) in _CHANGED:
                        raise StorageError(
                            f"S3 object {key!r} in {self} changed while it was read "
                            f"(its ETag is no longer {etag}); read it again"
                        ) from exc
                    raise self._error(exc, "get", key) from exc
                except BotoCoreError as exc:
                    raise self._error(exc, "get", key) from exc
            got = 0
            try:
                while got < len(buf):
                    chunk = body.read(min(CHUNK_SIZE, len(buf) - got))
                    if not chunk:
                        break
                    view[got : got + len(chunk)] = chunk
                    got += len(chunk)
                    if cancel.is_set():
                        return None
            except (BotoCoreError, OSError) as exc:
                problem = exc
            finally:
                body.close()
                body = None
            if got == len(buf):
                return buf
            problem = problem or StorageError(f"the answer ended after {got} bytes")
            _log.debug("range [%d, %d) of %r broke off (%s); retrying", start, end, name, problem)
        raise StorageError(
            f"cannot get {key!r} in {self}: range [{start}, {end}) failed "
            f"{self.config.retries} times: {problem}"
        )

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` in one ranged GET; the bounds must lie within the object."""
        name = self._name(key)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
            raise StorageError(f"range [{start}, {end}) is not valid for {key!r}")
        if start == end:
            size = self.head(key).size
            if end > size:
                raise StorageError(
                    f"range [{start}, {end}) is outside object {key!r} of {size} bytes"
                )
            return b""
        try:
            response = self.client.get_object(**self._args(name, Range=f"bytes={start}-{end - 1}"))
            data = response["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "InvalidRange":
                raise StorageError(f"range [{start}, {end}) is outside object {key!r}") from exc
            raise self._error(exc, "get", key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "get", key) from exc
        if len(data) != end - start:
            raise StorageError(f"range [{start}, {end}) is outside object {key!r}")
        return data

    def head(self, key: str) -> ObjectInfo:
        """Size, modification time and (for single-PUT objects) checksum."""
        name = self._name(key)
        try:
            response = self.client.head_object(**self._args(name))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "head", key) from exc
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            modified_at=_utc(response["LastModified"]),
            checksum=response.get("Metadata", {}).get(SHA256_METADATA),
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects under ``prefix`` in key order (checksum None; see the module docstring).

        Object names under the store prefix that are not valid keys are skipped.
        """
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(**self._args(Prefix=base + prefix)):
                for obj in page.get("Contents", ()):
                    key = obj["Key"][len(base) :]
                    try:
                        validate_key(key)
                    except StorageError:
                        _log.debug("skipping S3 object %r: not a valid key", obj["Key"])
                        continue
                    yield ObjectInfo(
                        key=key, size=obj["Size"], modified_at=_utc(obj["LastModified"])
                    )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {prefix!r} in {self}: {exc}") from exc

    def delete(self, key: str) -> None:
        """Delete the object; a missing key is fine."""
        name = self._name(key)
        try:
            self.client.delete_object(**self._args(name))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "delete", key) from exc


    # -- unfinished uploads and the owner ---------------------------------------

    def list_pending(self, prefix: str = "") -> Iterator[PendingUpload]:
        """Yield multipart uploads under ``prefix`` that were never completed or aborted.

        Upload names under the store prefix that are not valid keys are skipped.
        """
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(**self._args(Prefix=base + prefix)):
                for upload in page.get("Uploads", ()):
                    key = upload["Key"][len(base) :]
                    try:
                        validate_key(key)
                    except StorageError:
                        _log.debug("skipping upload of %r: not a valid key", upload["Key"])
                        continue
                    yield PendingUpload(
                        key=key, upload_id=upload["UploadId"], started_at=_utc(upload["Initiated"])
                    )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list pending uploads {prefix!r} in {self}: {exc}") from exc

    def abort_pending(self, upload: PendingUpload) -> None:
        """Abort the multipart upload (its parts are freed); one already gone is fine."""
        name = self._name(upload.key)
        try:
            self.client.abort_multipart_upload(**self._args(name, UploadId=upload.upload_id))
        except ClientError as exc:
            if _code(exc) in _NO_UPLOAD:
                return
            raise StorageError(f"cannot abort upload of {upload.key!r} in {self}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot abort upload of {upload.key!r} in {self}: {exc}") from exc

    def owner_account(self) -> str:
        """``account``, else ``expected_bucket_owner``, else STS GetCallerIdentity (asked once).

        Raises StorageError when STS cannot answer (an S3-compatible endpoint
        without STS): set ``account=`` for such a store.
        """
        if self.config.account is not None:
            return self.config.account
        if self.config.expected_bucket_owner is not None:
            return self.config.expected_bucket_owner
        with self._account_lock:
            if self._account is None:
                try:
                    sts = boto3.session.Session().client(
                        "sts",
                        endpoint_url=self.config.sts_endpoint_url,
                        region_name=self.config.region_name,
                        config=botocore.config.Config(
                            retries={"mode": "standard", "max_attempts": self.config.retries}
                        ),
                    )
                    self._account = str(sts.get_caller_identity()["Account"])
                except (ClientError, BotoCoreError, KeyError) as exc:
                    raise StorageError(
                        f"cannot tell which account owns {self}: STS GetCallerIdentity "
                        f"failed ({exc}); set account= for this store"
                    ) from exc
            return self._account


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _total_size(content_range: str | None, length: int | None) -> int | None:
    """The object size from a ranged answer's ``bytes a-b/total`` (a 200 answer: its length)."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return length


def _collect(pending: list[Future], done: list[dict]) -> list[Future]:
    """Move finished parts into ``done`` (raising a part's error); return the rest."""
    still = []
    for future in pending:
        if future.done():
            done.append(future.result())
        else:
            still.append(future)
    return still


class _PartReader:
    """Cuts a source into parts of requested sizes, hashing as it goes (``hashing``).

    A binary file (anything with ``readinto``) is read straight into each
    part's buffer, no chunk copies; other sources go through
    :func:`iter_chunks`. The sha256 runs on its own thread, in part order
    (hashlib releases the GIL), so hashing overlaps reading and uploading.
    """

    def __init__(self, source: Source, *, hashing: bool = True) -> None:
        readinto = getattr(source, "readinto", None)
        self._readinto = readinto if callable(readinto) else None
        self._chunks = None if self._readinto else iter_chunks(source)
        self._digest = hashlib.sha256() if hashing else None
        self._hasher = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rdbkit-s3-hash")
            if hashing else None
        )
        self._hashing: Future | None = None
        self._pending = memoryview(b"")
        self._eof = False
        self.total = 0

    def checksum(self) -> str | None:
        """``sha256:<hex>`` of everything read so far (None without hashing)."""
        if self._digest is None:
            return None
        if self._hashing is not None:
            self._hashing.result()
        return "sha256:" + self._digest.hexdigest()

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=True)

    def at_eof(self) -> bool:
        if self._pending:
            return False
        if self._eof:
            return True
        if self._readinto is not None:
            peek = bytearray(1)
            if not self._readinto(peek):
                self._eof = True
                return True
            self._pending = memoryview(peek)
            return False
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._eof = True
                return True
            self._pending = memoryview(chunk).cast("B")
        return False

    def read(self, size: int) -> bytes | bytearray:
        if self._readinto is not None:
            data: bytes | bytearray = self._read_file(size)
        else:
            pieces = []
            want = size
            while want and not self.at_eof():
                piece = self._pending[:want]
                pieces.append(piece)
                self._pending = self._pending[len(piece) :]
                want -= len(piece)
            data = pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)
        if self._hasher is not None:
            if self._hashing is not None:
                self._hashing.result()  # at most one part waits to be hashed: memory stays bounded
            self._hashing = self._hasher.submit(self._digest.update, data)
        self.total += len(data)
        return data

    def _read_file(self, size: int) -> bytearray:
        buf = bytearray(size)
        view = memoryview(buf)
        n = len(self._pending)
        view[:n] = self._pending
        self._pending = memoryview(b"")
        while n < size and not self._eof:
            got = self._readinto(view[n:])
            if not got:
                self._eof = True
                break
            n += got
        view.release()
        if n < size:
            del buf[n:]
        return buf


def _check_complete(
    key: str, seen: int, length: int | None, digest: Any, expected: str | None
) -> None:
    """At the end of a read: the length S3 announced, then the recorded sha256 (if any)."""
    if length is not None and seen != length:
        raise StorageError(f"S3 object {key!r} ended after {seen} of {length} bytes")
    if digest is not None:
        actual = "sha256:" + digest.hexdigest()
        if actual != expected:
            raise CorruptObjectError(
                f"S3 object {key!r} is corrupt: sha256 {actual} != recorded {expected}"
            )


class _S3Reader(io.RawIOBase):
    """A GetObject body as a raw stream: errors become StorageError, sha256 checked at EOF."""

    def __init__(self, body: Any, key: str, expected: str | None, length: int | None) -> None:
        self._body = body
        self._key = key
        self._expected = expected
        self._length = length
        self._digest = hashlib.sha256() if expected else None
        self._seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, OSError) as exc:
            raise StorageError(f"reading S3 object {self._key!r} failed: {exc}") from exc
        n = len(data)
        buffer[:n] = data
        self._seen += n
        if self._digest is not None:
            self._digest.update(data)
        if n == 0 and len(buffer):
            self._check_end()
        return n

    def _check_end(self) -> None:
        digest, self._digest = self._digest, None  # check once
        _check_complete(self._key, self._seen, self._length, digest, self._expected)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class _RangeReader(io.RawIOBase):
    """An object larger than one part, read as parallel ranged GETs delivered in order.

    At most ``max_parts_in_flight`` ranges are held at once (fetching,
    buffered, or the one being read): the next is requested only when one
    has been read to its end. ``held`` and ``peak_held`` count them.
    """

    def __init__(
        self,
        store: S3Store,
        name: str,
        key: str,
        size: int,
        etag: str,
        expected: str | None,
        first_body: Any,
    ) -> None:
        config = store.config
        self._fetch = store._fetch_range
        self._name = name
        self._key = key
        self._size = size
        self._etag = etag
        self._expected = expected
        self._digest = hashlib.sha256() if expected else None
        step = config.part_size
        self._ranges = [(s, min(s + step, size)) for s in range(0, size, step)]
        self._limit = config.max_parts_in_flight
        self._first_body = first_body
        self._first_answer = first_body
        self._cancel = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=min(config.max_concurrency, self._limit, len(self._ranges)),
            thread_name_prefix=RANGE_THREAD_PREFIX,
        )
        self._queue: deque[Future] = deque()
        self._next = 0  # index of the next range to request
        self._current = memoryview(b"")
        self._current_held = False
        self._seen = 0
        self._failure: StorageError | None = None
        self.held = 0
        self.peak_held = 0
        self._fill()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self.held < self._limit and self._next < len(self._ranges):
            start, end = self._ranges[self._next]
            body, self._first_body = (self._first_body, None) if self._next == 0 else (None, None)
            self._queue.append(
                self._executor.submit(
                    self._fetch, self._name, self._key, start, end, self._etag, self._cancel, body
                )
            )
            self._next += 1
            self.held += 1
            self.peak_held = max(self.peak_held, self.held)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._failure is not None:
            raise self._failure
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if not len(buffer):
            return 0
        while not self._current:
            if self._current_held:
                self._current_held = False
                self.held -= 1
                self._fill()
            if not self._queue:
                self._check_end()
                return 0
            try:
                data = self._queue.popleft().result()
            except StorageError as exc:
                self._failure = exc
                self._stop()
                raise
            if data is None:  # cancelled: only after close()
                raise ValueError("I/O operation on closed stream")
            self._current = memoryview(data)
            self._current_held = True
            self._seen += len(data)
            if self._digest is not None:
                self._digest.update(data)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def _check_end(self) -> None:
        digest, self._digest = self._digest, None  # check once
        _check_complete(self._key, self._seen, self._size, digest, self._expected)

    def _stop(self) -> None:
        """Cancel ranges not started, stop running ones, and wait for every thread."""
        self._cancel.set()
        for future in self._queue:
            future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._queue.clear()
        self._current = memoryview(b"")
        self._current_held = False
        self.held = 0
        self._first_answer.close()  # in case its thread never ran (closing twice is fine)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stop()
            finally:
                super().close()


def _utc(value: datetime) -> datetime:
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def _response_time(response: dict) -> datetime:
    """The server's Date header of a write response (S3 sets LastModified from it)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            return _utc(parsedate_to_datetime(date))
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc)
