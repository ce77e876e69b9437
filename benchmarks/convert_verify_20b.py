"""Benchmark: convert a gpt-oss-20b-shaped checkpoint to GGUF, and verify --deep it.

Baselines run in the same process, on the same disk and the same bytes:
- convert throughput (checkpoint bytes read per second) against `cp` of the
  checkpoint's safetensors files;
- `verify --deep` (sha256 + every number checked) against `sha256sum` of the
  GGUF.
The page cache is dropped before each timed step when permitted (root on
Linux), so every step reads from the disk alike. Peak RSS is measured in the
child process that converts or verifies.

    python benchmarks/convert_verify_20b.py [--src CHECKPOINT] [--dir /tmp] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
if sys.argv[1] == "convert":
    from edgeoss.weights.gguf.convert import convert
    report = convert(Path(sys.argv[2]), Path(sys.argv[3]))
else:
    from edgeoss.weights.gguf.checks import verify
    report = verify(Path(sys.argv[2]), deep=True)
print(json.dumps({"seconds": time.perf_counter() - start, "ok": report.ok, "summary": report.summary(),
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(command: list[str]) -> float:
    drop_caches()
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def child(*args: str) -> dict[str, float]:
    dropped = drop_caches()
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cache_dropped"] = dropped
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, help="an existing checkpoint (default: synth --scale 20b)")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgeoss-bench-", dir=args.dir))
    try:
        src = args.src
        if src is None:
            src = work / "synth-20b"
            subprocess.run(
                [sys.executable, "-m", "edgeoss", "synth", str(src), "--scale", "20b", "--json"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        shards = sorted(src.glob("*.safetensors"))
        src_bytes = sum(p.stat().st_size for p in shards)

        copy_dir = work / "copy"
        copy_dir.mkdir()
        cp_seconds = timed(["cp", *map(str, shards), str(copy_dir)])
        shutil.rmtree(copy_dir)

        gguf = work / "model.gguf"
        conv = child("convert", str(src), str(gguf))
        gguf_bytes = gguf.stat().st_size
        sha_seconds = timed(["sha256sum", str(gguf)])
        ver = child("verify", str(gguf))

        cp_rate = src_bytes / cp_seconds / 1e6
        conv_rate = src_bytes / conv["seconds"] / 1e6
        sha_rate = gguf_bytes / sha_seconds / 1e6
        ver_rate = gguf_bytes / ver["seconds"] / 1e6
        print(f"checkpoint        {src_bytes / 1e9:.2f} GB in {len(shards)} shards -> GGUF {gguf_bytes / 1e9:.2f} GB")
        print(f"page cache        {'dropped before each step' if conv['cache_dropped'] else 'NOT dropped (not root)'}")
        print(f"cp                {cp_seconds:.1f} s  {cp_rate:.0f} MB/s")
        conv_rss = conv["peak_rss_kib"] / 1024
        print(f"convert           {conv['seconds']:.1f} s  {conv_rate:.0f} MB/s  peak RSS {conv_rss:.0f} MiB")
        print(f"  ratio           {conv_rate / cp_rate:.2f} x cp   (target >= 0.5, peak RSS < 1536 MiB)")
        print(f"sha256sum         {sha_seconds:.1f} s  {sha_rate:.0f} MB/s")
        ver_rss = ver["peak_rss_kib"] / 1024
        print(f"verify --deep     {ver['seconds']:.1f} s  {ver_rate:.0f} MB/s  peak RSS {ver_rss:.0f} MiB")
        print(f"  ratio           {ver_rate / sha_rate:.2f} x sha256sum   (target >= 0.9)")
        print(f"verify result     {ver['summary']}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
