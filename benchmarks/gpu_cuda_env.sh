# shellcheck shell=bash
# Sourced by benchmarks/gpu_kit_check.sh and benchmarks/gpu_speed.sh: find the CUDA toolkit on a
# bare GPU machine and say how to build against it and run with it.
#
#   cuda_env PYTHON WORK_DIR
#
# needs the caller's die() and say(). It sets, and exports where a child process needs them:
#   PATH              with nvcc's folder when nvcc was not on it (/usr/local/cuda/bin, ...)
#   CUDA_ROOT         the toolkit root (include/cuda_runtime.h)
#   LD_LIBRARY_PATH   the toolkit's libraries, cuBLAS's (when taken from a pip wheel) and the
#                     driver's folder (when libcuda was found outside the loader's cache)
#   CUDA_CMAKE_ARGS   extra CMake arguments, space-separated (cuBLAS and libcuda locations)
# WORK_DIR receives a folder of links to cuBLAS's headers when cuBLAS comes from a pip wheel.

prepend_ld() { export LD_LIBRARY_PATH=$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; }

cuda_env() {
    local python=$1 work=$2 d f
    CUDA_CMAKE_ARGS=
    if ! command -v nvcc >/dev/null; then
        for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin /usr/local/cuda-12/bin; do
            if [[ -x $d/nvcc ]]; then export PATH=$d:$PATH; break; fi
        done
        command -v nvcc >/dev/null || die "CUDA build asked for but nvcc is not on PATH nor in /usr/local/cuda/bin"
    fi
    # nvcc may be a wrapper script outside the toolkit: take the first root that has the headers.
    CUDA_ROOT=
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")" \
        /usr/local/cuda; do
        if [[ -n $d && -z $CUDA_ROOT ]] && compgen -G "$d/include/cuda_runtime.h" >/dev/null; then CUDA_ROOT=$d; fi
    done
    [[ -n $CUDA_ROOT ]] || die "nvcc found but no CUDA toolkit with include/cuda_runtime.h (set CUDA_HOME)"
    for d in "$CUDA_ROOT/lib" "$CUDA_ROOT/lib64" "$CUDA_ROOT/targets/x86_64-linux/lib"; do
        if [[ -d $d ]]; then prepend_ld "$d"; fi
    done

    # cuBLAS: a toolkit assembled from NVIDIA's pip wheels may have nvcc and cudart but no
    # cuBLAS. Then take it from the nvidia-cublas wheel that PyTorch's environment holds:
    # headers only through a folder of links (its include folder also holds other CUDA
    # headers that must not shadow the toolkit's), libraries by full path (no libcublas.so).
    if ! compgen -G "$CUDA_ROOT/include/cublas_v2.h" >/dev/null \
        && ! compgen -G "$CUDA_ROOT/targets/*/include/cublas_v2.h" >/dev/null; then
        local inc libdir so solt shim
        inc=$("$python" - <<'EOF'
import glob, os, sys
for base in sys.path:
    for pattern in ("nvidia/cu*/include/cublas_v2.h", "nvidia/cublas/include/cublas_v2.h"):
        hits = sorted(glob.glob(os.path.join(base or ".", pattern)))
        if hits:
            print(os.path.dirname(os.path.realpath(hits[-1])))
            sys.exit()
EOF
)
        [[ -n $inc ]] || die "no cuBLAS: neither $CUDA_ROOT/include/cublas_v2.h nor a nvidia-cublas wheel on $python's path"
        libdir=$(dirname "$inc")/lib
        so=$(compgen -G "$libdir/libcublas.so*" | sort | head -1 || true)
        solt=$(compgen -G "$libdir/libcublasLt.so*" | sort | head -1 || true)
        [[ -n $so && -n $solt ]] || die "cuBLAS headers in $inc but no libcublas/libcublasLt in $libdir"
        shim=$work/cublas-include
        mkdir -p "$shim"
        ln -sf "$inc"/cublas*.h "$shim"/
        CUDA_CMAKE_ARGS+=" -DCUDA_cublas_LIBRARY=$so -DCUDA_cublasLt_LIBRARY=$solt -DCMAKE_CUDA_FLAGS=-I$shim"
        prepend_ld "$libdir"
        say "cuBLAS from $libdir (not in the toolkit at $CUDA_ROOT)"
    fi

    # The CUDA driver library (libcuda) is linked for virtual memory management; the toolkit may
    # lack the stub, so point CMake at the driver's own library when one can be found.
    if ! compgen -G "$CUDA_ROOT/lib64/stubs/libcuda.so" >/dev/null \
        && ! compgen -G "$CUDA_ROOT/targets/*/lib/stubs/libcuda.so" >/dev/null; then
        local libcuda
        libcuda=$(ldconfig -p 2>/dev/null | awk '$1 ~ /^libcuda\.so(\.1)?$/ && /x86-64/ {print $NF; exit}' || true)
        for f in /usr/local/nvidia/lib64/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libcuda.so.1; do
            if [[ -z $libcuda && -e $f ]]; then libcuda=$f; fi
        done
        if [[ -n $libcuda ]]; then
            CUDA_CMAKE_ARGS+=" -DCUDA_cuda_driver_LIBRARY=$libcuda"
            say "CUDA driver library: $libcuda"
        else
            say "warning: no libcuda found (ldconfig, /usr/local/nvidia/lib64); CMake must find it itself"
        fi
    fi
    # at run time: the driver from a folder the loader's cache may not list (containers)
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        if [[ -e $d/libcuda.so.1 && :${LD_LIBRARY_PATH:-}: != *:$d:* ]]; then prepend_ld "$d"; fi
    done
    export CUDA_ROOT CUDA_CMAKE_ARGS
}
