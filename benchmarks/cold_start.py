"""Benchmark: how long a new user waits, against llama-cpp-python on its own.

Each figure is the wall time of a fresh process, as a user starts it, run
alternately with its baseline on the same file (medians of --runs):

1. `edgeoss run FILE hi --max-tokens 1` against a plain Python process that
   imports llama-cpp-python, loads the same GGUF with the same context size
   and thread count, evaluates the same prompt token ids (the rendered
   harmony prompt edgeoss sends) and samples one token, each timed to the
   first byte it prints (the token: both stream it) and to its exit.
   edgeoss runs with its verification of the file remembered (the case of
   every start after the first) and, separately, with none (the
   first start: the file is checked before loading).
2. `edgeoss verify FILE` (not deep) on its own: target under 1 s.

Files: the tiny synthetic GGUF, and a 20b-shape one with --layers layers
(2 by default; built in a temporary folder unless --gguf-20b names one).

    python benchmarks/cold_start.py [--runs 5] [--layers 2] [--gguf-20b FILE] [--skip-20b]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeoss import harmony
from edgeoss.engines.llamacpp.threads import default_threads
from edgeoss.runtime.choose import DEFAULT_CONTEXT
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert

_BASELINE = """
import json, sys
from llama_cpp import Llama
path, ctx, threads, ids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
llm = Llama(model_path=path, n_ctx=ctx, n_batch=512, n_ubatch=512, n_threads=threads, flash_attn=True, verbose=False)
for chunk in llm.create_completion(ids, max_tokens=1, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, stream=True):
    print(chunk["choices"][0]["text"], flush=True)
"""


def first_output(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first byte the process writes on stdout, seconds to its exit).

    Both sides print each token as it comes (edgeoss run streams the answer,
    flushed; a random model's first token is already answer text), so the
    first byte is the first token."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    to_first = time.perf_counter() - start
    _, err = proc.communicate()
    total = time.perf_counter() - start
    if proc.returncode != 0 or not first:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return to_first, total


def wall(cmd: list[str], env: dict[str, str]) -> float:
    return first_output(cmd, env)[1]


def edgeoss_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeoss", *args]


def measure(name: str, gguf: Path, runs: int, home: Path) -> None:
    env = {**os.environ, "EDGEOSS_HOME": str(home)}
    threads = default_threads()
    ids = harmony.render([harmony.Turn("user", "hi")], harmony.RenderOptions(effort="medium"))
    baseline = [sys.executable, "-c", _BASELINE, str(gguf), str(DEFAULT_CONTEXT), str(threads), json.dumps(ids)]
    run = edgeoss_cmd("run", str(gguf), "hi", "--max-tokens", "1")
    forget = [sys.executable, "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", str(home)]
    # Warm the page cache and the verification record once, as a user's second start would find them.
    wall(baseline, env)
    wall(run, env)
    plain, remembered, first, verify = [], [], [], []
    for _ in range(runs):
        plain.append(first_output(baseline, env))
        remembered.append(first_output(run, env))
        subprocess.run(forget, check=True)
        first.append(first_output(run, env))
        verify.append(wall(edgeoss_cmd("verify", str(gguf)), env))
    p, r, f = (statistics.median(x[0] for x in runs_) for runs_ in (plain, remembered, first))
    pe, re_, fe = (statistics.median(x[1] for x in runs_) for runs_ in (plain, remembered, first))
    v = statistics.median(verify)
    size = gguf.stat().st_size / 2**20
    print(f"{name} ({size:.0f} MiB), {threads} threads, {len(ids)} prompt tokens, median of {runs}:")
    print("                                            first token      exit")
    print(f"  llama-cpp-python: import, load, 1 token   {p:6.2f} s      {pe:6.2f} s")
    print(
        f"  edgeoss run, verification remembered      {r:6.2f} s      {re_:6.2f} s   ratio {r / p:.2f} (target <= 1.2)"
    )
    print(f"  edgeoss run, first start (verifies)       {f:6.2f} s      {fe:6.2f} s   ratio {f / p:.2f}")
    print(f"  edgeoss verify (not deep)                                 {v:6.2f} s   (target < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--gguf-20b", type=Path, help="an existing 20b-shape GGUF (default: write one)")
    parser.add_argument("--skip-20b", action="store_true")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-cold-", dir=args.dir))
    try:
        tiny = work / "tiny.gguf"
        convert.convert(synth.write_checkpoint(work / "tiny-ckpt", synth.plan(synth.hparams_for("tiny"))), tiny)
        measure("tiny synthetic gpt-oss", tiny, args.runs, work / "home")
        if not args.skip_20b:
            big = args.gguf_20b
            if big is None:
                big = work / "m20.gguf"
                hp = synth.hparams_for("20b", layers=args.layers)
                ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
                convert.convert(ckpt, big)
                shutil.rmtree(ckpt)
            measure(f"20b shape, {args.layers} layers", big, args.runs, work / "home")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
