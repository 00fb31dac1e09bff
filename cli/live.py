"""Live-node commands: ``backup``, ``estimate``, ``restore``, ``seed`` and ``cluster seed``.

Argument handling and presentation only; the work is in :mod:`rdbkit.backup`
and :mod:`rdbkit.restore`. Progress (bytes or keys, rate, ETA) goes to
stderr; ``--json`` prints one summary document on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import click

from rdbkit.backup.capture import METHODS, backup, replication_refusal
from rdbkit.backup.connection import Connection
from rdbkit.backup.estimate import estimate
from rdbkit.catalog.manifest import format_time
from rdbkit.cli.source import progress_option
from rdbkit.cli.store import (
    open_cli_catalog,
    pop_store_params,
    snapshot_store_options,
    store_settings,
)
from rdbkit.restore.cluster_seed import seed_cluster
from rdbkit.restore.plain import is_plain_rdb, plain_snapshot
from rdbkit.restore.restore import restore_snapshot
from rdbkit.restore.seed import binary_rdb_version, seed, settings_config, start_seeded_server
from rdbkit.storage.transfer import MiB
from rdbkit.urls import RedisClusterUrl, RedisUrl, parse_url


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _node_url(text: str) -> RedisUrl:
    url = parse_url(text)
    if not isinstance(url, RedisUrl):
        raise click.BadParameter(f"{text} is not a redis:// or rediss:// node URL")
    return url


def tls_options(func):
    """``--tls-ca``/``--tls-cert``/``--tls-key`` for rediss:// nodes (see rdbkit.backup.connection)."""
    def store(name: str):
        def callback(ctx, param, value):
            if value:
                os.environ[name] = value
            return value
        return callback

    for flag, env, text in reversed([
        ("--tls-ca", "RDBKIT_TLS_CA", "CA file to verify rediss:// servers with."),
        ("--tls-cert", "RDBKIT_TLS_CERT", "Client certificate for rediss:// servers."),
        ("--tls-key", "RDBKIT_TLS_KEY", "Client key for --tls-cert."),
    ]):
        func = click.option(flag, type=click.Path(exists=True, dir_okay=False), default=None,
                            expose_value=False, callback=store(env), help=text)(func)
    return func


@contextmanager
def _ticker(enabled: bool | None, label: str, total_keys: int | None = None):
    """A progress line on stderr: bytes and keys done, rate, ETA (from keys when a total is known).

    Yields ``(on_data, on_keys)``: ``on_data(bytes, keys)`` adds to both counts (the
    catalog's progress), ``on_keys(total)`` sets the key count (a restore's report).
    Both are no-ops when disabled.
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    state = {"bytes": 0, "keys": 0}
    if not show:
        yield (lambda n, k=0: None), (lambda n: None)
        return
    start = time.monotonic()
    stop = threading.Event()

    def line(final: bool = False) -> str:
        elapsed = max(time.monotonic() - start, 1e-9)
        mib, keys = state["bytes"] / MiB, state["keys"]
        text = f"\r{label}: {mib:,.1f} MiB ({mib / elapsed:,.1f} MiB/s)"
        if keys:
            text += f", {keys:,} keys ({keys / elapsed:,.0f}/s)"
        if total_keys and keys and not final:
            eta = max(total_keys - keys, 0) / max(keys / elapsed, 1e-9)
            text += f", ETA {eta:,.0f} s"
        return text + ("\n" if final else "")

    def loop() -> None:
        while not stop.wait(0.5):
            sys.stderr.write(line())
            sys.stderr.flush()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def on_data(n: int, keys: int = 0) -> None:
        state["bytes"] += n
        state["keys"] += keys

    def on_keys(n: int) -> None:
        state["keys"] = n

    try:
        yield on_data, on_keys
    finally:
        stop.set()
        thread.join()
        sys.stderr.write(line(final=True))


def _total_keys(source: str) -> int | None:
    url = parse_url(source)
    if not isinstance(url, RedisUrl):
        return None
    try:
        with Connection.from_url(url, timeout=10) as conn:
            from rdbkit.backup.estimate import keyspace_keys
            from rdbkit.backup.info import parse_info

            return keyspace_keys(parse_info(conn.call("INFO", "keyspace")))
    except Exception:  # noqa: BLE001 - only for an ETA
        return None


@click.command("backup")
@click.argument("source")
@click.argument("store_url", metavar="STORE")
@click.option("--name", default=None, help="Snapshot name (default: backup-<time>).")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="sync: as a replica; cooperative: SCAN+DUMP, no fork; auto: by the "
              "copy-on-write estimate.")
@click.option("--max-ops", type=float, default=None,
              help="cooperative: at most this many keys per second.")
@click.option("--batch", type=click.IntRange(1, 100_000), default=None,
              help="cooperative: keys per SCAN/DUMP pipeline (default 500; smaller batches "
              "hold the source for less time at once).")
@click.option("--latency-budget-ms", type=float, default=None,
              help="cooperative: keep each batch's round trip under this (shrinks batches).")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds any single read may wait (a node may BGSAVE for minutes first).")
@click.option("--json", "as_json", is_flag=True, help="A JSON summary on stdout.")
@progress_option
@tls_options
@store_settings
def backup_command(source, name, method, max_ops, batch, latency_budget_ms, timeout, as_json,
                   progress, **params) -> None:
    """Back up SOURCE (redis://, rediss://, redis+cluster:// or an RDB file) into STORE."""
    opts = pop_store_params(params)
    options: dict[str, Any] = {"connection_options": {"timeout": timeout}}
    if max_ops is not None:
        options["max_ops_per_s"] = max_ops
    if batch is not None:
        options["batch"] = batch
    if latency_budget_ms is not None:
        options["latency_budget_ms"] = latency_budget_ms
    started = time.monotonic()
    with _ticker(progress, "backup", _total_keys(source)) as (on_data, _on_keys):
        catalog = open_cli_catalog(opts, on_data)
        name = name or f"backup-{catalog.clock():%Y%m%d-%H%M%S}"
        manifest, decision = backup(catalog, source, name, method=method, **options)
    seconds = time.monotonic() - started
    summary = {
        "name": manifest.name, "method": decision.method, "reason": decision.reason,
        "notes": decision.notes, "consistency": manifest.consistency, "keys": manifest.keys,
        "keys_by_type": _merge_types(manifest), "rdb_version": manifest.rdb_version,
        "rdb_bytes": manifest.rdb_size, "stored_bytes": manifest.stored_size,
        "shards": len(manifest.shards), "seconds": round(seconds, 3),
        "created_at": format_time(manifest.created_at), "pacing": decision.pacing,
    }
    if as_json:
        _emit(summary)
        return
    click.echo(f"method: {decision.method} ({decision.reason})")
    for note in decision.notes:
        click.echo(f"  {note}")
    click.echo(f"consistency: {manifest.consistency}")
    for shard, p in enumerate(decision.pacing):
        click.echo(f"paced (shard {shard}): {p['batches']} batches (final size "
                   f"{p['batch_final']}, {p['batch_shrinks']} shrinks), pipeline latency p50 "
                   f"{p['latency_p50_ms']} ms / p99 {p['latency_p99_ms']} ms, slept "
                   f"{p['slept_s']} s, {p['skipped_deleted']} keys deleted mid-scan")
    click.echo(f"snapshot {manifest.name}: {manifest.keys:,} keys, {manifest.rdb_size:,} bytes "
               f"RDB v{manifest.rdb_version}, {len(manifest.shards)} shard(s), {seconds:.1f} s")


def _merge_types(manifest) -> dict[str, int]:
    out: dict[str, int] = {}
    for shard in manifest.shards:
        for kind, n in shard.keys_by_type.items():
            out[kind] = out.get(kind, 0) + n
    return dict(sorted(out.items()))


@click.command("estimate")
@click.argument("source")
@click.option("--reserved", type=click.FloatRange(0, 0.9), default=0.25, show_default=True,
              help="Fraction of memory kept in reserve (not available to a fork).")
@click.option("--sample", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds over which the write rate is measured.")
@click.option("--json", "as_json", is_flag=True)
@tls_options
def estimate_command(source, reserved, sample, as_json) -> None:
    """Estimate the copy-on-write memory of a forked save of SOURCE and the method auto picks."""
    url = _node_url(source)
    with Connection.from_url(url, timeout=30) as conn:
        refusal = replication_refusal(conn)
        est = estimate(conn, reserved_fraction=reserved, sample_s=sample)
    method = "cooperative" if refusal else est.method
    reasons = ([f"replication refused: {refusal}"] if refusal else []) + list(est.reasons)
    if as_json:
        _emit(asdict(est) | {"method": method, "reasons": reasons})
        return
    click.echo(f"copy-on-write estimate: {est.cow_bytes / MiB:,.1f} MiB")
    if est.available_bytes is not None:
        click.echo(f"available for a fork:   {est.available_bytes / MiB:,.1f} MiB")
    click.echo(f"method (auto):          {method}")
    for reason in reasons:
        click.echo(f"  {reason}")
    click.echo("inputs:")
    for key, value in est.inputs.items():
        click.echo(f"  {key}: {value}")


@click.command("restore")
@click.argument("snapshot")
@click.argument("target")
@click.option("--replace", is_flag=True, help="Overwrite keys that exist (default: refuse).")
@click.option("--flush", is_flag=True, help="FLUSHALL the target first.")
@click.option("--connections", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--drop-unsupported", is_flag=True,
              help="Leave out what the target's version cannot hold (listed) instead of failing.")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@progress_option
@tls_options
@snapshot_store_options
def restore_command(snapshot, target, replace, flush, connections, drop_unsupported, timeout,
                    as_json, progress, **params) -> None:
    """RESTORE every key of SNAPSHOT into the running node TARGET (redis:// or redis+cluster://).

    SNAPSHOT is a snapshot name in --store, or a plain .rdb file: a path with a
    '/' (./dump.rdb) or an s3:// object URL, verified before anything is written.
    """
    opts = pop_store_params(params)
    with _snapshot_source(snapshot, opts) as (catalog, snapshot):
        _restore(catalog, snapshot, target, replace, flush, connections, drop_unsupported,
                 timeout, as_json, progress)


@contextmanager
def _snapshot_source(snapshot: str, opts: dict):
    """(catalog, name) for a snapshot name in --store, or for a plain .rdb path / s3:// URL."""
    if is_plain_rdb(snapshot):
        # the bucket's owner comes from --expected-bucket-owner or the caller identity
        # (STS), never from --account, which names the target's account
        s3 = {k: opts[k] for k in ("endpoint_url", "sts_endpoint_url", "expected_bucket_owner")
              if opts.get(k)}
        with plain_snapshot(snapshot, account=opts.get("account"), **s3) as found:
            yield found
    else:
        if not opts.get("store_url"):
            raise click.UsageError(f"{snapshot!r} is a snapshot name: give --store "
                                   "(or a path with a '/' for a plain .rdb file)")
        yield open_cli_catalog(opts), snapshot


def _restore(catalog, snapshot, target, replace, flush, connections, drop_unsupported, timeout,
             as_json, progress) -> None:
    url = parse_url(target)
    manifest = catalog.describe(snapshot)
    options = dict(replace=replace, flush=flush, timeout=timeout,
                   unsupported="drop" if drop_unsupported else "error")
    with _ticker(progress, "restore", manifest.keys) as (_on_data, on_keys):
        def report_progress(report) -> None:
            on_keys(report.keys_written)

        if isinstance(url, RedisClusterUrl):
            from rdbkit.restore.cluster import restore_cluster_snapshot

            report = restore_cluster_snapshot(catalog, snapshot, url, progress=report_progress,
                                              **options)
        elif isinstance(url, RedisUrl):
            report = restore_snapshot(catalog, snapshot, url, connections=connections,
                                      progress=report_progress, **options)
        else:
            raise click.BadParameter(f"{target} is not a redis:// or redis+cluster:// URL")
    if as_json:
        _emit(asdict(report))
        return
    click.echo(f"restored {report.keys_written:,} keys into {url} in {report.seconds:.1f} s "
               f"({report.keys_skipped:,} skipped)")
    for error in report.errors:
        click.echo(f"  {error}")


@click.command("seed")
@click.argument("snapshot")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory where the new server loads dump.rdb from.")
@click.option("--target-version", type=int, default=None,
              help="Re-encode for a server reading this RDB version (e.g. 9 for Redis 6.2).")
@click.option("--start", "binary", default=None, metavar="REDIS_SERVER",
              help="Also start this redis-server/valkey-server on the seeded directory.")
@click.option("--port", type=int, default=6379, show_default=True, help="Port for --start.")
@click.option("--no-settings", is_flag=True,
              help="With --start: do not apply the settings the snapshot recorded from its "
              "source (maxmemory, policy, databases, encoding thresholds, ...).")
@snapshot_store_options
def seed_command(snapshot, directory, target_version, binary, port, no_settings,
                 **params) -> None:
    """Place SNAPSHOT's RDB (verified) as DIR/dump.rdb for a new server to load at start.

    SNAPSHOT is a snapshot name in --store, or a plain .rdb file: a path with a
    '/' (./dump.rdb) or an s3:// object URL, verified before anything is written.
    """
    with _snapshot_source(snapshot, pop_store_params(params)) as (catalog, name):
        if binary and target_version is None:
            readable = binary_rdb_version(binary)
            version = catalog.describe(name).rdb_version
            if version > readable:
                raise click.ClickException(
                    f"{snapshot} is RDB {version} and {binary} reads RDB {readable} at most; "
                    f"pass --target-version {readable} to convert it")
        path = seed(catalog, name, directory, target_version=target_version)
        settings = {} if no_settings or not binary else settings_config(
            catalog.describe(name).source.settings, binary)
    click.echo(f"seeded {path}")
    if binary:
        process = start_seeded_server(binary, directory, port, extra_config=settings)
        if settings:
            click.echo("applied " + " ".join(f"{k}={v}" for k, v in settings.items()))
        click.echo(f"started {binary} (pid {process.pid}) on 127.0.0.1:{port}")


@click.group("cluster")
def cluster_group() -> None:
    """Redis Cluster operations."""


@cluster_group.command("seed")
@click.argument("snapshot")
@click.option("--shards", type=click.IntRange(1, 1000), required=True)
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
@click.option("--binary", default="redis-server", show_default=True)
@click.option("--no-settings", is_flag=True,
              help="Do not apply the settings the snapshot recorded from its source.")
@snapshot_store_options
def cluster_seed_command(snapshot, shards, directory, binary, no_settings, **params) -> None:
    """Start a new SHARDS-node cluster under DIR, each node seeded with exactly its slots' keys.

    The nodes keep running after the command exits.
    """
    with _snapshot_source(snapshot, pop_store_params(params)) as (catalog, name):
        seeded = seed_cluster(catalog, name, directory, shards, binary=binary,
                              apply_settings=not no_settings)
    for node in seeded.nodes:
        click.echo(f"{node.address} slots {node.slots[0]}-{node.slots[1]}: {node.keys:,} keys "
                   f"(pid {node.process.pid if node.process else '-'})")
    click.echo(f"cluster ready at {seeded.url} in {seeded.seconds:.1f} s")


COMMANDS = [backup_command, estimate_command, restore_command, seed_command, cluster_group]
