"""The python tool's sandbox holds: each test below tries one way out and fails
if the sandbox is weakened (a bind, a namespace, the seccomp filter or a limit
removed). Real bubblewrap, real interpreters; skipped, with the reason, where
this machine has no sandbox (tests/unit/test_python_tool.py covers that case)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeoss.tools import python_tool, sandbox

STATUS = sandbox.status()
pytestmark = pytest.mark.skipif(not STATUS.available, reason=f"no sandbox here: {STATUS.detail}")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[python_tool.PythonSession]:
    s = python_tool.PythonSession(python_tool.Limits(timeout_s=10), scratch_root=tmp_path / "scratch")
    yield s
    s.close()


def ok(result: python_tool.Result) -> str:
    assert not result.error and not result.ended, result.text()
    return result.text()


def test_state_lives_between_calls_like_a_notebook(session: python_tool.PythonSession) -> None:
    assert ok(session.run("x = 40\ndef f(y):\n    return x + y")) == "[no output]"
    assert ok(session.run("print('called'); f(2)")) == "called\n42"
    failed = session.run("f(1) / 0")
    assert failed.error and "ZeroDivisionError" in failed.error
    assert 'File "<python>", line 1' in failed.error and "python_worker" not in failed.error  # only the model's frames
    assert ok(session.run("x")) == "40"  # an error keeps the state


def test_no_network_not_even_the_hosts_loopback(session: python_tool.PythonSession) -> None:
    accepted: list[object] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        server.settimeout(3)

        def accept() -> None:
            with contextlib.suppress(OSError):
                accepted.append(server.accept())

        waiter = threading.Thread(target=accept)
        waiter.start()
        result = session.run(f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))")
        waiter.join()
    assert result.error and ("ConnectionRefusedError" in result.error or "OSError" in result.error), result.text()
    assert accepted == [], "the sandbox reached a server on the host's loopback"
    outside = session.run("import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('192.0.2.1', 80))")
    assert outside.error and ("unreachable" in outside.error or "OSError" in outside.error), outside.text()


def test_the_users_files_are_not_there(session: python_tool.PythonSession, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's file")
    home_secret = Path.home() / f".edgeoss-sandbox-test-{time.monotonic_ns()}"
    home_secret.write_text("in the home")
    try:
        for path in (secret, home_secret, Path("/etc/shadow"), Path("/etc/passwd")):
            result = session.run(f"open({str(path)!r}).read()")
            assert result.error and "FileNotFoundError" in result.error, f"{path}: {result.text()}"
        listing = ok(session.run(f"import os\nsorted(os.listdir({str(Path.home())!r}))"))
        assert home_secret.name not in listing
    finally:
        home_secret.unlink()


def test_writes_land_only_in_the_scratch_folder(session: python_tool.PythonSession, tmp_path: Path) -> None:
    host = tmp_path / "written-from-the-sandbox.txt"
    session.run(f"import os\nos.makedirs({str(tmp_path)!r}, exist_ok=True)\nopen({str(host)!r}, 'w').write('x')")
    assert not host.exists(), "a write outside the scratch folder reached the host"
    for target in ("/usr/edgeoss-test", "/mnt/edgeoss-test", "/edgeoss-test", "/etc/edgeoss-test"):
        result = session.run(f"open({target!r}, 'w').write('x')")
        assert result.error and ("Read-only" in result.error or "Permission" in result.error), f"{target}: {result}"
    tmp = session.run("open('/tmp/fill', 'wb').write(b'x' * (128 << 20))")  # /tmp is memory: capped
    assert tmp.error and "No space left" in tmp.error, tmp.text()
    ok(session.run("open('/mnt/data/kept.txt', 'w').write('kept')"))
    assert (session.scratch / "kept.txt").read_text() == "kept"


def test_no_process_can_be_started(session: python_tool.PythonSession) -> None:
    bomb = session.run("import os\nwhile True:\n    os.fork()")
    assert bomb.error and "PermissionError" in bomb.error and bomb.seconds < 5, bomb.text()
    for code in (
        "import subprocess\nsubprocess.run(['/usr/bin/true'])",
        "import os\nos.posix_spawn('/usr/bin/true', ['true'], {})",
        "import multiprocessing\np = multiprocessing.Process(target=print)\np.start()\np.join()",
    ):
        result = session.run(code)
        assert result.error and ("PermissionError" in result.error or "Operation not permitted" in result.error), code
    ok(session.run("import threading\nt = threading.Thread(target=print, args=('thread',))\nt.start(); t.join()"))


def test_an_endless_loop_is_killed_at_the_timeout(tmp_path: Path) -> None:
    s = python_tool.PythonSession(python_tool.Limits(timeout_s=2), scratch_root=tmp_path)
    try:
        s.run("x = 1")
        started = time.monotonic()
        result = s.run("while True:\n    pass")
        assert 2 <= time.monotonic() - started < 6
        assert "ran past 2 s" in result.ended and not s.alive
        after = s.run("x")
        assert after.error and "NameError" in after.error  # a fresh interpreter: the state went with the old one
    finally:
        s.close()


def test_memory_is_capped_and_the_session_survives(session: python_tool.PythonSession) -> None:
    session.run("kept = 'still here'")
    result = session.run("block = bytearray(10 * 2**30)")
    assert result.error and "MemoryError" in result.error and result.seconds < 5
    assert ok(session.run("kept")) == "'still here'"


def test_cpu_time_is_capped(tmp_path: Path) -> None:
    s = python_tool.PythonSession(python_tool.Limits(timeout_s=30, cpu_seconds=1), scratch_root=tmp_path)
    try:
        started = time.monotonic()
        result = s.run("while True:\n    pass")
        assert time.monotonic() - started < 10 and "CPU time" in result.ended, result.text()
    finally:
        s.close()


def test_output_and_files_are_capped(tmp_path: Path) -> None:
    limits = python_tool.Limits(timeout_s=10, output_chars=1000, file_bytes=1 << 20, scratch_bytes=4 << 20)
    s = python_tool.PythonSession(limits, scratch_root=tmp_path)
    try:
        flood = s.run("print('x' * 10**6)")
        assert len(flood.stdout) == 1000 and flood.dropped == 10**6 + 1 - 1000
        assert "[output truncated: 999,001 more characters]" in flood.text()
        big = s.run("open('/mnt/data/big', 'wb').write(b'x' * (2 << 20))")
        assert big.error and ("File too large" in big.error or "OSError" in big.error), big.text()
        many = s.run("for i in range(8):\n    open(f'/mnt/data/part{i}', 'wb').write(b'x' * ((1 << 20) - 1))")
        assert "scratch folder grew" in many.ended and not s.scratch.exists()
    finally:
        s.close()


def test_nothing_else_is_visible_or_allowed(session: python_tool.PythonSession) -> None:
    assert ok(session.run("import os\nsorted(p for p in os.listdir('/proc') if p.isdigit())")) in (
        "['1', '2']",
        "['1']",
        "['2']",
    )
    caps = ok(session.run("[l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm'))]"))
    assert caps == "['0000000000000000', '0000000000000000']"
    env = ok(session.run("import os\nsorted(os.environ)"))
    assert "EDGEOSS_HOME" not in env and "HF_TOKEN" not in env and "EDGEOSS_API_KEY" not in env


def test_a_read_only_folder_under_tmp_is_there_and_read_only(tmp_path: Path) -> None:
    """The sandbox's own /tmp must not hide a bound folder that lives under the host's /tmp
    (a checkout or a virtual environment there: found on a clean clone in /tmp)."""
    folder = tmp_path / "installed"
    folder.mkdir()
    (folder / "module.py").write_text("VALUE = 1\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # No shell: the sandbox starts no second process; each command is one exec.
    read = sandbox.spawn(["/usr/bin/cat", f"{folder}/module.py"], scratch=scratch, read_only=[folder])
    out, err = read.communicate(timeout=20)
    assert out.decode() == "VALUE = 1\n", err.decode()
    write = sandbox.spawn(["/usr/bin/touch", f"{folder}/new"], scratch=scratch, read_only=[folder])
    _, err = write.communicate(timeout=20)
    assert write.returncode != 0 and b"Read-only" in err and not (folder / "new").exists()
