"""Benchmark: the edgeoss binary's size and start-up, onedir and onefile,
against `python -m edgeoss` from the same environment (the baseline).

For each: `--version`, `doctor --json`, and `serve demo` from launch to
/health ready (the demo model already in the store, so it is the start-up
and model load that are timed). Medians of --runs, with page caches warm
after the first (untimed) run, or with --cold (root) an empty page cache
before every start; the onefile unpacks itself on every start, which is its
price.

    python benchmarks/binary_startup.py --dist dist [--runs 5] [--cold]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def size(path: Path) -> int:
    """Bytes on disk; the onedir's links to its own libraries are not counted twice."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


COLD = False


def drop_caches() -> None:
    """Empty the page cache (root only), so the next start reads everything from disk."""
    if COLD:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(command: list[str], env: dict[str, str]) -> float:
    drop_caches()
    start = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def to_ready(command: list[str], env: dict[str, str]) -> float:
    port = free_port()
    drop_caches()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "serve", "demo", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json().get("status") == "ready":
                    return time.perf_counter() - start
            except (httpx.HTTPError, ValueError):
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited with {proc.returncode}")
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each start (root)")
    args = parser.parse_args()
    global COLD
    COLD = args.cold
    onedir = args.dist / "edgeoss"
    onefile = next(args.dist.glob("edgeoss-linux-*"))
    variants = {
        "python -m edgeoss": [sys.executable, "-m", "edgeoss"],
        "onedir": [str(onedir / "edgeoss")],
        "onefile": [str(onefile)],
    }
    print(f"sizes: onedir {size(onedir) / 1e6:.0f} MB, onefile {size(onefile) / 1e6:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="edgeoss-startup-") as home:
        env = {**os.environ, "EDGEOSS_HOME": home}
        subprocess.run([*variants["onedir"], "run", "demo", "hi", "--max-tokens", "1"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        results: dict[str, dict[str, float]] = {}
        for name, command in variants.items():
            for what, measure in (
                ("--version", lambda c: timed([*c, "--version"], env)),
                ("doctor", lambda c: timed([*c, "doctor", "--json"], env)),
                ("serve to ready", lambda c: to_ready(c, env)),
            ):
                measure(command)  # warm the page cache
                results.setdefault(name, {})[what] = statistics.median(measure(command) for _ in range(args.runs))
    base = results["python -m edgeoss"]
    print(f"medians of {args.runs}, seconds (ratio to python -m edgeoss)")
    print(f"{'':20s} {'--version':>16s} {'doctor':>16s} {'serve to ready':>16s}")
    for name, row in results.items():
        cells = [f"{row[k]:6.2f} ({row[k] / base[k]:4.2f}x)" for k in ("--version", "doctor", "serve to ready")]
        print(f"{name:20s} " + " ".join(f"{c:>16s}" for c in cells))


if __name__ == "__main__":
    main()
