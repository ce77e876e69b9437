"""The part of llama.cpp's RPC protocol edgeoss speaks itself: a worker's hello
(its protocol version), its device count and each device's memory, and the
round trip. Everything else on the wire is llama.cpp's own (ggml-rpc.cpp).

Why speak any of it: llama.cpp's client aborts the whole process when a
worker is unreachable or speaks another version (GGML_ABORT), so every worker
is asked here first, and a failure is an error that names the fix.

Wire format (ggml-rpc.cpp, little-endian): a request is | command u8 | size u64 |
data |, a response | size u64 | data |. The hello must come first.
"""

from __future__ import annotations

import socket
import statistics
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeoss.errors import WorkerError

CMD_GET_DEVICE_MEMORY = 11
CMD_HELLO = 14
CMD_DEVICE_COUNT = 15
CONN_CAPS = 24  # the hello's transport capabilities (RDMA); all zero: plain TCP
HELLO_REPLY = 4 + CONN_CAPS
MAX_DEVICES = 16  # GGML_RPC_MAX_SERVERS; a worker claiming more is not believed
PINGS = 5

# The protocol of the llama.cpp each supported llama-cpp-python vendors
# (ggml/include/ggml-rpc.h, RPC_PROTO_*_VERSION). Worker and main must match exactly.
PROTOCOL_OF_BINDING = {"0.3.36": (7, 0, 0)}


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(v) for v in version)


def local_protocol() -> tuple[int, int, int] | None:
    """The RPC protocol of the installed llama-cpp-python, when edgeoss knows it."""
    try:
        from importlib.metadata import version

        return PROTOCOL_OF_BINDING.get(version("llama_cpp_python"))
    except Exception:  # not installed
        return None


@dataclass(frozen=True)
class Device:
    index: int
    free_bytes: int
    total_bytes: int


@dataclass
class WorkerProfile:
    """What a worker offers, as the planner needs it."""

    endpoint: str  # HOST:PORT
    protocol: tuple[int, int, int]
    devices: list[Device] = field(default_factory=list)
    rtt_s: float = 0.0  # median round trip of a small command
    link_bytes_per_s: float | None = None  # unknown unless measured or recorded

    @property
    def free_bytes(self) -> int:
        return sum(d.free_bytes for d in self.devices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerProfile:
        return cls(
            endpoint=str(data["endpoint"]),
            protocol=tuple(int(v) for v in data["protocol"]),  # type: ignore[arg-type]
            devices=[Device(int(d["index"]), int(d["free_bytes"]), int(d["total_bytes"])) for d in data["devices"]],
            rtt_s=float(data.get("rtt_s", 0.0)),
            link_bytes_per_s=float(data["link_bytes_per_s"]) if data.get("link_bytes_per_s") else None,
        )


class _Connection:
    def __init__(self, sock: socket.socket, endpoint: str) -> None:
        self.sock, self.endpoint = sock, endpoint

    def _read(self, n: int, what: str) -> bytes:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                raise WorkerError(
                    f"the worker at {self.endpoint} did not answer ({what}) in time",
                    hint="it may be serving another main process, or be stuck: see its output, or restart it",
                ) from None
            except OSError as exc:
                raise _closed(self.endpoint, what, exc) from None
            if not chunk:
                raise _closed(self.endpoint, what, None)
            data += chunk
        return bytes(data)

    def call(self, command: int, payload: bytes, reply_size: int, what: str) -> bytes:
        try:
            self.sock.sendall(struct.pack("<BQ", command, len(payload)) + payload)
        except OSError as exc:
            raise _closed(self.endpoint, what, exc) from None
        (size,) = struct.unpack("<Q", self._read(8, what))
        if size != reply_size:  # bounded before anything is read by it
            raise WorkerError(
                f"the worker at {self.endpoint} answered {what} with {size} bytes, not {reply_size}",
                hint="it is not llama.cpp's RPC server, or speaks another version: run edgeoss worker there",
            )
        return self._read(reply_size, what)


def _closed(endpoint: str, what: str, exc: OSError | None) -> WorkerError:
    why = f" ({exc})" if exc else ""
    return WorkerError(
        f"the worker at {endpoint} closed the connection at {what}{why}",
        hint="it refuses this machine's address (start it with --allow ADDRESS-OF-THIS-MACHINE), "
        "or already serves another main process: see the worker's output",
    )


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise WorkerError(f"{endpoint!r} is not HOST:PORT", hint="e.g. --workers 192.168.1.20:50052")
    return host.strip("[]"), int(port)


def probe(endpoint: str, timeout_s: float = 10.0) -> WorkerProfile:
    """Connect, check the protocol version against this machine's llama.cpp, and read
    the devices, their memory and the round trip; a WorkerError names the fix."""
    host, port = split_endpoint(endpoint)
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise WorkerError(
            f"cannot reach the worker at {endpoint}: {exc}",
            hint=f"start it there with: edgeoss worker --port {port} (and --host/--allow to reach it from here), "
            "or open the SSH tunnel that leads to it",
        ) from None
    with sock:
        sock.settimeout(timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock, endpoint)
        reply = conn.call(CMD_HELLO, bytes(CONN_CAPS), HELLO_REPLY, "the hello")
        theirs = (reply[0], reply[1], reply[2])
        ours = local_protocol()
        if ours is None:
            raise WorkerError(
                "this machine's llama-cpp-python is not one whose RPC protocol edgeoss knows",
                hint=f"install llama-cpp-python {', '.join(PROTOCOL_OF_BINDING)} built with -DGGML_RPC=on",
            )
        if theirs != ours:
            raise WorkerError(
                f"the worker at {endpoint} speaks llama.cpp RPC protocol {version_text(theirs)}; "
                f"this machine's llama.cpp speaks {version_text(ours)}, and they must match exactly",
                hint="install the same edgeoss and llama-cpp-python version on both machines "
                f"(llama-cpp-python {', '.join(b for b, v in PROTOCOL_OF_BINDING.items() if v == ours)})",
            )
        pings = []
        count = 0
        for _ in range(PINGS):
            start = time.perf_counter()
            (count,) = struct.unpack("<I", conn.call(CMD_DEVICE_COUNT, b"", 4, "the device count"))
            pings.append(time.perf_counter() - start)
        if not 0 < count <= MAX_DEVICES:
            raise WorkerError(f"the worker at {endpoint} reports {count} devices", hint="restart it")
        devices = []
        for index in range(count):
            free, total = struct.unpack(
                "<QQ", conn.call(CMD_GET_DEVICE_MEMORY, struct.pack("<I", index), 16, "the device memory")
            )
            devices.append(Device(index, min(free, total), total))
    return WorkerProfile(endpoint, theirs, devices, rtt_s=statistics.median(pings))
