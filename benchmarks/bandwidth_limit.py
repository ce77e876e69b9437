"""Benchmark: decode speed against the hardware's limit, memory bandwidth.

A decode step reads every active weight once (planning/speed.py), so
tokens/s can be no more than bandwidth / bytes read per token. In one run:

1. this machine's memory read bandwidth, measured as `edgeoss doctor` does
   (discover/bandwidth.py; with --threads threads, fresh, not remembered)
   before each run of the two sides, as it drifts on a shared machine; the
   limit takes the median; with --gpu also the GPU's peak from NVML (or
   --gpu-bandwidth);
2. the bytes one decode step reads for the placement used, split by device
   (the model's shape and matrix type read from the GGUF), at the context
   the timed tokens sit at on average;
3. decode tokens/s of edgeoss's engine and, with --llama-server PATH
   (benchmarks/build_llama_server.sh), of llama.cpp's own llama-server on
   the same GGUF, same prompt token ids, same sampling (temperature 1 over
   the full vocabulary), same thread count, both reading the weights into
   memory (no mmap); alternating run by run so that the machine's drift
   hits both alike. Rate = tokens after the first / time after the first
   (the prompt is not in it).

It prints each side's tokens/s, the limit, the fraction of the limit each
reaches, and what `edgeoss plan` predicts here (planning/speed.py with the
machine's remembered bandwidth, at the same context fill) against the
measurement.

Default model: a synthetic gpt-oss with the real 20b shapes and --layers
layers, random weights, written and converted (bf16 matrices, or
--outtype q8_0) in a temporary folder (a minute or two).

    python benchmarks/bandwidth_limit.py [--layers 2] [--tokens 64] [--runs 3] [--gguf FILE]
        [--outtype bf16|q8_0] [--threads N] [--gpu [--gpu-bandwidth GB/s]] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from edgeoss import harmony, spec
from edgeoss.discover import bandwidth
from edgeoss.engines.base import LoadSettings, Sampling
from edgeoss.engines.llamacpp.batch import BatchEngine
from edgeoss.planning import speed
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.reader import read_model

CTX = 4096
MATRIX_OF_TYPE = {"BF16": "bf16", "Q8_0": "q8_0", "F32": "f32"}


def prompt_ids() -> list[int]:
    return harmony.render([harmony.Turn("user", "Describe the sea in one long paragraph. " * 6)])


def shape_of(gguf: Path) -> tuple[spec.Hparams, str]:
    """(the 20b shape with the file's layer count, its matrix type)."""
    model = read_model(gguf)
    layers = int(model.metadata[f"{spec.GGUF_ARCH}.block_count"])
    matrix = MATRIX_OF_TYPE[model.tensors["output.weight"].type_name]
    return synth.hparams_for("20b", layers=layers), matrix


def engine_run(engine: BatchEngine, prompt: list[int], tokens: int) -> float:
    """Decode tokens/s after the first token, on the engine `edgeoss serve` decodes with."""
    start = time.perf_counter()
    first = 0.0
    count = 0
    for _ in engine.generate(prompt, Sampling(max_tokens=tokens, temperature=1.0)):  # no stop ids: all of them
        count += 1
        if count == 1:
            first = time.perf_counter() - start
    return (count - 1) / (time.perf_counter() - start - first)


def start_peer(binary: Path, gguf: Path, port: int, threads: int, gpu: bool) -> subprocess.Popen[bytes]:
    command = [str(binary), "-m", str(gguf), "--port", str(port), "-c", str(CTX), "-np", "1"]
    command += ["-t", str(threads), "-tb", str(os.cpu_count() or threads), "-fa", "on", "-lm", "none", "--no-webui"]
    command += ["-ngl", "999" if gpu else "0"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama-server did not start")


def peer_run(port: int, prompt: list[int], tokens: int) -> float:
    body = {
        "prompt": prompt,
        "n_predict": tokens,
        "ignore_eos": True,  # as edgeoss's side: exactly `tokens` tokens
        "stream": True,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "cache_prompt": False,
    }
    start = time.perf_counter()
    first = 0.0
    count = 0
    with httpx.stream("POST", f"http://127.0.0.1:{port}/completion", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("stop"):
                continue
            count += 1
            if count == 1:
                first = time.perf_counter() - start
    return (count - 1) / (time.perf_counter() - start - first)


def gpu_figure(given_gb_s: float | None) -> bandwidth.Bandwidth:
    if given_gb_s is not None:
        return bandwidth.Bandwidth(given_gb_s * 1e9, "given", "--gpu-bandwidth")
    found = bandwidth.nvml_bandwidths()
    return found[0][1] if found else bandwidth.Bandwidth(None, "unknown", "NVML reports no GPU")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--gguf", type=Path, help="an existing 20b-shaped GGUF (default: write one)")
    p.add_argument("--outtype", default="bf16", choices=("bf16", "q8_0"), help="matrices of the written GGUF")
    p.add_argument("--threads", type=int, default=bandwidth.physical_cores(), help="both sides (default: cores)")
    p.add_argument("--gpu", action="store_true", help="every layer on the GPU")
    p.add_argument("--gpu-bandwidth", type=float, help="the GPU's GB/s, where NVML does not tell")
    p.add_argument("--llama-server", type=Path, help="a llama-server binary (benchmarks/build_llama_server.sh)")
    p.add_argument("--port", type=int, default=18735)
    p.add_argument("--dir", default=tempfile.gettempdir())
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-bandwidth-", dir=args.dir))
    try:
        gguf = args.gguf
        if gguf is None:
            hp = synth.hparams_for("20b", layers=args.layers)
            ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
            gguf = work / "model.gguf"
            convert.convert(ckpt, gguf, outtype=args.outtype)
            shutil.rmtree(ckpt)
        hp, matrix = shape_of(gguf)
        prompt = prompt_ids()
        n_gpu_layers = hp.num_layers + 1 if args.gpu else 0
        gpu = gpu_figure(args.gpu_bandwidth) if args.gpu else None
        # What `edgeoss plan` would say here: the machine's remembered figure (measured now if none).
        planned = bandwidth.host_bandwidth()

        # bytes per token where the timed tokens sit: after the prompt, half way through
        fill = len(prompt) + args.tokens // 2
        step = speed.step_bytes(hp, matrix=matrix, context_fill=fill, n_gpu_layers=n_gpu_layers)
        predicted = speed.estimate(
            hp, speed.Placement(n_gpu_layers), cpu=planned, gpu=gpu, context_fill=fill, full_context=CTX, matrix=matrix
        )["tokens_per_s"]

        # bandwidth, edgeoss, llama-server, in turn: a shared machine's memory bandwidth drifts
        # with its neighbours, so the limit is measured between the runs it is compared with
        settings = LoadSettings(context_length=CTX, n_gpu_layers=n_gpu_layers, threads=args.threads, use_mmap=False)
        engine = BatchEngine(gguf, settings, parallel=1)
        peer = start_peer(args.llama_server, gguf, args.port, args.threads, args.gpu) if args.llama_server else None
        rates: list[float] = []
        ours: list[float] = []
        theirs: list[float] = []
        try:
            engine_run(engine, prompt, 4)  # warm-up: pages, kernels, the sampler
            if peer is not None:
                peer_run(args.port, prompt, 4)
            for _ in range(args.runs):
                rate, threads, nbytes, passes = bandwidth.measure(threads=args.threads)
                rates.append(rate)
                ours.append(engine_run(engine, prompt, args.tokens))
                if peer is not None:
                    theirs.append(peer_run(args.port, prompt, args.tokens))
        finally:
            engine.close()
            if peer is not None:
                peer.terminate()
                peer.wait()

        rate = statistics.median(rates)
        limit = speed.tokens_per_s(step, rate, gpu.bytes_per_s if gpu else None)
        where = "GPU" if args.gpu else "CPU"
        print(
            f"{hp.name} ({matrix} matrices, {gguf.stat().st_size / 2**30:.2f} GiB) on the {where}, "
            f"{args.threads} threads; {args.tokens} tokens after a {len(prompt)}-token prompt, median of {args.runs}"
        )
        print(
            f"  memory bandwidth   {rate / 1e9:7.1f} GB/s  (median of {len(rates)} between the runs, "
            f"{min(rates) / 1e9:.1f} to {max(rates) / 1e9:.1f}; each a streaming read of {nbytes >> 20} MiB, "
            f"{threads} threads, best of {passes})"
        )
        if gpu is not None:
            print(f"  GPU bandwidth      {gpu.describe()}")
        parts = ", ".join(f"{k} {v / 1e9:.3f}" for k, v in sorted(step.parts.items(), key=lambda kv: -kv[1]))
        split = f"; RAM {step.cpu / 1e9:.3f}, GPU {step.gpu / 1e9:.3f}" if args.gpu else ""
        print(f"  bytes per token    {step.total / 1e9:7.3f} GB  ({parts}{split}) at {fill} tokens of context")
        if limit is None:
            print("  limit              unknown (a device's bandwidth is unknown)")
            limit = float("nan")
        else:
            print(f"  limit              {limit:7.1f} tok/s (bandwidth / bytes per token)")
        sides = [("edgeoss engine", ours)] + ([("llama-server", theirs)] if theirs else [])
        for name, runs in sides:
            measured = statistics.median(runs)
            print(
                f"  {name:<18} {measured:7.1f} tok/s  {measured / limit:.2f} of the limit  "
                f"(runs: {', '.join(f'{r:.1f}' for r in runs)})"
            )
        used = f"GPU bandwidth {gpu.describe()}" if gpu is not None else f"host bandwidth {planned.describe()}"
        print(f"  edgeoss plan's prediction: {predicted} tok/s ({used})")
        for name, runs in sides:
            ratio = (predicted or float("nan")) / statistics.median(runs)
            print(f"  predicted / measured ({name}): {ratio:.2f}")
        if theirs:
            print(f"  edgeoss / llama-server: {statistics.median(ours) / statistics.median(theirs):.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
