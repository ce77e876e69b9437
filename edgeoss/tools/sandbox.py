"""The OS sandbox the python tool runs in.

Linux: bubblewrap (Debian's `bubblewrap` package), the sandbox Flatpak is
built on. Every namespace is new (user, pid, network, ipc, uts, cgroup): no
network at all (not even the host's loopback), no other process visible, and
a file system built from nothing: the system's /usr (read-only), the Python
installation and its packages (read-only), a private /tmp, and one scratch
folder read-write at /mnt/data (where gpt-oss expects it). Nothing else of
the host, the user's home included, exists inside. All capabilities are
dropped, and a seccomp filter (libseccomp, through pyseccomp) refuses every
way of starting another process (fork, vfork, clone without CLONE_THREAD,
clone3): threads work, a fork bomb ends at its first fork. The interpreter
caps its own memory, CPU time, file sizes and open files before it runs any
code (python_worker.py), and the caller kills the whole sandbox on a timeout.

Elsewhere (macOS, Windows) and where bubblewrap cannot start (not installed,
user namespaces disabled), `status()` says the tool is unavailable, why, and
the fix: edgeoss never runs the model's code outside a sandbox.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRATCH = "/mnt/data"
"""Where the scratch folder appears inside: the path gpt-oss's python tool description names."""

_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
"""Host files the dynamic loader and the clock read; no other file of /etc is inside."""

CLONE_THREAD = 0x00010000
TMP_BYTES = 64 << 20
"""The private /tmp's size: a tmpfs is memory, which the interpreter's own cap does not count."""


@dataclass(frozen=True)
class Status:
    """Whether this machine can sandbox the python tool, as doctor says it."""

    kind: str  # "bubblewrap", or "" where there is none
    available: bool
    detail: str  # what it is, or why not
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "available": self.available, "detail": self.detail, "fix": self.fix}


def seccomp_filter() -> bytes:
    """A BPF program refusing new processes (EPERM) and clone3 (ENOSYS, so the C library
    falls back to clone, whose flags the filter can read); every other call is allowed."""
    import tempfile

    import pyseccomp

    rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in ("fork", "vfork"):
        # Not a system call on every architecture (aarch64 has only clone).
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    rules.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_THREAD, 0))
    rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as fh:
        rules.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


def argv(
    program: Sequence[str],
    *,
    scratch: Path,
    read_only: Sequence[Path],
    seccomp_fd: int,
    env: dict[str, str] | None = None,
    tmp_bytes: int = TMP_BYTES,
) -> list[str]:
    """The bubblewrap command line that runs `program` in the sandbox."""
    bwrap = bubblewrap()
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    # --disable-userns: the code inside cannot make a user namespace of its own (the way
    # most kernel exploits from a sandbox begin).
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    cmd += ["--clearenv"]
    if os.geteuid() == 0:
        cmd += ["--cap-drop", "ALL"]  # as root bubblewrap would otherwise keep them
    # /tmp first: a tmpfs mounted after the binds would hide any of them that lives under /tmp
    # (a checkout or a virtual environment there).
    cmd += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            cmd += ["--ro-bind", link, link]
    for name in _SYSTEM_FILES:
        if os.path.exists(name):
            cmd += ["--ro-bind", name, name]
    for path in dict.fromkeys(str(p) for p in read_only):
        if not path.startswith("/usr/"):
            cmd += ["--ro-bind", path, path]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--bind", str(scratch), SCRATCH, "--chdir", SCRATCH]
    # The root is bubblewrap's own tmpfs: read-only, or files written there would take memory
    # that no limit of the interpreter's counts.
    cmd += ["--remount-ro", "/"]
    for key, value in {"PATH": "/usr/bin:/bin", "HOME": SCRATCH, "LANG": "C.UTF-8", **(env or {})}.items():
        cmd += ["--setenv", key, value]
    cmd += ["--seccomp", str(seccomp_fd), "--", *program]
    return cmd


def spawn(
    program: Sequence[str],
    *,
    scratch: Path,
    read_only: Sequence[Path],
    env: dict[str, str] | None = None,
    tmp_bytes: int = TMP_BYTES,
) -> subprocess.Popen[bytes]:
    """Start `program` in the sandbox, its stdin and stdout pipes to the caller; stderr
    (bubblewrap's own complaints) to a pipe as well."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, seccomp_filter())  # a few hundred bytes: never fills the pipe
        os.close(write_fd)
        write_fd = -1
        return subprocess.Popen(
            argv(program, scratch=scratch, read_only=read_only, seccomp_fd=read_fd, env=env, tmp_bytes=tmp_bytes),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(read_fd,),
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


FIX_INSTALL = (
    "install bubblewrap (Debian, Ubuntu: sudo apt install bubblewrap; Fedora: sudo dnf install bubblewrap; "
    "Arch: sudo pacman -S bubblewrap)"
)
FIX_USERNS = (
    "allow unprivileged user namespaces (sudo sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 "
    "and later, kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap)"
)


@functools.cache
def status() -> Status:
    """Probe the sandbox once per process: bubblewrap must start an interpreter with every
    restriction above, or the python tool is unavailable."""
    if sys.platform != "linux":
        where = {"darwin": "macOS", "win32": "Windows"}.get(sys.platform, sys.platform)
        return Status("", False, f"edgeoss has no sandbox for {where} yet", "run edgeoss on Linux with bubblewrap")
    if getattr(sys, "frozen", False):
        # The binary's Python lives inside the binary: nothing the sandbox could mount as a
        # read-only installation. (Not built yet; the pip install has one.)
        return Status(
            "",
            False,
            "the edgeoss binary has no Python installation to give the sandbox",
            "install edgeoss with pip (python3 -m pip install edgeoss) to use the python tool",
        )
    if bubblewrap() is None:
        return Status("", False, "bubblewrap (bwrap) is not installed", FIX_INSTALL)
    try:
        import pyseccomp  # noqa: F401

        seccomp_filter()
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        return Status(
            "bubblewrap",
            False,
            f"libseccomp cannot build the sandbox's process filter ({exc})",
            "install libseccomp2 (sudo apt install libseccomp2) and pyseccomp (pip install pyseccomp)",
        )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edgeoss-sandbox-probe-") as scratch:
        try:
            proc = spawn(["/usr/bin/env", "true"], scratch=Path(scratch), read_only=[])
            _, err = proc.communicate(timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Status("bubblewrap", False, f"bubblewrap did not start: {exc}", FIX_USERNS)
    if proc.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        return Status(
            "bubblewrap", False, f"bubblewrap cannot sandbox here: {said[-1] if said else proc.returncode}", FIX_USERNS
        )
    version = subprocess.run([str(bubblewrap()), "--version"], capture_output=True, text=True, check=False).stdout
    return Status(
        "bubblewrap", True, f"{version.strip() or 'bubblewrap'}: no network, no host files but a scratch folder"
    )
