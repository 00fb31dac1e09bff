"""S3 transfer settings and part sizing (pure computation, no boto3 needed).

S3's multipart rules: at most 10,000 parts, each 5 MiB to 5 GiB (the last may
be smaller), objects up to 5 TiB. With a known size, the part size doubles
from ``part_size`` until the object fits in 10,000 parts. With an unknown
size (a replica stream), it doubles every 1,000 parts, so the default 8 MiB
start covers 8 MiB × 1,000 × (2^10 − 1) ≈ 8 TiB in 10,000 parts, past the
5 TiB object limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdbkit.errors import StorageError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

#: S3 limits on multipart uploads.
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB

#: With an unknown size, the part size doubles after this many parts.
PARTS_PER_DOUBLING = 1_000

DEFAULT_PART_SIZE = 8 * MiB

#: S3 additional checksum algorithms accepted for ``checksum_algorithm``.
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
SSE_MODES = ("AES256", "aws:kms")


@dataclass(frozen=True)
class UploadConfig:
    """Every S3 setting in one immutable object; invalid values raise ValueError.

    Memory bound: an upload holds at most ``max_parts_in_flight`` parts in
    memory at once (the part being read from the source counts), so peak
    buffer memory is ``max_parts_in_flight × part size`` -- 10 × 8 MiB = 80 MiB
    with the defaults. The part size is the one in use: it grows with the
    expected size, and for a stream of unknown length every 1,000 parts.
    A get() of an object larger than ``part_size`` reads it in ranged GETs
    of ``part_size`` and likewise holds at most ``max_parts_in_flight`` of
    them (fetching, buffered or being read) at once.

    - ``part_size``: the starting part size (5 MiB .. 5 GiB); objects no
      larger than one part go up in a single PutObject.
    - ``max_parts_in_flight``: parts (or read ranges) in memory at once.
    - ``max_concurrency``: threads uploading parts (or fetching ranges) in parallel.
    - ``checksum_algorithm``: S3 additional checksum sent with every PUT and
      part (CRC32 by default; None sends none). CRC32C and CRC64NVME need
      botocore's CRT extra.
    - ``sse``: server-side encryption, "AES256" (SSE-S3), "aws:kms" or None
      (the bucket default); ``sse_kms_key_id`` only with "aws:kms".
    - ``expected_bucket_owner``: account id sent as ExpectedBucketOwner on
      every request, so a bucket owned by someone else is refused.
    - ``endpoint_url``/``region_name``: for S3-compatible endpoints; None
      uses boto3's defaults (and its normal credential chain).
    - ``retries``: total attempts per request in botocore's "standard" retry
      mode (exponential backoff with jitter on throttling and transient errors).
    - ``account``: the owner account owner_account() reports; None falls
      back to ``expected_bucket_owner``, then asks STS (GetCallerIdentity).
    - ``sts_endpoint_url``: where STS is asked (None: boto3's default).
    - ``conditional_writes``: exclusive puts use ``If-None-Match: *``; set
      False for endpoints without conditional writes, which falls back to a
      HEAD before writing (a race between two writers can then go unseen).
    """

    part_size: int = DEFAULT_PART_SIZE
    max_parts_in_flight: int = 10
    max_concurrency: int = 10
    checksum_algorithm: str | None = "CRC32"
    sse: str | None = None
    sse_kms_key_id: str | None = None
    expected_bucket_owner: str | None = None
    endpoint_url: str | None = None
    region_name: str | None = None
    retries: int = 5
    conditional_writes: bool = True
    account: str | None = None
    sts_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        _check_int("part_size", self.part_size, MIN_PART_SIZE, MAX_PART_SIZE)
        _check_int("max_parts_in_flight", self.max_parts_in_flight, 1, 10_000)
        _check_int("max_concurrency", self.max_concurrency, 1, 1_000)
        _check_int("retries", self.retries, 1, 100)
        if self.checksum_algorithm not in (None, *CHECKSUM_ALGORITHMS):
            raise ValueError(
                f"checksum_algorithm {self.checksum_algorithm!r} is not one of "
                f"{', '.join(CHECKSUM_ALGORITHMS)} or None"
            )
        if self.sse not in (None, *SSE_MODES):
            raise ValueError(f"sse {self.sse!r} is not 'AES256', 'aws:kms' or None")
        if self.sse_kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError("sse_kms_key_id is only valid with sse='aws:kms'")
        if self.expected_bucket_owner is not None and not (
            isinstance(self.expected_bucket_owner, str)
            and len(self.expected_bucket_owner) == 12
            and self.expected_bucket_owner.isdigit()
        ):
            raise ValueError(
                f"expected_bucket_owner {self.expected_bucket_owner!r} is not a 12-digit account id"
            )
        if self.account is not None and not (isinstance(self.account, str) and self.account):
            raise ValueError(f"account {self.account!r} is not a non-empty string")
        if not isinstance(self.conditional_writes, bool):
            raise ValueError("conditional_writes must be a bool")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} {value!r} is outside {low}..{high}")


def part_size_for(expected_size: int | None, part_size: int = DEFAULT_PART_SIZE) -> int:
    """The first part size for an object of ``expected_size`` bytes (None: unknown).

    Doubles ``part_size`` while the object would need more than 10,000 parts,
    within 5 MiB .. 5 GiB. Raises StorageError above S3's 5 TiB object limit.
    """
    size = min(max(part_size, MIN_PART_SIZE), MAX_PART_SIZE)
    if expected_size is None:
        return size
    if expected_size < 0:
        raise StorageError(f"expected size {expected_size} is negative")
    if expected_size > MAX_OBJECT_SIZE:
        raise StorageError(f"{expected_size} bytes exceeds S3's 5 TiB object limit")
    while -(-expected_size // size) > MAX_PARTS and size < MAX_PART_SIZE:
        size = min(size * 2, MAX_PART_SIZE)
    return size


def part_size_at(
    part_number: int, expected_size: int | None, part_size: int = DEFAULT_PART_SIZE
) -> int:
    """Size of part ``part_number`` (1-based) of an upload.

    With a known size every part uses :func:`part_size_for`. With an unknown
    one (or once a stream outgrows the size it announced) the size doubles
    every 1,000 parts, capped at 5 GiB.
    """
    if not 1 <= part_number <= MAX_PARTS:
        raise StorageError(f"part number {part_number} is outside 1..{MAX_PARTS}")
    base = part_size_for(expected_size, part_size)
    planned = 0 if expected_size is None else -(-expected_size // base)
    beyond = max(0, part_number - 1 - planned)
    if expected_size is not None and beyond == 0:
        return base
    doublings = (beyond if expected_size is not None else part_number - 1) // PARTS_PER_DOUBLING
    return min(base << doublings, MAX_PART_SIZE)
