"""A loopback TCP proxy for Kafka connections that loses Produce responses.

``DroppingProxy`` listens on 127.0.0.1 and relays each client connection to
one upstream broker, frame by frame (a Kafka frame is a 4-byte big-endian
length and that many bytes). It remembers the API key of every request by its
correlation id. When the response to a Produce request comes back, the proxy
drops it with probability ``drop_fraction`` and closes both sides of that
connection: the broker has appended the batch, but the client never hears so
and must retry, which is exactly the case idempotent producers exist for.

Clients must keep talking through the proxy after bootstrap, so the broker
behind it is started with ``advertised.listener`` set to the proxy's address
(the proxy binds first; ``set_upstream`` names the broker once it is up).
Only loopback addresses are used.
"""

from __future__ import annotations

import random
import socket
import struct
import threading

PRODUCE = 0


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    """n bytes from sock, or None on EOF or a reset."""
    chunks = []
    while n:
        try:
            chunk = sock.recv(n)
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> bytes | None:
    """One whole frame (length prefix included), or None when the peer is gone."""
    prefix = _read_exact(sock, 4)
    if prefix is None:
        return None
    (length,) = struct.unpack(">i", prefix)
    if length < 0:
        return None
    body = _read_exact(sock, length)
    if body is None:
        return None
    return prefix + body


class DroppingProxy:
    """See the module docs. Counters: ``produce_requests``, ``dropped``, ``connections``."""

    def __init__(self, drop_fraction: float = 0.0, seed: int = 1):
        self.drop_fraction = drop_fraction
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.upstream: tuple[str, int] | None = None
        self.produce_requests = 0
        self.dropped = 0
        self.connections = 0
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_upstream(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1", "the proxy only relays to loopback"
        self.upstream = (host, int(port))

    def start(self) -> "DroppingProxy":
        assert self.upstream is not None, "set_upstream first"
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        # Shutting the listening socket down wakes the blocked accept().
        self._shut(self._listener)
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            self._shut(s)
        self._thread.join(5)

    def __enter__(self) -> "DroppingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- relaying ------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets.update((client, upstream))
            pending: dict[int, int] = {}
            threading.Thread(target=self._requests, args=(client, upstream, pending), daemon=True).start()
            threading.Thread(target=self._responses, args=(client, upstream, pending), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, pending: dict[int, int]) -> None:
        """Client to broker: note each request's API key, then forward it."""
        while True:
            frame = _read_frame(client)
            if frame is None or len(frame) < 12:
                break
            api_key, _version, correlation_id = struct.unpack(">hhi", frame[4:12])
            with self._lock:
                pending[correlation_id] = api_key
                if api_key == PRODUCE:
                    self.produce_requests += 1
            try:
                upstream.sendall(frame)
            except OSError:
                break
        self._close_pair(client, upstream)

    def _responses(self, client: socket.socket, upstream: socket.socket, pending: dict[int, int]) -> None:
        """Broker to client: forward each response, or lose a Produce response and cut the connection."""
        while True:
            frame = _read_frame(upstream)
            if frame is None or len(frame) < 8:
                break
            (correlation_id,) = struct.unpack(">i", frame[4:8])
            with self._lock:
                api_key = pending.pop(correlation_id, None)
                drop = api_key == PRODUCE and self._random.random() < self.drop_fraction
                if drop:
                    self.dropped += 1
            if drop:
                break
            try:
                client.sendall(frame)
            except OSError:
                break
        self._close_pair(client, upstream)

    def _close_pair(self, client: socket.socket, upstream: socket.socket) -> None:
        for s in (client, upstream):
            self._shut(s)
            with self._lock:
                self._sockets.discard(s)

    @staticmethod
    def _shut(s: socket.socket) -> None:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass
