"""The worker's front door: llama.cpp's RPC server listens on loopback only, and
this gate takes the connections from the network in its place.

- A peer not in the allow list is closed before the RPC server sees a byte
  (llama.cpp's RPC has no authentication: whoever connects can read and write
  the worker's memory buffers and run graphs on it).
- One main process at a time: llama.cpp's server answers one client and makes
  the next wait, which would hang a second main; the gate closes it at once.
- The memory the worker offers (`--mem`): the device memory it reports is
  capped at that, and an allocation past it is refused the way the RPC
  server refuses one it cannot make (a null buffer), so llama.cpp reports it.

Everything else passes through unchanged. The gate reads the command framing
of the client's stream (| command u8 | size u64 | data |) to find the two
commands it looks into; llama.cpp's client waits for each reply before it sends
its next command, so the reply to a command is the next thing the server sends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgeoss.cluster import protocol

log = logging.getLogger(__name__)

CMD_ALLOC_BUFFER = 0
CMD_FREE_BUFFER = 4
CHUNK = 1 << 20
BUSY_WAIT_S = 3.0
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(values: Sequence[str]) -> tuple[Network, ...]:
    """Addresses and networks (192.168.1.5, 10.0.0.0/24, fd00::/8); a ValueError names a bad one."""
    out: list[Network] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                try:
                    out.append(ipaddress.ip_network(part, strict=False))
                except ValueError:
                    example = "e.g. 192.168.1.5, 10.0.0.0/24"
                    raise ValueError(f"--allow {part!r} is not an IP address or network ({example})") from None
    return tuple(out)


def allowed(address: str, networks: Sequence[Network]) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class GateSettings:
    host: str
    port: int
    inner: tuple[str, int]  # llama.cpp's RPC server, on loopback
    allow: tuple[Network, ...] = LOOPBACK
    offered_bytes: int | None = None  # --mem: None offers what the devices have


def _exactly(sock: socket.socket, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


class _Session:
    """One main process's connection, relayed to the RPC server."""

    def __init__(
        self, client: socket.socket, server: socket.socket, offered: int | None, say: Callable[[str], None]
    ) -> None:
        self.client, self.server, self.offered, self.say = client, server, offered, say
        self.expect: deque[tuple[int, int]] = deque()  # (command, argument) whose reply comes next
        self.lock = threading.Lock()
        self.buffers: dict[int, int] = {}  # remote pointer -> size, of this session's allocations
        self.pending_alloc = 0
        self.device_offer: dict[int, int] = {}

    @property
    def allocated(self) -> int:
        return sum(self.buffers.values()) + self.pending_alloc

    def run(self) -> None:
        back = threading.Thread(target=self._replies, name="edgeoss-gate-replies", daemon=True)
        back.start()
        try:
            self._requests()
        except OSError:
            pass
        finally:
            for sock in (self.client, self.server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            back.join(5)
            self.client.close()
            self.server.close()

    def _requests(self) -> None:
        while True:
            header = _exactly(self.client, 9)
            if header is None:
                return
            command, size = struct.unpack("<BQ", header)
            if command in (protocol.CMD_GET_DEVICE_MEMORY, CMD_ALLOC_BUFFER, CMD_FREE_BUFFER) and size <= 16:
                payload = _exactly(self.client, size)
                if payload is None:
                    return
                if not self._look_into(command, payload, header):
                    continue  # answered here
                self.server.sendall(header + payload)
                continue
            self.server.sendall(header)
            left = size
            while left:  # streamed, never held whole: a tensor's data can be gigabytes
                chunk = self.client.recv(min(CHUNK, left))
                if not chunk:
                    return
                self.server.sendall(chunk)
                left -= len(chunk)

    def _look_into(self, command: int, payload: bytes, header: bytes) -> bool:
        """Note what the reply will be; False when the gate answers the command itself."""
        if self.offered is None:
            return True
        if command == protocol.CMD_GET_DEVICE_MEMORY and len(payload) == 4:
            with self.lock:
                self.expect.append((command, struct.unpack("<I", payload)[0]))
        elif command == CMD_ALLOC_BUFFER and len(payload) == 12:
            _, size = struct.unpack("<IQ", payload)
            with self.lock:
                if self.allocated + size > self.offered:
                    self.say(
                        f"refused an allocation of {size >> 20} MiB: {self.allocated >> 20} MiB of the "
                        f"{self.offered >> 20} MiB offered (--mem) are in use"
                    )
                    self.client.sendall(struct.pack("<QQQ", 16, 0, 0))  # a null buffer: llama.cpp's "cannot allocate"
                    return False
                self.pending_alloc = size
                self.expect.append((command, size))
        elif command == CMD_FREE_BUFFER and len(payload) == 8:
            with self.lock:
                self.buffers.pop(struct.unpack("<Q", payload)[0], None)
        return True

    def _replies(self) -> None:
        try:
            while True:
                chunk = self.server.recv(CHUNK)
                if not chunk:
                    break
                with self.lock:
                    expected = self.expect.popleft() if self.expect else None
                if expected is None:
                    self.client.sendall(chunk)
                    continue
                reply = chunk
                while len(reply) < 24:  # | size u64 | two u64 |
                    more = self.server.recv(24 - len(reply))
                    if not more:
                        return
                    reply += more
                self.client.sendall(self._rewrite(expected, reply[:24]) + reply[24:])
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)

    def _rewrite(self, expected: tuple[int, int], reply: bytes) -> bytes:
        command, argument = expected
        size, first, second = struct.unpack("<QQQ", reply)
        if size != 16:
            return reply
        assert self.offered is not None
        if command == protocol.CMD_GET_DEVICE_MEMORY:
            # The offer goes to the devices in order: device 0 first.
            with self.lock:
                before = sum(v for k, v in self.device_offer.items() if k < argument)
                offer = max(0, min(second, self.offered - before))
                self.device_offer[argument] = offer
            return struct.pack("<QQQ", 16, min(first, offer), offer)
        if command == CMD_ALLOC_BUFFER:
            with self.lock:
                self.pending_alloc = 0
                if first:
                    self.buffers[first] = second
        return reply


class Gate:
    """Listens on the worker's address and relays allowed peers to the RPC server."""

    def __init__(self, settings: GateSettings, say: Callable[[str], None] = log.info) -> None:
        self.settings, self.say = settings, say
        self.listener = socket.create_server((settings.host, settings.port))
        self.port = self.listener.getsockname()[1]
        self._busy: str | None = None
        self._free = threading.Condition()
        self._closed = False

    def serve_forever(self) -> None:
        while not self._closed:
            try:
                client, address = self.listener.accept()
            except OSError:
                if self._closed:
                    return
                raise
            peer = str(address[0])
            if not allowed(peer, self.settings.allow):
                self.say(f"refused {peer}: not in --allow (add --allow {peer} if it is yours)")
                client.close()  # before a byte is read
                continue
            threading.Thread(target=self._relay, args=(client, peer), name="edgeoss-gate", daemon=True).start()

    def _take(self, peer: str) -> str | None:
        """Claim the one main's place, waiting a moment for it; who holds it, if that is not over."""
        with self._free:
            # llama.cpp's client closes and reopens its connection between steps of a load:
            # the old session may not have seen its end yet when the new one arrives.
            self._free.wait_for(lambda: self._busy is None, timeout=BUSY_WAIT_S)
            if self._busy is not None:
                return self._busy
            self._busy = peer
            return None

    def _relay(self, client: socket.socket, peer: str) -> None:
        busy = self._take(peer)
        if busy is not None:
            self.say(f"refused {peer}: serving {busy} already (one main process at a time)")
            client.close()
            return
        try:
            try:
                server = socket.create_connection(self.settings.inner, timeout=10)
            except OSError as exc:
                self.say(f"the RPC server is not answering ({exc}); closing {peer}")
                client.close()
                return
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self.say(f"connected: {peer}")
            _Session(client, server, self.settings.offered_bytes, self.say).run()
            self.say(f"disconnected: {peer}")
        finally:
            with self._free:
                self._busy = None
                self._free.notify_all()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
