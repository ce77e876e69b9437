"""Which model a command runs, and on which backend: a store name, a .gguf
file or an ONNX folder, `demo`, or the best installed model for the plan.

`demo` is a tiny synthetic gpt-oss (real architecture and vocabulary, random
weights) that edgeoss writes, converts and verifies into the store on first
use, so the whole path from prompt to API works on any machine, offline.
Its output is random text, and everything that shows it says so.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeoss import onnx_folder, spec
from edgeoss.engines.llamacpp import Settings
from edgeoss.errors import EdgeossError, UsageError
from edgeoss.store import Manifest, ModelNotFoundError, Store

log = logging.getLogger(__name__)

DEMO = "demo"
DEMO_LABEL = "demo model: a tiny synthetic gpt-oss with random weights; its replies are random text"


class NoModelError(EdgeossError):
    exit_code = 20


BACKENDS = ("llama.cpp", "ort")
"""What --backend accepts: llama.cpp runs GGUF files, ort (onnxruntime-genai) runs ONNX folders."""


@dataclass(frozen=True)
class Chosen:
    name: str
    path: Path
    manifest: Manifest | None
    settings: Settings
    is_demo: bool = False
    backend: str = "llama.cpp"  # or "ort"
    provider: str = "cpu"  # onnxruntime-genai's execution provider, for backend "ort"


def backend_of(fmt: str) -> str | None:
    """The backend that runs a store format; None for one nothing runs (a checkpoint)."""
    if fmt == "gguf":
        return "llama.cpp"
    if fmt.startswith("onnx"):
        return "ort"
    return None


def _check_backend(name: str, runs_on: str, wanted: str | None) -> None:
    if wanted not in (None, runs_on):
        what = "a GGUF model (llama.cpp)" if runs_on == "llama.cpp" else "an ONNX model (onnxruntime-genai)"
        raise NoModelError(
            f"{name} is {what}; --backend {wanted} cannot run it",
            hint="leave --backend out, or choose a model of that backend (edgeoss list)",
        )


def _onnx(name: str, path: Path, manifest: Manifest | None, fmt: str, plan: object | None) -> Chosen:
    from edgeoss.engines import ortgenai

    context = ortgenai.DEFAULT_CONTEXT
    if plan is not None and getattr(plan, "fits", False):
        context = min(context, int(getattr(plan, "context_length", context)))
    # The format names the provider the folder was exported for (onnx_folder: "onnx-" + provider).
    provider = fmt.removeprefix("onnx-")
    provider = provider if provider in ortgenai.PROVIDERS else "cpu"
    settings = Settings(context_length=context, n_gpu_layers=0 if provider == "cpu" else 999)
    return Chosen(name, path, manifest, settings, backend="ort", provider=provider)


def ensure_demo(store: Store) -> Manifest:
    """The demo model, built on first use (a few seconds)."""
    try:
        return store.get(DEMO)
    except ModelNotFoundError:
        pass
    from edgeoss import importer, synth
    from edgeoss.gguf import convert

    log.info("building the demo model (tiny, random weights)")
    with tempfile.TemporaryDirectory(prefix="edgeoss-demo-") as tmp:
        ckpt = synth.write_checkpoint(Path(tmp) / "ckpt", synth.plan(synth.hparams_for("tiny"), seed=0))
        gguf = Path(tmp) / "demo.gguf"
        convert.convert(ckpt, gguf, name="edgeoss demo (random weights)")
        manifest = importer.import_path(
            gguf, name=DEMO, store=store, origin={"kind": "demo", "path": "built by edgeoss"}
        )
    return manifest


def _settings_for(manifest: Manifest | None, plan: object | None) -> Settings:
    if (
        plan is not None
        and getattr(plan, "fits", False)
        and str(getattr(plan, "backend", "")).startswith("llama.cpp")
        and manifest is not None
        and manifest.variant == getattr(plan, "variant", None)
    ):
        return Settings.from_plan(plan)
    on_gpu = plan is not None and str(getattr(plan, "backend", "")).endswith(("cuda", "metal"))
    return Settings(context_length=8192, n_gpu_layers=999 if on_gpu else 0)


def choose(
    model: str | None, store: Store | None = None, plan: object | None = None, backend: str | None = None
) -> Chosen:
    """MODEL (a store name, a .gguf file, an ONNX folder, `demo`), or the best
    installed model for the plan; `backend` ("llama.cpp" or "ort") narrows it."""
    if backend not in (None, *BACKENDS):
        raise UsageError(f"--backend {backend!r}", hint=f"choose one of {', '.join(BACKENDS)}")
    store = store or Store()
    if model == DEMO:
        _check_backend("the demo model", "llama.cpp", backend)
        manifest = ensure_demo(store)
        return Chosen(DEMO, store.entry_path(manifest), manifest, Settings(context_length=4096), is_demo=True)
    if model is not None:
        path = Path(model).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            _check_backend(path.name, "llama.cpp", backend)
            return Chosen(path.name, path, None, _settings_for(None, plan))
        if path.is_dir() and (path / onnx_folder.CONFIG_FILE).is_file():
            _check_backend(path.name, "ort", backend)
            report = onnx_folder.verify(path)
            if not report.ok:
                raise report.error()
            return _onnx(path.name, path, None, report.format, plan)
        manifest = store.get(model)
        runs_on = backend_of(manifest.format)
        if runs_on is None:
            raise NoModelError(
                f"{model} is a {manifest.format} checkpoint, which no engine runs as it is",
                hint=f"convert it: edgeoss convert {store.entry_path(manifest)} -o MODEL.gguf, then edgeoss import",
            )
        _check_backend(model, runs_on, backend)
        return _chosen(manifest, store, plan)
    installed = [
        m
        for m in store.list()
        if m.name != DEMO and backend_of(m.format) is not None and backend in (None, backend_of(m.format))
    ]
    if not installed:
        which = {"llama.cpp": "GGUF ", "ort": "ONNX "}.get(backend or "", "")
        raise NoModelError(
            f"no {which}model is installed",
            hint="edgeoss pull (downloads the planned variant), edgeoss import PATH, or run the demo model: MODEL=demo",
        )
    planned = getattr(plan, "variant", None)
    planned_format = str((getattr(plan, "artifact", None) or {}).get("format", "gguf"))
    ranked = sorted(
        installed,
        key=lambda m: (m.variant != planned, m.format != planned_format, m.variant not in spec.VARIANTS, m.name),
    )
    return _chosen(ranked[0], store, plan)


def _chosen(manifest: Manifest, store: Store, plan: object | None) -> Chosen:
    path = store.entry_path(manifest)
    if backend_of(manifest.format) == "ort":
        return _onnx(manifest.name, path, manifest, manifest.format, plan)
    return Chosen(manifest.name, path, manifest, _settings_for(manifest, plan))
