#!/usr/bin/env bash
# Set up edgeoss on a bare, offline GPU machine and check that llama-cpp-python sees the GPU.
#
# Run from anywhere inside the repository; it works from the repository root.  It expects
# the two ignored kit folders to have been carried along with the working tree:
#
#   .whl/  pure-python and cp312 manylinux wheels for edgeoss's runtime dependencies and for
#          llama-cpp-python's build backend (scikit-build-core, packaging, pathspec)
#   .kit/  llama_cpp_python-0.3.36-trimmed.tar.gz: the sdist without docs, tests, examples,
#          vocabulary models, the web UI's sources, unused GPU backends and the git history
#          (everything a CPU or CUDA build compiles is kept)
#   Both are made, on a machine that reaches PyPI, by `bash benchmarks/gpu_speed.sh kit`.
#
# What it does (every step is skipped when already done, so re-running is cheap):
#   1. installs .whl/*.whl into $KIT_SITE (default /tmp/site) with no network;
#   2. unpacks the sdist once into $KIT_WORK/src and builds a wheel with a persistent CMake
#      build directory, so a build cut off by a time limit resumes where it stopped;
#   3. installs that wheel into $KIT_SITE and checks `import llama_cpp` and GPU offload.
#
# Afterwards use the same environment:   export PYTHONPATH=/tmp/site:$PWD
#
# Environment overrides:
#   PYTHON                      interpreter (default python3; must be CPython 3.12)
#   KIT_SITE                    install target (default /tmp/site)
#   KIT_WORK                    source, build and wheel folders (default /tmp/kit-work)
#   CMAKE_ARGS                  default "-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF"
#   CMAKE_BUILD_PARALLEL_LEVEL  default 16
#   KIT_REQUIRE_GPU             1 (default when CMAKE_ARGS has GGML_CUDA=on): fail without GPU offload
#   OUT                         when set, the build log is written to $OUT/build.log
set -euo pipefail

LLAMA_VERSION=0.3.36
SDIST_NAME="llama_cpp_python-${LLAMA_VERSION}-trimmed.tar.gz"

die() { echo "gpu_kit_check: ERROR: $*" >&2; exit 1; }
say() { echo "gpu_kit_check: $*"; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

PYTHON=${PYTHON:-python3}
KIT_SITE=${KIT_SITE:-/tmp/site}
KIT_WORK=${KIT_WORK:-/tmp/kit-work}
export CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF"}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
if [[ -z ${KIT_REQUIRE_GPU:-} ]]; then
    if [[ ${CMAKE_ARGS,,} == *-dggml_cuda=on* ]]; then KIT_REQUIRE_GPU=1; else KIT_REQUIRE_GPU=0; fi
fi
LOG_DIR=${OUT:-$KIT_WORK}
LOG=$LOG_DIR/build.log

# ---------------------------------------------------------------- preflight (fail fast)
[[ -f pyproject.toml && -d edgeoss ]] || die "not the edgeoss repository root: $REPO"
shopt -s nullglob
WHEELS=(.whl/*.whl)
shopt -u nullglob
((${#WHEELS[@]} > 0)) || die "no wheels in $REPO/.whl (carry the ignored .whl folder along)"
SDIST=$REPO/.kit/$SDIST_NAME
[[ -f $SDIST ]] || die "missing $SDIST (carry the ignored .kit folder along)"

command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH"
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $PYVER == 3.12 ]] || die "$PYTHON is Python $PYVER; the carried binary wheels are cp312"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip"
"$PYTHON" -c 'import numpy' 2>/dev/null || die "numpy is not importable by $PYTHON (it is not carried)"

command -v cmake >/dev/null || die "cmake not on PATH (>= 3.21 needed)"
CMAKE_VER=$(cmake --version | sed -n '1s/[^0-9]*\([0-9][0-9.]*\).*/\1/p')
printf '%s\n%s\n' 3.21 "$CMAKE_VER" | sort -V -C || die "cmake $CMAKE_VER is older than 3.21"

mkdir -p "$KIT_SITE" "$KIT_WORK" "$LOG_DIR"
# shellcheck source=benchmarks/gpu_cuda_env.sh
source "$REPO/benchmarks/gpu_cuda_env.sh"

if [[ ${CMAKE_ARGS,,} == *-dggml_cuda=on* ]]; then
    cuda_env "$PYTHON" "$KIT_WORK"  # nvcc, CUDA_ROOT, LD_LIBRARY_PATH; cuBLAS and libcuda for CMake
    CMAKE_ARGS+=$CUDA_CMAKE_ARGS
fi

say "python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])') at $(command -v "$PYTHON")"
say "cmake $CMAKE_VER; ninja $(ninja --version 2>/dev/null || echo 'absent (make is used)')"
say "nvcc: $(command -v nvcc >/dev/null && nvcc --version | tail -1 || echo 'absent')"
if command -v nvidia-smi >/dev/null; then
    say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
fi

# ---------------------------------------------------------------- 1. wheels
export PYTHONPATH=$KIT_SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

STAMP=$KIT_SITE/.gpu_kit_wheels
WANT=$(printf '%s\n' "${WHEELS[@]}" | sort | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
    say "wheels already installed in $KIT_SITE"
else
    say "installing ${#WHEELS[@]} wheels into $KIT_SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$KIT_SITE" "${WHEELS[@]}" || die "installing the carried wheels failed"
    echo "$WANT" >"$STAMP"
fi
"$PYTHON" -c 'import scikit_build_core, packaging, pathspec' \
    || die "scikit-build-core is not importable from $KIT_SITE (needed for the non-isolated build)"

# ---------------------------------------------------------------- 2. llama-cpp-python
have_llama() {
    "$PYTHON" - "$LLAMA_VERSION" "$KIT_REQUIRE_GPU" <<'EOF' >/dev/null 2>&1
import sys
import llama_cpp
ok = llama_cpp.__version__ == sys.argv[1]
if sys.argv[2] == "1":
    ok = ok and bool(llama_cpp.llama_supports_gpu_offload())
sys.exit(0 if ok else 1)
EOF
}

ARGS_KEY=$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-12)
SRC=$KIT_WORK/src/llama_cpp_python-$LLAMA_VERSION
WHEEL_DIR=$KIT_WORK/wheels/$ARGS_KEY
export SKBUILD_BUILD_DIR=$KIT_WORK/build/$ARGS_KEY

if have_llama; then
    say "llama-cpp-python $LLAMA_VERSION already installed in $KIT_SITE"
else
    shopt -s nullglob
    BUILT=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
    shopt -u nullglob
    if ((${#BUILT[@]} == 0)); then
        SDIST_SUM=$(sha256sum "$SDIST" | cut -c1-16)
        if [[ ! -f $SRC/.unpacked || $(cat "$SRC/.unpacked") != "$SDIST_SUM" ]]; then
            rm -rf "$SRC" "$SKBUILD_BUILD_DIR"
            mkdir -p "$KIT_WORK/src"
            tar -xzf "$SDIST" -C "$KIT_WORK/src" || die "cannot unpack $SDIST"
            echo "$SDIST_SUM" >"$SRC/.unpacked"
        fi
        say "building llama-cpp-python $LLAMA_VERSION (CMAKE_ARGS=$CMAKE_ARGS," \
            "CMAKE_BUILD_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL); log: $LOG"
        say "CMake build dir $SKBUILD_BUILD_DIR is kept: re-run to resume an interrupted build"
        start=$SECONDS
        if ! "$PYTHON" -m pip wheel -v --no-index --no-deps --no-build-isolation --no-cache-dir \
            -w "$WHEEL_DIR" "$SRC" >"$LOG" 2>&1; then
            tail -n 40 "$LOG" >&2
            die "building llama-cpp-python failed after $((SECONDS - start)) s; full log: $LOG"
        fi
        BUILT=("$WHEEL_DIR"/llama_cpp_python-"$LLAMA_VERSION"-*.whl)
        say "built $(basename "${BUILT[0]}") ($(du -h "${BUILT[0]}" | cut -f1)) in $((SECONDS - start)) s"
    else
        say "reusing $(basename "${BUILT[0]}") from $WHEEL_DIR"
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$KIT_SITE" "${BUILT[0]}" || die "installing ${BUILT[0]} failed"
fi

# ---------------------------------------------------------------- 3. checks
"$PYTHON" -c "import llama_cpp; print(llama_cpp.__version__, llama_cpp.llama_supports_gpu_offload())" \
    || die "llama_cpp does not import"
"$PYTHON" -c "import edgeoss, edgeoss.cli, gguf, openai_harmony, platformdirs, psutil, rich, typer" \
    || die "edgeoss or one of its dependencies does not import"
have_llama || die "llama_cpp imports but is not $LLAMA_VERSION with GPU offload (KIT_REQUIRE_GPU=$KIT_REQUIRE_GPU)"
say "OK. Use: export PYTHONPATH=$KIT_SITE:$REPO${LD_LIBRARY_PATH:+ LD_LIBRARY_PATH=$LD_LIBRARY_PATH}"
