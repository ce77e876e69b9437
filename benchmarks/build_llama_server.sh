#!/usr/bin/env bash
# Build llama.cpp's own llama-server (CPU) from the llama.cpp source inside the
# llama-cpp-python 0.3.36 sdist, so that serve_bench.py can compare edgeoss
# with the peer on the same GGUF and the same llama.cpp.
#
#   bash benchmarks/build_llama_server.sh [SDIST] [BUILD_DIR]
#
# SDIST defaults to vendor/llama_cpp_python-0.3.36.tar.gz (get it with
# `pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d vendor`);
# BUILD_DIR defaults to /tmp/llama-server-build. Prints the binary's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SDIST=${1:-vendor/llama_cpp_python-0.3.36.tar.gz}
BUILD=${2:-/tmp/llama-server-build}
[[ -f $SDIST ]] || { echo "no sdist at $SDIST" >&2; exit 1; }
mkdir -p "$BUILD"
if [[ ! -d $BUILD/src ]]; then
    mkdir -p "$BUILD/src"
    tar -xzf "$SDIST" -C "$BUILD/src" --strip-components=3 --wildcards '*/vendor/llama.cpp/*'
fi
cmake -S "$BUILD/src" -B "$BUILD/out" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=ON ${LLAMA_CMAKE_ARGS:-} >"$BUILD/cmake.log" 2>&1 || { tail -20 "$BUILD/cmake.log"; exit 1; }
cmake --build "$BUILD/out" --target llama-server -j "$(nproc)" >"$BUILD/build.log" 2>&1 \
    || { tail -30 "$BUILD/build.log"; exit 1; }
echo "$BUILD/out/bin/llama-server"
