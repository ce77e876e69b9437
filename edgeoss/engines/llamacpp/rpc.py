"""llama.cpp's RPC backend through the binding's own ggml (ctypes): the worker's
server, the main's remote devices, and what a lost worker does to a process.

- serve(): ggml_backend_rpc_start_server on loopback, with this machine's devices
  (the GPUs, else the CPU: as llama.cpp's rpc-server picks them).
- remote_devices(): ggml_backend_rpc_add_server per worker, and its devices.
- placed_on(): llama-cpp-python's Llama() has no argument for the devices or the
  split, so, as placement.py does for the experts, its model defaults are
  patched for the length of the load.
- on_abort(): llama.cpp's RPC client ends the process (GGML_ABORT) when a worker
  goes away mid-run. ggml calls its abort callback first; edgeoss's callback
  records the message and parks that thread instead of returning into abort(),
  so the server stays up, fails the requests that were waiting on the worker
  and reports it. The engine cannot be used again in this process (llama.cpp
  keeps the broken connection), which the error says.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeoss.engines.llamacpp import binding as llama_binding
from edgeoss.errors import EngineError, WorkerError

log = logging.getLogger(__name__)

SPLIT_MODE_LAYER = 1  # llama_split_mode: whole layers to each device
DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "iGPU", 3: "accelerator"}
BUILD_HINT = (
    "install llama-cpp-python built with RPC: "
    'CMAKE_ARGS="-DGGML_RPC=on" pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36'
)
_LIBS = {
    "linux": ("libggml.so.0", "libggml-base.so.0"),
    "darwin": ("libggml.dylib", "libggml-base.dylib"),
    "win32": ("ggml.dll", "ggml-base.dll"),
}


@functools.cache
def _ggml() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    """(libggml, libggml-base) as the binding loaded them, with the signatures used here."""
    llama_binding.load()
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    names = _LIBS.get(platform)
    if names is None:
        raise EngineError(f"llama.cpp's RPC is not wired up for {sys.platform}")
    lib_dir = Path(str(llama_binding.load().__file__)).parent / "lib"
    libs = []
    for name in names:
        try:
            libs.append(ctypes.CDLL(name))
        except OSError:
            libs.append(ctypes.CDLL(str(lib_dir / name)))
    ggml, base = libs
    vp, sz, cp = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    ggml.ggml_backend_reg_by_name.argtypes, ggml.ggml_backend_reg_by_name.restype = [cp], vp
    ggml.ggml_backend_dev_count.argtypes, ggml.ggml_backend_dev_count.restype = [], sz
    ggml.ggml_backend_dev_get.argtypes, ggml.ggml_backend_dev_get.restype = [sz], vp
    base.ggml_backend_reg_get_proc_address.argtypes = [vp, cp]
    base.ggml_backend_reg_get_proc_address.restype = vp
    base.ggml_backend_reg_dev_count.argtypes, base.ggml_backend_reg_dev_count.restype = [vp], sz
    base.ggml_backend_reg_dev_get.argtypes, base.ggml_backend_reg_dev_get.restype = [vp, sz], vp
    base.ggml_backend_dev_name.argtypes, base.ggml_backend_dev_name.restype = [vp], cp
    base.ggml_backend_dev_description.argtypes, base.ggml_backend_dev_description.restype = [vp], cp
    base.ggml_backend_dev_type.argtypes, base.ggml_backend_dev_type.restype = [vp], ctypes.c_int
    base.ggml_backend_dev_memory.argtypes = [vp, ctypes.POINTER(sz), ctypes.POINTER(sz)]
    base.ggml_backend_dev_memory.restype = None
    return ggml, base


def _rpc_reg() -> int | None:
    ggml, _ = _ggml()
    reg = ggml.ggml_backend_reg_by_name(b"RPC")
    return int(reg) if reg else None


def unsupported_reason() -> str | None:
    """None when this llama-cpp-python was built with RPC; otherwise why not."""
    try:
        reg = _rpc_reg()
    except (EngineError, OSError, AttributeError) as exc:
        return str(exc)
    return None if reg else "this llama-cpp-python was built without llama.cpp's RPC backend (-DGGML_RPC=on)"


def require() -> None:
    why = unsupported_reason()
    if why is not None:
        raise EngineError(why, hint=BUILD_HINT)


@dataclass(frozen=True)
class LocalDevice:
    name: str  # ggml's: CPU, CUDA0, Metal
    description: str
    kind: str  # CPU, GPU, iGPU, accelerator
    free_bytes: int
    total_bytes: int
    handle: int


def _describe(handle: int) -> LocalDevice:
    _, base = _ggml()
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    base.ggml_backend_dev_memory(handle, ctypes.byref(free), ctypes.byref(total))
    return LocalDevice(
        (base.ggml_backend_dev_name(handle) or b"").decode(),
        (base.ggml_backend_dev_description(handle) or b"").decode(),
        DEVICE_TYPES.get(base.ggml_backend_dev_type(handle), "other"),
        int(free.value),
        int(total.value),
        handle,
    )


def local_devices() -> list[LocalDevice]:
    """This machine's ggml devices (no RPC ones)."""
    ggml, _ = _ggml()
    out = [_describe(int(ggml.ggml_backend_dev_get(i))) for i in range(int(ggml.ggml_backend_dev_count()))]
    return [d for d in out if not d.name.startswith("RPC")]


def served_devices(names: Sequence[str] = ()) -> list[LocalDevice]:
    """The devices a worker serves: those named, else its GPUs, else its CPU (llama.cpp's rpc-server's choice)."""
    devices = local_devices()
    if names:
        by_name = {d.name: d for d in devices}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise EngineError(
                f"no device named {unknown[0]}", hint=f"the devices here are: {', '.join(by_name) or 'none'}"
            )
        return [by_name[n] for n in names]
    accelerators = [d for d in devices if d.kind != "CPU"]
    return accelerators or [d for d in devices if d.kind == "CPU"][:1]


def serve(endpoint: str, devices: Sequence[LocalDevice], threads: int, cache_dir: Path | None = None) -> None:
    """Run llama.cpp's RPC server on `endpoint` (loopback: the gate is its front door); blocks."""
    require()
    _, base = _ggml()
    start = base.ggml_backend_reg_get_proc_address(_rpc_reg(), b"ggml_backend_rpc_start_server")
    if not start:
        raise EngineError("this llama.cpp's RPC backend has no server", hint=BUILD_HINT)
    prototype = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)
    )
    handles = (ctypes.c_void_p * len(devices))(*[d.handle for d in devices])
    prototype(start)(endpoint.encode(), str(cache_dir).encode() if cache_dir else None, threads, len(devices), handles)
    raise EngineError(f"llama.cpp's RPC server on {endpoint} stopped (see the lines above)")


_added: dict[str, list[int]] = {}
_add_lock = threading.Lock()


def remote_devices(endpoint: str) -> list[int]:
    """The devices of the worker at `endpoint` (connects; protocol.probe() must have
    checked it first: llama.cpp aborts the process on a worker it cannot reach)."""
    require()
    with _add_lock:
        if endpoint in _added:
            return _added[endpoint]
        _, base = _ggml()
        add = base.ggml_backend_reg_get_proc_address(_rpc_reg(), b"ggml_backend_rpc_add_server")
        reg = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(add)(endpoint.encode())
        if not reg:
            raise EngineError(f"the worker at {endpoint} offers no device")
        handles = [int(base.ggml_backend_reg_dev_get(reg, i)) for i in range(int(base.ggml_backend_reg_dev_count(reg)))]
        _added[endpoint] = handles
        return handles


@contextlib.contextmanager
def placed_on(devices: Sequence[int], split: Sequence[float]) -> Iterator[None]:
    """While active, llama_cpp.Llama loads onto `devices` (in this order), whole layers
    in the proportions of `split`; the layers not offloaded (n_gpu_layers) stay on the CPU."""
    if not devices:
        yield
        return
    binding = llama_binding.load().llama_cpp
    handles = (ctypes.c_void_p * (len(devices) + 1))(*devices, None)
    max_devices = int(binding.llama_max_devices())
    if len(split) > max_devices:
        raise EngineError(f"{len(split)} devices; this llama.cpp splits across {max_devices} at most")
    proportions = (ctypes.c_float * max_devices)(*split)
    original = binding.llama_model_default_params

    def with_devices() -> Any:
        params = original()
        params.devices = ctypes.cast(handles, ctypes.c_void_p)
        params.split_mode = SPLIT_MODE_LAYER
        params.tensor_split = proportions
        return params

    binding.llama_model_default_params = with_devices
    try:
        yield
    finally:
        binding.llama_model_default_params = original


def reachable(endpoint: str, timeout_s: float = 2.0) -> bool:
    """Whether something still listens at `endpoint` (a lost worker's port refuses)."""
    import socket

    from edgeoss.cluster.protocol import split_endpoint

    try:
        with socket.create_connection(split_endpoint(endpoint), timeout=timeout_s):
            return True
    except OSError:
        return False


def lost(endpoints: Sequence[str]) -> tuple[str, ...]:
    """Which of `endpoints` no longer answer (all of them when that cannot be told)."""
    gone = tuple(e for e in endpoints if not reachable(e))
    return gone or tuple(endpoints)


LOST_HINT = "hint: start the worker again (edgeoss worker), then this command"
AbortListener = Callable[[str], None]
_SOURCE_LINE = re.compile(r"^\S+\.(?:c|cpp|h):\d+:\s*")
_listeners: list[AbortListener] = []
_callback: Any = None


def forget(listener: AbortListener) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)


def on_abort(listener: AbortListener) -> None:
    """Call `listener(message)` when llama.cpp would abort because of a worker (the
    thread that hit it is parked, not ended); other aborts still end the process."""
    global _callback
    _listeners.append(listener)
    if _callback is not None:
        return
    _, base = _ggml()
    prototype = ctypes.CFUNCTYPE(None, ctypes.c_char_p)

    def abort_callback(message: bytes | None) -> None:
        text = (message or b"").decode(errors="replace").strip()
        if "RPC" not in text and "connect" not in text:
            return  # not a worker's: abort() as llama.cpp meant
        text = _SOURCE_LINE.sub("", text)  # ggml's "/path/of/the/build/ggml-rpc.cpp:566: " says nothing to a user
        log.error("a worker was lost: %s", text)
        if not _listeners:
            # No engine to hand it to (the model was loading): llama.cpp's thread cannot come
            # back, so the process ends here, saying why, instead of in abort()'s core dump.
            os.write(2, f"\nerror: a worker was lost while the model loaded ({text})\n{LOST_HINT}\n".encode())
            os._exit(WorkerError.exit_code)
        for each in list(_listeners):
            try:
                each(text)
            except Exception:  # a listener's failure must not end the process either
                log.exception("while reporting a lost worker")
        threading.Event().wait()  # parked for good: returning would abort the process

    _callback = prototype(abort_callback)
    base.ggml_set_abort_callback.argtypes = [prototype]
    base.ggml_set_abort_callback.restype = ctypes.c_void_p
    base.ggml_set_abort_callback(_callback)
