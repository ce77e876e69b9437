#!/usr/bin/env bash
# edgeoss serve against llama.cpp's llama-server on a bare, offline NVIDIA machine, with ONE
# CUDA build of llama.cpp serving both: the sdist's vendor/llama.cpp built with shared libraries
# gives libllama.so + libggml*.so (what llama-cpp-python's pure-Python `llama_cpp` package loads)
# and bin/llama-server, so llama.cpp's CUDA code is compiled once, not once per side.
#
#   bash benchmarks/gpu_speed.sh kit       # here, with PyPI: fill the ignored .whl/ and .kit/
#   bash benchmarks/gpu_speed.sh prepare   # device: wheels, CUDA build (background) while the
#                                          # 20b-shaped 2-layer GGUF is written; re-run to resume
#   bash benchmarks/gpu_speed.sh bench     # device: serve_bench.py all on the GPU, then experts
#                                          # on the CPU; bandwidth_limit.py --gpu when present
#
# The binding: the sdist's llama_cpp/ folder is copied into $SITE, and its lib/ is a link to the
# build's bin/ folder. llama_cpp would also honour LLAMA_CPP_LIB_PATH, but edgeoss looks for
# ggml's CPU buffer type (experts kept on the CPU) in llama_cpp/lib, so the link is what works.
#
# Environment: PYTHON (python3, CPython 3.12), SITE (/tmp/site), WORK (/tmp/gpu-speed: source,
# build, logs), OUT (/tmp/gpu-out: what comes back), CUDA_ARCH (90), LLAMA_CMAKE_ARGS (extra
# CMake arguments), GGUF (/tmp/m20x2.gguf), LAYERS (2), WAIT_S (prepare stops waiting for the
# build after this many seconds, default 540; re-run prepare to go on), TOKENS (128), RUNS (5),
# BUILD_DIR ($WORK/build), GPU_SPEED_CUDA (1; 0: a CPU build and run, to try the script without a GPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

LLAMA_VERSION=0.3.36
SDIST_NAME=llama_cpp_python-$LLAMA_VERSION-trimmed.tar.gz
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/gpu-speed}
OUT=${OUT:-/tmp/gpu-out}
CUDA_ARCH=${CUDA_ARCH:-90}
GGUF=${GGUF:-/tmp/m20x2.gguf}
LAYERS=${LAYERS:-2}
WAIT_S=${WAIT_S:-540}
TOKENS=${TOKENS:-128}
RUNS=${RUNS:-3}
CUDA=${GPU_SPEED_CUDA:-1}
SRC=$WORK/src/llama_cpp_python-$LLAMA_VERSION
BUILD=${BUILD_DIR:-$WORK/build}
BIN=$BUILD/bin

die() { echo "gpu_speed: ERROR: $*" >&2; exit 1; }
say() { echo "gpu_speed: $*"; }
# shellcheck source=benchmarks/gpu_cuda_env.sh
source "$REPO/benchmarks/gpu_cuda_env.sh"

# the runtime dependencies of edgeoss serve/run/synth/convert and the benchmarks (numpy: the
# device's own), llama_cpp's (typing-extensions, diskcache, jinja2), the wheel build's backend
# (scikit-build-core, packaging, pathspec: gpu_kit_check.sh) and ninja
KIT_PACKAGES=(
    typer rich platformdirs openai-harmony==0.0.8 psutil gguf nvidia-ml-py fastapi uvicorn
    prometheus-client huggingface-hub httpx pyseccomp beautifulsoup4 lxml markdownify
    "llguidance>=1.9,<2" typing-extensions diskcache jinja2 scikit-build-core packaging pathspec ninja
)
# removed from the sdist: nothing any CPU or CUDA build of it compiles
TRIM=(
    .git .github docs examples tests docker
    vendor/llama.cpp/{.git,.github,.devops,docs,models,media,benches,gguf-py,tests,examples,pocs}
    vendor/llama.cpp/{requirements,conversion,licenses,skills}
    vendor/llama.cpp/tools/server/tests vendor/llama.cpp/tools/ui/{src,tests,static,package.json,package-lock.json}
    vendor/llama.cpp/ggml/src/ggml-{sycl,vulkan,opencl,hexagon,metal,et,cann,webgpu,openvino,zdnn,zendnn,musa,virtgpu}
)

cmake_args() {
    local generator=()
    if command -v ninja >/dev/null; then generator=(-G Ninja); fi
    local extra=()
    read -ra extra <<<"${CUDA_CMAKE_ARGS:-} ${LLAMA_CMAKE_ARGS:-}"
    local gpu=(-DGGML_CUDA=OFF)
    if ((CUDA)); then gpu=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH"); fi
    printf '%s\n' "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON "${gpu[@]}" -DGGML_NATIVE=ON \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        "${extra[@]}"
}

built() { [[ -f $BUILD/.done && -x $BIN/llama-server && -e $BIN/libllama.so ]]; }

runtime_env() {
    export PATH=$SITE/bin:$PATH  # ninja from its wheel
    export PYTHONPATH=$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
    export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    mkdir -p "$WORK" "$OUT" "$SITE"
    if ((CUDA)); then cuda_env "$PYTHON" "$WORK"; fi
    prepend_ld "$BIN"
}

# step NAME LIMIT_S COMMAND...: stdout to $OUT/NAME.txt (printed), stderr to $OUT/NAME.log.
# timeout signals its whole process group (servers the step started included) with SIGINT,
# so Python's finally blocks stop them; whatever is left of the group is ended afterwards.
step() {
    local name=$1 limit=$2 start=$SECONDS rc=0 pid
    shift 2
    say "== $name (limit ${limit} s): $*"
    timeout -s INT -k 20 "$limit" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.log" &
    pid=$!
    wait "$pid" || rc=$?
    kill -TERM -- "-$pid" 2>/dev/null || true
    cat "$OUT/$name.txt"
    if ((rc != 0)); then
        tail -n 15 "$OUT/$name.log"
        say "$name FAILED rc=$rc after $((SECONDS - start)) s (124: timed out); log: $OUT/$name.log"
    else
        say "$name done in $((SECONDS - start)) s"
    fi
}

case ${1:-} in
kit)
    # Here, not on the device: needs PyPI. The wheels match this environment's versions.
    KIT_PY=${PYTHON_KIT:-python}
    SDIST=vendor/llama_cpp_python-$LLAMA_VERSION.tar.gz
    [[ -f $SDIST ]] || "$KIT_PY" -m pip download --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d vendor
    tmp=$(mktemp -d)
    tar -xzf "$SDIST" -C "$tmp"
    (cd "$tmp/llama_cpp_python-$LLAMA_VERSION" && rm -rf "${TRIM[@]}" vendor/llama.cpp/*.py)
    mkdir -p .kit
    tar -czf ".kit/$SDIST_NAME" -C "$tmp" "llama_cpp_python-$LLAMA_VERSION"
    rm -rf "$tmp"
    constraints=$(mktemp)
    "$KIT_PY" -m pip freeze | grep -v -e '^-e' -e '@' -e '+' -e '^edgeoss=' >"$constraints" || true
    rm -rf .whl
    "$KIT_PY" -m pip download -q --only-binary :all: --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_31_x86_64 --platform any -c "$constraints" -d .whl "${KIT_PACKAGES[@]}"
    rm -f "$constraints" .whl/numpy-*.whl
    ls .whl
    du -sh .whl .kit
    du -shc .whl .kit | tail -1
    ;;
prepare)
    T0=$SECONDS
    [[ -f .kit/$SDIST_NAME ]] || die "missing .kit/$SDIST_NAME (carry the ignored .kit folder along)"
    compgen -G ".whl/*.whl" >/dev/null || die "no wheels in .whl (carry the ignored .whl folder along)"
    [[ $("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') == 3.12 ]] \
        || die "$PYTHON is not Python 3.12 (the carried binary wheels are cp312)"
    "$PYTHON" -c 'import numpy' 2>/dev/null || die "numpy is not importable by $PYTHON (it is not carried)"
    command -v cmake >/dev/null || die "cmake not on PATH"
    runtime_env
    say "cmake $(cmake --version | head -1 | cut -d' ' -f3); nvcc $( ((CUDA)) && nvcc --version | tail -1 || echo -); $(nproc) cores"

    # 1. wheels (the same stamp as gpu_kit_check.sh, which then does not reinstall them)
    STAMP=$SITE/.gpu_kit_wheels
    WANT=$(printf '%s\n' .whl/*.whl | sort | sha256sum | cut -c1-16)
    if [[ ! -f $STAMP || $(cat "$STAMP") != "$WANT" ]]; then
        PIP=("$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE")
        if ! "${PIP[@]}" .whl/*.whl; then
            # one wheel this system does not take (llguidance wants glibc >= 2.31) fails them all
            say "warning: installing them one by one ($(ldd --version 2>&1 | head -1))"
            for w in .whl/*.whl; do "${PIP[@]}" "$w" || say "warning: $w not installed"; done
        fi
        echo "$WANT" >"$STAMP"
        say "wheels installed in $((SECONDS - T0)) s"
    fi

    # 2. the source, and the binding: the sdist's llama_cpp with lib -> the build's bin
    SUM=$(sha256sum ".kit/$SDIST_NAME" | cut -c1-16)
    if [[ ! -f $SRC/.unpacked || $(cat "$SRC/.unpacked") != "$SUM" ]]; then
        rm -rf "$SRC" "$BUILD"
        mkdir -p "$WORK/src"
        tar -xzf ".kit/$SDIST_NAME" -C "$WORK/src"
        echo "$SUM" >"$SRC/.unpacked"
    fi
    rm -rf "$SITE/llama_cpp" "$SITE"/llama_cpp_python-*.dist-info
    cp -r "$SRC/llama_cpp" "$SITE/llama_cpp"
    ln -sfn "$BIN" "$SITE/llama_cpp/lib"

    # 3. the one CUDA build, in the background (its own session: a time limit that ends this
    #    command may leave it running; re-running prepare then waits for it, or resumes it)
    if built; then
        say "build already done: $BIN"
    elif [[ -f $WORK/build.pid ]] && kill -0 "$(cat "$WORK/build.pid")" 2>/dev/null; then
        say "build already running (pid $(cat "$WORK/build.pid")): waiting for it"
    else
        rm -f "$WORK/build.rc"
        mapfile -t ARGS < <(cmake_args)
        say "building llama.cpp (cmake ${ARGS[*]}); log: $WORK/build.log"
        # shellcheck disable=SC2016  # expanded by the inner bash
        setsid bash -c '
            build=$1 src=$2 work=$3; shift 3
            { [[ -f $build/CMakeCache.txt ]] || cmake -S "$src" -B "$build" "$@"; } &&
                cmake --build "$build" --target llama-server llama -j "$(nproc)"
            rc=$?
            if ((rc == 0)); then touch "$build/.done"; fi
            echo "gpu_speed: build rc=$rc after $SECONDS s"
            echo $rc >"$work/build.rc"' _ "$BUILD" "$SRC/vendor/llama.cpp" "$WORK" "${ARGS[@]}" \
            >>"$WORK/build.log" 2>&1 </dev/null &
        echo $! >"$WORK/build.pid"
    fi

    # 4. meanwhile the model: gpt-oss-20b's shapes with $LAYERS layers
    if [[ ! -f $GGUF ]]; then
        t=$SECONDS
        rm -rf "$WORK/ckpt"
        "$PYTHON" -m edgeoss synth "$WORK/ckpt" --scale 20b --layers "$LAYERS" --force >"$OUT/synth.log" 2>&1 \
            || { tail "$OUT/synth.log"; die "edgeoss synth failed"; }
        "$PYTHON" -m edgeoss convert "$WORK/ckpt" -o "${GGUF%.gguf}.part.gguf" --force >"$OUT/convert.log" 2>&1 \
            || { tail "$OUT/convert.log"; die "edgeoss convert failed"; }
        mv "${GGUF%.gguf}.part.gguf" "$GGUF"
        rm -rf "$WORK/ckpt"
        say "$GGUF: $(du -h "$GGUF" | cut -f1) written in $((SECONDS - t)) s"
    else
        say "$GGUF already there ($(du -h "$GGUF" | cut -f1))"
    fi

    # 5. wait for the build, with its progress every 30 s
    last=0
    while ! built; do
        if [[ -f $WORK/build.rc ]]; then
            tail -n 40 "$WORK/build.log"
            cp "$WORK/build.log" "$OUT/build.log"
            die "the build failed (rc $(cat "$WORK/build.rc")); full log: $OUT/build.log"
        fi
        if ! kill -0 "$(cat "$WORK/build.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
            sleep 1  # its result may be a moment behind its end
            if ! built && [[ ! -f $WORK/build.rc ]]; then
                die "the build is gone without a result; re-run prepare to resume it"
            fi
            continue
        fi
        if ((SECONDS - T0 >= WAIT_S)); then
            say "still building after $((SECONDS - T0)) s: $(grep -o '^\[[0-9]*/[0-9]*\]' "$WORK/build.log" | tail -1)"
            say "re-run prepare to go on waiting (the build keeps its progress)"
            exit 3
        fi
        if ((SECONDS - last >= 30)); then
            last=$SECONDS
            say "$((SECONDS - T0)) s: build at $(grep -o '^\[[0-9]*/[0-9]*\]' "$WORK/build.log" | tail -1 || echo '(configuring)')"
        fi
        sleep 2
    done
    grep '^gpu_speed: build rc=' "$WORK/build.log" | tail -1 || true
    cp "$WORK/build.log" "$OUT/build.log" 2>/dev/null || true

    # 6. checks
    "$BIN/llama-server" --version 2>&1 | tail -2
    "$PYTHON" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__, 'from', llama_cpp.__file__, \
'gpu offload:', llama_cpp.llama_supports_gpu_offload())"
    "$PYTHON" -c "from edgeoss.engines.llamacpp import placement; print('experts on CPU:', \
placement.unsupported_reason() or 'supported')"
    say "prepare done in $((SECONDS - T0)) s"
    ;;
bench)
    T0=$SECONDS
    built || die "no finished build in $BUILD (run prepare)"
    [[ -f $GGUF ]] || die "no $GGUF (run prepare)"
    runtime_env
    if ((CUDA)); then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
    fi
    "$PYTHON" -c "import sys, llama_cpp; ok = llama_cpp.llama_supports_gpu_offload(); \
print('llama_cpp', llama_cpp.__version__, 'gpu offload:', ok); sys.exit(0 if ok or not $CUDA else 1)" \
        || die "llama_cpp has no GPU offload"

    COMMON=(--gguf "$GGUF" --llama-server "$BIN/llama-server" --tokens "$TOKENS" --runs "$RUNS")
    step decode-gpu 200 "$PYTHON" benchmarks/decode_vs_llama_server.py "${COMMON[@]}" --gpu
    step decode-cpu-moe 200 "$PYTHON" benchmarks/decode_vs_llama_server.py "${COMMON[@]}" --gpu --cpu-moe "$LAYERS"
    if [[ -f benchmarks/bandwidth_limit.py ]]; then
        BW=(--gpu)
        if [[ $("$PYTHON" benchmarks/bandwidth_limit.py --help 2>&1) == *--gguf* ]]; then BW+=(--gguf "$GGUF"); fi
        step bandwidth 120 "$PYTHON" benchmarks/bandwidth_limit.py "${BW[@]}"
    else
        say "no benchmarks/bandwidth_limit.py: skipped"
    fi
    say "bench done in $((SECONDS - T0)) s; logs in $OUT"
    ;;
*)
    echo "usage: $0 kit|prepare|bench" >&2
    exit 2
    ;;
esac
