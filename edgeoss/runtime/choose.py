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
from typing import TYPE_CHECKING

from edgeoss import backends, spec
from edgeoss.backends import LLAMA_CPP, ORT_GENAI, EngineKind
from edgeoss.engines.base import LoadSettings
from edgeoss.errors import ModelNotFoundError, NoModelError
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.store import Manifest, Store

if TYPE_CHECKING:
    from edgeoss.planning.planner import Plan

log = logging.getLogger(__name__)

DEMO = "demo"
DEMO_LABEL = "demo model: a tiny synthetic gpt-oss with random weights; its replies are random text"
DEMO_CONTEXT = 16384
"""Per sequence: what common clients send fits (Open WebUI's default ~36 tool definitions
are several thousand tokens). The demo's KV cache is tiny (2 layers, 64 wide)."""
DEMO_PARALLEL = 4
"""Sequences the demo serves at once by default: a client's background requests (Open WebUI's
titles, tags and follow-ups) take their own slots and never hold the user's chat."""
DEMO_MAX_TOKENS = 512
"""The demo's budget for a request that names none: a random model never ends a reply by itself."""
DEFAULT_CONTEXT = 8192  # a model the plan is not about (another variant, a custom shape)


@dataclass(frozen=True)
class Chosen:
    """The model a command runs, the engine that runs it and how it is loaded."""

    name: str
    path: Path
    manifest: Manifest | None
    settings: LoadSettings
    is_demo: bool = False
    engine: EngineKind = LLAMA_CPP

    @property
    def placement(self) -> str:
        """Where it will run, in words (before the engine says where it really does)."""
        if self.engine is ORT_GENAI:
            return f"{self.settings.device} execution provider"
        return self.settings.placement()

    @property
    def quantization(self) -> str:
        if self.engine is ORT_GENAI:
            return self.manifest.format if self.manifest is not None else "onnx"
        return "MXFP4"

    @property
    def size_bytes(self) -> int:
        if self.manifest is not None:
            return self.manifest.total_bytes
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return self.path.stat().st_size


def _check_engine(name: str, runs_on: EngineKind, wanted: EngineKind | None) -> None:
    if wanted not in (None, runs_on):
        article = "an" if runs_on.format_label[0] in "AEIOU" else "a"
        raise NoModelError(
            f"{name} is {article} {runs_on.format_label} model ({runs_on.label}); "
            f"--backend {wanted.option} cannot run it",
            hint="leave --backend out, or choose a model of that backend (edgeoss list)",
        )


def _onnx(name: str, path: Path, manifest: Manifest | None, fmt: str, plan: Plan | None) -> Chosen:
    from edgeoss.engines.ortgenai.engine import DEFAULT_CONTEXT

    context = DEFAULT_CONTEXT
    if plan is not None and plan.fits:
        context = min(context, plan.context_length)
    # The format names the provider the folder was exported for ("onnx-" + provider).
    settings = LoadSettings(context_length=context, device=backends.provider_of_format(fmt))
    return Chosen(name, path, manifest, settings, engine=ORT_GENAI)


def ensure_demo(store: Store) -> Manifest:
    """The demo model, built on first use (a few seconds)."""
    try:
        return store.get(DEMO)
    except ModelNotFoundError:
        pass
    from edgeoss.weights import importer, synth
    from edgeoss.weights.gguf import convert

    log.info("building the demo model (tiny, random weights)")
    with tempfile.TemporaryDirectory(prefix="edgeoss-demo-") as tmp:
        ckpt = synth.write_checkpoint(Path(tmp) / "ckpt", synth.plan(synth.hparams_for("tiny"), seed=0))
        gguf = Path(tmp) / "demo.gguf"
        convert.convert(ckpt, gguf, name="edgeoss demo (random weights)")
        manifest = importer.import_path(
            gguf, name=DEMO, store=store, origin={"kind": "demo", "path": "built by edgeoss"}
        )
    return manifest


def _llama_settings(manifest: Manifest | None, plan: Plan | None) -> LoadSettings:
    backend = backends.backend_of_key(plan.backend) if plan is not None else None
    if (
        plan is not None
        and plan.fits
        and backend is not None
        and backend.engine is LLAMA_CPP
        and manifest is not None
        and manifest.variant == plan.variant
    ):
        return LoadSettings.from_plan(plan, backend.device)
    # Not the planned model: all layers on the planned GPU, if there is one.
    on_gpu = backend is not None and backend.engine is LLAMA_CPP and backend.on_gpu
    device = backend.device if backend is not None and on_gpu else "cpu"
    return LoadSettings(context_length=DEFAULT_CONTEXT, device=device, n_gpu_layers=999 if on_gpu else 0)


def choose(
    model: str | None, store: Store | None = None, plan: Plan | None = None, backend: str | None = None
) -> Chosen:
    """MODEL (a store name, a .gguf file, an ONNX folder, `demo`), or the best
    installed model for the plan; `backend` (a --backend option) narrows it."""
    wanted = backends.engine_option(backend)
    store = store or Store()
    if model == DEMO:
        _check_engine("the demo model", LLAMA_CPP, wanted)
        manifest = ensure_demo(store)
        settings = LoadSettings(context_length=DEMO_CONTEXT)
        return Chosen(DEMO, store.entry_path(manifest), manifest, settings, is_demo=True)
    if model is not None:
        path = Path(model).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            _check_engine(path.name, LLAMA_CPP, wanted)
            return Chosen(path.name, path, None, _llama_settings(None, plan))
        if path.is_dir() and (path / onnx_checks.CONFIG_FILE).is_file():
            _check_engine(path.name, ORT_GENAI, wanted)
            report = onnx_checks.verify(path)
            if not report.ok:
                raise report.error()
            return _onnx(path.name, path, None, report.format, plan)
        manifest = store.get(model)
        runs_on = backends.engine_of_format(manifest.format)
        if runs_on is None:
            raise NoModelError(
                f"{model} is a {manifest.format} checkpoint, which no engine runs as it is",
                hint=f"convert it: edgeoss convert {store.entry_path(manifest)} -o MODEL.gguf, then edgeoss import",
            )
        _check_engine(model, runs_on, wanted)
        return _chosen(manifest, store, plan)
    installed = [m for m in runnable(store) if wanted in (None, backends.engine_of_format(m.format))]
    if not installed:
        which = f"{wanted.format_label} " if wanted is not None else ""
        raise NoModelError(
            f"no {which}model is installed",
            hint="edgeoss pull (downloads the planned variant), edgeoss import PATH, or run the demo model: MODEL=demo",
        )
    planned = plan.variant if plan is not None else None
    planned_format = str((plan.artifact if plan is not None else {}).get("format", "gguf"))
    ranked = sorted(
        installed,
        key=lambda m: (m.variant != planned, m.format != planned_format, m.variant not in spec.VARIANTS, m.name),
    )
    return _chosen(ranked[0], store, plan)


def runnable(store: Store) -> list[Manifest]:
    """Stored models some engine runs, the demo left out."""
    return [m for m in store.list() if m.name != DEMO and backends.engine_of_format(m.format) is not None]


def planned(model: str | None) -> Plan | None:
    """The plan for this machine (probe -> plan), which a command needs unless it runs the demo."""
    if model == DEMO:
        return None
    from edgeoss.discover.probe import probe
    from edgeoss.planning.planner import plan_here

    gguf = model is not None and model.endswith(".gguf") and Path(model).expanduser().is_file()
    return plan_here(probe(onnx=not gguf))


def choose_here(model: str | None, backend: str | None = None) -> Chosen:
    """probe -> plan -> choose: the model a command runs on this machine."""
    return choose(model, plan=planned(model), backend=backend)


def _chosen(manifest: Manifest, store: Store, plan: Plan | None) -> Chosen:
    path = store.entry_path(manifest)
    if backends.engine_of_format(manifest.format) is ORT_GENAI:
        return _onnx(manifest.name, path, manifest, manifest.format, plan)
    return Chosen(manifest.name, path, manifest, _llama_settings(manifest, plan))
