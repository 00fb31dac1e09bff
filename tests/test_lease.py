"""One operation per source at a time: the lease refuses a second backup, a restore into
the source, a retire and a policy change while a backup runs, and a killed holder's lease
expires and is taken over."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from stores import (  # noqa: F401  (fixtures: store, make_store and the S3 servers)
    aws_env,
    make_store_fixture,
    moto_s3,
    seaweedfs_s3,
    store_fixture,
)
from rdbkit.catalog import Catalog
from rdbkit.catalog.lease import Lease, LeaseHeldError
from rdbkit.cli import cli
from rdbkit.storage import LocalStore

SOURCE = "redis://127.0.0.1:6379/0"


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)


def test_a_held_lease_refuses_and_names_the_operation(store):
    with Lease(store, SOURCE, "backup", ttl=30) as held:
        with pytest.raises(LeaseHeldError, match="backup of redis://127.0.0.1:6379/0 is running") \
                as info:
            Lease(store, SOURCE, "restore", ttl=30).acquire()
        assert info.value.lease.token == held.record.token
        with Lease(store, "redis://other:6379/0", "backup", ttl=30):  # other sources are free
            pass
    with Lease(store, SOURCE, "restore", ttl=30):  # released: free again
        pass


def test_the_holder_renews_and_a_killed_holder_expires(tmp_path):
    store = LocalStore(tmp_path / "store")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from rdbkit.storage import LocalStore\n"
        "from rdbkit.catalog.lease import Lease\n"
        f"lease = Lease(LocalStore({str(tmp_path / 'store')!r}), {SOURCE!r}, 'backup', ttl=1.5)\n"
        "lease.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        time.sleep(2.0)  # longer than the ttl: only renewals keep it
        with pytest.raises(LeaseHeldError):
            Lease(store, SOURCE, "backup", ttl=1.5).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with pytest.raises(LeaseHeldError):  # not expired yet
            Lease(store, SOURCE, "backup", ttl=1.5).acquire()
        time.sleep(1.6)
        catalog = Catalog(store, account="t")
        with catalog.lease(SOURCE, "backup"):  # taken over
            pass
        assert [e.action for e in catalog.events.read()][-1] == "takeover"
    finally:
        if holder.poll() is None:
            holder.kill()


def test_operations_on_a_source_wait_for_its_running_backup(redis7, tmp_path):
    redis7.reset()
    with contextlib.closing(redis7.client()) as c:
        c.mset({f"k{i}": i for i in range(3000)})
    url = f"redis://127.0.0.1:{redis7.port}/0"
    store = tmp_path / "store"
    opts = ["--store", store, "--account", "t"]
    env = {**os.environ, "RDBKIT_LEASE_TTL": "2"}
    slow = subprocess.Popen(
        [sys.executable, "-m", "rdbkit.cli", "backup", url, str(store), "--account", "t",
         "--name", "slow", "--method", "cooperative", "--max-ops", "300"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lease_dir = store / "leases"
        deadline = time.monotonic() + 30
        while not (lease_dir.exists() and any(lease_dir.iterdir())):
            assert slow.poll() is None, slow.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = run("backup", url, store, "--account", "t", "--name", "second")
        assert second.exit_code == 1 and "backup of redis://" in second.stderr
        assert "is running" in second.stderr
        create = run("snapshot", "create", "x", url, *opts)
        assert create.exit_code == 1 and "backup refused" in create.stderr
        policy = run("policy", "set", url, "--retention-days", "3", *opts)
        assert policy.exit_code == 1 and "policy change refused" in policy.stderr
        retire = run("retire", url, *opts)
        assert retire.exit_code == 1 and "retire refused" in retire.stderr
        # kill the holder: its lease expires after RDBKIT_LEASE_TTL and is taken over
        slow.send_signal(signal.SIGKILL)
        slow.wait(10)
        time.sleep(2.2)
        again = run("backup", url, store, "--account", "t", "--name", "after", "--json",
                    env={"RDBKIT_LEASE_TTL": "2"})
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout)["keys"] == 3000
        events = json.loads(run("events", "--json", *opts).stdout)
        assert "takeover" in [e["action"] for e in events]
        assert [m["name"] for m in json.loads(run("snapshot", "list", "--json", *opts).stdout)] \
            == ["after"]
    finally:
        if slow.poll() is None:
            slow.kill()
