"""Benchmark: edgeoss.planning.memory's predictions against what llama.cpp allocates.

Writes synthetic gpt-oss GGUFs with the real 20b shapes (a few layers, or all
24 with --layers 24), loads each with llama-cpp-python in a child process and
prints predicted / measured for weights, KV cache, compute buffers, per
device. With a CUDA build (--gpu) it measures two placements, everything on
the GPU and every expert on the CPU (--n-cpu-moe), and NVML's view of the
GPU memory the process used.

    python benchmarks/memory_model.py [--layers 2 4] [--ctx 4096 32768] [--gpu] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from edgeoss import spec
from edgeoss.planning import memory
from edgeoss.planning.measured import measure
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.reader import read_model


def gib(n: float) -> str:
    return f"{n / memory.GIB:6.2f}"


def row(label: str, predicted: int, measured: int) -> None:
    ratio = predicted / measured if measured else float("nan")
    print(f"  {label:<28} predicted {gib(predicted)} GiB  measured {gib(measured)} GiB  ratio {ratio:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--ctx", type=int, nargs="+", default=[4096, 32768])
    parser.add_argument("--gpu", action="store_true", help="also measure GPU placements (CUDA build)")
    parser.add_argument("--cpu-moe", type=int, nargs="+", default=None, help="expert layers on the CPU (with --gpu)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU-only load")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeoss-mem-", dir=args.dir))
    try:
        for layers in args.layers:
            hp = synth.hparams_for("20b", layers=layers)
            ckpt = synth.write_checkpoint(work / f"ckpt-{layers}", synth.plan(hp))
            gguf = work / f"20b-{layers}l.gguf"
            convert.convert(ckpt, gguf)
            shutil.rmtree(ckpt)
            weights = memory.Weights.from_gguf(read_model(gguf))
            print(f"{hp.name}: GGUF tensors {gib(weights.total)} GiB")
            for ctx in args.ctx:
                kv = memory.kv_cache_bytes(hp, ctx)
                compute = memory.compute_bytes(hp)
                if not args.no_cpu:
                    cpu = measure(gguf, context=ctx)
                    print(f" CPU only, context {ctx}")
                    row("weights", weights.total, cpu.kind("model"))
                    row("KV cache", kv, cpu.kind("KV"))
                    # A CUDA build also reserves a GPU compute buffer (op offload): compare host only.
                    row(
                        "compute (host)",
                        compute,
                        sum(k.get("compute", 0) for d, k in cpu.buffers.items() if "CUDA" not in d),
                    )
                    row("total (allocator, host)", weights.total + kv + compute, cpu.host)
                if not args.gpu:
                    continue
                for n_cpu_moe in args.cpu_moe if args.cpu_moe is not None else (0, hp.num_layers):
                    fp = memory.footprint(hp, weights, ctx, on_gpu=True, n_cpu_moe=n_cpu_moe)
                    m = measure(gguf, context=ctx, n_gpu_layers=hp.num_layers + 1, n_cpu_moe=n_cpu_moe)
                    print(f" GPU, experts of {n_cpu_moe} layers on the CPU, context {ctx}")
                    row("GPU buffers", fp.gpu - memory.CUDA_CONTEXT, m.gpu)
                    if m.nvml_used is not None:
                        row("GPU used (NVML)", fp.gpu, m.nvml_used)
                    row("host buffers", fp.cpu - memory.PROCESS_OVERHEAD, m.host)
            gguf.unlink()
        print(f"(shapes: {spec.GPT_OSS_20B.name} per layer; budgets in edgeoss/memory.py)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
