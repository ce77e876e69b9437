"""plan(report, prefs) -> Plan: the backend, variant, placement and context
that fit this machine, with the reasons in order and every rejected option.

Default: the largest variant that fits with a safety margin, then the
longest context that fits (up to 131072), then the fewest expert layers
kept on the CPU. `prefer="speed"` tries the smaller variant first.

Run on its own: python -m edgeoss.planner [REPORT.json]
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeoss import catalog, memory, spec
from edgeoss.discover.report import GPU, HardwareReport
from edgeoss.memory import GIB, MIB, Footprint, Weights

CONTEXTS = (131072, 65536, 32768, 16384, 8192, 4096)
MIN_CONTEXT = 4096
GPU_MARGIN_FRACTION = 0.05
GPU_MARGIN_MIN = 512 * MIB
RAM_MARGIN_FRACTION = 0.10
RAM_MARGIN_MIN = 1 * GIB


@dataclass
class Preferences:
    variant: str | None = None  # "gpt-oss-20b" / "gpt-oss-120b"
    backend: str | None = None  # "cuda", "metal", "cpu"
    context: int | None = None
    prefer: str = "quality"  # or "speed"


@dataclass
class Rejected:
    variant: str
    backend: str
    why: str


@dataclass
class Plan:
    fits: bool
    backend: str  # "llama.cpp-cuda", "llama.cpp-metal", "llama.cpp-cpu", or "" when nothing fits
    variant: str
    artifact: dict[str, Any]
    placement: str  # "gpu", "gpu+cpu-experts", "cpu", "none"
    n_gpu_layers: int
    n_cpu_moe_layers: int
    context_length: int
    flash_attention: bool
    predicted_bytes: dict[str, int]
    budget_bytes: dict[str, int]
    speed_class: str
    reasons: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


@dataclass(frozen=True)
class _Device:
    """Where weights can go: a backend and its memory budgets."""

    backend: str  # cuda, metal, cpu
    gpus: list[GPU]
    gpu_budget: int  # 0 for the CPU backend
    ram_budget: int
    unified: bool  # Apple: GPU and CPU share one RAM budget


def _ram_budget(report: HardwareReport, margin: bool = True) -> int:
    available = report.ram_available_bytes or report.ram_total_bytes or 0
    return max(0, available - (max(RAM_MARGIN_MIN, int(available * RAM_MARGIN_FRACTION)) if margin else 0))


def _gpu_budget(gpu: GPU, margin: bool = True) -> int:
    free = gpu.memory_free_bytes if gpu.memory_free_bytes is not None else gpu.memory_total_bytes or 0
    total = gpu.memory_total_bytes or free
    reserve = max(GPU_MARGIN_MIN, int(total * GPU_MARGIN_FRACTION)) if margin else GPU_MARGIN_MIN // 2
    return max(0, free - reserve)


def devices(
    report: HardwareReport, plan_notes: list[str], rejected: list[Rejected], margin: bool = True
) -> list[_Device]:
    """The backends this machine (and this llama.cpp build) can run, best first."""
    out: list[_Device] = []
    ram = _ram_budget(report, margin)
    llama = report.backends.llama_cpp
    cuda = [g for g in report.gpus if g.vendor == "nvidia" and "cuda" in g.apis]
    apple = [g for g in report.gpus if g.vendor == "apple"]
    if cuda:
        if llama.available and not (llama.gpu_offload and "CUDA" in llama.devices):
            plan_notes.append(
                "this llama-cpp-python build has no CUDA; the GPU stays idle until a CUDA build is installed"
            )
        else:
            out.append(_Device("cuda", cuda, sum(_gpu_budget(g, margin) for g in cuda), ram, unified=False))
    if apple:
        if llama.available and not (llama.gpu_offload and "Metal" in llama.devices):
            plan_notes.append("this llama-cpp-python build has no Metal; install one to use the GPU")
        else:
            gpu = apple[0]
            working_set = gpu.working_set_bytes or int((gpu.memory_total_bytes or 0) * 2 / 3)
            out.append(_Device("metal", apple, min(working_set - memory.METAL_CONTEXT, ram), ram, unified=True))
    for gpu in report.gpus:
        if gpu.vendor in ("amd", "intel", "qualcomm", "other") and "directml" in gpu.apis:
            rejected.append(
                Rejected(
                    "any",
                    "onnx-directml",
                    f"{gpu.name}: no DirectML build of gpt-oss loads today "
                    "(the DirectML export decomposes the MoE and the graph fails to load)",
                )
            )
        elif gpu.vendor in ("amd", "intel") and not gpu.unified_memory:
            rejected.append(
                Rejected("any", "llama.cpp-vulkan", f"{gpu.name}: edgeoss does not ship a Vulkan or ROCm build yet")
            )
    out.append(_Device("cpu", [], 0, ram, unified=False))
    return out


def _fit(
    hp: spec.Hparams, weights: Weights, device: _Device, contexts: tuple[int, ...]
) -> tuple[int, int, Footprint] | None:
    """(context, n_cpu_moe, footprint) of the best fitting placement, or None."""
    for context in contexts:
        if device.backend == "cpu":
            fp = memory.footprint(hp, weights, context, on_gpu=False)
            if fp.cpu <= device.ram_budget:
                return context, 0, fp
            continue
        overhead = memory.CUDA_CONTEXT if device.backend == "cuda" else memory.METAL_CONTEXT
        for n_cpu_moe in range(hp.num_layers + 1):
            fp = memory.footprint(
                hp,
                weights,
                context,
                on_gpu=True,
                n_cpu_moe=n_cpu_moe,
                gpus=max(1, len(device.gpus)),
                context_overhead=overhead,
            )
            within = fp.gpu <= device.gpu_budget and fp.cpu <= device.ram_budget
            if device.unified:
                within = within and fp.total <= device.ram_budget
            if within:
                return context, n_cpu_moe, fp
    return None


def _smallest_need(hp: spec.Hparams, weights: Weights, device: _Device) -> Footprint:
    if device.backend == "cpu":
        return memory.footprint(hp, weights, MIN_CONTEXT, on_gpu=False)
    return memory.footprint(hp, weights, MIN_CONTEXT, on_gpu=True, n_cpu_moe=hp.num_layers)


def _speed(device: _Device, hp: spec.Hparams, n_cpu_moe: int) -> str:
    if device.backend == "cpu":
        return "slow: CPU only (memory bandwidth bound, a few tokens/s for 20b on a laptop)"
    if n_cpu_moe == 0:
        return "fast: every layer on the GPU"
    if n_cpu_moe <= hp.num_layers // 3:
        return "medium: most experts on the GPU"
    return "slow-to-medium: most experts run on the CPU"


def plan(report: HardwareReport, prefs: Preferences | None = None) -> Plan:
    """The plan with a safety margin; failing that, one without it, marked tight."""
    first = _plan(report, prefs or Preferences(), margin=True)
    if first.fits:
        return first
    tight = _plan(report, prefs or Preferences(), margin=False)
    if not tight.fits:
        return first
    tight.warnings.insert(
        0,
        "tight: this fits only without edgeoss's safety margin; close other programs first, "
        "or expect swapping and slowdowns",
    )
    tight.rejected = first.rejected + [r for r in tight.rejected if r not in first.rejected]
    return tight


def _plan(report: HardwareReport, prefs: Preferences, margin: bool) -> Plan:
    notes: list[str] = []
    rejected: list[Rejected] = []
    order = ["gpt-oss-120b", "gpt-oss-20b"] if prefs.prefer != "speed" else ["gpt-oss-20b", "gpt-oss-120b"]
    if prefs.variant:
        wanted = prefs.variant if prefs.variant.startswith("gpt-oss") else f"gpt-oss-{prefs.variant}"
        order = [wanted]
    contexts = (prefs.context,) if prefs.context else CONTEXTS
    all_devices = devices(report, notes, rejected, margin)
    usable = [d for d in all_devices if prefs.backend in (None, d.backend)]
    if prefs.backend and not usable:
        rejected.append(Rejected("any", prefs.backend, f"no usable {prefs.backend} device on this machine"))

    best_need: tuple[str, _Device, Footprint] | None = None
    for variant in order:
        hp = spec.VARIANTS[variant]
        artifact = catalog.find(variant, "gguf")
        assert artifact is not None
        weights = Weights.estimate(hp)
        for device in usable:
            found = _fit(hp, weights, device, contexts)
            if found is None:
                need = _smallest_need(hp, weights, device)
                where = "RAM" if device.backend == "cpu" else "GPU memory"
                have = device.ram_budget if device.backend == "cpu" else device.gpu_budget
                needed = need.cpu if device.backend == "cpu" else need.gpu
                rejected.append(
                    Rejected(
                        variant,
                        f"llama.cpp-{device.backend}",
                        f"needs {gib(needed)} of {where} at "
                        f"{contexts[-1]} tokens even with every expert on the CPU; {gib(have)} usable",
                    )
                    if device.backend != "cpu"
                    else Rejected(
                        variant,
                        "llama.cpp-cpu",
                        f"needs {gib(needed)} of RAM at {contexts[-1]} tokens; {gib(have)} usable",
                    )
                )
                if best_need is None or need.total < best_need[2].total:
                    best_need = (variant, device, need)
                continue
            context, n_cpu_moe, fp = found
            return _build(report, hp, artifact, device, context, n_cpu_moe, fp, notes, rejected, prefs, margin)

    return _nothing_fits(report, order, best_need, notes, rejected)


def _build(
    report: HardwareReport,
    hp: spec.Hparams,
    artifact: catalog.Artifact,
    device: _Device,
    context: int,
    n_cpu_moe: int,
    fp: Footprint,
    notes: list[str],
    rejected: list[Rejected],
    prefs: Preferences,
    margin: bool,
) -> Plan:
    reasons: list[str] = []
    if device.backend == "cpu":
        placement, n_gpu_layers = "cpu", 0
        reasons.append(f"{hp.name} runs on the CPU: {gib(fp.cpu)} of {gib(device.ram_budget)} usable RAM")
    else:
        names = ", ".join(sorted({g.name for g in device.gpus}))
        n_gpu_layers = hp.num_layers + 1
        placement = "gpu" if n_cpu_moe == 0 else "gpu+cpu-experts"
        reasons.append(
            f"{hp.name} on {device.backend.upper()} ({names}): {gib(fp.gpu)} of {gib(device.gpu_budget)} usable GPU "
            f"memory, {gib(fp.cpu)} of RAM"
        )
        if n_cpu_moe:
            reasons.append(
                f"the experts of {n_cpu_moe} of {hp.num_layers} layers stay in RAM (like --n-cpu-moe {n_cpu_moe}); "
                "attention and the other experts run on the GPU"
            )
    if prefs.context:
        reasons.append(f"context {context} tokens, as asked (KV cache {gib(memory.kv_cache_bytes(hp, context))})")
    elif context == CONTEXTS[0]:
        reasons.append(f"full context of {context} tokens fits (KV cache {gib(memory.kv_cache_bytes(hp, context))})")
    else:
        reasons.append(
            f"context {context} tokens: the longest that fits (KV cache {gib(memory.kv_cache_bytes(hp, context))})"
        )
    smaller = [r for r in rejected if r.variant != hp.name and r.variant != "any"]
    if hp.name == "gpt-oss-20b" and prefs.prefer != "speed" and smaller:
        reasons.append("gpt-oss-120b does not fit; see rejected")
    predicted = {"cpu": fp.cpu}
    budgets = {"cpu": device.ram_budget}
    if device.gpus:
        total_budget = max(1, device.gpu_budget)
        for i, gpu in enumerate(device.gpus):
            own = _gpu_budget(gpu, margin) if device.backend == "cuda" else device.gpu_budget
            predicted[f"gpu{i}"] = int(fp.gpu * own / total_budget)
            budgets[f"gpu{i}"] = own
        if device.backend == "cuda" and len(device.gpus) > 1:
            reasons.append(f"layers split across {len(device.gpus)} GPUs in proportion to their free memory")
    warnings = list(notes)
    if report.disk_free_bytes is not None and artifact.approx_bytes and report.disk_free_bytes < artifact.approx_bytes:
        warnings.append(f"{gib(artifact.approx_bytes)} download needs more than the {gib(report.disk_free_bytes)} free")
    return Plan(
        fits=True,
        backend=f"llama.cpp-{device.backend}",
        variant=hp.name,
        artifact={
            "name": artifact.name,
            "repo": artifact.repo,
            "files": list(artifact.patterns),
            "approx_bytes": artifact.approx_bytes,
        },
        placement=placement,
        n_gpu_layers=n_gpu_layers,
        n_cpu_moe_layers=n_cpu_moe,
        context_length=context,
        flash_attention=True,
        predicted_bytes=predicted,
        budget_bytes=budgets,
        speed_class=_speed(device, hp, n_cpu_moe),
        reasons=reasons,
        rejected=rejected,
        warnings=warnings,
        fixes=[],
    )


def _nothing_fits(
    report: HardwareReport,
    order: list[str],
    best: tuple[str, _Device, Footprint] | None,
    notes: list[str],
    rejected: list[Rejected],
) -> Plan:
    reasons = ["no gpt-oss variant fits this machine with a safety margin"]
    fixes: list[str] = []
    if best is not None:
        variant, device, need = best
        reasons.append(
            f"the closest is {variant} on {device.backend.upper()} at {MIN_CONTEXT} tokens: needs {gib(need.total)} "
            f"({gib(need.gpu)} GPU, {gib(need.cpu)} RAM); usable {gib(device.gpu_budget)} GPU, "
            f"{gib(device.ram_budget)} RAM"
        )
        cpu_need = memory.footprint(
            spec.VARIANTS[variant], Weights.estimate(spec.VARIANTS[variant]), MIN_CONTEXT, on_gpu=False
        ).cpu
        fixes.append(
            f"{variant} needs about {gib(cpu_need / (1 - RAM_MARGIN_FRACTION) + RAM_MARGIN_MIN)} of available RAM on "
            f"the CPU alone (this machine has {gib(report.ram_available_bytes or 0)} available): close other programs "
            "or add RAM; or use a GPU with at least 16 GB"
        )
    return Plan(
        fits=False,
        backend="",
        variant=order[-1],
        artifact={},
        placement="none",
        n_gpu_layers=0,
        n_cpu_moe_layers=0,
        context_length=0,
        flash_attention=True,
        predicted_bytes={},
        budget_bytes={},
        speed_class="none",
        reasons=reasons,
        rejected=rejected,
        warnings=notes,
        fixes=fixes,
    )


def main() -> None:
    from edgeoss.discover.probe import probe

    report = (
        HardwareReport.from_dict(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
        if len(sys.argv) > 1
        else probe()
    )
    print(json.dumps(plan(report).to_dict(), indent=2))


if __name__ == "__main__":
    main()
