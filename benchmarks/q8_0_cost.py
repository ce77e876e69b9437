"""Benchmark: what `edgeoss convert --outtype q8_0` costs and gains against the
lossless (bf16) conversion of the same checkpoint.

One synthetic gpt-oss checkpoint (default: the real 20b shapes with 2 layers,
random weights), converted three times: lossless (bf16 matrices, the
default), q8_0 (Q8_0 matrices, the experts the same MXFP4 bytes), and f32
(lossless too, the matrices widened). Then, on llama.cpp's CPU backend:
- numerics, as the numerics check of tests/integration/test_convert.py runs
  llama.cpp (same 160 prompt ids, f32 KV cache, every position's logits), the
  q8_0 file against the lossless one: max |Δlogit| (and relative to the
  largest lossless logit), mean KL(lossless || q8_0) of the next-token
  distributions, top-1 agreement. The same figures for bf16 against f32 (two
  lossless files; llama.cpp rounds activations to bf16 for bf16 matrices)
  give the scale of llama.cpp's own rounding to read them against;
- size on disk, and the spec's prediction of it;
- decode tokens/s: greedy generation of --tokens from a fresh KV cache,
  alternating the two files --runs times; medians and their ratio.
Random weights give near-uniform, high-entropy next-token distributions with
no margin between the top candidates, so top-1 agreement here is a
pessimistic figure, and the logit error an upper-bound-ish indicator, for
a trained model.

    python benchmarks/q8_0_cost.py [--scale 20b] [--layers 2] [--tokens 64] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeoss import spec
from edgeoss.engines.llamacpp import binding
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert

PROMPT = [int(i) for i in np.random.default_rng(0).integers(0, spec.BPE_RANKS, 160)]
"""The numerics check's prompt: 160 positions, past the 128-token window."""


@dataclass(frozen=True)
class LogitCost:
    positions: int
    max_abs: float  # max |Δlogit| over every position and token
    max_rel: float  # max_abs / max |lossless logit|
    mean_kl: float  # mean over positions of KL(lossless || candidate), nats
    top1_agree: int  # positions with the same argmax


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


def logit_cost(reference: np.ndarray, candidate: np.ndarray) -> LogitCost:
    """How far `candidate`'s logits [positions, vocab] are from `reference`'s."""
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    lp, lq = _log_softmax(reference), _log_softmax(candidate)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return LogitCost(
        positions=len(reference),
        max_abs=float(diff.max()),
        max_rel=float(diff.max() / np.abs(reference).max()),
        mean_kl=float(kl.mean()),
        top1_agree=int((reference.argmax(-1) == candidate.argmax(-1)).sum()),
    )


def llama_logits(path: Path, ids: list[int], threads: int) -> np.ndarray:
    """Every position's logits, as the numerics check computes them (f32 KV cache, CPU only)."""
    llama_cpp = binding.load()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=256,
        n_batch=256,
        n_ubatch=256,
        logits_all=True,
        type_k=0,  # GGML_TYPE_F32
        type_v=0,
        n_threads=threads,
        n_gpu_layers=0,
        op_offload=False,
        verbose=False,
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


def decode_run(llm: Any, prompt: list[int], tokens: int) -> tuple[float, float]:
    """(time to first token, decode tokens/s) of one greedy generation from a fresh cache.
    Llama.generate never stops on an end token, so every run decodes exactly `tokens`."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    start = time.perf_counter()
    first = 0.0
    count = 0
    for _ in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, reset=True):
        count += 1
        if count == 1:
            first = time.perf_counter() - start
        if count == tokens:
            break
    total = time.perf_counter() - start
    return first, (count - 1) / (total - first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="20b", choices=sorted(synth.SCALES))
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-q8_0-", dir=args.dir))
    try:
        hp = synth.hparams_for(args.scale, layers=args.layers)
        ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp, seed=args.seed))
        files: dict[str, Path] = {}
        for outtype in ("bf16", "q8_0", "f32"):
            files[outtype] = work / f"{outtype}.gguf"
            start = time.perf_counter()
            convert.convert(ckpt, files[outtype], outtype=outtype)
            print(f"converted {outtype} in {time.perf_counter() - start:.1f} s")
        shutil.rmtree(ckpt)

        print(
            f"{hp.name} ({hp.num_layers} layers, {hp.num_experts} experts, hidden {hp.hidden_size}), CPU, "
            f"{args.threads} threads"
        )
        sizes = {k: p.stat().st_size for k, p in files.items() if k != "f32"}
        for outtype, size in sizes.items():
            predicted = hp.gguf_file_bytes(outtype)
            print(
                f"  {outtype:5} {size / 2**30:7.3f} GiB on disk (predicted {predicted / 2**30:7.3f} GiB, "
                f"{'exact' if predicted == size else f'off by {size - predicted:+d} B'})"
            )
        print(f"  size ratio q8_0 / bf16 {sizes['q8_0'] / sizes['bf16']:.3f}")

        logits = {k: llama_logits(p, PROMPT, args.threads) for k, p in files.items()}
        files.pop("f32").unlink()  # numerics only
        print(f"  numerics over {len(PROMPT)} positions, f32 KV cache:")
        print(f"    {'candidate vs reference':24} {'max |Δlogit|':>12} {'(relative)':>10} {'mean KL':>9} {'top-1':>8}")
        for candidate, reference in (("q8_0", "bf16"), ("q8_0", "f32"), ("bf16", "f32")):
            cost = logit_cost(logits[reference], logits[candidate])
            print(
                f"    {candidate + ' vs ' + reference:24} {cost.max_abs:12.4f} {cost.max_rel:10.2e} "
                f"{cost.mean_kl:9.2e} {cost.top1_agree:4}/{cost.positions}"
            )

        llama_cpp = binding.load()
        models = {
            k: llama_cpp.Llama(model_path=str(p), n_ctx=1024, n_threads=args.threads, n_gpu_layers=0, verbose=False)
            for k, p in files.items()
        }
        try:
            for llm in models.values():  # warm-up: page the weights in
                decode_run(llm, PROMPT, 4)
            runs: dict[str, list[tuple[float, float]]] = {k: [] for k in models}
            for _ in range(args.runs):
                for k, llm in models.items():  # alternating, so drift hits both alike
                    runs[k].append(decode_run(llm, PROMPT, args.tokens))
        finally:
            for llm in models.values():
                llm.close()
        tps = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
        ttft = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        print(f"  decode, {args.tokens} tokens after the {len(PROMPT)}-token prompt, median of {args.runs}:")
        for k in models:
            print(f"    {k:5} {tps[k]:7.2f} tok/s  time to first token {ttft[k] * 1000:7.1f} ms")
        print(
            f"    ratio q8_0 / bf16: tok/s {tps['q8_0'] / tps['bf16']:.3f}, "
            f"time to first token {ttft['q8_0'] / ttft['bf16']:.3f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
