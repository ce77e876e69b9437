"""One table of backends: each engine, the devices it drives, the formats it
runs, and every spelling of them.

An engine is a library that runs a model (llama.cpp, onnxruntime-genai); a
backend is an engine on one device (llama.cpp on CUDA, onnxruntime-genai's
WebGPU execution provider). Every module that names one reads it from here:
the planner, the store's manifests, the catalog, the CLI's options, the
server's /health and the engine loader. The spellings are part of edgeoss's
interface (plans' JSON, manifests on disk, CLI options), so they stay as
they were; only where they are written down changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeoss.errors import UsageError


@dataclass(frozen=True)
class EngineKind:
    key: str
    """In manifests, the catalog and plans' backend keys: "llama.cpp", "ort-genai"."""
    option: str
    """What `run`, `chat` and `serve --backend` take: "llama.cpp", "ort"."""
    label: str
    """What people see (/health, banners, `run --json`): "llama.cpp", "onnxruntime-genai"."""
    format_label: str
    """The kind of model it runs, in words: "GGUF", "ONNX"."""
    formats: tuple[str, ...]
    """Store formats it runs."""
    devices: tuple[str, ...]
    """Devices (execution providers for onnxruntime-genai), best first."""

    def runs(self, fmt: str) -> bool:
        return fmt in self.formats

    @property
    def one_sequence(self) -> bool:
        """Decodes one sequence at a time (one generator, one KV cache): the server queues the rest."""
        return self is ORT_GENAI


LLAMA_CPP = EngineKind("llama.cpp", "llama.cpp", "llama.cpp", "GGUF", ("gguf",), ("cuda", "metal", "cpu"))
ORT_GENAI = EngineKind(
    "ort-genai",
    "ort",
    "onnxruntime-genai",
    "ONNX",
    ("onnx-cuda", "onnx-webgpu", "onnx-dml", "onnx-cpu"),
    ("cuda", "webgpu", "dml", "cpu"),
)
ENGINES = (LLAMA_CPP, ORT_GENAI)
ENGINE_OPTIONS = tuple(e.option for e in ENGINES)
"""What `run`, `chat` and `serve --backend` accept."""


@dataclass(frozen=True)
class Backend:
    engine: EngineKind
    device: str

    @property
    def key(self) -> str:
        """A plan's `backend`: "llama.cpp-cuda", "ort-genai-webgpu"."""
        return f"{self.engine.key}-{self.device}"

    @property
    def option(self) -> str:
        """What `plan --backend` takes for exactly this backend: "cuda", "ort-webgpu"."""
        return self.device if self.engine is LLAMA_CPP else f"ort-{self.device}"

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def format(self) -> str:
        """The store format it runs: "gguf" for llama.cpp, "onnx-PROVIDER" for onnxruntime-genai."""
        return "gguf" if self.engine is LLAMA_CPP else onnx_format(self.device)


BACKENDS = tuple(Backend(engine, device) for engine in ENGINES for device in engine.devices)
PLAN_OPTIONS = (
    *(b.option for b in BACKENDS if b.engine is LLAMA_CPP),
    ORT_GENAI.option,
    *(b.option for b in BACKENDS if b.engine is ORT_GENAI),
)
"""What `plan --backend` accepts: llama.cpp's devices, or onnxruntime-genai as ort or ort-PROVIDER."""


def engine_option(option: str | None) -> EngineKind | None:
    """The engine a `--backend` option names (None: any); a clear error for anything else."""
    if option is None:
        return None
    for engine in ENGINES:
        if option == engine.option:
            return engine
    raise UsageError(f"--backend {option!r}", hint=f"choose one of {', '.join(ENGINE_OPTIONS)}")


def check_plan_option(option: str | None) -> None:
    if option is not None and option not in PLAN_OPTIONS:
        raise UsageError(f"--backend {option!r}", hint=", ".join(PLAN_OPTIONS))


def plan_option_matches(option: str | None, backend: Backend) -> bool:
    """Whether `plan --backend OPTION` allows this backend."""
    return option is None or option == backend.option or (backend.engine is ORT_GENAI and option == ORT_GENAI.option)


def engine_of_format(fmt: str) -> EngineKind | None:
    """The engine that runs a store format; None for one nothing runs (an original checkpoint)."""
    return next((e for e in ENGINES if e.runs(fmt)), None)


def backend_of_key(key: str) -> Backend | None:
    """The backend of a plan's `backend` key; None for "" (nothing fits) or an unknown key."""
    return next((b for b in BACKENDS if b.key == key), None)


def find(engine: EngineKind, device: str) -> Backend:
    return next(b for b in BACKENDS if b.engine is engine and b.device == device)


def onnx_format(provider: str) -> str:
    """The store format of an ONNX folder exported for an execution provider."""
    return f"onnx-{provider}"


def provider_of_format(fmt: str) -> str:
    """The execution provider an ONNX format was exported for ("cpu" for one that names none known)."""
    provider = fmt.removeprefix("onnx-")
    return provider if provider in ORT_GENAI.devices else "cpu"
