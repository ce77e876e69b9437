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

macOS: sandbox-exec (Seatbelt, the sandbox every App Store app runs in) with
a deny-by-default profile written per session (`seatbelt_profile`): the
interpreter may exec itself and nothing else, may not fork, has no network
operation at all, reads only the system libraries, the Python installation
and its packages, and reads and writes only its scratch folder (which stays
at its real path: macOS has no mount namespace to put it at /mnt/data).
The kernel does not enforce an address-space limit there, so the caller
watches the interpreter's memory and kills it past the cap (python_tool.py).

Whatever the backend, `status()` does not trust it on its word: it runs the
sandbox once and checks that its walls hold (no connection to a server on the
host's loopback, no read of a host folder it was not given, no write that
reaches the host outside the scratch folder, no fork). A wall that does not
hold makes the tool unavailable, with what leaked. Windows, and any machine
where neither sandbox starts, gets the same: unavailable, why, and the fix;
edgeoss never runs the model's code outside a sandbox.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
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


SANDBOX_EXEC = "/usr/bin/sandbox-exec"
"""macOS's sandbox runner, by its fixed path: never one found first on PATH."""

_MACOS_SYSTEM_READ = (
    "/usr/lib",
    "/usr/share",
    "/System/Library",
    "/System/Volumes/Preboot/Cryptexes",  # the dyld shared cache on macOS 13 and later
    "/private/var/db/dyld",
    "/Library/Apple/usr/lib",
    "/private/etc/localtime",
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
)
"""What the dynamic loader, the C library and the clock read; nothing of the user's."""


def _sbpl(text: str) -> str:
    """A path as an SBPL (Scheme) string literal; a path no literal can hold is refused."""
    if any(ord(c) < 32 for c in text):
        raise ValueError(f"a sandbox path with a control character: {text[:80]!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parents
    return [str(p) for p in parts]


def seatbelt_profile(executable: str, *, scratch: Path, read_only: Sequence[Path]) -> str:
    """The deny-by-default Seatbelt profile for one session. Every path is resolved first:
    Seatbelt matches the real path (/private/var/..., not /var/...)."""
    real_scratch = os.path.realpath(scratch)
    reads = [*_MACOS_SYSTEM_READ, *(os.path.realpath(p) for p in read_only)]
    # Path lookup stats each folder above what it opens: their metadata (not their contents).
    above = sorted({a for p in [*reads, real_scratch] for a in _ancestors(p)})
    lines = [
        "(version 1)",
        "(deny default)",  # everything below is the whole of what the interpreter may do
        f"(allow process-exec (literal {_sbpl(os.path.realpath(executable))}))",
        "(allow signal (target self))",
        "(allow process-info* (target self))",
        "(allow sysctl-read)",
        "(allow file-read* " + " ".join(f"(subpath {_sbpl(p)})" for p in reads) + ")",
        "(allow file-read-metadata " + " ".join(f"(literal {_sbpl(p)})" for p in above) + ")",
        f"(allow file-read* file-write* (subpath {_sbpl(real_scratch)}))",
        '(allow file-write-data (literal "/dev/null"))',
        "",
    ]
    return "\n".join(lines)


def _seatbelt_argv(program: Sequence[str], *, scratch: Path, read_only: Sequence[Path]) -> list[str]:
    return [SANDBOX_EXEC, "-p", seatbelt_profile(program[0], scratch=scratch, read_only=read_only), *program]


def spawn(
    program: Sequence[str],
    *,
    scratch: Path,
    read_only: Sequence[Path],
    env: dict[str, str] | None = None,
    tmp_bytes: int = TMP_BYTES,
) -> subprocess.Popen[bytes]:
    """Start `program` in this machine's sandbox, its stdin and stdout pipes to the caller;
    stderr (the sandbox runner's own complaints) to a pipe as well."""
    if sys.platform == "darwin":
        # No mount namespace: the scratch folder is where it is, and its tmp is inside it.
        tmp = Path(scratch) / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        base = {"PATH": "/usr/bin:/bin", "HOME": str(scratch), "TMPDIR": str(tmp), "LANG": "C.UTF-8"}
        return subprocess.Popen(
            _seatbelt_argv(program, scratch=scratch, read_only=read_only),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**base, **(env or {})},  # nothing of edgeoss's environment (keys, tokens) goes in
            cwd=scratch,
            start_new_session=True,
        )
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


def interpreter() -> tuple[str, list[Path], list[str]]:
    """The Python to run inside, the folders it needs (read-only), and its package folders.

    The base installation's interpreter and standard library, and this
    environment's site-packages (numpy and the rest of what edgeoss runs with),
    each bound at its own path: nothing beside them in the folders above."""
    executable = os.path.realpath(sys.executable)
    folders = {Path(sys.base_prefix).resolve(), Path(executable).parent}
    packages = [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    packages = [p for p in dict.fromkeys(packages) if os.path.isdir(p)]
    folders.update(Path(p).resolve() for p in packages)
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str) and os.path.isdir(libdir):
        folders.add(Path(libdir).resolve())  # libpython, when the interpreter links it shared
    return executable, sorted(folders), [str(Path(p).resolve()) for p in packages]


WALLS_PROBE = r"""
import json, os, socket, sys
port, outside = int(sys.argv[1]), sys.argv[2]
leaks = []
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    leaks.append("it connected to a server on the host's loopback")
except OSError:
    pass
try:
    with open(os.path.join(outside, "secret")) as fh:
        fh.read()
    leaks.append("it read a host file it was not given")
except OSError:
    pass
try:
    with open(os.path.join(outside, "escaped"), "w") as fh:
        fh.write("x")
except OSError:
    pass
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    leaks.append("it started another process")
except OSError:
    pass
print(json.dumps(leaks))
"""
"""Run inside the sandbox by `walls_hold`: each way out it finds is a leak (the write
outside is judged from the host, where it would have landed)."""


def walls_hold(timeout_s: float = 30) -> tuple[bool, str]:
    """Run the sandbox once and try its walls; (True, "") when every one holds, else
    (False, what leaked or why the probe could not run)."""
    executable, read_only, _ = interpreter()
    with (
        tempfile.TemporaryDirectory(prefix="edgeoss-sandbox-probe-") as scratch,
        tempfile.TemporaryDirectory(prefix="edgeoss-sandbox-host-") as outside,
        socket.create_server(("127.0.0.1", 0)) as listener,  # never accepted: a connect alone leaks
    ):
        Path(outside, "secret").write_text("the host's")
        port = listener.getsockname()[1]
        try:
            proc = spawn(
                [executable, "-I", "-S", "-c", WALLS_PROBE, str(port), outside],
                scratch=Path(scratch),
                read_only=read_only,
            )
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            proc.communicate()
            return False, f"the sandbox's check did not finish in {timeout_s:g} s"
        except OSError as exc:
            return False, f"the sandbox did not start: {exc}"
        escaped = Path(outside, "escaped").exists()
    try:
        leaks = [str(x) for x in json.loads(out.decode(errors="replace").strip().splitlines()[-1])]
    except (ValueError, IndexError, TypeError):
        said = err.decode(errors="replace").strip().splitlines()
        return False, f"the sandbox cannot run here: {said[-1][:300] if said else f'exit status {proc.returncode}'}"
    if escaped:
        leaks.append("it wrote a file on the host outside its scratch folder")
    if leaks:
        return False, "the sandbox did not hold: " + "; ".join(leaks)
    return True, ""


FIX_INSTALL = (
    "install bubblewrap (Debian, Ubuntu: sudo apt install bubblewrap; Fedora: sudo dnf install bubblewrap; "
    "Arch: sudo pacman -S bubblewrap)"
)
FIX_USERNS = (
    "allow unprivileged user namespaces (sudo sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 "
    "and later, kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap)"
)
FIX_LEAK = "report it to edgeoss with `edgeoss doctor --json`; the python tool stays off until it holds"


@functools.cache
def status() -> Status:
    """Probe the sandbox once per process: it must start an interpreter and every wall must
    hold (`walls_hold`), or the python tool is unavailable."""
    if getattr(sys, "frozen", False):
        # The binary's Python lives inside the binary: nothing the sandbox could mount as a
        # read-only installation. (Not built yet; the pip install has one.)
        return Status(
            "",
            False,
            "the edgeoss binary has no Python installation to give the sandbox",
            "install edgeoss with pip (python3 -m pip install edgeoss) to use the python tool",
        )
    if sys.platform == "darwin":
        return _status_macos()
    if sys.platform != "linux":
        where = {"win32": "Windows"}.get(sys.platform, sys.platform)
        fix = "run edgeoss on Linux (bubblewrap) or macOS (sandbox-exec)"
        return Status("", False, f"edgeoss has no sandbox for {where}", fix)
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
    held, why = walls_hold()
    if not held:
        return Status("bubblewrap", False, why, FIX_LEAK)
    version = subprocess.run([str(bubblewrap()), "--version"], capture_output=True, text=True, check=False).stdout
    return Status(
        "bubblewrap", True, f"{version.strip() or 'bubblewrap'}: no network, no host files but a scratch folder"
    )


def _status_macos() -> Status:
    if not os.access(SANDBOX_EXEC, os.X_OK):
        return Status("", False, f"{SANDBOX_EXEC} is missing", "sandbox-exec ships with macOS; reinstall macOS's base")
    held, why = walls_hold()
    if not held:
        return Status("sandbox-exec", False, why, FIX_LEAK)
    return Status("sandbox-exec", True, "sandbox-exec (Seatbelt): no network, no host files but a scratch folder")
