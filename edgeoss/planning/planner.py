"""plan(report, prefs) -> Plan: the backend, variant, placement and context
that fit this machine, with the reasons in order and every rejected option.

Default: the largest variant that fits with a safety margin, then the
longest context that fits (up to 131072), then the fewest expert layers
kept on the CPU. `prefer="speed"` tries the smaller variant first.

Backends, best first: a GPU before the CPU; an installed engine before one
that is not; llama.cpp before onnxruntime-genai (it can keep experts in
RAM when VRAM is short, and evaluates prompts ~4x faster on the CPU,
benchmarks/ort_vs_llama.py). So ONNX is
planned where it is the best choice: a GPU that only onnxruntime-genai can
drive here (CUDA without a CUDA llama.cpp, WebGPU on AMD or Intel), or a
machine without llama-cpp-python. DirectML is planned only once a DirectML
artifact has been verified to load on this machine.

Run on its own: python -m edgeoss.planning.planner [REPORT.json]
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeoss import backends, spec
from edgeoss.backends import LLAMA_CPP, ORT_GENAI, EngineKind
from edgeoss.discover import bandwidth as bandwidths
from edgeoss.discover.bandwidth import Bandwidth, MachineBandwidth
from edgeoss.discover.hardware import GPU, HardwareReport
from edgeoss.errors import UsageError
from edgeoss.planning import memory, speed
from edgeoss.planning.memory import GIB, MIB, Footprint, Weights
from edgeoss.weights import catalog

CONTEXTS = (131072, 65536, 32768, 16384, 8192, 4096)
MIN_CONTEXT = 4096
GPU_MARGIN_FRACTION = 0.05
GPU_MARGIN_MIN = 512 * MIB
RAM_MARGIN_FRACTION = 0.10
RAM_MARGIN_MIN = 1 * GIB
PLANNED_MATRIX = "q8_0"
"""The large matrices of the GGUF a plan pulls (ggml-org's); memory.Weights.estimate's default."""
SPEED_CONTEXT_FILL = 4096
"""The context filled when the headline tokens/s is given (a chat's first turns);
the plan's speed also gives it at the full context."""


@dataclass
class Preferences:
    variant: str | None = None  # "gpt-oss-20b" / "gpt-oss-120b"
    backend: str | None = None  # one of backends.PLAN_OPTIONS
    context: int | None = None
    prefer: str = "quality"  # or "speed"

    @classmethod
    def parse(cls, variant: str | None, backend: str | None, context: int | None, prefer: str) -> Preferences:
        """Preferences from `plan`'s options, with a usage error for any that is not one."""
        if prefer not in ("quality", "speed"):
            raise UsageError(f"--prefer {prefer!r}", hint="quality or speed")
        backends.check_plan_option(backend)
        if variant is not None and variant.removeprefix("gpt-oss-") not in ("20b", "120b"):
            raise UsageError(f"--variant {variant!r}", hint="20b or 120b")
        return cls(variant=variant, backend=backend, context=context, prefer=prefer)


@dataclass
class Rejected:
    variant: str
    backend: str
    why: str


@dataclass
class Plan:
    fits: bool
    backend: str  # "llama.cpp-cuda|metal|cpu", "ort-genai-cuda|webgpu|dml|cpu", or "" when nothing fits
    variant: str
    artifact: dict[str, Any]
    placement: str  # "gpu", "gpu+cpu-experts", "cpu", "none"
    n_gpu_layers: int
    n_cpu_moe_layers: int
    context_length: int
    flash_attention: bool
    predicted_bytes: dict[str, int]
    budget_bytes: dict[str, int]
    speed_class: str  # speed["summary"]: the expected tokens/s and how it was derived
    reasons: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    speed: dict[str, Any] = field(default_factory=dict)  # planning/speed.py's estimate(); {} when nothing fits

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


@dataclass(frozen=True)
class _Device:
    """Where weights can go: an engine, a backend and its memory budgets."""

    backend: str  # the device: cuda, metal, cpu; for onnxruntime-genai also webgpu, dml
    gpus: list[GPU]
    gpu_budget: int  # 0 for the CPU backend
    ram_budget: int
    unified: bool  # Apple, integrated GPUs: GPU and CPU share one RAM budget
    engine: EngineKind = LLAMA_CPP
    installed: bool = True  # False: the engine is not installed yet (the plan says to install it)

    @property
    def name(self) -> str:
        """The plan's backend key (backends.Backend.key)."""
        return backends.find(self.engine, self.backend).key

    def wanted(self, option: str | None) -> bool:
        return backends.plan_option_matches(option, backends.find(self.engine, self.backend))


def _ram_budget(report: HardwareReport, margin: bool = True) -> int:
    available = report.ram_available_bytes or report.ram_total_bytes or 0
    return max(0, available - (max(RAM_MARGIN_MIN, int(available * RAM_MARGIN_FRACTION)) if margin else 0))


def _gpu_budget(gpu: GPU, margin: bool = True) -> int:
    free = gpu.memory_free_bytes if gpu.memory_free_bytes is not None else gpu.memory_total_bytes or 0
    total = gpu.memory_total_bytes or free
    reserve = max(GPU_MARGIN_MIN, int(total * GPU_MARGIN_FRACTION)) if margin else GPU_MARGIN_MIN // 2
    return max(0, free - reserve)


def devices(
    report: HardwareReport,
    plan_notes: list[str],
    rejected: list[Rejected],
    margin: bool = True,
    verified_loads: frozenset[str] = frozenset(),
) -> list[_Device]:
    """The backends this machine (and these builds) can run, best first."""
    llama_devices = _llama_devices(report, plan_notes, rejected, margin, verified_loads)
    ort_devices = _ort_devices(report, margin, verified_loads)
    # Stable sort: GPUs first, installed engines first, llama.cpp before onnxruntime-genai.
    return sorted(
        llama_devices + ort_devices,
        key=lambda d: (d.backend == "cpu", not d.installed, d.engine is not LLAMA_CPP),
    )


def _ort_devices(report: HardwareReport, margin: bool, verified_loads: frozenset[str]) -> list[_Device]:
    ort = report.backends.ort_genai
    if not ort.available:
        return []
    ram = _ram_budget(report, margin)
    out = []
    cuda = [g for g in report.gpus if g.vendor == "nvidia" and "cuda" in g.apis]
    if cuda and "cuda" in ort.providers:
        out.append(_Device("cuda", cuda[:1], _gpu_budget(cuda[0], margin), ram, False, engine=ORT_GENAI))
    others = [g for g in report.gpus if g.vendor in ("amd", "intel", "qualcomm", "other")]
    if others and "webgpu" in ort.providers:
        gpu = max(others, key=lambda g: g.memory_total_bytes or 0)
        budget = ram if gpu.unified_memory else _gpu_budget(gpu, margin)
        out.append(_Device("webgpu", [gpu], budget, ram, gpu.unified_memory, engine=ORT_GENAI))
    directml = [g for g in others if "directml" in g.apis]
    if directml and "dml" in ort.providers and "onnx-dml" in verified_loads:
        gpu = directml[0]
        budget = ram if gpu.unified_memory else _gpu_budget(gpu, margin)
        out.append(_Device("dml", [gpu], budget, ram, gpu.unified_memory, engine=ORT_GENAI))
    out.append(_Device("cpu", [], 0, ram, unified=False, engine=ORT_GENAI))
    return out


def _llama_devices(
    report: HardwareReport,
    plan_notes: list[str],
    rejected: list[Rejected],
    margin: bool,
    verified_loads: frozenset[str],
) -> list[_Device]:
    out: list[_Device] = []
    ram = _ram_budget(report, margin)
    llama = report.backends.llama_cpp
    installed = llama.available
    cuda = [g for g in report.gpus if g.vendor == "nvidia" and "cuda" in g.apis]
    apple = [g for g in report.gpus if g.vendor == "apple"]
    if cuda:
        if llama.available and not (llama.gpu_offload and "CUDA" in llama.devices):
            plan_notes.append(
                "this llama-cpp-python build has no CUDA; the GPU stays idle until a CUDA build is installed"
            )
        else:
            out.append(
                _Device("cuda", cuda, sum(_gpu_budget(g, margin) for g in cuda), ram, False, installed=installed)
            )
    if apple:
        if llama.available and not (llama.gpu_offload and "Metal" in llama.devices):
            plan_notes.append("this llama-cpp-python build has no Metal; install one to use the GPU")
        else:
            gpu = apple[0]
            working_set = gpu.working_set_bytes or int((gpu.memory_total_bytes or 0) * 2 / 3)
            budget = min(working_set - memory.METAL_CONTEXT, ram)
            out.append(_Device("metal", apple, budget, ram, True, installed=installed))
    for gpu in report.gpus:
        if gpu.vendor in ("amd", "intel", "qualcomm", "other") and "directml" in gpu.apis:
            if "onnx-dml" in verified_loads and "dml" in report.backends.ort_genai.providers:
                continue  # planned through onnxruntime-genai
            rejected.append(
                Rejected(
                    "any",
                    "onnx-directml",
                    f"{gpu.name}: no DirectML build of gpt-oss has been verified to load here "
                    "(the DirectML export decomposes the MoE and the graph fails to load; "
                    "edgeoss export-onnx --ep dml checks a new one)",
                )
            )
        elif gpu.vendor in ("amd", "intel") and not gpu.unified_memory:
            rejected.append(
                Rejected("any", "llama.cpp-vulkan", f"{gpu.name}: edgeoss does not ship a Vulkan or ROCm build yet")
            )
    out.append(_Device("cpu", [], 0, ram, unified=False, installed=installed))
    return out


def _fit(
    hp: spec.Hparams, weights: Weights, device: _Device, contexts: tuple[int, ...]
) -> tuple[int, int, Footprint] | None:
    """(context, n_cpu_moe, footprint) of the best fitting placement, or None."""
    if device.engine is ORT_GENAI:
        return _fit_ort(hp, weights, device, contexts)
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


def _fit_ort(
    hp: spec.Hparams, weights: Weights, device: _Device, contexts: tuple[int, ...]
) -> tuple[int, int, Footprint] | None:
    """onnxruntime-genai keeps the whole model on one device: no experts in RAM."""
    for context in contexts:
        fp = memory.ort_footprint(hp, weights, context, on_gpu=device.backend != "cpu")
        if device.backend == "cpu":
            within = fp.cpu <= device.ram_budget
        else:
            within = fp.gpu <= device.gpu_budget and fp.cpu <= device.ram_budget
            if device.unified:
                within = within and fp.total <= device.ram_budget
        if within:
            return context, 0, fp
    return None


def _smallest_need(hp: spec.Hparams, weights: Weights, device: _Device) -> Footprint:
    if device.engine is ORT_GENAI:
        return memory.ort_footprint(hp, weights, MIN_CONTEXT, on_gpu=device.backend != "cpu")
    if device.backend == "cpu":
        return memory.footprint(hp, weights, MIN_CONTEXT, on_gpu=False)
    return memory.footprint(hp, weights, MIN_CONTEXT, on_gpu=True, n_cpu_moe=hp.num_layers)


def _speed(
    report: HardwareReport,
    hp: spec.Hparams,
    device: _Device,
    n_gpu_layers: int,
    n_cpu_moe: int,
    context: int,
    predicted: dict[str, int],
    machine_bw: MachineBandwidth,
) -> dict[str, Any]:
    placement = speed.Placement(n_gpu_layers, n_cpu_moe, device.engine)
    gpu = _gpus_bandwidth(report, device, predicted, machine_bw) if device.gpus else None
    fill = min(SPEED_CONTEXT_FILL, context)
    # The artifact a llama.cpp plan pulls is ggml-org's GGUF, q8_0 matrices (what the memory
    # model sizes too); the speed also gives the lossless bf16 conversion's figure.
    return speed.estimate(
        hp, placement, cpu=machine_bw.cpu, gpu=gpu, context_fill=fill, full_context=context, matrix=PLANNED_MATRIX
    )


def _gpus_bandwidth(
    report: HardwareReport, device: _Device, predicted: dict[str, int], machine_bw: MachineBandwidth
) -> Bandwidth:
    """The device's GPUs as one: llama.cpp splits the layers in proportion to
    `predicted` and runs them one GPU after the other, so their times add."""
    figures = [machine_bw.gpu(report, g) for g in device.gpus]
    unknown = next((f for f in figures if f.bytes_per_s is None), None)
    if unknown is not None or len(figures) == 1:
        return unknown or figures[0]
    shares = [predicted.get(f"gpu{i}", 0) for i in range(len(figures))]
    total = sum(shares) or 1
    seconds_per_byte = sum(s / total / (f.bytes_per_s or 1) for s, f in zip(shares, figures, strict=True))
    sources = sorted({f.source for f in figures})
    detail = "; ".join(f"{g.name}: {f.detail}" for g, f in zip(device.gpus, figures, strict=True))
    return Bandwidth(1 / seconds_per_byte, "+".join(sources), f"{len(figures)} GPUs in turn ({detail})")


def plan(
    report: HardwareReport,
    prefs: Preferences | None = None,
    verified_loads: frozenset[str] = frozenset(),
    bandwidth: MachineBandwidth | None = None,
) -> Plan:
    """The plan with a safety margin; failing that, one without it, marked tight.

    `verified_loads`: formats of stored models that have been checked to load
    on this machine (only "onnx-dml" changes anything: see the module doc).
    `bandwidth`: the machine's memory bandwidth (discover/bandwidth.py), for
    the expected tokens/s; without it only published GPU figures are known,
    and the plan gives bytes per token with the reason tokens/s is unknown."""
    machine_bw = bandwidth or bandwidths.for_saved_report(report, None)
    first = _plan(report, prefs or Preferences(), True, verified_loads, machine_bw)
    if first.fits:
        return first
    tight = _plan(report, prefs or Preferences(), False, verified_loads, machine_bw)
    if not tight.fits:
        return first
    tight.warnings.insert(
        0,
        "tight: this fits only without edgeoss's safety margin; close other programs first, "
        "or expect swapping and slowdowns",
    )
    tight.rejected = first.rejected + [r for r in tight.rejected if r not in first.rejected]
    return tight


def _plan(
    report: HardwareReport,
    prefs: Preferences,
    margin: bool,
    verified_loads: frozenset[str],
    machine_bw: MachineBandwidth,
) -> Plan:
    notes: list[str] = []
    rejected: list[Rejected] = []
    order = ["gpt-oss-120b", "gpt-oss-20b"] if prefs.prefer != "speed" else ["gpt-oss-20b", "gpt-oss-120b"]
    if prefs.variant:
        wanted = prefs.variant if prefs.variant.startswith("gpt-oss") else f"gpt-oss-{prefs.variant}"
        order = [wanted]
    contexts = (prefs.context,) if prefs.context else CONTEXTS
    all_devices = devices(report, notes, rejected, margin, verified_loads)
    usable = [d for d in all_devices if d.wanted(prefs.backend)]
    if prefs.backend and not usable:
        rejected.append(Rejected("any", prefs.backend, f"no usable {prefs.backend} device on this machine"))

    best_need: tuple[str, _Device, Footprint] | None = None
    for variant in order:
        hp = spec.VARIANTS[variant]
        weights = Weights.estimate(hp)
        for device in usable:
            artifact = _artifact(variant, device)
            if artifact is None:
                rejected.append(
                    Rejected(
                        variant,
                        device.name,
                        f"no ONNX build of {variant} for {device.backend} is published "
                        "(edgeoss export-onnx makes one from the original checkpoint)",
                    )
                )
                continue
            found = _fit(hp, weights, device, contexts)
            if found is None:
                need = _smallest_need(hp, weights, device)
                where = "RAM" if device.backend == "cpu" else "GPU memory"
                have = device.ram_budget if device.backend == "cpu" else device.gpu_budget
                needed = need.cpu if device.backend == "cpu" else need.gpu
                experts = " even with every expert on the CPU" if device.engine is LLAMA_CPP else ""
                rejected.append(
                    Rejected(
                        variant,
                        device.name,
                        f"needs {gib(needed)} of {where} at {contexts[-1]} tokens{experts}; {gib(have)} usable",
                    )
                )
                if best_need is None or need.total < best_need[2].total:
                    best_need = (variant, device, need)
                continue
            context, n_cpu_moe, fp = found
            return _build(
                report, hp, artifact, device, context, n_cpu_moe, fp, notes, rejected, prefs, margin, machine_bw
            )

    return _nothing_fits(report, order, best_need, notes, rejected)


def _artifact(variant: str, device: _Device) -> catalog.Artifact | None:
    if device.engine is LLAMA_CPP:
        return catalog.find(variant, "gguf")
    if device.backend == "dml":  # published nowhere: the one verified in the store
        return catalog.Artifact(variant, backends.onnx_format("dml"), "", (), ".", ORT_GENAI.key, None)
    return catalog.find(variant, backends.onnx_format(device.backend))


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
    machine_bw: MachineBandwidth,
) -> Plan:
    reasons: list[str] = []
    via = " with onnxruntime-genai" if device.engine is ORT_GENAI else ""
    if device.backend == "cpu":
        placement, n_gpu_layers = "cpu", 0
        reasons.append(f"{hp.name} runs on the CPU{via}: {gib(fp.cpu)} of {gib(device.ram_budget)} usable RAM")
    else:
        names = ", ".join(sorted({g.name for g in device.gpus}))
        n_gpu_layers = hp.num_layers + 1
        placement = "gpu" if n_cpu_moe == 0 else "gpu+cpu-experts"
        reasons.append(
            f"{hp.name} on {device.backend.upper()}{via} ({names}): {gib(fp.gpu)} of {gib(device.gpu_budget)} "
            f"usable GPU memory, {gib(fp.cpu)} of RAM"
        )
        if n_cpu_moe:
            reasons.append(
                f"the experts of {n_cpu_moe} of {hp.num_layers} layers stay in RAM (like --n-cpu-moe {n_cpu_moe}); "
                "attention and the other experts run on the GPU"
            )
    if device.engine is ORT_GENAI:
        reasons.append(_why_ort(report, device))
    kv = memory.kv_cache_bytes(hp, context)
    if prefs.context:
        reasons.append(f"context {context} tokens, as asked (KV cache {gib(kv)})")
    elif context == CONTEXTS[0]:
        reasons.append(f"full context of {context} tokens fits (KV cache {gib(kv)})")
    else:
        reasons.append(f"context {context} tokens: the longest that fits (KV cache {gib(kv)})")
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
    expected = _speed(report, hp, device, n_gpu_layers, n_cpu_moe, context, predicted, machine_bw)
    if device.engine is ORT_GENAI:
        warnings.append("onnxruntime-genai memory figures are estimates from the spec, not measured")
    if report.disk_free_bytes is not None and artifact.approx_bytes and report.disk_free_bytes < artifact.approx_bytes:
        warnings.append(f"{gib(artifact.approx_bytes)} download needs more than the {gib(report.disk_free_bytes)} free")
    return Plan(
        fits=True,
        backend=device.name,
        variant=hp.name,
        artifact={
            "name": artifact.name,
            "format": artifact.format,
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
        speed_class=expected["summary"],
        reasons=reasons,
        rejected=rejected,
        warnings=warnings,
        fixes=[],
        speed=expected,
    )


def _why_ort(report: HardwareReport, device: _Device) -> str:
    llama = report.backends.llama_cpp
    if not llama.available:
        return "onnxruntime-genai: llama-cpp-python is not installed and onnxruntime-genai is"
    if device.backend == "cuda":
        return "onnxruntime-genai: it has CUDA here and this llama-cpp-python build does not"
    if device.backend in ("webgpu", "dml"):
        return f"onnxruntime-genai: {device.backend} reaches this GPU; edgeoss ships no llama.cpp build that does"
    return "onnxruntime-genai, as asked"


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


def plan_here(
    report: HardwareReport, prefs: Preferences | None = None, bandwidth: MachineBandwidth | None = None
) -> Plan:
    """plan() for this machine: with what its store says has loaded here (and
    its memory bandwidth when the caller has it: doctor and plan measure it,
    run and serve do not spend the time)."""
    from edgeoss.weights.store import Store

    return plan(report, prefs, Store().verified_loads(), bandwidth)


def main() -> None:
    from edgeoss.discover.probe import probe

    if len(sys.argv) > 1:
        data = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
        report = HardwareReport.from_dict(data)
        the_plan = plan(report, bandwidth=bandwidths.for_saved_report(report, data.get(bandwidths.REPORT_KEY)))
    else:
        report = probe()
        the_plan = plan_here(report, bandwidth=bandwidths.for_machine(report))
    print(json.dumps(the_plan.to_dict(), indent=2))


if __name__ == "__main__":
    main()
