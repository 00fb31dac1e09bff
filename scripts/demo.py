"""rdbkit's demo on embedded defaults: a real redis-server, a live backup, the CLI on the file.

Run through ``bash tasks.sh demo`` (which installs everything first). Starts
Debian's ``redis-server`` on a free loopback port in a temporary directory,
writes a mixed dataset (every type, small and big values, expiries, several
dbs, streams with consumer groups, function libraries; the same dataset the
real-server tests use, ``tests/datasets.py``) and SAVEs. Then: ``rdbkit
estimate`` and ``rdbkit backup`` of the live server (as a replica) into a
local-directory store, ``rdbkit restore`` of that snapshot into a second
fresh server (compared key by key with the first); ``rdbkit inspect``,
``verify`` and ``convert --to jsonl`` on the SAVEd file; and ``rdbkit
import`` of it into the store, copied, listed and fetched back (checked byte
for byte), and the event log. Exits non-zero if any step fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from datasets import server_view, write_dataset  # noqa: E402
from servers import redis7_binary, running_server  # noqa: E402

#: jsonl lines shown, and characters shown of each (big values make long lines).
SHOW_LINES = 12
SHOW_CHARS = 160


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def run_cli(rdbkit: Path, *args: str) -> subprocess.CompletedProcess:
    """Run one rdbkit command, echo it, return the finished process (output captured)."""
    print("$ rdbkit " + " ".join(args), flush=True)
    return subprocess.run([str(rdbkit), *args], capture_output=True, timeout=600)


def show(result: subprocess.CompletedProcess) -> bool:
    sys.stdout.write(result.stdout.decode(errors="replace"))
    sys.stderr.write(result.stderr.decode(errors="replace"))
    print(f"(exit status {result.returncode})", flush=True)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="copy the RDB and the jsonl here")
    args = parser.parse_args()

    rdbkit = Path(sys.executable).parent / "rdbkit"
    if not rdbkit.exists():
        print(f"demo: {rdbkit} is missing; run it through `bash tasks.sh demo`", file=sys.stderr)
        return 1

    ok = True
    with tempfile.TemporaryDirectory(prefix="rdbkit-demo-") as work:
        work_dir = Path(work)
        binary = redis7_binary()
        extra = {"maxmemory-policy": "allkeys-lru", "enable-debug-command": "local"}
        with running_server("demo", binary, extra) as server:
            banner(f"redis-server {server.version} on 127.0.0.1:{server.port} ({server.dir})")
            dataset = write_dataset(server)
            path = work_dir / "dump.rdb"
            path.write_bytes(server.save().read_bytes())
            with server.client() as client:
                keyspace = client.info("keyspace")
            counts = ", ".join(f"{db}: {info['keys']} keys" for db, info in keyspace.items())
            print(f"wrote {counts}; {len(dataset.functions)} function libraries")
            print(f"SAVE -> {path} ({path.stat().st_size:,} bytes)")

            banner("rdbkit backup (live, as a replica) -> local store; restore into a new server")
            store = ["--store", str(work_dir / "snapshots")]
            source = f"redis://127.0.0.1:{server.port}/0"
            ok &= show(run_cli(rdbkit, "estimate", source, "--sample", "0.2"))
            ok &= show(run_cli(rdbkit, "backup", source, str(work_dir / "snapshots"),
                               "--name", "live-1"))
            with running_server("demo-target", binary, extra) as target:
                ok &= show(run_cli(rdbkit, "restore", "live-1",
                                   f"redis://127.0.0.1:{target.port}/0", *store))
                same = server_view(target) == server_view(server)
                print("restored server holds the same keys, values and expiries:", same)
                ok &= same

        banner("rdbkit inspect")
        ok &= show(run_cli(rdbkit, "inspect", str(path)))

        banner("rdbkit verify")
        ok &= show(run_cli(rdbkit, "verify", str(path)))

        banner("rdbkit convert --to jsonl")
        jsonl = work_dir / "dump.jsonl"
        result = run_cli(rdbkit, "convert", str(path), "--to", "jsonl")
        jsonl.write_bytes(result.stdout)
        lines = result.stdout.splitlines()
        for line in lines[:SHOW_LINES]:
            text = line.decode(errors="replace")
            print(text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + " ...")
        print(f"... {len(lines)} lines in all ({len(result.stdout):,} bytes)")
        sys.stderr.write(result.stderr.decode(errors="replace"))
        print(f"(exit status {result.returncode})", flush=True)
        ok &= result.returncode == 0

        banner("rdbkit catalog: import into a local-directory store, list, fetch, verify")
        store = ["--store", str(work_dir / "snapshots")]
        ok &= show(run_cli(rdbkit, "import", str(path), "--name", "demo-1", *store))
        ok &= show(run_cli(rdbkit, "snapshot", "copy", "demo-1", "demo-1-keep", *store))
        ok &= show(run_cli(rdbkit, "snapshot", "list", *store))
        fetched = run_cli(rdbkit, "snapshot", "fetch", "demo-1", "--dir", str(work_dir / "fetched"),
                          *store)
        ok &= show(fetched)
        same = (work_dir / "fetched" / "demo-1.rdb").read_bytes() == path.read_bytes()
        print("fetched file is byte-identical to the SAVEd one:", same)
        ok &= same
        ok &= show(run_cli(rdbkit, "events", *store))

        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for name in ("dump.rdb", "dump.jsonl"):
                (keep / name).write_bytes((work_dir / name).read_bytes())
            print(f"kept dump.rdb and dump.jsonl in {keep}")

    banner("demo " + ("finished" if ok else "FAILED (see above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
