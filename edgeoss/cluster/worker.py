"""`edgeoss worker`: this machine's memory (and GPUs) for another machine's model.

llama.cpp's RPC server, from the binding's own llama.cpp, listens on a loopback
port only; the gate (gate.py) is what the network reaches. The worker binds
loopback unless told otherwise, and a network address needs an allow list:
llama.cpp's RPC has no authentication.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeoss import constants
from edgeoss.cluster import gate, protocol
from edgeoss.errors import EngineError, UsageError, WorkerError

INNER_READY_S = 30.0

SAFETY = (
    "llama.cpp's RPC has no authentication or encryption: whoever reaches this port can read and write "
    "this machine's model memory. Keep it on loopback and reach it through an SSH tunnel "
    "(on the main machine: ssh -N -L {port}:127.0.0.1:{port} USER@THIS-MACHINE, then --workers 127.0.0.1:{port}), "
    "or on a private network you control (WireGuard, Tailscale), with --allow naming the main machine."
)


@dataclass(frozen=True)
class WorkerOptions:
    host: str = "127.0.0.1"
    port: int = constants.WORKER_PORT
    allow: tuple[str, ...] = ()
    mem_bytes: int | None = None
    devices: tuple[str, ...] = ()
    threads: int | None = None
    cache_dir: Path | None = None
    networks: tuple[gate.Network, ...] = field(default=(), compare=False)

    def checked(self) -> WorkerOptions:
        """The options with the allow list parsed; a UsageError for an unsafe or bad one."""
        try:
            networks = gate.parse_allow(self.allow)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not gate.is_loopback(self.host) and not networks:
            raise UsageError(
                f"a worker on {self.host} needs --allow with the main machine's address",
                hint="llama.cpp's RPC has no authentication; e.g. --allow 192.168.1.10, or keep the default "
                "--host 127.0.0.1 and use an SSH tunnel",
            )
        if self.mem_bytes is not None and self.mem_bytes <= 0:
            raise UsageError("--mem must be more than 0")
        return dataclasses.replace(self, networks=networks or gate.LOOPBACK)


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, server: threading.Thread, failed: list[BaseException]) -> None:
    deadline = time.monotonic() + INNER_READY_S
    while time.monotonic() < deadline:
        if failed or not server.is_alive():
            why = failed[0] if failed else "it stopped"
            raise EngineError(f"llama.cpp's RPC server did not start: {why}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return  # it accepted and served an empty client: ready
        except OSError:
            time.sleep(0.05)
    raise EngineError(f"llama.cpp's RPC server did not listen on 127.0.0.1:{port} within {INNER_READY_S:.0f} s")


class Worker:
    """The running worker: llama.cpp's server on loopback behind the gate."""

    def __init__(self, options: WorkerOptions, say: Callable[[str], None]) -> None:
        from edgeoss.engines.llamacpp import rpc

        self.options = options.checked()
        self.say = say
        rpc.require()
        self.protocol = protocol.local_protocol()
        if self.protocol is None:
            raise WorkerError(
                "this llama-cpp-python is not one whose RPC protocol edgeoss knows",
                hint=f"install llama-cpp-python {', '.join(protocol.PROTOCOL_OF_BINDING)} with -DGGML_RPC=on",
            )
        self.devices = rpc.served_devices(self.options.devices)
        self.inner_port = _free_loopback_port()
        try:  # the network's port first: a clash is said before llama.cpp's server starts
            self.gate = gate.Gate(
                gate.GateSettings(
                    self.options.host,
                    self.options.port,
                    ("127.0.0.1", self.inner_port),
                    self.options.networks,
                    self.options.mem_bytes,
                ),
                say,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc.strerror or exc}",
                hint="another worker may be running there; pick another --port",
            ) from None
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                threads = self.options.threads or _physical_cores()
                rpc.serve(f"127.0.0.1:{self.inner_port}", self.devices, threads, self.options.cache_dir)
            except BaseException as exc:  # reported by _wait_for, or by run()
                failed.append(exc)

        self._server = threading.Thread(target=serve, name="edgeoss-rpc-server", daemon=True)
        self._server.start()
        try:
            _wait_for(self.inner_port, self._server, failed)
        except BaseException:
            self.gate.close()
            raise
        self._failed = failed

    def offered(self) -> list[tuple[str, int]]:
        """(device, bytes offered), the --mem cap given to the devices in order."""
        left = self.options.mem_bytes
        out = []
        for d in self.devices:
            share = d.free_bytes if left is None else max(0, min(d.free_bytes, left))
            if left is not None:
                left -= share
            out.append((f"{d.name} ({d.description})", share))
        return out

    def address(self) -> str:
        host = self.options.host
        if host in ("0.0.0.0", "::"):
            host = "THIS-MACHINE'S-ADDRESS"
        return f"{host}:{self.gate.port}"

    def serve_forever(self) -> None:
        self.gate.serve_forever()

    def close(self) -> None:
        self.gate.close()


def _physical_cores() -> int:
    from edgeoss.engines.llamacpp import threads

    return threads.default_threads()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from 8G, 8GiB, 512M, 1.5T or a plain number (binary units)."""
    match = _SIZE.match(text)
    if match is None or float(match[1]) <= 0:
        raise UsageError(f"--mem {text!r} is not a size", hint="e.g. 8G, 512M or a number of bytes")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def describe(worker: Worker, sizes: Callable[[int], str]) -> Sequence[str]:
    port = worker.gate.port
    lines = [
        f"edgeoss worker: llama.cpp RPC protocol {protocol.version_text(worker.protocol or (0, 0, 0))}",
        *(f"  offers {sizes(b)} of {name}" for name, b in worker.offered()),
        f"  llama.cpp's RPC server (above) listens on 127.0.0.1:{worker.inner_port} only; "
        f"the network reaches it through edgeoss's gate on {worker.options.host}:{port}",
    ]
    if gate.is_loopback(worker.options.host):
        lines += [
            f"  on this machine: edgeoss serve --workers 127.0.0.1:{port}",
            f"  from another machine, through SSH: ssh -N -L {port}:127.0.0.1:{port} USER@THIS-MACHINE there, "
            f"then edgeoss serve --workers 127.0.0.1:{port}",
        ]
    else:
        lines.append(f"  on the main machine: edgeoss serve --workers {worker.address()}")
    allow = ", ".join(str(n) for n in worker.options.networks)
    lines.append(f"  accepts connections from: {allow}")
    if not gate.is_loopback(worker.options.host):
        lines.append("  " + SAFETY.format(port=port))
    return lines
