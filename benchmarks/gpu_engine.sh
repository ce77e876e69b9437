#!/usr/bin/env bash
# Issue 5's GPU figures on a bare, offline NVIDIA machine, in two steps that each fit one
# device command (run from the repository root, with .whl/ and .kit/ carried along):
#
#   bash benchmarks/gpu_engine.sh prepare   # CUDA build of llama-cpp-python (background) while a
#                                           # 24-layer synthetic 20b GGUF is written to /tmp/m20.gguf
#   bash benchmarks/gpu_engine.sh bench     # engine_vs_llama.py fully on the GPU, then experts on the CPU
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH=/tmp/site:$PWD
export LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/cuda/lib64:/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
GGUF=/tmp/m20.gguf

case ${1:-} in
prepare)
    if [[ ! -f /tmp/site/.gpu_kit_wheels ]]; then
        # the wheels first (the synthesis needs gguf and friends), then the build in the background
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
        # the stamp gpu_kit_check.sh writes, so that it does not reinstall under the running synthesis
        printf '%s\n' .whl/*.whl | sort | sha256sum | cut -c1-16 >/tmp/site/.gpu_kit_wheels
    fi
    setsid bash -c "OUT=$OUT bash benchmarks/gpu_kit_check.sh >$OUT/kit.log 2>&1; echo \$? >$OUT/kit.rc" &
    if [[ ! -f $GGUF ]]; then
        start=$SECONDS
        python3 -m edgeoss synth /tmp/m20-ckpt --scale 20b --force >"$OUT/synth.log" 2>&1
        python3 -m edgeoss convert /tmp/m20-ckpt -o "$GGUF" >"$OUT/convert.log" 2>&1
        rm -rf /tmp/m20-ckpt
        echo "synthetic 20b GGUF: $(du -h $GGUF | cut -f1) in $((SECONDS - start)) s"
    fi
    while [[ ! -f $OUT/kit.rc ]]; do sleep 5; done
    tail -5 "$OUT/kit.log"
    exit "$(cat "$OUT/kit.rc")"
    ;;
bench)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 benchmarks/engine_vs_llama.py --layers 24 --gguf $GGUF --gpu --tokens 128 --runs 7 2>"$OUT/gpu.log"
    python3 benchmarks/engine_vs_llama.py --layers 24 --gguf $GGUF --gpu --cpu-moe 24 --tokens 64 --runs 7 \
        2>"$OUT/cpu-moe.log"
    # the command a user runs: plans placement from the probe, loads through the engine
    EDGEOSS_HOME=/tmp/edgeoss-home python3 -m edgeoss run $GGUF "Hello" --max-tokens 64 --seed 1 --json \
        2>"$OUT/run.log" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("edgeoss run:", d["usage"], d["timings"])'
    ;;
*)
    echo "usage: $0 prepare|bench" >&2
    exit 2
    ;;
esac
