"""rdbkit's S3 store side by side with boto3's managed transfers, same bytes, same endpoint.

    python bench/s3_compare.py                          # 512 MiB, SeaweedFS started here
    python bench/s3_compare.py --rss                    # also the 2 GiB peak-RSS check
    python bench/s3_compare.py --only rss               # the peak-RSS check alone
    python bench/s3_compare.py --endpoint moto          # moto's server instead (a process)
    python bench/s3_compare.py --endpoint-url URL       # an endpoint that already runs
    python bench/s3_compare.py --json out.json          # also write the raw figures

(``bash ./tasks.sh bench s3 [options]`` runs it from the project's .venv.)

One run, one endpoint, one bucket, one part size and one concurrency for both
tools:

* upload of a ``--size`` file of random bytes (written once to a temp file,
  so both read it from the page cache): rdbkit ``S3Store.put(key, file,
  size_hint=size)`` vs boto3 ``client.upload_fileobj(file, ...)`` with a
  ``TransferConfig`` of the same part size (``multipart_chunksize`` and
  ``multipart_threshold``), ``max_concurrency`` = rdbkit's ``max_concurrency``
  and ``max_in_memory_upload_chunks`` = rdbkit's ``max_parts_in_flight``.
  Both send the CRC32 S3 additional checksum (rdbkit's default; boto3 gets
  ``ExtraArgs={"ChecksumAlgorithm": "CRC32"}``). rdbkit also computes the
  sha256 of the whole stream (it returns it from put()); boto3 does not.
  Target: rdbkit >= 1x boto3's throughput.
* download of the object rdbkit uploaded: rdbkit ``S3Store.get(key)`` read to
  its end in ``--read-size`` reads (whatever get() does on this checkout) vs
  boto3 ``client.download_fileobj`` into a sink that discards what it is given
  (seekable, so s3transfer takes its fast out-of-order path, as for a file).
* with ``--rss``: peak RSS of a child process that uploads a ``--rss-size``
  stream (2 GiB; made on the fly from a random pool, so neither a file nor the
  page cache is involved; unknown length, as a replica stream) with rdbkit,
  and the same with boto3 ``upload_fileobj`` for comparison. Each child reports
  its RSS after imports, client creation and one request (the baseline); the
  peak is ``ru_maxrss`` from ``wait4`` (children are spawned by compare.py's
  small launcher so the benchmark's own memory is not inherited). The bound
  ``max_parts_in_flight x part_size + 64 MB`` applies to the whole peak RSS
  (PASS/FAIL); peak minus baseline is shown against it too.

Every throughput row runs ``--repeat`` times, rdbkit and boto3 alternating,
after one untimed upload each (SeaweedFS grows its volumes on the first writes);
MB/s (10^6 bytes/s) is the size over the best run's seconds, the median is
shown beside it, and the ratio is rdbkit's best MB/s over boto3's best. The
client CPU column (user + system seconds of the process, all threads) is the
steadier figure where the S3 server shares the machine's cores.
Credentials: the throwaway ``testing``/``testing`` pair the tests use, unless
``--endpoint-url`` is given (then boto3's normal chain applies).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.append(str(REPO / "tests"))  # s3servers.py: the SeaweedFS starter the tests use
sys.path.append(str(REPO))  # a checkout built in place but not installed still works

MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30
#: Slack the issue allows over the buffered parts: interpreter, boto3, sockets.
RSS_SLACK = 64 * MB
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512MiB, 2GiB, 100MB)")
    unit = (m.group(2) or "").lower().rstrip("b")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
             "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}[unit]
    return int(float(m.group(1)) * scale)


def fmt_size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB)):
        if n >= scale and n % (scale // 1024 or 1) == 0:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


# --------------------------------------------------------------------------
# shared by parent and children
# --------------------------------------------------------------------------


def botocore_config(concurrency: int):
    """The botocore settings S3Store gives its own client, for boto3's client too."""
    import botocore.config  # noqa: PLC0415

    return botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max(10, concurrency),
    )


def make_client(url: str, concurrency: int):
    import boto3  # noqa: PLC0415

    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name="us-east-1", config=botocore_config(concurrency)
    )


def make_store(url: str, bucket: str, part_size: int, concurrency: int, in_flight: int):
    from rdbkit.storage.s3 import S3Store  # noqa: PLC0415
    from rdbkit.storage.transfer import UploadConfig  # noqa: PLC0415

    config = UploadConfig(part_size=part_size, max_concurrency=concurrency,
                          max_parts_in_flight=in_flight, checksum_algorithm="CRC32",
                          endpoint_url=url, region_name="us-east-1")
    return S3Store(bucket, config=config)


def transfer_config(part_size: int, concurrency: int, in_flight: int):
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415

    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                            max_concurrency=concurrency, use_threads=True,
                            preferred_transfer_client="classic")
    config.max_in_memory_upload_chunks = in_flight  # s3transfer's own knob (default 10)
    return config


BOTO3_EXTRA = {"ChecksumAlgorithm": "CRC32"}


class RandomStream:
    """``size`` bytes of incompressible data made on the fly: read(n) copies from a
    random pool at a moving offset (one memcpy per read, like reading a pipe)."""

    POOL = MiB + 4093  # small: the child's baseline RSS should be the tool's, not ours

    def __init__(self, size: int, seed: int = 1) -> None:
        import random  # noqa: PLC0415

        self._pool = random.Random(seed).randbytes(self.POOL) * 2  # read past the end wraps
        self._left = size
        self._offset = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        n = min(n, self._left)
        pool = memoryview(self._pool)
        pieces = []
        want = n
        while want:
            take = min(want, self.POOL)
            pieces.append(pool[self._offset : self._offset + take])
            self._offset = (self._offset + take + 4099) % self.POOL
            want -= take
        self._left -= n
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)


class DiscardSink:
    """A writable 'file' that drops what it is given (seekable, so s3transfer writes
    ranges as they come instead of buffering them in order)."""

    def __init__(self) -> None:
        self.written = 0
        self._pos = 0

    def write(self, data) -> int:
        n = len(data)
        self.written += n
        self._pos += n
        return n

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._pos + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True


def _proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child_rss(tool: str, url: str, bucket: str, key: str, size: int, part_size: int,
              concurrency: int, in_flight: int) -> None:
    """Upload a ``size``-byte RandomStream with ``tool``; print one JSON line."""
    stream = RandomStream(size, seed=7)
    if tool == "rdbkit":
        store = make_store(url, bucket, part_size, concurrency, in_flight)
        store.client.head_bucket(Bucket=bucket)  # connection, signer, parsers loaded
    else:
        client = make_client(url, concurrency)
        config = transfer_config(part_size, concurrency, in_flight)
        import s3transfer.manager  # noqa: F401, PLC0415 - imported before the baseline too
        import s3transfer.upload  # noqa: F401, PLC0415

        client.head_bucket(Bucket=bucket)
    baseline = _proc_status("VmRSS")
    baseline_hwm = _proc_status("VmHWM")
    t0 = time.perf_counter()
    if tool == "rdbkit":
        info = store.put(key, stream)  # unknown length, as a replica stream
        assert info.size == size, info
    else:
        client.upload_fileobj(stream, bucket, key, ExtraArgs=BOTO3_EXTRA, Config=config)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline, "baseline_hwm": baseline_hwm,
                      "peak_rss_self": _proc_status("VmHWM")}))


# --------------------------------------------------------------------------
# endpoints
# --------------------------------------------------------------------------


@contextlib.contextmanager
def seaweedfs(log):
    """``weed server -s3`` started as tests/s3servers.py starts it (its helpers, not a copy)."""
    import atexit  # noqa: PLC0415

    import s3servers  # noqa: PLC0415 - tests/s3servers.py
    from servers import _die_with_parent, _kill_if_running  # noqa: PLC0415

    try:
        binary = s3servers.weed_binary()
    except BaseException as exc:  # pytest.fail() raises an OutcomeException
        raise SystemExit(str(exc)) from None
    version = subprocess.run([str(binary), "version"], capture_output=True, text=True).stdout
    directory = Path(tempfile.mkdtemp(prefix="rdbkit-bench-seaweedfs-"))
    process = None
    ports: dict[str, int] = {}
    try:
        for attempt in range(3):  # a probed port may be taken before weed binds it
            args, ports = s3servers._weed_command(binary, directory)
            with (directory / "weed.log").open("ab") as out:
                process = subprocess.Popen(args, cwd=directory, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=subprocess.STDOUT,
                                           preexec_fn=_die_with_parent)
            atexit.register(_kill_if_running, process)
            url = f"http://127.0.0.1:{ports['s3.port']}"
            try:
                s3servers._wait_ready(process, url, directory)
                break
            except RuntimeError as exc:
                s3servers._stop(process)
                if attempt == 2:
                    raise SystemExit(f"SeaweedFS did not start: {exc}") from None
        log(f"SeaweedFS ({version.strip()}) at {url}, data in {directory}")
        yield url, f"SeaweedFS {version.split()[2] if len(version.split()) > 2 else ''}".strip()
    finally:
        if process is not None:
            s3servers._stop(process)
        shutil.rmtree(directory, ignore_errors=True)
        for name, port in ports.items():
            if name.endswith(".grpc"):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{port}.sock"):
                    sock.unlink(missing_ok=True)


@contextlib.contextmanager
def moto(log):
    """moto's S3 server in its own process (in-process, it would share our GIL)."""
    import boto3  # noqa: PLC0415
    import moto as moto_pkg  # noqa: PLC0415
    from servers import _die_with_parent, free_port  # noqa: PLC0415

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        client = boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.list_buckets()
                break
            except Exception:  # noqa: BLE001
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto server did not start") from None
                time.sleep(0.2)
        log(f"moto {moto_pkg.__version__} server at {url}")
        yield url, f"moto {moto_pkg.__version__} (server process)"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def existing(url: str, log):
    log(f"existing endpoint {url}")
    yield url, url


# --------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------


def make_file(size: int, directory: Path, log) -> tuple[Path, str]:
    path = directory / f"s3bench-{size}.bin"
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            digest.update(block)
            f.write(block)
            left -= len(block)
    log(f"wrote {fmt_size(size)} of random bytes to {path} in {time.perf_counter() - t0:.1f}s")
    return path, "sha256:" + digest.hexdigest()


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads."""
    import resource  # noqa: PLC0415

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_throughput(url: str, bucket: str, args, log) -> list[dict]:
    store = make_store(url, bucket, args.part_size, args.concurrency, args.parts_in_flight)
    client = make_client(url, args.concurrency)
    config = transfer_config(args.part_size, args.concurrency, args.parts_in_flight)
    with tempfile.TemporaryDirectory(prefix="rdbkit-s3bench-", dir=args.tmpdir) as tmp:
        path, sha = make_file(args.size, Path(tmp), log)
        size = args.size
        runs: dict[str, list[float]] = {"put_rdbkit": [], "put_boto3": [], "get_rdbkit": [],
                                        "get_boto3": []}
        cpus: dict[str, list[float]] = {name: [] for name in runs}

        def put_rdbkit() -> float:
            key = f"rdbkit-{uuid.uuid4().hex[:8]}"
            with open(path, "rb") as f:
                t0, c0 = time.perf_counter(), cpu_seconds()
                info = store.put(key, f, size_hint=size, checksum=not args.no_checksum)
                seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            if info.size != size or info.checksum != (None if args.no_checksum else sha):
                raise SystemExit(f"rdbkit put: {info} != {size} bytes {sha}")
            client.delete_object(Bucket=bucket, Key=key)
            return seconds, cpu

        def put_boto3() -> float:
            key = f"boto3-{uuid.uuid4().hex[:8]}"
            with open(path, "rb") as f:
                t0, c0 = time.perf_counter(), cpu_seconds()
                client.upload_fileobj(f, bucket, key, ExtraArgs=BOTO3_EXTRA, Config=config)
                seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            length = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if length != size:
                raise SystemExit(f"boto3 upload: {length} bytes != {size}")
            client.delete_object(Bucket=bucket, Key=key)
            return seconds, cpu

        # SeaweedFS grows volumes on the first writes: one untimed upload each first
        log("upload warm-up (untimed):")
        for name, fn in (("put_rdbkit", put_rdbkit), ("put_boto3", put_boto3)):
            log(f"  {name:<12} {fn()[0]:7.3f}s")
        log(f"upload, {args.repeat} runs each, alternating:")
        for _ in range(args.repeat):
            for name, fn in (("put_rdbkit", put_rdbkit), ("put_boto3", put_boto3)):
                seconds, cpu = fn()
                runs[name].append(seconds)
                cpus[name].append(cpu)
                log(f"  {name:<12} {seconds:7.3f}s  {size / seconds / MB:7.1f} MB/s  "
                    f"client CPU {cpu:5.2f}s")

        # the object both download: uploaded once by rdbkit (same part size for both)
        key = "download-source"
        with open(path, "rb") as f:
            store.put(key, f, size_hint=size)

        def get_rdbkit() -> float:
            got = 0
            t0, c0 = time.perf_counter(), cpu_seconds()
            with store.get(key) as stream:
                while chunk := stream.read(args.read_size):
                    got += len(chunk)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            if got != size:
                raise SystemExit(f"rdbkit get: {got} bytes != {size}")
            return seconds, cpu

        def get_boto3() -> float:
            sink = DiscardSink()
            t0, c0 = time.perf_counter(), cpu_seconds()
            client.download_fileobj(bucket, key, sink, Config=config)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            if sink.written != size:
                raise SystemExit(f"boto3 download: {sink.written} bytes != {size}")
            return seconds, cpu

        log(f"download, {args.repeat} runs each, alternating:")
        for _ in range(args.repeat):
            for name, fn in (("get_rdbkit", get_rdbkit), ("get_boto3", get_boto3)):
                seconds, cpu = fn()
                runs[name].append(seconds)
                cpus[name].append(cpu)
                log(f"  {name:<12} {seconds:7.3f}s  {size / seconds / MB:7.1f} MB/s  "
                    f"client CPU {cpu:5.2f}s")
        # one more read, outside the timing: the bytes are the file's bytes
        digest = hashlib.sha256()
        with store.get(key) as stream:
            while chunk := stream.read(args.read_size):
                digest.update(chunk)
        if "sha256:" + digest.hexdigest() != sha:
            raise SystemExit("rdbkit get returned other bytes than were uploaded")
        client.delete_object(Bucket=bucket, Key=key)

    cfg = (f"part {fmt_size(args.part_size)}, {args.concurrency} threads, "
           f"{args.parts_in_flight} parts in memory, CRC32")
    rows = []
    for op, label in (("put", "upload"), ("get", "download")):
        for tool in ("rdbkit", "boto3"):
            secs = runs[f"{op}_{tool}"]
            rows.append({"row": f"{op}_{tool}", "op": label, "tool": tool, "bytes": size,
                         "seconds": secs, "best_seconds": min(secs),
                         "best_mb_s": size / min(secs) / MB,
                         "median_mb_s": size / statistics.median(secs) / MB,
                         "cpu_seconds": cpus[f"{op}_{tool}"],
                         "median_cpu_seconds": statistics.median(cpus[f"{op}_{tool}"]),
                         "config": cfg})
    for op in ("put", "get"):
        r, b = (next(x for x in rows if x["row"] == f"{op}_{t}") for t in ("rdbkit", "boto3"))
        r["ratio"] = r["best_mb_s"] / b["best_mb_s"]
        r["median_ratio"] = r["median_mb_s"] / b["median_mb_s"]
    return rows


def measure_rss(url: str, bucket: str, args, log) -> list[dict]:
    from compare import _LAUNCHER  # noqa: PLC0415 - spawns without inheriting our peak RSS

    bound = args.parts_in_flight * args.part_size + RSS_SLACK
    rows = []
    for tool in ("rdbkit", "boto3"):
        key = f"rss-{tool}-{uuid.uuid4().hex[:8]}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--child-rss", tool, url, bucket,
                key, str(args.rss_size), str(args.part_size), str(args.concurrency),
                str(args.parts_in_flight)]
        with tempfile.TemporaryDirectory(prefix="rdbkit-s3bench-") as tmp:
            report = Path(tmp, "report.json")
            done = subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *argv],
                                  capture_output=True, text=True, check=True)
            doc = json.loads(report.read_text())
        if doc["code"] != 0:
            raise SystemExit(f"{tool} RSS child exited {doc['code']}: {done.stderr[-2000:]}")
        line = json.loads(done.stdout.strip().splitlines()[-1])
        peak = doc["maxrss_kb"] * 1024
        with contextlib.suppress(Exception):
            make_client(url, 1).delete_object(Bucket=bucket, Key=key)
        row = {"row": f"rss_{tool}", "tool": tool, "bytes": args.rss_size,
               "seconds": line["seconds"], "mb_s": args.rss_size / line["seconds"] / MB,
               "baseline_rss": line["baseline_rss"], "peak_rss": peak,
               "over_baseline": peak - line["baseline_rss"], "bound": bound,
               "pass": peak <= bound, "pass_over_baseline": peak - line["baseline_rss"] <= bound}
        rows.append(row)
        log(f"  {tool:<7} {fmt_size(args.rss_size)} stream in {line['seconds']:.1f}s "
            f"({row['mb_s']:.1f} MB/s): baseline {row['baseline_rss'] / MB:.1f} MB, "
            f"peak {peak / MB:.1f} MB (bound {bound / MB:.1f} MB)")
    return rows


def build_tables(throughput: list[dict], rss: list[dict], args, endpoint_name: str) -> str:
    out = []
    if throughput:
        cfg = throughput[0]["config"]
        out.append(f"Throughput — {fmt_size(args.size)} of random bytes, {endpoint_name} on "
                   f"loopback, {cfg}; MB/s = 10^6 B/s over the best of {args.repeat} runs "
                   f"(median beside it); ratio = rdbkit / boto3; client CPU = user + system "
                   f"seconds of the benchmark process (all threads) per transfer:\n")
        out.append("| operation | tool | MB/s (best) | MB/s (median) | rdbkit / boto3 (best) | "
                   "client CPU s (median) | target | met? |")
        out.append("|---|---|---:|---:|---:|---:|---|---|")
        put_args = ", checksum=False" if args.no_checksum else ""
        names = {("upload", "rdbkit"): f"rdbkit `S3Store.put(key, file, size_hint=size"
                                       f"{put_args})`",
                 ("upload", "boto3"): "boto3 `upload_fileobj(file, ...)`",
                 ("download", "rdbkit"): f"rdbkit `S3Store.get(key)` read to end "
                                         f"({fmt_size(args.read_size)} reads)",
                 ("download", "boto3"): "boto3 `download_fileobj(...)` into a discarding sink"}
        for r in throughput:
            ratio = target = met = ""
            if "ratio" in r:
                ratio = f"{r['ratio']:.2f}x (median {r['median_ratio']:.2f}x)"
                if r["op"] == "upload":
                    target = ">= 1x boto3"
                    met = "yes" if r["ratio"] >= 1 else "**no**"
            out.append(f"| {r['op']} | {names[(r['op'], r['tool'])]} | {r['best_mb_s']:.1f} | "
                       f"{r['median_mb_s']:.1f} | {ratio} | {r['median_cpu_seconds']:.2f} | "
                       f"{target} | {met} |")
    if rss:
        if out:
            out.append("")
        bound = rss[0]["bound"]
        out.append(f"Peak RSS — a {fmt_size(args.rss_size)} stream generated on the fly (unknown "
                   f"length), one upload per child process, {endpoint_name}; bound = "
                   f"{args.parts_in_flight} parts in flight x {fmt_size(args.part_size)} + 64 MB = "
                   f"{bound / MB:.1f} MB; MB = 10^6 bytes:\n")
        out.append("| tool | MB/s | baseline RSS (imports + client) | peak RSS | peak − baseline | "
                   "bound | peak <= bound? | peak − baseline <= bound? |")
        out.append("|---|---:|---:|---:|---:|---:|---|---|")
        for r in rss:
            name = ("rdbkit `S3Store.put(key, stream)`" if r["tool"] == "rdbkit"
                    else "boto3 `upload_fileobj(stream, ...)` (for comparison)")
            verdict = ("PASS" if r["pass"] else "**FAIL**") if r["tool"] == "rdbkit" else (
                "(within)" if r["pass"] else "(over)")
            verdict2 = ("PASS" if r["pass_over_baseline"] else "**FAIL**") if r["tool"] == "rdbkit" \
                else ("(within)" if r["pass_over_baseline"] else "(over)")
            out.append(f"| {name} | {r['mb_s']:.1f} | {r['baseline_rss'] / MB:.1f} MB | "
                       f"{r['peak_rss'] / MB:.1f} MB | {r['over_baseline'] / MB:.1f} MB | "
                       f"{r['bound'] / MB:.1f} MB | {verdict} | {verdict2} |")
    return "\n".join(out)


def versions() -> dict:
    import boto3  # noqa: PLC0415
    import botocore  # noqa: PLC0415
    import s3transfer  # noqa: PLC0415

    try:
        import awscrt  # noqa: F401, PLC0415
        crt = True
    except ImportError:
        crt = False
    return {"python": platform.python_version(), "boto3": boto3.__version__,
            "botocore": botocore.__version__, "s3transfer": s3transfer.__version__,
            "awscrt": crt, "cpus": os.cpu_count(), "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--endpoint", choices=("seaweedfs", "moto"), default="seaweedfs",
                       help="S3 server to start for the run (default: seaweedfs)")
    where.add_argument("--endpoint-url", help="use this running S3 endpoint instead")
    p.add_argument("--bucket", help="existing bucket to use (default: a fresh one, removed after)")
    p.add_argument("--size", type=parse_size, default=512 * MiB, help="bytes to move (512MiB)")
    p.add_argument("--repeat", type=int, default=3, help="runs per throughput row (3)")
    p.add_argument("--part-size", type=parse_size, default=8 * MiB, help="part size (8MiB)")
    p.add_argument("--concurrency", type=int, default=10, help="upload/download threads (10)")
    p.add_argument("--parts-in-flight", type=int, default=10,
                   help="rdbkit max_parts_in_flight = boto3 max_in_memory_upload_chunks (10)")
    p.add_argument("--read-size", type=parse_size, default=8 * MiB,
                   help="read size for rdbkit's get() stream (8MiB)")
    p.add_argument("--rss", action="store_true", help="also the peak-RSS check")
    p.add_argument("--no-checksum", action="store_true",
                   help="rdbkit puts with checksum=False, as the catalog does for an "
                   "uncompressed shard (its decoder probe hashes the bytes already)")
    p.add_argument("--only", choices=("throughput", "rss"), help="one part only")
    p.add_argument("--rss-size", type=parse_size, default=2 * GiB, help="RSS stream size (2GiB)")
    p.add_argument("--tmpdir", help="where the test file goes (default: the system temp dir)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--child-rss", nargs=8, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_rss:
        tool, url, bucket, key, size, part, conc, inflight = args.child_rss
        child_rss(tool, url, bucket, key, int(size), int(part), int(conc), int(inflight))
        return 0

    do_throughput = args.only in (None, "throughput")
    do_rss = args.only == "rss" or (args.rss and args.only is None)
    if args.read_size < 1:
        p.error("--read-size must be positive")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.endpoint_url:
        server = existing(args.endpoint_url, log)
    else:
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(name, None)
        os.environ.update(TEST_ENV)  # children inherit it
        server = seaweedfs(log) if args.endpoint == "seaweedfs" else moto(log)

    meta = versions()
    log(f"boto3 {meta['boto3']}, botocore {meta['botocore']}, s3transfer {meta['s3transfer']}, "
        f"awscrt {'installed' if meta['awscrt'] else 'not installed (classic transfers)'}; "
        f"{meta['cpus']} CPUs")
    throughput: list[dict] = []
    rss: list[dict] = []
    t_start = time.perf_counter()
    with server as (url, endpoint_name):
        client = make_client(url, 1)
        bucket = args.bucket or f"rdbkit-bench-{uuid.uuid4().hex[:10]}"
        if not args.bucket:
            client.create_bucket(Bucket=bucket)
        try:
            if do_throughput:
                throughput = measure_throughput(url, bucket, args, log)
            if do_rss:
                log(f"peak RSS, {fmt_size(args.rss_size)} stream, one child per tool:")
                rss = measure_rss(url, bucket, args, log)
        finally:
            if not args.bucket:
                with contextlib.suppress(Exception):
                    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                        for obj in page.get("Contents", ()):
                            client.delete_object(Bucket=bucket, Key=obj["Key"])
                    client.delete_bucket(Bucket=bucket)
    log(f"total {time.perf_counter() - t_start:.0f}s")

    print(build_tables(throughput, rss, args, endpoint_name))
    if args.json:
        doc = {"meta": {**meta, "endpoint": endpoint_name, "size": args.size,
                        "part_size": args.part_size, "concurrency": args.concurrency,
                        "parts_in_flight": args.parts_in_flight, "read_size": args.read_size,
                        "repeat": args.repeat, "checksum_algorithm": "CRC32",
                        "rss_size": args.rss_size, "rss_slack": RSS_SLACK},
               "throughput": throughput, "rss": rss}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
