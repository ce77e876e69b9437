"""The edgeoss binary as users get it: built once per test session with
build/build.sh (PyInstaller, onedir and onefile), then run as a user runs
it; the .deb built from it is installed, run and removed; the Windows
installer script compiles with makensis."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

import needs_llama
from edgeoss.errors import WorkerError
from server_process import free_port, user_env, wait_ready

pytest.importorskip("PyInstaller")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["onedir", "onefile"]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_llama.llama_cpp()
    pytest.importorskip("onnxruntime_genai")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", "build/build.sh", "--both", "--dist", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def binary(dist: Path, kind: str) -> Path:
    return dist / "edgeoss" / "edgeoss" if kind == "onedir" else next(dist.glob("edgeoss-linux-*"))


def clean_env(home: Path, tmp: Path) -> dict[str, str]:
    """What a user's shell has: no virtual environment, no PYTHONPATH; a fresh TMPDIR to see what is left."""
    env = {k: v for k, v in user_env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    tmp.mkdir(parents=True, exist_ok=True)
    return {**env, "EDGEOSS_HOME": str(home), "TMPDIR": str(tmp)}


@pytest.mark.parametrize("kind", KINDS)
def test_version_and_doctor(dist: Path, kind: str, tmp_path: Path) -> None:
    exe = binary(dist, kind)
    env = clean_env(tmp_path / "home", tmp_path / "tmp")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("edgeoss "), version.stderr
    doctor = subprocess.run([exe, "doctor", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert doctor.returncode in (0, 1), doctor.stderr  # 1: a check failed on this machine (nothing fits)
    report = json.loads(doctor.stdout)
    backends = report["report"]["backends"] if "report" in report else report["backends"]
    assert backends["llama_cpp"]["available"] and backends["ort_genai"]["available"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the onefile removed what it unpacked


@pytest.mark.parametrize("kind", KINDS)
def test_serve_demo_answers_and_stops_cleanly(dist: Path, kind: str, tmp_path: Path) -> None:
    exe = binary(dist, kind)
    port = free_port()
    env = clean_env(tmp_path / "home", tmp_path / "tmp")
    proc = subprocess.Popen(
        [exe, "serve", "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    url = f"http://127.0.0.1:{port}"
    children: list[psutil.Process] = []
    try:
        wait_ready(url, proc, 240)
        reply = httpx.post(
            url + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5},
            timeout=120,
        )
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 5
        children = psutil.Process(proc.pid).children(recursive=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the binary did not stop within 30 s of SIGTERM")
    assert proc.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_binary_runs_a_worker(dist: Path, kind: str, tmp_path: Path) -> None:
    """llama.cpp's RPC backend ships in the binary: its worker answers a main's hello."""
    from edgeoss.cluster import protocol

    exe = binary(dist, kind)
    port = free_port()
    env = clean_env(tmp_path / "home", tmp_path / "tmp")
    proc = subprocess.Popen(
        [exe, "worker", "--port", str(port), "--mem", "1G"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-2000:]
            try:
                profile = protocol.probe(f"127.0.0.1:{port}", timeout_s=5)
                break
            except WorkerError:
                assert time.monotonic() < deadline, "the binary's worker did not answer within 120 s"
                time.sleep(0.5)
        assert profile.protocol == protocol.local_protocol()
        assert profile.free_bytes <= 1 << 30
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the binary's worker did not stop on SIGINT")
    assert f"edgeoss serve --workers 127.0.0.1:{port}" in output


def _root_command() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def test_the_deb_installs_runs_and_leaves_nothing_behind(dist: Path, tmp_path: Path) -> None:
    root = _root_command()
    if root is None or not shutil.which("dpkg-deb"):
        pytest.skip("needs dpkg-deb and root (or sudo -n) to install a package")
    build = subprocess.run(
        ["bash", "installers/linux/build-deb.sh", str(dist), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (deb,) = tmp_path.glob("edgeoss_*.deb")
    subprocess.run([*root, "dpkg", "-r", "edgeoss"], capture_output=True)  # a leftover from an earlier run
    installed = subprocess.run([*root, "dpkg", "-i", str(deb)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    try:
        files = subprocess.run(["dpkg", "-L", "edgeoss"], capture_output=True, text=True, check=True).stdout.split()
        assert "/usr/bin/edgeoss" in files and "/opt/edgeoss/edgeoss" in files
        env = clean_env(tmp_path / "home", tmp_path / "tmp")
        doctor = subprocess.run(["/usr/bin/edgeoss", "doctor", "--json"], capture_output=True, text=True, env=env)
        assert doctor.returncode in (0, 1) and json.loads(doctor.stdout), doctor.stderr
        unsafe = subprocess.run(
            ["/usr/bin/edgeoss", "worker", "--host", "0.0.0.0"], capture_output=True, text=True, env=env
        )
        assert unsafe.returncode == 2 and "needs --allow" in unsafe.stderr  # the packaged worker, safe by default
    finally:
        removed = subprocess.run([*root, "dpkg", "--purge", "edgeoss"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    left = [f for f in files if f.startswith(("/opt/edgeoss", "/usr/bin/edgeoss")) and os.path.lexists(f)]
    assert left == [] and not os.path.lexists("/opt/edgeoss")
    assert subprocess.run(["dpkg", "-s", "edgeoss"], capture_output=True).returncode != 0


def test_the_windows_installer_script_compiles(tmp_path: Path) -> None:
    makensis = shutil.which("makensis")
    if makensis is None:
        pytest.skip("makensis (Debian's nsis) is not installed")
    stand_in = tmp_path / "dist" / "edgeoss"  # test double for the Windows onedir build
    (stand_in / "_internal").mkdir(parents=True)
    (stand_in / "edgeoss.exe").write_bytes(b"MZ stand-in")
    (stand_in / "_internal" / "python311.dll").write_bytes(b"MZ stand-in")
    out = tmp_path / "edgeoss-setup.exe"
    done = subprocess.run(
        [
            makensis,
            "-V2",
            f"-DDIST={stand_in}",
            f"-DOUTFILE={out}",
            "-DVERSION=0.1.0",
            "installers/windows/edgeoss.nsi",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:2] == b"MZ" and out.stat().st_size > 10_000
