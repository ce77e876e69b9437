"""RpcServerDouble: a test double of llama.cpp's RPC server, speaking just the commands
edgeoss itself reads or watches (hello, device count, device memory, allocate, free),
with a chosen protocol version and devices; it records every connection and byte it
receives, so a test can tell that a refused peer never reached it."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

HELLO, DEVICE_COUNT, GET_DEVICE_MEMORY, ALLOC_BUFFER, FREE_BUFFER = 14, 15, 11, 0, 4


@dataclass
class RpcServerDouble:
    version: tuple[int, int, int] = (7, 0, 0)
    devices: list[tuple[int, int]] = field(default_factory=lambda: [(8 << 30, 16 << 30)])  # (free, total)
    connections: int = 0
    received: int = 0
    allocations: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._next_ptr = 0x1000
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            self.received += len(chunk)
            data += chunk
        return data

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                header = self._read(conn, 9)
                if header is None:
                    return
                command, size = struct.unpack("<BQ", header)
                payload = self._read(conn, size) if size else b""
                if payload is None:
                    return
                if command == HELLO:
                    reply = bytes([*self.version, 0]) + bytes(24)
                elif command == DEVICE_COUNT:
                    reply = struct.pack("<I", len(self.devices))
                elif command == GET_DEVICE_MEMORY:
                    free, total = self.devices[struct.unpack("<I", payload)[0]]
                    reply = struct.pack("<QQ", free, total)
                elif command == ALLOC_BUFFER:
                    _, want = struct.unpack("<IQ", payload)
                    self.allocations.append(want)
                    self._next_ptr += 0x1000
                    reply = struct.pack("<QQ", self._next_ptr, want)
                elif command == FREE_BUFFER:
                    continue  # no reply
                else:
                    return
                conn.sendall(struct.pack("<Q", len(reply)) + reply)

    def close(self) -> None:
        self.listener.close()
