"""Catalog commands: ``snapshot create|list|describe|delete|copy|export|fetch|prune``,
``import``, ``policy``, ``schedule run``, ``retire``, ``events`` and ``gc``.

Argument handling and presentation only; every rule lives in
:mod:`rdbkit.catalog`. ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import click

from rdbkit.catalog import Manifest, file_capture, run_schedule
from rdbkit.backup.capture import backup, capture
from rdbkit.catalog.manifest import format_time
from rdbkit.catalog.usage import DEFAULT_PRICE_PER_GB_MONTH, usage
from rdbkit.cli.source import progress_option
from rdbkit.cli.store import (
    byte_progress,
    open_cli_catalog,
    open_cli_store,
    pop_store_params,
    store_options,
)
from rdbkit.urls import FileUrl, S3Url, parse_url

KIND_CHOICE = click.Choice(["manual", "automatic", "final", "copy"])


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _row(m: Manifest) -> str:
    expires = f" expires {format_time(m.expires_at)}" if m.expires_at else ""
    return (f"{m.name}\t{m.kind}\t{format_time(m.created_at)}\t{m.keys} keys\t"
            f"{_size(m.stored_size)}\t{m.source.url}{expires}")


def _describe(m: Manifest) -> str:
    lines = [
        f"name:          {m.name}",
        f"kind:          {m.kind}" + (f" (copied from {m.copied_from})" if m.copied_from else ""),
        f"created:       {format_time(m.created_at)}",
        f"expires:       {format_time(m.expires_at) if m.expires_at else 'never (kept until deleted)'}",
        f"owner account: {m.owner_account}",
        f"source:        {m.source.url}"
        + (f" ({m.source.engine} {m.source.engine_version or ''})".rstrip() if m.source.engine else ""),
        f"consistency:   {m.consistency}",
        f"RDB version:   {m.rdb_version}",
        f"keys:          {m.keys}",
        f"size:          {_size(m.rdb_size)} RDB, {_size(m.stored_size)} stored"
        + (f" ({m.compression})" if m.compression else ""),
    ]
    for s in m.shards:
        slots = " slots " + ",".join(f"{a}-{b}" for a, b in s.slots) if s.slots else ""
        types = " ".join(f"{t}={n}" for t, n in s.keys_by_type.items())
        lines.append(f"shard {s.index}:       {s.key} {s.keys} keys ({types}) {s.rdb_sha256}{slots}")
    if m.source.settings:
        lines.append("settings:      " + " ".join(f"{k}={v}" for k, v in m.source.settings.items()))
    return "\n".join(lines)


def _source_url(source: str) -> str:
    parsed = parse_url(source)
    return parsed.path.resolve().as_uri() if isinstance(parsed, FileUrl) else str(parsed)


def capture_source(url: str):
    """The capture for a source URL: an RDB file, or a live node or cluster (method auto)."""
    parsed = parse_url(url)
    if isinstance(parsed, FileUrl):
        return file_capture(str(parsed.path), source_url=_source_url(url))
    return capture(url)[0]


def final_capture(url: str):
    """A retire's final snapshot: like capture_source, but a cluster is read from its primaries."""
    parsed = parse_url(url)
    if isinstance(parsed, FileUrl):
        return capture_source(url)
    return capture(url, from_primaries=True)[0]


_DURATION_RE = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d`` → timedelta."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d")
    n, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def _split_object_url(opts: dict[str, Any], url: str, default_name: str):
    """An object URL (``s3://b/p/x.rdb`` or a path) → (store, key or None)."""
    parsed = parse_url(url)
    if isinstance(parsed, S3Url):
        prefix = PurePosixPath(parsed.prefix)
        if parsed.prefix.endswith(".rdb"):
            base = f"s3://{parsed.bucket}/{prefix.parent}" if str(prefix.parent) != "." else f"s3://{parsed.bucket}"
            return open_cli_store(opts, base), prefix.name
        return open_cli_store(opts, url), None
    if isinstance(parsed, FileUrl):
        if parsed.path.suffix == ".rdb":
            return open_cli_store(opts, str(parsed.path.parent)), parsed.path.name
        return open_cli_store(opts, str(parsed.path)), None
    raise click.BadParameter(f"{url} is not a file path or s3:// URL")


# -- snapshot group ---------------------------------------------------------


@click.group("snapshot")
def snapshot_group() -> None:
    """Create, list, describe, delete, copy, export, fetch and prune snapshots."""


@snapshot_group.command("create")
@click.argument("name")
@click.argument("source")
@click.option("--kind", type=click.Choice(["manual", "automatic"]), default="manual",
              show_default=True, help="automatic ones expire after the source's retention.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@progress_option
@store_options
def create_command(name, source, kind, as_json, progress, **params) -> None:
    """Snapshot SOURCE (an RDB file, or a live node or cluster: method auto) as NAME."""
    opts = pop_store_params(params)
    with byte_progress(progress, f"snapshot {name}") as tick:
        catalog = open_cli_catalog(opts, tick)
        manifest, _ = backup(catalog, source, name, kind=kind)  # holds the source's lease
    _print_created(manifest, as_json)


def _print_created(manifest: Manifest, as_json: bool) -> None:
    if as_json:
        _emit(manifest.to_dict())
    else:
        click.echo(f"created {manifest.kind} snapshot {manifest.name}: {manifest.keys} keys, "
                   f"{_size(manifest.rdb_size)} RDB v{manifest.rdb_version}, "
                   f"{_size(manifest.stored_size)} stored")


@snapshot_group.command("list")
@click.option("--source", default=None, help="Only snapshots of this source URL.")
@click.option("--kind", type=KIND_CHOICE, default=None, help="Only snapshots of this kind.")
@click.option("--json", "as_json", is_flag=True)
@store_options
def list_command(source, kind, as_json, **params) -> None:
    """List snapshots, oldest first."""
    catalog = open_cli_catalog(pop_store_params(params))
    found = catalog.list(source=_source_url(source) if source else None, kind=kind)
    if as_json:
        _emit([m.to_dict() for m in found])
    else:
        for m in found:
            click.echo(_row(m))
        if found and source is None and kind is None:
            click.echo("")
            _print_usage(usage(catalog), DEFAULT_PRICE_PER_GB_MONTH)


@snapshot_group.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@store_options
def describe_command(name, as_json, **params) -> None:
    """Show one snapshot's manifest."""
    manifest = open_cli_catalog(pop_store_params(params)).describe(name)
    if as_json:
        _emit(manifest.to_dict())
    else:
        click.echo(_describe(manifest))


@snapshot_group.command("delete")
@click.argument("name")
@store_options
def delete_command(name, **params) -> None:
    """Delete a snapshot (its manifest first, then its shard objects)."""
    manifest = open_cli_catalog(pop_store_params(params)).delete(name)
    click.echo(f"deleted {manifest.kind} snapshot {manifest.name}")


@snapshot_group.command("copy")
@click.argument("name")
@click.argument("new_name")
@click.option("--to-store", default=None, metavar="URL", help="Copy into this store instead.")
@click.option("--to-account", default=None,
              help="The account --to-store belongs to (default: --account / the store's).")
@click.option("--json", "as_json", is_flag=True)
@progress_option
@store_options
def copy_command(name, new_name, to_store, to_account, as_json, progress, **params) -> None:
    """Copy snapshot NAME as NEW_NAME (kept until deleted, whatever NAME's kind)."""
    opts = pop_store_params(params)
    with byte_progress(progress, f"copy {name}") as tick:
        catalog = open_cli_catalog(opts, tick)
        target = None
        if to_store is not None:
            target_opts = {**opts, "store_url": to_store, "account": to_account or opts["account"]}
            target = open_cli_catalog(target_opts, tick)
        manifest = catalog.copy(name, new_name, target=target)
    _print_created(manifest, as_json)


@snapshot_group.command("export")
@click.argument("name")
@click.argument("dest", metavar="DEST")
@click.option("--to-account", default=None,
              help="The account DEST belongs to (default: --account / the store's).")
@progress_option
@store_options
def export_command(name, dest, to_account, progress, **params) -> None:
    """Write snapshot NAME as plain .rdb object(s) to DEST (s3://bucket/prefix[/x.rdb] or a path)."""
    opts = pop_store_params(params)
    dest_opts = {**opts, "account": to_account or opts["account"]}
    store, key = _split_object_url(dest_opts, dest, name)
    with byte_progress(progress, f"export {name}") as tick:
        written = open_cli_catalog(opts, tick).export(name, store, key)
    for info in written:
        click.echo(f"exported {info.key} ({_size(info.size)}) to {store}")


@snapshot_group.command("fetch")
@click.argument("name")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory to write the RDB file(s) into.")
@progress_option
@store_options
def fetch_command(name, directory, progress, **params) -> None:
    """Download snapshot NAME as verified RDB file(s); nothing is left on a checksum error."""
    with byte_progress(progress, f"fetch {name}") as tick:
        paths = open_cli_catalog(pop_store_params(params), tick).fetch(name, directory)
    for path in paths:
        click.echo(str(path))


@snapshot_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True)
@store_options
def prune_command(dry_run, as_json, **params) -> None:
    """Delete automatic snapshots whose retention has run out."""
    pruned = open_cli_catalog(pop_store_params(params)).prune(dry_run=dry_run)
    if as_json:
        _emit({"dry_run": dry_run, "pruned": [m.name for m in pruned]})
        return
    verb = "would prune" if dry_run else "pruned"
    for m in pruned:
        click.echo(f"{verb} {m.name} (expired {format_time(m.expires_at)})")
    click.echo(f"{verb} {len(pruned)} snapshot(s)")


# -- top-level catalog commands ---------------------------------------------


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Snapshot name (default: file name + time).")
@click.option("--source", default=None, metavar="URL",
              help="Record this as the snapshot's source (default: the file).")
@click.option("--json", "as_json", is_flag=True)
@progress_option
@store_options
def import_command(file, name, source, as_json, progress, **params) -> None:
    """Make a manual snapshot from an existing RDB FILE (verified while stored)."""
    opts = pop_store_params(params)
    with byte_progress(progress, f"import {file}") as tick:
        manifest = open_cli_catalog(opts, tick).import_file(file, name, source_url=source)
    _print_created(manifest, as_json)


@click.group("policy")
def policy_group() -> None:
    """A source's retention (0-35 days) and daily snapshot window."""


@policy_group.command("set")
@click.argument("source")
@click.option("--retention-days", type=int, default=None,
              help="Keep automatic snapshots this many days (0-35; 0 turns them off).")
@click.option("--window", default=None, metavar="HH:MM-HH:MM",
              help="Daily UTC window for automatic snapshots (at least 60 minutes).")
@store_options
def policy_set_command(source, retention_days, window, **params) -> None:
    """Change SOURCE's policy."""
    policy = open_cli_catalog(pop_store_params(params)).set_policy(
        _source_url(source), retention_days=retention_days, window=window)
    click.echo(f"{policy.source_url}: retention {policy.retention_days} days, "
               f"window {policy.window} UTC")


@policy_group.command("show")
@click.argument("source", required=False)
@click.option("--json", "as_json", is_flag=True)
@store_options
def policy_show_command(source, as_json, **params) -> None:
    """Show SOURCE's policy (every stored policy without SOURCE)."""
    catalog = open_cli_catalog(pop_store_params(params))
    policies = [catalog.policy(_source_url(source))] if source else catalog.policies()
    if as_json:
        _emit([p.__dict__ for p in policies])
        return
    for p in policies:
        state = "retired" if p.retired else ("on" if p.automatic else "off")
        click.echo(f"{p.source_url}: automatic {state}, retention {p.retention_days} days, "
                   f"window {p.window} UTC")


@click.group("schedule")
def schedule_group() -> None:
    """Automatic snapshots (run `schedule run` from cron or a systemd timer)."""


@schedule_group.command("run")
@click.option("--source", "sources", multiple=True, metavar="URL",
              help="Only this source (repeatable; default: every source with a policy).")
@click.option("--json", "as_json", is_flag=True)
@store_options
def schedule_run_command(sources, as_json, **params) -> None:
    """Take automatic snapshots that are due in their window; prune expired ones.

    Exits 1 if a due snapshot failed.
    """
    catalog = open_cli_catalog(pop_store_params(params))
    report = run_schedule(catalog, capture_source,
                          sources=[_source_url(s) for s in sources] or None)
    if as_json:
        _emit({"taken": [m.name for m in report.taken], "skipped": report.skipped,
               "failed": report.failed, "pruned": [m.name for m in report.pruned]})
    else:
        for m in report.taken:
            click.echo(f"took {m.name} ({m.keys} keys, expires {format_time(m.expires_at)})")
        for url, why in report.skipped:
            click.echo(f"skipped {url}: {why}")
        for m in report.pruned:
            click.echo(f"pruned {m.name}")
        for url, error in report.failed:
            click.echo(f"FAILED {url}: {error}", err=True)
    if report.failed:
        raise SystemExit(1)


@click.command("retire")
@click.argument("source")
@click.option("--final-snapshot", "final", default=None, metavar="NAME",
              help="Take this final snapshot first (kept until deleted); stop if it fails.")
@store_options
def retire_command(source, final, **params) -> None:
    """Give up SOURCE: optional final snapshot, then its automatic snapshots are deleted."""
    catalog = open_cli_catalog(pop_store_params(params))
    manifest, deleted = catalog.retire(_source_url(source), final_snapshot=final,
                                       capture=final_capture)
    if manifest is not None:
        click.echo(f"final snapshot {manifest.name}: {manifest.keys} keys")
    click.echo(f"retired {_source_url(source)}; deleted {len(deleted)} automatic snapshot(s)")


@click.command("events")
@click.option("--since", default=None, metavar="DURATION",
              help="Only the last DURATION (e.g. 24h, 7d).")
@click.option("--json", "as_json", is_flag=True)
@store_options
def events_command(since, as_json, **params) -> None:
    """The store's event log: creates, deletes, prunes, copies, exports, refusals."""
    catalog = open_cli_catalog(pop_store_params(params))
    start = catalog.clock() - parse_duration(since) if since else None
    events = list(catalog.events.read(since=start))
    if as_json:
        _emit([e.to_dict() for e in events])
        return
    for e in events:
        what = " ".join(x for x in (e.kind, e.name) if x)
        detail = json.dumps(e.detail, default=str) if e.detail else ""
        click.echo(f"{format_time(e.at)} {e.action} {what} [{e.account}] {e.source or ''} {detail}".rstrip())


@click.command("gc")
@click.option("--older-than", default="24h", show_default=True, metavar="DURATION",
              help="Only leftovers older than this (30m, 24h, 7d).")
@click.option("--apply", is_flag=True, help="Remove them (default: dry run, list only).")
@click.option("--json", "as_json", is_flag=True)
@store_options
def gc_command(older_than, apply, as_json, **params) -> None:
    """Abort unfinished uploads and delete shard objects no manifest references."""
    catalog = open_cli_catalog(pop_store_params(params))
    report = catalog.gc(older_than=parse_duration(older_than), apply=apply)
    if as_json:
        _emit({
            "applied": apply,
            "pending_uploads": [{"key": u.key, "upload_id": u.upload_id,
                                 "started_at": format_time(u.started_at)}
                                for u in report.pending_uploads],
            "orphan_objects": [{"key": o.key, "size": o.size} for o in report.orphan_objects],
        })
        return
    verb = "aborted" if apply else "would abort"
    for u in report.pending_uploads:
        click.echo(f"{verb} upload {u.key} (started {format_time(u.started_at)})")
    verb = "deleted" if apply else "would delete"
    for o in report.orphan_objects:
        click.echo(f"{verb} {o.key} ({_size(o.size)})")
    if not apply:
        click.echo(f"dry run: {len(report.pending_uploads)} upload(s), "
                   f"{len(report.orphan_objects)} object(s); --apply removes them")


@click.command("usage")
@click.option("--price", type=click.FloatRange(0), default=DEFAULT_PRICE_PER_GB_MONTH,
              show_default=True, help="Price per GB-month (GB = 2^30 bytes) beyond the free "
              "snapshot of each active source.")
@click.option("--json", "as_json", is_flag=True)
@store_options
def usage_command(price, as_json, **params) -> None:
    """Snapshots by kind, bytes stored and estimated monthly cost, per source."""
    rows = usage(open_cli_catalog(pop_store_params(params)))
    if as_json:
        _emit({"price_per_gb_month": price, "sources": [r.to_dict(price) for r in rows],
               "monthly_cost": round(sum(r.monthly_cost(price) for r in rows), 6)})
        return
    _print_usage(rows, price)


def _print_usage(rows, price: float) -> None:
    for r in rows:
        kinds = " ".join(f"{k}={n}" for k, n in r.snapshots.items() if n)
        state = "" if r.active else " (retired)"
        click.echo(f"{r.source}{state}: {kinds}; {_size(r.bytes_stored)} stored, "
                   f"{_size(r.billable_bytes)} billable, ${r.monthly_cost(price):.4f}/month")
    total = sum(r.monthly_cost(price) for r in rows)
    click.echo(f"total: ${total:.4f}/month at ${price}/GB-month (first snapshot of each active "
               "source free)")


COMMANDS = [snapshot_group, usage_command, import_command, policy_group, schedule_group, retire_command,
            events_command, gc_command]
