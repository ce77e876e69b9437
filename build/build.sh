#!/usr/bin/env bash
# Build the edgeoss binary with PyInstaller from the current Python environment.
#
#   bash build/build.sh [--onedir|--onefile|--both] [--portable] [--dist DIR]
#
#   --onedir    dist/edgeoss/ (edgeoss + _internal/): what the installers ship; starts fast
#   --onefile   dist/edgeoss-linux-x86_64: one portable file (unpacks itself on each start)
#   --portable  first rebuild llama-cpp-python with GGML_NATIVE=OFF, GGML_BACKEND_DL=ON and
#               GGML_CPU_ALL_VARIANTS=ON, so the binary runs on any x86-64 CPU and picks the
#               best CPU kernels at run time (14 CPU variants: about 16 minutes on 2 cores; the wheel is kept in
#               ~/.cache/edgeoss-build). Without it the binary carries this environment's
#               llama-cpp-python, built for this machine's CPU.
#
# The environment needs edgeoss installed with its extras ('.[llama,ort,tray]') and pyinstaller.
# CUDA: build llama-cpp-python with CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=on" first; the CUDA runtime
# libraries are then collected with it (large: the driver is not, it comes from the system).
# Metal (macOS): CMAKE_ARGS="-DGGML_METAL=on -DGGML_RPC=on"; build on the oldest macOS you support.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=both
portable=0
dist=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --onedir) mode=onedir ;;
        --onefile) mode=onefile ;;
        --both) mode=both ;;
        --portable) portable=1 ;;
        --dist) dist=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

python=${PYTHON:-python}
version=$("$python" -c 'import llama_cpp; print(llama_cpp.__version__)')

if [ "$portable" = 1 ]; then
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/edgeoss-build/llama-portable-$version"
    if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        mkdir -p "$cache"
        sdist=$(ls vendor/llama_cpp_python-"$version".tar.gz 2>/dev/null || true)
        source=${sdist:-llama-cpp-python==$version}
        echo "building a portable llama-cpp-python $version (this takes a while)" >&2
        # --no-cache-dir: pip's wheel cache does not key on CMAKE_ARGS, so a native wheel
        # could be taken for this one or this one for a native one.
        # CMAKE_INSTALL_BINDIR: ggml installs its backend modules (libggml-cpu-haswell.so, ...) there;
        # by default that is the wheel's top-level bin/, outside the package.
        CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib" \
            "$python" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$cache" "$source"
    fi
    "$python" -m pip install --no-deps --force-reinstall "$cache"/llama_cpp_python-*.whl
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build() {
    EDGEOSS_ONEFILE=$1 "$python" -m PyInstaller --noconfirm --clean --log-level WARN \
        --workpath "$work/build-$1" --distpath "$work/dist-$1" build/edgeoss.spec
}
mkdir -p "$dist"
if [ "$mode" != onefile ]; then
    build 0
    rm -rf "$dist/edgeoss"
    mv "$work/dist-0/edgeoss" "$dist/edgeoss"
    # llama-cpp-python opens libllama.so by path and libmtmd.so needs it as libllama.so.0:
    # one file, two names.
    lib="$dist/edgeoss/_internal/llama_cpp/lib"
    if [ -f "$lib/libllama.so" ] && [ -f "$lib/libllama.so.0" ] && cmp -s "$lib/libllama.so" "$lib/libllama.so.0"; then
        ln -sf libllama.so.0 "$lib/libllama.so"
    fi
    echo "onedir:  $dist/edgeoss/edgeoss ($(du -sh "$dist/edgeoss" | cut -f1))"
fi
if [ "$mode" != onedir ]; then
    build 1
    mv "$work/dist-1/edgeoss" "$dist/edgeoss-linux-$(uname -m)"
    echo "onefile: $dist/edgeoss-linux-$(uname -m) ($(du -sh "$dist/edgeoss-linux-$(uname -m)" | cut -f1))"
fi
