"""Every command that writes a model survives `kill -9` at any moment.

`import`, `pull`, `convert`, `export-onnx` and `bundle` are each run once to
see how long they take, then killed with SIGKILL at points spread at random
over that time (seeded: a failure names its point), and after every kill:

* `edgeoss list` shows only whole models: every file a manifest names is
  there with its size and sha256 (a half-written model is never listed);
* an output outside the store (a GGUF, an ONNX folder, a bundle) is either
  absent or whole: it verifies;
* a `--force` replace killed midway still lists the model (old or new);
* no helper process it started (the ONNX model builder) keeps running.

A point can fall after a fast command has finished; at least half of them
must land while it runs, and one more kill comes the moment its first
temporary copy appears, so that a write is always cut in the middle.

Then the same command, run again, succeeds, and nothing is left behind: the
store's leftovers are none, and no temporary copy stays beside an output.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from edgeoss.weights.store import Store
from fake_hub import patched_hub

KILLS = 4  # per command: spread over its run, one in each quarter
SEED = 20261202


def edgeoss(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgeoss", *args], capture_output=True, text=True, timeout=timeout)


def timed(*args: str) -> tuple[float, float]:
    """When the command's own work starts and ends, in seconds from its start: the
    start is how long a command that does nothing takes (Python and edgeoss's imports),
    the end how long this one takes whole. The kills are spread between the two."""
    started = time.monotonic()
    assert edgeoss("paths").returncode == 0
    startup = time.monotonic() - started
    started = time.monotonic()
    done = edgeoss(*args)
    assert done.returncode == 0, done.stderr
    return startup, time.monotonic() - started


def kill_after(args: list[str], seconds: float) -> int | None:
    """Start `edgeoss ARGS`, SIGKILL it after `seconds`; its exit code, or None if it was killed."""
    proc = subprocess.Popen([sys.executable, "-m", "edgeoss", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=seconds)
        return proc.returncode  # finished before the kill: a point past the end
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    finally:
        assert proc.stderr is not None
        proc.stderr.close()


def kill_points(span: tuple[float, float], label: str) -> list[float]:
    """KILLS moments in `span`, one at random in each equal slice of it."""
    rng = random.Random(f"{SEED}-{label}")
    start, end = span
    return [start + (end - start) * (i + rng.random()) / KILLS for i in range(KILLS)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listed_models_are_whole() -> list[str]:
    """The names `edgeoss list --json` shows, after checking each one's files against its manifest."""
    done = edgeoss("list", "--json")
    assert done.returncode == 0, done.stderr
    names = []
    for manifest in json.loads(done.stdout):
        folder = Store().folder(manifest["name"])
        for entry in manifest["files"]:
            path = folder / entry["path"]
            assert path.is_file(), f"{manifest['name']} is listed but {entry['path']} is missing"
            assert path.stat().st_size == entry["bytes"], f"{manifest['name']}/{entry['path']} is half-written"
            assert sha256(path) == entry["sha256"], f"{manifest['name']}/{entry['path']} differs from its manifest"
        names.append(manifest["name"])
    return names


def builders_stop(out: Path) -> None:
    """No process writing toward `out` outlives the killed command (a few seconds' grace)."""
    deadline = time.monotonic() + 10
    while True:
        alive = [
            p for p in psutil.process_iter(["cmdline"]) if any(str(out.parent) in a for a in p.info["cmdline"] or [])
        ]
        if not alive:
            return
        assert time.monotonic() < deadline, f"left running after the kill: {[p.info['cmdline'] for p in alive]}"
        time.sleep(0.2)


def nothing_left_beside(output: Path) -> None:
    stray = [p.name for p in output.parent.iterdir() if p.name.startswith(f".{output.name}.")]
    assert stray == [], f"temporary copies left beside {output}: {stray}"


def no_store_leftovers() -> None:
    assert Store().leftovers() == []
    done = edgeoss("list")
    assert "leftover" not in done.stderr, done.stderr


def verifies(path: Path) -> None:
    done = edgeoss("verify", str(path), "--json")
    assert done.returncode == 0, f"{path} exists but does not verify: {done.stdout[-2000:]}"


@pytest.fixture
def gguf_copy(tiny_gguf: Path, tmp_path: Path) -> Path:
    """A copy on the store's disk (import hard-links when it can; a copy keeps the fixture safe)."""
    copy = tmp_path / "tiny.gguf"
    copy.write_bytes(tiny_gguf.read_bytes())
    return copy


def kill_when(args: list[str], folder: Path, pattern: str) -> bool:
    """Start `edgeoss ARGS`, SIGKILL it as soon as `folder` holds a `pattern` file; False if it finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if any(folder.glob(pattern)):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def run_kills(
    args: list[str], label: str, span: tuple[float, float], check: Callable[[], None], writes: tuple[Path, str]
) -> None:
    """SIGKILL `edgeoss ARGS` at KILLS points of `span`, and once when a `writes` (folder, glob) file
    appears; `check()` after each."""
    killed = 0
    points: list[float | None] = [*kill_points(span, label), None]
    for point in points:
        if point is None:
            assert kill_when(args, *writes), f"edgeoss {label} never wrote {writes[1]} in {writes[0]}"
            killed += 1
            when = "as its first temporary copy appeared"
        else:
            code = kill_after(args, point)
            killed += code is None
            assert code in (None, 0), f"edgeoss {label} failed on its own (exit {code})"
            when = f"{point:.2f} s in"
        try:
            check()
        except AssertionError as exc:
            raise AssertionError(f"after a SIGKILL {when} `edgeoss {' '.join(args)}`: {exc}") from exc
    assert killed > KILLS // 2, f"only {killed} of {len(points)} kills landed while edgeoss {label} ran"


def test_import_killed_anywhere(gguf_copy: Path) -> None:
    args = ["import", str(gguf_copy), "--name", "tiny"]
    span = timed(*args)
    Store().remove("tiny")

    def check() -> None:
        names = listed_models_are_whole()
        assert names in ([], ["tiny"])
        if names:  # the kill came after it was stored: start over for the next point
            Store().remove("tiny")

    run_kills(args, "import", span, check, (Store().root, ".tiny.partial-*/*"))
    assert edgeoss(*args).returncode == 0
    assert listed_models_are_whole() == ["tiny"]
    no_store_leftovers()


def test_a_forced_replace_killed_anywhere_keeps_the_model(gguf_copy: Path) -> None:
    args = ["import", str(gguf_copy), "--name", "tiny", "--force"]
    span = timed(*args)

    def check() -> None:
        assert listed_models_are_whole() == ["tiny"], "a killed --force replace lost the model"

    run_kills(args, "import-force", span, check, (Store().root, ".tiny.partial-*/*"))
    assert edgeoss(*args).returncode == 0
    no_store_leftovers()


def test_pull_killed_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_gguf: Path) -> None:
    with patched_hub(monkeypatch, tmp_path / "hf-home") as hub:
        hub.add_file("ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-mxfp4.gguf", tiny_gguf.read_bytes())
        args = ["pull", "20b"]
        span = timed(*args)
        Store().remove("gpt-oss-20b")

        def check() -> None:
            names = listed_models_are_whole()
            assert names in ([], ["gpt-oss-20b"])
            if names:
                Store().remove("gpt-oss-20b")
            # What a killed pull leaves is said to be a pull's (its downloads: for the next pull to resume).
            for item in Store().leftovers():
                assert "pull" in item.what, item
                assert item.resumable == (item.path.parent.name == ".staging"), item

        run_kills(args, "pull", span, check, (Store().root, ".staging/*/.edgeoss-owner"))
        done = edgeoss(*args)
        assert done.returncode == 0, done.stderr
        assert listed_models_are_whole() == ["gpt-oss-20b"]
        no_store_leftovers()


def test_convert_killed_anywhere(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "tiny.gguf"
    args = ["convert", str(tiny_checkpoint), "-o", str(out), "--force"]
    span = timed(*args)
    out.unlink()

    def check() -> None:
        if out.exists():
            verifies(out)
            out.unlink()

    run_kills(args, "convert", span, check, (out.parent, ".tiny.gguf.partial-*"))
    assert edgeoss(*args).returncode == 0
    verifies(out)
    nothing_left_beside(out)


def test_export_onnx_killed_anywhere(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from edgeoss.weights.onnx import export as export_onnx

    missing = export_onnx.missing_dependencies()
    if missing:
        pytest.skip(f"export-onnx needs {', '.join(missing)}")
    out = tmp_path / "out" / "tiny-onnx"
    args = ["export-onnx", str(tiny_checkpoint), "-o", str(out), "--precision", "fp32", "--force"]
    span = timed(*args)

    def check() -> None:
        if out.exists():  # the first run's, or a finished one's: whole either way
            verifies(out)
        builders_stop(out)

    run_kills(args, "export-onnx", span, check, (out.parent, ".tiny-onnx.partial-*/*"))
    assert edgeoss(*args).returncode == 0
    verifies(out)
    nothing_left_beside(out)


def test_bundle_killed_anywhere(gguf_copy: Path, tmp_path: Path) -> None:
    assert edgeoss("import", str(gguf_copy), "--name", "tiny").returncode == 0
    out = tmp_path / "usb" / "bundle"
    args = ["bundle", str(out), "tiny", "--force"]
    span = timed(*args)

    def check() -> None:
        if out.exists():
            for line in (out / "SHA256SUMS").read_text().splitlines():
                digest, relative = line.split("  ", 1)
                assert sha256(out / relative) == digest, f"the bundle's {relative} is half-written"
        assert listed_models_are_whole() == ["tiny"]

    run_kills(args, "bundle", span, check, (out.parent, ".bundle.partial-*/models"))
    assert edgeoss(*args).returncode == 0
    check()
    nothing_left_beside(out)
    no_store_leftovers()
