"""The sandbox is not trusted on its word: `status()` runs it once and checks
its walls, so a sandbox that leaks (a weakened profile, a runner that ignores
its options) leaves the python tool off and says what leaked. And macOS's
Seatbelt profile denies everything it does not name.

The leak tests swap the sandbox for a test double that runs the probe as a
plain process (every wall open): each fails if the check is weakened."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from edgeoss.tools import sandbox


def plain_process_double(program: Sequence[str], **_: object) -> subprocess.Popen[bytes]:
    """No sandbox at all: what a broken one amounts to."""
    return subprocess.Popen(list(program), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def fresh_status() -> Iterator[None]:
    sandbox.status.cache_clear()
    yield
    sandbox.status.cache_clear()


def test_an_open_sandbox_is_caught_wall_by_wall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "spawn", plain_process_double)
    held, why = sandbox.walls_hold()
    assert not held
    for leak in ("loopback", "read a host file", "wrote a file on the host", "started another process"):
        assert leak in why, why


def test_a_leaking_sandbox_leaves_the_tool_off_on_linux(monkeypatch: pytest.MonkeyPatch, fresh_status: None) -> None:
    monkeypatch.setattr(sandbox.sys, "platform", "linux")
    monkeypatch.setattr(sandbox, "bubblewrap", lambda: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox, "seccomp_filter", lambda: b"")
    monkeypatch.setattr(sandbox, "spawn", plain_process_double)
    status = sandbox.status()
    assert not status.available and "did not hold" in status.detail and "loopback" in status.detail
    assert status.fix == sandbox.FIX_LEAK


def test_a_leaking_sandbox_leaves_the_tool_off_on_macos(monkeypatch: pytest.MonkeyPatch, fresh_status: None) -> None:
    monkeypatch.setattr(sandbox.sys, "platform", "darwin")
    monkeypatch.setattr(sandbox.os, "access", lambda path, mode: path == sandbox.SANDBOX_EXEC)
    monkeypatch.setattr(sandbox, "spawn", plain_process_double)
    status = sandbox.status()
    assert status.kind == "sandbox-exec" and not status.available and "did not hold" in status.detail


def test_macos_without_sandbox_exec_says_so(monkeypatch: pytest.MonkeyPatch, fresh_status: None) -> None:
    monkeypatch.setattr(sandbox.sys, "platform", "darwin")
    monkeypatch.setattr(sandbox.os, "access", lambda path, mode: False)
    status = sandbox.status()
    assert not status.available and "sandbox-exec" in status.detail


def test_a_sandbox_that_cannot_run_the_probe_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def silent(program: Sequence[str], **_: object) -> subprocess.Popen[bytes]:
        return plain_process_double(["/bin/sh", "-c", "echo 'sandbox: Operation not permitted' >&2; exit 65"])

    monkeypatch.setattr(sandbox, "spawn", silent)
    held, why = sandbox.walls_hold()
    assert not held and "cannot run here" in why and "Operation not permitted" in why


def test_windows_has_no_sandbox(monkeypatch: pytest.MonkeyPatch, fresh_status: None) -> None:
    monkeypatch.setattr(sandbox.sys, "platform", "win32")
    status = sandbox.status()
    assert not status.available and "Windows" in status.detail


# --- macOS's profile ----------------------------------------------------------------------------


def profile(tmp_path: Path) -> tuple[str, Path]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    text = sandbox.seatbelt_profile("/usr/bin/python3", scratch=scratch, read_only=[Path("/opt/py")])
    return text, scratch


def rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("(")]


def test_the_profile_denies_everything_it_does_not_name(tmp_path: Path) -> None:
    text, _ = profile(tmp_path)
    lines = rules(text)
    assert lines[:2] == ["(version 1)", "(deny default)"]
    assert all(line.startswith(("(allow ", "(version")) for line in lines[2:]), "only allows after the default deny"
    allowed = {line.split()[1].rstrip(")") for line in lines[2:]}
    # No network operation, no fork, no exec but the interpreter, no IPC, no Mach services.
    assert allowed <= {
        "process-exec",
        "signal",
        "process-info*",
        "sysctl-read",
        "file-read*",
        "file-read-metadata",
        "file-write-data",
    }, allowed
    assert not any(word in text for word in ("network", "process-fork", "mach-lookup", "ipc-", "iokit", "(import"))
    (execs,) = [line for line in lines if line.startswith("(allow process-exec")]
    assert execs == f'(allow process-exec (literal "{Path("/usr/bin/python3").resolve()}"))'


def test_the_profile_writes_only_the_scratch_folder(tmp_path: Path) -> None:
    text, scratch = profile(tmp_path)
    writes = [line for line in rules(text) if "file-write" in line]
    real = str(scratch.resolve())
    assert writes == [
        f'(allow file-read* file-write* (subpath "{real}"))',
        '(allow file-write-data (literal "/dev/null"))',
    ]
    reads = next(line for line in rules(text) if line.startswith("(allow file-read* (subpath"))
    assert '(subpath "/opt/py")' in reads and "/Users" not in reads and str(Path.home()) not in reads
    metadata = next(line for line in rules(text) if line.startswith("(allow file-read-metadata"))
    assert "(subpath" not in metadata, "folders above are stat-able, never listable"


def test_a_path_cannot_break_out_of_its_literal(tmp_path: Path) -> None:
    odd = tmp_path / 'a"b\\c'
    odd.mkdir()
    text = sandbox.seatbelt_profile("/usr/bin/python3", scratch=odd, read_only=[])
    assert '(subpath "' + str(odd.resolve()).replace("\\", "\\\\").replace('"', '\\"') + '")' in text
    with pytest.raises(ValueError, match="control character"):
        sandbox.seatbelt_profile("/usr/bin/python3", scratch=tmp_path / "a\nb", read_only=[])
