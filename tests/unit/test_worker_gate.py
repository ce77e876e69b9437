"""The worker's safety and its front door, against a test double of llama.cpp's RPC
server: the allow list is checked before the RPC server sees a byte, one main at a
time, --mem caps what is reported and refuses allocations past it; the probe names
the fix for a worker it cannot use; a network address needs --allow."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from edgeoss.cli.main import app
from edgeoss.cluster import gate, protocol
from edgeoss.cluster.worker import WorkerOptions, parse_size
from edgeoss.errors import UsageError, WorkerError
from rpc_double import RpcServerDouble

GIB = 1 << 30


def _start(
    double: RpcServerDouble, allow: tuple[gate.Network, ...] = gate.LOOPBACK, offered: int | None = None
) -> tuple[gate.Gate, list[str]]:
    said: list[str] = []
    door = gate.Gate(gate.GateSettings("127.0.0.1", 0, ("127.0.0.1", double.port), allow, offered), said.append)
    threading.Thread(target=door.serve_forever, daemon=True).start()
    return door, said


@pytest.fixture
def double() -> Iterator[RpcServerDouble]:
    server = RpcServerDouble(devices=[(12 * GIB, 16 * GIB), (12 * GIB, 16 * GIB)])
    yield server
    server.close()


def _call(sock: socket.socket, command: int, payload: bytes, reply: int) -> bytes:
    sock.sendall(struct.pack("<BQ", command, len(payload)) + payload)
    data = b""
    while len(data) < 8 + reply:
        chunk = sock.recv(8 + reply - len(data))
        assert chunk, f"closed after {len(data)} bytes"
        data += chunk
    assert struct.unpack("<Q", data[:8])[0] == reply
    return data[8:]


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_peer_outside_the_allow_list_never_reaches_the_rpc_server(double: RpcServerDouble) -> None:
    door, said = _start(double, allow=gate.parse_allow(["127.0.0.1"]))
    try:
        stranger = socket.socket()
        stranger.bind(("127.0.0.2", 0))  # another loopback address: a peer the list does not name
        stranger.connect(("127.0.0.1", door.port))
        with stranger:
            stranger.settimeout(5)
            with _closed():
                stranger.sendall(struct.pack("<BQ", protocol.CMD_HELLO, 24) + bytes(24))
                assert stranger.recv(64) == b""
        _wait(lambda: any("refused 127.0.0.2" in line for line in said))
        assert double.connections == 0 and double.received == 0
        assert "--allow 127.0.0.2" in said[-1]
        # The listed address gets through, to the same gate.
        profile = protocol.probe(f"127.0.0.1:{door.port}")
        assert profile.protocol == (7, 0, 0)
        assert double.connections == 1
    finally:
        door.close()


class _closed:
    """Either the read sees the close, or the write fails because of it."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        return kind is None or issubclass(kind, (ConnectionResetError, BrokenPipeError))


def test_mem_caps_the_reported_memory_device_by_device(double: RpcServerDouble) -> None:
    door, _ = _start(double, offered=20 * GIB)
    try:
        profile = protocol.probe(f"127.0.0.1:{door.port}")
    finally:
        door.close()
    # 20 GiB offered over two 16 GiB devices: all of the first, 4 GiB of the second.
    assert [(d.free_bytes, d.total_bytes) for d in profile.devices] == [(12 * GIB, 16 * GIB), (4 * GIB, 4 * GIB)]
    assert profile.free_bytes == 16 * GIB


def test_without_mem_the_devices_are_reported_as_they_are(double: RpcServerDouble) -> None:
    door, _ = _start(double)
    try:
        profile = protocol.probe(f"127.0.0.1:{door.port}")
    finally:
        door.close()
    assert [(d.free_bytes, d.total_bytes) for d in profile.devices] == [(12 * GIB, 16 * GIB)] * 2


def test_an_allocation_past_mem_is_refused_before_the_rpc_server_sees_it(double: RpcServerDouble) -> None:
    door, said = _start(double, offered=10 * GIB)
    try:
        with socket.create_connection(("127.0.0.1", door.port), timeout=5) as sock:
            _call(sock, protocol.CMD_HELLO, bytes(24), 28)
            first = _call(sock, gate.CMD_ALLOC_BUFFER, struct.pack("<IQ", 0, 6 * GIB), 16)
            pointer, size = struct.unpack("<QQ", first)
            assert pointer and size == 6 * GIB
            refused = _call(sock, gate.CMD_ALLOC_BUFFER, struct.pack("<IQ", 0, 6 * GIB), 16)
            assert struct.unpack("<QQ", refused) == (0, 0)  # llama.cpp's "cannot allocate"
            assert double.allocations == [6 * GIB]
            # Freed, the memory can be had again.
            sock.sendall(struct.pack("<BQ", gate.CMD_FREE_BUFFER, 8) + struct.pack("<Q", pointer))
            again = _call(sock, gate.CMD_ALLOC_BUFFER, struct.pack("<IQ", 0, 6 * GIB), 16)
            assert struct.unpack("<QQ", again)[0] != 0
            assert double.allocations == [6 * GIB, 6 * GIB]
        assert any("refused an allocation of 6144 MiB" in line for line in said)
    finally:
        door.close()


def test_a_second_main_is_turned_away_while_one_is_served(double: RpcServerDouble) -> None:
    door, said = _start(double)
    try:
        with socket.create_connection(("127.0.0.1", door.port), timeout=5) as first:
            _call(first, protocol.CMD_HELLO, bytes(24), 28)
            with pytest.raises(WorkerError, match="closed the connection") as caught:
                protocol.probe(f"127.0.0.1:{door.port}", timeout_s=5)
            assert "already serves another main process" in (caught.value.hint or "")
            assert any("one main process at a time" in line for line in said)
        # Once the first main leaves, the next one is served.
        _wait(lambda: any("disconnected" in line for line in said))
        assert protocol.probe(f"127.0.0.1:{door.port}").devices
    finally:
        door.close()


def test_a_worker_of_another_version_is_refused_with_the_fix() -> None:
    older = RpcServerDouble(version=(6, 1, 0))
    try:
        with pytest.raises(WorkerError) as caught:
            protocol.probe(older.endpoint)
    finally:
        older.close()
    message = str(caught.value)
    assert "6.1.0" in message and "7.0.0" in message and "must match exactly" in message
    assert "same edgeoss and llama-cpp-python version on both machines" in (caught.value.hint or "")
    assert "0.3.36" in (caught.value.hint or "")


def test_an_unreachable_worker_names_the_command_that_starts_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
    with pytest.raises(WorkerError, match="cannot reach the worker") as caught:
        protocol.probe(f"127.0.0.1:{port}", timeout_s=2)
    assert f"edgeoss worker --port {port}" in (caught.value.hint or "")


def test_something_else_on_the_port_is_not_believed() -> None:
    """An HTTP server (or anything) answering with a huge size is refused before it is read."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(WorkerError, match="answered the hello with") as caught:
            protocol.probe(f"127.0.0.1:{listener.getsockname()[1]}", timeout_s=2)
        assert "run edgeoss worker there" in (caught.value.hint or "")
    finally:
        listener.close()


def test_a_network_address_needs_an_allow_list() -> None:
    with pytest.raises(UsageError, match="needs --allow") as caught:
        WorkerOptions(host="0.0.0.0").checked()
    assert "SSH tunnel" in (caught.value.hint or "")
    assert WorkerOptions(host="0.0.0.0", allow=("192.168.1.10",)).checked().networks == gate.parse_allow(
        ["192.168.1.10"]
    )
    # Loopback needs none, and then accepts loopback only.
    assert WorkerOptions().checked().networks == gate.LOOPBACK
    with pytest.raises(UsageError, match="not an IP address"):
        WorkerOptions(allow=("my-laptop",)).checked()


def test_the_command_refuses_a_network_address_without_allow() -> None:
    result = CliRunner().invoke(app, ["worker", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == UsageError.exit_code, result.output
    assert "needs --allow" in result.output


def test_allow_lists_and_loopback() -> None:
    networks = gate.parse_allow(["10.0.0.0/24, 192.168.1.5", "fd00::/8"])
    assert gate.allowed("10.0.0.77", networks) and gate.allowed("192.168.1.5", networks)
    assert not gate.allowed("192.168.1.6", networks) and not gate.allowed("10.0.1.1", networks)
    assert gate.allowed("::ffff:10.0.0.3", networks)  # an IPv4 peer on a dual-stack socket
    assert gate.allowed("fd12::1", networks) and not gate.allowed("fe80::1%eth0", networks)
    assert gate.allowed("127.0.0.1", gate.LOOPBACK) and not gate.allowed("192.168.1.5", gate.LOOPBACK)
    assert gate.is_loopback("127.0.0.1") and gate.is_loopback("::1") and gate.is_loopback("localhost")
    assert not gate.is_loopback("0.0.0.0") and not gate.is_loopback("192.168.1.5")


@pytest.mark.parametrize(
    ("text", "size"), [("8G", 8 * GIB), ("512M", 512 << 20), ("1.5GiB", 3 * GIB // 2), ("4096", 4096), ("2t", 2 << 40)]
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1G", "0", "8X"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError, match="is not a size"):
        parse_size(text)
