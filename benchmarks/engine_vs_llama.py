"""Benchmark: edgeoss's engine and harmony layer against plain llama-cpp-python.

The same GGUF (a synthetic gpt-oss with the real 20b shapes and fewer
layers, so the model's compute dominates), the same prompt token ids and
settings, in one process:
- baseline: llama_cpp.Llama.create_completion(prompt_ids, stream=True);
- edgeoss: generate.stream() (harmony rendering is done once up front, then
  the engine and the streaming parser run per token).
Each side runs cold (KV cache cleared) several times, alternating; medians
of tokens/s and time to first token are compared. A warm second turn shows
what prefix reuse saves.

    python benchmarks/engine_vs_llama.py [--layers 2] [--tokens 64] [--runs 3] [--gpu] [--cpu-moe N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from edgeoss import harmony, spec
from edgeoss.engines.base import LoadSettings, Sampling
from edgeoss.engines.llamacpp.engine import LlamaCppEngine
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert


def plain_run(llm: object, prompt: list[int], tokens: int) -> tuple[float, float]:
    llm.reset()  # type: ignore[attr-defined]
    llm._ctx.kv_cache_clear()  # type: ignore[attr-defined]
    start = time.perf_counter()
    first = 0.0
    count = 0
    completion = llm.create_completion  # type: ignore[attr-defined]
    # min_p=0 as in edgeoss's Sampling: create_completion's default (0.05) prunes the
    # 201k-token vocabulary before sampling, which alone is worth ~1.5 ms a token on a GPU.
    stream = completion(prompt, max_tokens=tokens, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, stream=True)
    for _ in stream:
        count += 1
        if count == 1:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first, (count - 1) / (total - first)


def edgeoss_run(engine: LlamaCppEngine, prompt: list[int], tokens: int) -> tuple[float, float]:
    engine.llm.reset()  # type: ignore[no-untyped-call]
    engine.llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
    parser = harmony.StreamParser()
    start = time.perf_counter()
    first = 0.0
    count = 0
    for token in engine.generate(prompt, Sampling(max_tokens=tokens, temperature=1.0), spec.STOP_TOKENS):
        parser.feed(token)
        count += 1
        if count == 1:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first, (count - 1) / (total - first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--cpu-moe", type=int, default=0)
    parser.add_argument("--gguf", type=Path, help="an existing 20b-shaped GGUF (default: write one)")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-engine-", dir=args.dir))
    try:
        hp = synth.hparams_for("20b", layers=args.layers)
        gguf = args.gguf or work / "model.gguf"
        if args.gguf is None:
            ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
            convert.convert(ckpt, gguf)
            shutil.rmtree(ckpt)
        settings = LoadSettings(
            context_length=4096,
            n_gpu_layers=hp.num_layers + 1 if args.gpu else 0,
            n_cpu_moe_layers=args.cpu_moe,
        )
        engine = LlamaCppEngine(gguf, settings)
        llm = engine.llm  # the baseline drives the very same llama.cpp context
        prompt = harmony.render([harmony.Turn("user", "Describe the sea in one long paragraph. " * 8)])
        for _ in range(1):  # warm-up: page in weights, build kernels
            plain_run(llm, prompt, 4)
            edgeoss_run(engine, prompt, 4)
        plain, ours = [], []
        for _ in range(args.runs):
            plain.append(plain_run(llm, prompt, args.tokens))
            ours.append(edgeoss_run(engine, prompt, args.tokens))
        p_ttft, p_tps = statistics.median(x[0] for x in plain), statistics.median(x[1] for x in plain)
        o_ttft, o_tps = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
        where = "GPU" if args.gpu else "CPU"
        moe = f", experts of {args.cpu_moe} layers on the CPU" if args.cpu_moe else ""
        print(f"{hp.name} on {where}{moe}: prompt {len(prompt)} tokens, {args.tokens} generated, median of {args.runs}")
        print(f"  llama-cpp-python create_completion  {p_tps:8.1f} tok/s  TTFT {p_ttft * 1000:7.1f} ms")
        print(f"  edgeoss engine + harmony parser      {o_tps:8.1f} tok/s  TTFT {o_ttft * 1000:7.1f} ms")
        overhead = (o_ttft - p_ttft) * 1000
        print(f"  ratio tok/s {o_tps / p_tps:.3f} (target >= 0.97), TTFT overhead {overhead:+.1f} ms (target < 10)")
        # A second turn that extends the first: only the new tokens are evaluated.
        first = list(engine.generate(prompt, Sampling(max_tokens=8), spec.STOP_TOKENS))
        follow = (
            prompt
            + first
            + harmony.encoding().encode(
                "<|end|><|start|>user<|message|>More.<|end|><|start|>assistant", allowed_special="all"
            )
        )
        start = time.perf_counter()
        next(iter(engine.generate(follow, Sampling(max_tokens=1))))
        warm = time.perf_counter() - start
        reused = engine.last_timings.cached_tokens
        print(f"  second turn: {reused} of {len(follow)} prompt tokens reused, TTFT {warm * 1000:.1f} ms")
        engine.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
