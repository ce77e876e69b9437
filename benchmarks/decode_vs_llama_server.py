"""Benchmark: `edgeoss serve` against llama.cpp's own llama-server, decode speed.

Both servers run at once on the same GGUF (a synthetic gpt-oss with the real
20b shapes and --layers layers), each with 4 slots, and take turns: one
stream on edgeoss, one on llama-server, four concurrent streams on edgeoss,
four on llama-server, --runs times, so the machine's drift hits both alike.
Each request sends the same prompt token ids (edgeoss renders its harmony
prompt; llama-server gets those ids on /completion) with the same sampling
(temperature 1, no top-k/top-p/min-p: the full vocabulary every token) and
generates --tokens tokens. Rate = tokens generated / wall time of the
request(s); with --tokens 128 the prompt's evaluation is a few percent of it.

Threads: each server as it comes (edgeoss times its candidates on first load,
llama-server takes its own default), unless --threads N pins both.

Also printed: the decode step and the full-vocabulary sampling cost per token
and per slot, measured on edgeoss's batched engine in this process
(--sampling-only prints just that).

    python benchmarks/decode_vs_llama_server.py --llama-server PATH [--layers 2] [--tokens 128] [--runs 3]
        [--gguf FILE] [--threads N] [--gpu] [--cpu-moe N]
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
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from edgeoss import harmony
from edgeoss.engines import draw
from edgeoss.engines.base import LoadSettings, Sampling
from edgeoss.engines.llamacpp.batch import BatchEngine
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert

SLOTS = 4
CTX = 4096  # per slot


def prompt_ids(i: int) -> list[int]:
    return harmony.render([harmony.Turn("user", f"Request {i}: describe the sea in one long paragraph.")])


def edgeoss_request(url: str, i: int, tokens: int) -> int:
    """Generated tokens of one streamed Chat Completions request (edgeoss renders the
    harmony prompt that prompt_ids() gives llama-server)."""
    body = {
        "messages": [{"role": "user", "content": f"Request {i}: describe the sea in one long paragraph."}],
        "max_tokens": tokens,
        "temperature": 1.0,
        "top_p": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    used = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=900) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    used = int(chunk["usage"]["completion_tokens"])
    return used


def peer_request(url: str, i: int, tokens: int) -> int:
    body = {
        "prompt": prompt_ids(i),
        "n_predict": tokens,
        "stream": True,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "cache_prompt": False,
    }
    made = 0
    with httpx.stream("POST", url + "/completion", json=body, timeout=900) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                if event.get("stop"):
                    made = int(event.get("tokens_predicted", made))
    return made


def rate(send: object, url: str, streams: int, tokens: int, base: int) -> float:
    counts: list[int] = []

    def one(i: int) -> None:
        counts.append(send(url, base + i, tokens))  # type: ignore[operator]

    workers = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    if len(counts) != streams or min(counts) < tokens // 2:
        raise SystemExit(f"a request ended early: {counts} tokens of {tokens}")
    return sum(counts) / wall


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, edgeoss: bool) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            r = httpx.get(url + "/health", timeout=2)
            if r.status_code == 200 and (not edgeoss or r.json().get("status") == "ready"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"{what} did not start")


def start_edgeoss(
    gguf: Path, port: int, home: Path, threads: int | None, gpu_layers: int, cpu_moe: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDGEOSS_HOME": str(home)}
    cmd = [sys.executable, "-m", "edgeoss", "serve", str(gguf), "--port", str(port)]
    cmd += ["--gpu-layers", str(gpu_layers), "--cpu-moe", str(cpu_moe)]
    if threads:
        cmd += ["--threads", str(threads)]
    cmd += ["--parallel", str(SLOTS), "--ctx", str(CTX * SLOTS), "--keep-alive", "-1", "--timeout", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}", proc, "edgeoss serve", edgeoss=True)
    return proc


def start_peer(
    binary: Path, gguf: Path, port: int, threads: int | None, gpu_layers: int, cpu_moe: int, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [str(binary), "-m", str(gguf), "--port", str(port), "-np", str(SLOTS), "-c", str(CTX * SLOTS)]
    cmd += ["-fa", "on", "--no-webui", "-ngl", str(gpu_layers)]
    if cpu_moe:
        cmd += ["--n-cpu-moe", str(cpu_moe)]
    if threads:
        cmd += ["-t", str(threads)]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}", proc, "llama-server", edgeoss=False)
    return proc


def sampling_cost(gguf: Path, settings: LoadSettings, rounds: int = 20) -> None:
    """Decode step and full-vocabulary sampling, per token and per slot, on the batched engine."""
    engine = BatchEngine(gguf, settings, parallel=SLOTS)
    try:
        lib, ctx = engine._lib, engine._ctx
        for n in (1, SLOTS):
            finished = threading.Semaphore(0)
            made: list[int] = []

            def emit(item: object, made: list[int] = made, finished: threading.Semaphore = finished) -> None:
                if isinstance(item, int):
                    made.append(item)
                else:  # the end of a generation (None, or its error)
                    finished.release()

            start = time.perf_counter()
            for i in range(n):
                engine.submit(prompt_ids(900 + i), Sampling(max_tokens=rounds), emit)
            for _ in range(n):
                finished.acquire(timeout=600)
            step = (time.perf_counter() - start) / max(1, len(made) // n)
            print(f"  batched engine, {n} stream(s): {step * 1000:7.2f} ms a step (the prompt included)")
        # The engine is idle now: time the sampler alone on the last step's logits.
        chain = engine._make_sampler(Sampling())
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(engine.n_vocab,))
        drawer = draw.Drawer(engine.n_vocab, Sampling())
        chain_s, draw_s = [], []
        for _ in range(rounds):  # taking turns, as everywhere in these benchmarks
            t = time.perf_counter()
            lib.llama_sampler_sample(chain, ctx, -1)
            chain_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            drawer.draw(logits)
            draw_s.append(time.perf_counter() - t)
        lib.llama_sampler_free(chain)
        c, d = statistics.median(chain_s), statistics.median(draw_s)
        print(f"  full-vocabulary sampling ({engine.n_vocab} tokens, temperature 1, no truncation), a token per slot:")
        print(f"    llama.cpp's sampler chain {c * 1000:.3f} ms; edgeoss's draw (engines/draw.py) {d * 1000:.3f} ms")
        print(f"    ({c / d:.1f}x); the batched engine draws its {SLOTS} slots side by side")
    finally:
        engine.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--llama-server", type=Path)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--gguf", type=Path)
    p.add_argument("--threads", type=int)
    p.add_argument("--gpu", action="store_true", help="all layers on the GPU (llama-server -ngl 999)")
    p.add_argument("--cpu-moe", type=int, default=0, help="llama-server: experts of N layers on the CPU")
    p.add_argument("--sampling-only", action="store_true")
    p.add_argument("--port", type=int, default=18734)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-decode-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        gguf = args.gguf
        if gguf is None:
            hp = synth.hparams_for("20b", layers=args.layers)
            ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
            gguf = work / "model.gguf"
            convert.convert(ckpt, gguf)
            shutil.rmtree(ckpt)
        gpu_layers = 999 if args.gpu else 0
        settings = LoadSettings(
            context_length=CTX * SLOTS, n_gpu_layers=gpu_layers, n_cpu_moe_layers=args.cpu_moe, threads=args.threads
        )
        print(f"{gguf.name}, {args.tokens} tokens a request, {SLOTS} slots each, median of {args.runs}")
        sampling_cost(gguf, settings)
        if args.sampling_only or args.llama_server is None:
            return
        ours_url, peer_url = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.port + 1}"
        procs.append(
            start_edgeoss(gguf, args.port, work / "home", args.threads, gpu_layers, args.cpu_moe, work / "edgeoss.log")
        )
        procs.append(
            start_peer(
                args.llama_server, gguf, args.port + 1, args.threads, gpu_layers, args.cpu_moe, work / "peer.log"
            )
        )
        for send, url in ((edgeoss_request, ours_url), (peer_request, peer_url)):
            rate(send, url, SLOTS, 8, 9000)  # warm-up: pages in the weights, starts every slot
        ours: dict[int, list[float]] = {1: [], SLOTS: []}
        theirs: dict[int, list[float]] = {1: [], SLOTS: []}
        for run in range(args.runs):
            for streams in (1, SLOTS):
                base = 100 * run + 10 * streams
                ours[streams].append(rate(edgeoss_request, ours_url, streams, args.tokens, base))
                theirs[streams].append(rate(peer_request, peer_url, streams, args.tokens, base))
        placed = httpx.get(ours_url + "/health", timeout=5).json().get("backend", "?")
        print(f"  edgeoss: {placed}; llama-server threads: {args.threads or 'its default'}")
        for streams in (1, SLOTS):
            o, t = statistics.median(ours[streams]), statistics.median(theirs[streams])
            print(
                f"  {streams} stream(s): edgeoss serve {o:7.2f} tok/s, llama-server {t:7.2f} tok/s, "
                f"ratio {o / t:.3f} (target >= 1.0)  [runs: {', '.join(f'{x:.2f}' for x in ours[streams])} / "
                f"{', '.join(f'{x:.2f}' for x in theirs[streams])}]"
            )
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
