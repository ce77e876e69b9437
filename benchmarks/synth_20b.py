"""Benchmark: write a synthetic checkpoint with the real gpt-oss-20b shapes.

Reports wall time, MB/s and peak RSS of `edgeoss synth --scale 20b`, and the
ratio of its throughput to a plain sequential write (the same disk, same run:
write + fsync of a buffer that is already in memory), so the figure says how
close synth comes to what the disk allows.

    python benchmarks/synth_20b.py [--scale 20b] [--dir /tmp] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def baseline_write(folder: Path, nbytes: int, block: int = 64 << 20) -> float:
    """MB/s of writing `nbytes` from one reused buffer, fsynced."""
    buf = os.urandom(block)
    path = folder / "baseline.bin"
    start = time.perf_counter()
    with path.open("wb") as fh:
        written = 0
        while written < nbytes:
            fh.write(buf)
            written += block
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return written / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="20b")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--baseline-gb", type=float, default=4.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgeoss-bench-", dir=args.dir))
    out = work / f"synth-{args.scale}"
    try:
        base = baseline_write(work, int(args.baseline_gb * 1e9))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "edgeoss", "synth", str(out), "--scale", args.scale, "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        total = sum(p.stat().st_size for p in out.iterdir())
        rate = total / wall / 1e6
        print(f"scale            {args.scale}")
        print(f"bytes written    {total / 1e9:.2f} GB in {len(list(out.glob('*.safetensors')))} shards")
        print(f"wall time        {wall:.1f} s")
        print(f"throughput       {rate:.0f} MB/s")
        print(f"baseline write   {base:.0f} MB/s (same disk, same run)")
        print(f"ratio            {rate / base:.2f} of the plain sequential write")
        print(f"peak RSS         {peak_kib / 1024:.0f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
