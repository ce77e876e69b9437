"""Which model a command runs: a store name, a path, `demo`, or the planned default.

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

from edgeoss import spec
from edgeoss.engines.llamacpp import Settings
from edgeoss.errors import EdgeossError
from edgeoss.store import Manifest, ModelNotFoundError, Store

log = logging.getLogger(__name__)

DEMO = "demo"
DEMO_LABEL = "demo model: a tiny synthetic gpt-oss with random weights; its replies are random text"


class NoModelError(EdgeossError):
    exit_code = 20


@dataclass(frozen=True)
class Chosen:
    name: str
    path: Path
    manifest: Manifest | None
    settings: Settings
    is_demo: bool = False


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
        and manifest is not None
        and manifest.variant == getattr(plan, "variant", None)
    ):
        return Settings.from_plan(plan)
    on_gpu = plan is not None and str(getattr(plan, "backend", "")).endswith(("cuda", "metal"))
    return Settings(context_length=8192, n_gpu_layers=999 if on_gpu else 0)


def choose(model: str | None, store: Store | None = None, plan: object | None = None) -> Chosen:
    store = store or Store()
    if model == DEMO:
        manifest = ensure_demo(store)
        return Chosen(DEMO, store.entry_path(manifest), manifest, Settings(context_length=4096), is_demo=True)
    if model is not None:
        path = Path(model).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return Chosen(path.name, path, None, _settings_for(None, plan))
        manifest = store.get(model)
        if manifest.format != "gguf":
            raise NoModelError(f"{model} is {manifest.format}; edgeoss runs GGUF models with llama.cpp for now")
        return Chosen(model, store.entry_path(manifest), manifest, _settings_for(manifest, plan))
    installed = [m for m in store.list() if m.format == "gguf" and m.name != DEMO]
    if not installed:
        raise NoModelError(
            "no model is installed",
            hint="edgeoss pull (downloads the planned variant), edgeoss import PATH, or run the demo model: MODEL=demo",
        )
    planned = getattr(plan, "variant", None)
    ranked = sorted(installed, key=lambda m: (m.variant != planned, m.variant not in spec.VARIANTS, m.name))
    best = ranked[0]
    return Chosen(best.name, store.entry_path(best), best, _settings_for(best, plan))
