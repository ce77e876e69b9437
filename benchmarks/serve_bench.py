"""Benchmark: `edgeoss serve` against the engine, and batched decoding against one at a time.

On a synthetic gpt-oss with the real 20b shapes and few layers (the output
layer and the experts dominate, as on a real model), in this run:

1. streaming through the server against the batched engine called directly
   in this process: tokens/s and time to first token. A random-weight model
   writes no harmony headers, so nothing would stream until the end; both
   sides therefore get the same forced token script (the server is
   tests/support/scripted_server.py: the real app and engine, steered by a header),
   and every token is one answer delta, as with a real model;
2. aggregate tokens/s of 1, 2 and 4 concurrent streams on a server started
   with --parallel 4, against the same 4 requests sent one at a time.

3. with --llama-server PATH (benchmarks/build_llama_server.sh builds it from
   the llama.cpp inside the llama-cpp-python sdist): llama.cpp's own server
   on the same GGUF, prompt token ids and sampling (its /completion route,
   one event per token), at 1 and 4 concurrent streams.

    python benchmarks/serve_bench.py [--layers 2] [--tokens 64] [--runs 3] [--gguf FILE] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import base64
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

from edgeoss import harmony
from edgeoss.engines.base import LoadSettings, Sampling, Timings
from edgeoss.engines.llamacpp.batch import BatchEngine
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert

CTX = 4096
TEST_SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
sys.path.insert(0, str(TEST_SUPPORT))

from forced import ForcedScript  # noqa: E402  (the same test double the scripted server uses)


def prompt_text(i: int) -> str:
    return f"Request {i}: describe the sea in one long paragraph. " * 4


def script(tokens: int) -> str:
    return "<|channel|>final<|message|>" + " wave" * (tokens + 8) + "<|return|>"


def engine_run(engine: BatchEngine, i: int, tokens: int) -> tuple[float, float]:
    """Like server_run, timed the same way: to the first answer text (after the
    header tokens), then answer tokens per second."""
    prompt = harmony.render([harmony.Turn("user", prompt_text(i))])
    forced = ForcedScript(harmony.encoding().encode(script(tokens), allowed_special="all"))
    parser = harmony.StreamParser()
    start = time.perf_counter()
    first = 0.0
    n = 0
    for token in engine.generate(prompt, Sampling(max_tokens=tokens), timings=Timings(), logits_processor=forced):
        n += 1
        if not first and any(e.kind == "content" for e in parser.feed(token)):
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first, (n - 1) / (total - first)


def server_run(url: str, i: int, tokens: int, scripted: bool = False) -> tuple[float, float, int]:
    """(time to first token, tokens/s after it, tokens) of one streamed request."""
    headers = {"X-Test-Script": base64.b64encode(script(tokens).encode()).decode()} if scripted else {}
    body = {
        "messages": [{"role": "user", "content": prompt_text(i)}],
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = 0.0
    usage = 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            delta = (chunk.get("choices") or [{}])[0].get("delta", {})
            if not first and (delta.get("content") or delta.get("reasoning_content")):
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first, (usage - 1) / (total - first), usage


def peer_run(url: str, i: int, tokens: int) -> tuple[float, float, int]:
    """One streamed /completion on llama-server, with edgeoss's prompt ids and sampling."""
    prompt = harmony.render([harmony.Turn("user", prompt_text(i))])
    body = {
        "prompt": prompt,
        "n_predict": tokens,
        "stream": True,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "ignore_eos": False,
    }
    start = time.perf_counter()
    first = 0.0
    n = 0
    with httpx.stream("POST", url + "/completion", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("stop"):
                n = int(event.get("tokens_predicted", n))
                continue
            if not first:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first, (n - 1) / (total - first), n


def start_peer(binary: Path, gguf: Path, port: int, parallel: int) -> subprocess.Popen[bytes]:
    # llama-cpp-python's defaults, which edgeoss uses: half the CPUs for one-token steps, all for batches
    threads, threads_batch = max((os.cpu_count() or 2) // 2, 1), os.cpu_count() or 1
    proc = subprocess.Popen(
        [
            str(binary),
            "-m",
            str(gguf),
            "--port",
            str(port),
            "-np",
            str(parallel),
            "-c",
            str(CTX * parallel),
            "-t",
            str(threads),
            "-tb",
            str(threads_batch),
            "-fa",
            "on",
            "--no-webui",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama-server did not start")


def start_server(gguf: Path, port: int, parallel: int, home: Path, scripted: bool = False) -> subprocess.Popen[bytes]:
    if scripted:
        command = [
            sys.executable,
            str(TEST_SUPPORT / "scripted_server.py"),
            str(gguf),
            str(port),
            "--parallel",
            str(parallel),
            "--ctx",
            str(CTX * parallel),
            "--keep-alive",
            "-1",
            "--timeout",
            "0",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "edgeoss",
            "serve",
            str(gguf),
            "--port",
            str(port),
            "--parallel",
            str(parallel),
            "--ctx",
            str(CTX * parallel),
            "--keep-alive",
            "-1",
        ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "EDGEOSS_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).json().get("status") == "ready":
                return proc
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def concurrent(url: str, streams: int, tokens: int, base: int) -> tuple[int, float]:
    counts: list[int] = []

    def one(i: int) -> None:
        counts.append(server_run(url, base + i, tokens)[2])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--gguf", type=Path)
    p.add_argument("--port", type=int, default=18734)
    p.add_argument("--llama-server", type=Path, help="a llama-server binary (benchmarks/build_llama_server.sh)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-serve-bench-"))
    try:
        gguf = args.gguf
        if gguf is None:
            hp = synth.hparams_for("20b", layers=args.layers)
            ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
            gguf = work / "model.gguf"
            convert.convert(ckpt, gguf)
            shutil.rmtree(ckpt)

        # 1. the engine directly and the server (one sequence), alternating run by run so that
        #    the machine's drift hits both sides alike
        engine = BatchEngine(gguf, LoadSettings(context_length=CTX, use_mmap=False), parallel=1)
        server = start_server(gguf, args.port, 1, work / "home", scripted=True)
        url = f"http://127.0.0.1:{args.port}"
        direct, served = [], []
        try:
            engine_run(engine, 999, 4)  # warm-up
            server_run(url, 999, 4, scripted=True)
            for i in range(args.runs):
                direct.append(engine_run(engine, i, args.tokens))
                served.append(server_run(url, 100 + i, args.tokens, scripted=True))
        finally:
            engine.close()
            server.terminate()
            server.wait()
        d_ttft, d_tps = statistics.median(x[0] for x in direct), statistics.median(x[1] for x in direct)
        s_ttft, s_tps = statistics.median(x[0] for x in served), statistics.median(x[1] for x in served)
        print(f"{gguf.name}: {args.tokens} tokens per request, median of {args.runs}")
        print(f"  engine directly        {d_tps:7.1f} tok/s  TTFT {d_ttft * 1000:7.1f} ms")
        print(f"  through edgeoss serve  {s_tps:7.1f} tok/s  TTFT {s_ttft * 1000:7.1f} ms")
        print(f"  ratio {s_tps / d_tps:.3f} (target >= 0.95), TTFT overhead {(s_ttft - d_ttft) * 1000:+.1f} ms")

        # 2. batched decoding: --parallel 4, 1/2/4 concurrent streams, against one at a time
        server = start_server(gguf, args.port, 4, work / "home")
        try:
            server_run(url, 998, 4)
            rates = {}
            for streams in (1, 2, 4):
                tokens, wall = concurrent(url, streams, args.tokens, 200 + 10 * streams)
                rates[streams] = tokens / wall
                print(
                    f"  {streams} concurrent stream(s): {tokens} tokens in {wall:5.1f} s = {rates[streams]:6.1f} tok/s"
                )
            start = time.perf_counter()
            tokens = sum(server_run(url, 300 + i, args.tokens)[2] for i in range(4))
            serial = tokens / (time.perf_counter() - start)
            print(f"  the same 4 requests one at a time: {serial:6.1f} tok/s")
            print(f"  batched decoding of 4 streams: {rates[4] / serial:.2f}x one at a time")
        finally:
            server.terminate()
            server.wait()

        # 3. the peer: llama.cpp's llama-server
        if args.llama_server is not None:
            peer = start_peer(args.llama_server, gguf, args.port, 1)
            try:
                peer_run(url, 997, 4)
                runs = [peer_run(url, 100 + i, args.tokens) for i in range(args.runs)]
            finally:
                peer.terminate()
                peer.wait()
            p_ttft, p_tps = statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs)
            print(f"  llama-server, 1 stream  {p_tps:7.1f} tok/s  TTFT {p_ttft * 1000:7.1f} ms")
            print(f"  edgeoss serve / llama-server: {s_tps / p_tps:.3f} tok/s, TTFT {(s_ttft - p_ttft) * 1000:+.1f} ms")
            peer = start_peer(args.llama_server, gguf, args.port, 4)
            try:
                peer_run(url, 996, 4)
                counts: list[int] = []
                threads = [
                    threading.Thread(target=lambda i=i: counts.append(peer_run(url, 400 + i, args.tokens)[2]))
                    for i in range(4)
                ]
                start = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                peer_rate = sum(counts) / (time.perf_counter() - start)
            finally:
                peer.terminate()
                peer.wait()
            print(f"  llama-server -np 4, 4 concurrent streams: {peer_rate:6.1f} tok/s")
            print(f"  edgeoss serve / llama-server at 4 streams: {rates[4] / peer_rate:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
