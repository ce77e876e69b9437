"""Benchmark: the onnxruntime-genai engine against the llama.cpp engine, on the CPU.

One synthetic gpt-oss checkpoint with the real 20b shapes and fewer layers
(random weights), made into the two formats users download:
- GGUF by edgeoss convert (MXFP4 experts as shipped, bf16 elsewhere), run by
  edgeoss's llama.cpp engine;
- ONNX by edgeoss export-onnx (onnxruntime-genai's builder, int4 for the
  CPU, as onnxruntime/gpt-oss-20b-onnx publishes), run by edgeoss's
  onnxruntime-genai engine.
The same prompt ids and sampling settings; each side runs cold (fresh KV
cache) several times, alternating, with no stop tokens so both generate
exactly --tokens. Medians of tokens/s and time to first token are compared
as a ratio (ORT / llama.cpp).

    python benchmarks/ort_vs_llama.py [--layers 2] [--tokens 64] [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from edgeoss import harmony
from edgeoss.engines.base import Engine, LoadSettings, Sampling
from edgeoss.engines.llamacpp.engine import LlamaCppEngine
from edgeoss.engines.ortgenai.engine import OrtGenAIEngine
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert
from edgeoss.weights.onnx import export as export_onnx


def cold_run(engine: Engine, reset: object, prompt: list[int], tokens: int, seed: int) -> tuple[float, float]:
    reset()  # type: ignore[operator]
    start = time.perf_counter()
    first = 0.0
    count = 0
    for _ in engine.generate(prompt, Sampling(max_tokens=tokens, temperature=1.0, seed=seed)):
        count += 1
        if count == 1:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    assert count == tokens, count
    return first, (count - 1) / (total - first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-ort-bench-", dir=args.dir))
    try:
        hp = synth.hparams_for("20b", layers=args.layers)
        ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
        started = time.perf_counter()
        convert.convert(ckpt, work / "model.gguf")
        print(f"GGUF: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        export_onnx.export(ckpt, work / "onnx", ep="cpu", precision="int4")
        print(f"ONNX int4 (export-onnx): {time.perf_counter() - started:.1f} s", flush=True)
        shutil.rmtree(ckpt)

        context = 1024
        llama = LlamaCppEngine(
            work / "model.gguf", LoadSettings(context_length=context, use_mmap=False, threads=args.threads)
        )
        ort = OrtGenAIEngine(work / "onnx", "cpu", context_length=context)

        def reset_llama() -> None:
            llama.llm.reset()  # type: ignore[no-untyped-call]
            llama.llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]

        def reset_ort() -> None:
            ort._generator = None  # the next prompt starts a fresh generator

        prompt = harmony.render(
            [harmony.Turn("user", "Explain in detail how a mixture-of-experts transformer routes tokens.")],
            harmony.RenderOptions(date="2026-11-23"),
        )
        results: dict[str, list[tuple[float, float]]] = {"llama.cpp": [], "onnxruntime-genai": []}
        cold_run(llama, reset_llama, prompt, 4, 0)  # warm-up: page in, build kernels
        cold_run(ort, reset_ort, prompt, 4, 0)
        for run in range(args.runs):
            results["llama.cpp"].append(cold_run(llama, reset_llama, prompt, args.tokens, run))
            results["onnxruntime-genai"].append(cold_run(ort, reset_ort, prompt, args.tokens, run))
        print(f"20b shapes, {args.layers} layers, prompt {len(prompt)} tokens, {args.tokens} tokens, {args.runs} runs")
        medians = {}
        for name, rows in results.items():
            ttft = statistics.median(r[0] for r in rows)
            speed = statistics.median(r[1] for r in rows)
            medians[name] = (ttft, speed)
            print(f"  {name:18s} {speed:7.1f} tok/s   time to first token {ttft * 1000:7.1f} ms")
        (l_ttft, l_speed), (o_ttft, o_speed) = medians["llama.cpp"], medians["onnxruntime-genai"]
        print(f"ratio onnxruntime-genai / llama.cpp: tokens/s {o_speed / l_speed:.3f}, TTFT {o_ttft / l_ttft:.3f}")
        llama.close()
        ort.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
