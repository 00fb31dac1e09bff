"""Replication helpers for the capture tests: a real replica, and a link that dies.

``primary_with_replica`` starts a redis-server 7.0 primary and a second
redis-server replicating from it (``replicaof``), and waits until the
replica reports its link up and its full sync finished. ``CutProxy`` is a TCP
proxy on a free loopback port that forwards both ways and closes both
connections once ``cut_after`` bytes have come back from the server, as
when a network dies in the middle of a transfer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Self

from servers import ServerHandle, redis7_binary, running_server

#: Seconds a replica gets to finish its first full sync.
SYNC_TIMEOUT_S = 600.0


def replication_info(server: ServerHandle) -> dict[str, str]:
    with contextlib.closing(server.client()) as client:
        return {k: str(v) for k, v in client.info("replication").items()}


def wait_synced(replica: ServerHandle, timeout: float = SYNC_TIMEOUT_S) -> float:
    """Wait until ``replica`` has its link up and no sync in progress; the seconds it took."""
    start = time.monotonic()
    while True:
        info = replication_info(replica)
        if info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0":
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"replica {replica.port} not synced after {timeout} s: {info}")
        time.sleep(0.02)


@contextlib.contextmanager
def primary_with_replica(
    primary_config: dict[str, str] | None = None, replica_config: dict[str, str] | None = None
) -> Iterator[tuple[ServerHandle, ServerHandle]]:
    """A redis-server 7.0 primary and a real replica of it, synced (both stopped on exit)."""
    binary = redis7_binary()
    with running_server("primary", binary, primary_config) as primary:
        config = {"replicaof": f"127.0.0.1 {primary.port}", **(replica_config or {})}
        with running_server("replica", binary, config) as replica:
            wait_synced(replica)
            yield primary, replica


class CutProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; cut every link after ``cut_after`` bytes back.

    ``received`` counts the server's bytes forwarded per connection; ``cuts``
    how many links were cut.
    """

    def __init__(
        self, upstream_port: int, cut_after: int, upstream_host: str = "127.0.0.1"
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.cut_after = cut_after
        self.received: list[int] = []
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
                index = len(self.received)
                self.received.append(0)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            back = threading.Thread(target=self._pump_back, args=(server, client, index))
            back.daemon = True
            back.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)

    def _pump_back(self, src: socket.socket, dst: socket.socket, index: int) -> None:
        try:
            while data := src.recv(1 << 16):
                room = self.cut_after - self.received[index]
                if len(data) >= room:
                    dst.sendall(data[:room])
                    self.received[index] += room
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(data)
                self.received[index] += len(data)
        except OSError:
            pass
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
