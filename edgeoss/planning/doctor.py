"""`edgeoss doctor`: what this machine has, what will run and why, and what to fix.

diagnose() turns a hardware report, a plan and the store into checks, each
pass / warn / fail / info with a concrete fix where there is one. The JSON
form is the hardware report itself with "plan" and "checks" added, so it is
a valid REPORT.json for `edgeoss plan --hardware`.

Run on its own: python -m edgeoss.planning.doctor
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgeoss import backends, constants
from edgeoss.discover.bandwidth import REPORT_KEY, MachineBandwidth
from edgeoss.discover.hardware import HardwareReport
from edgeoss.discover.ports import port_free
from edgeoss.planning.planner import Plan, gib
from edgeoss.weights.store import Store

if TYPE_CHECKING:
    from edgeoss.planning.pool import PoolPlan
    from edgeoss.runtime.pooled import WorkerState

LLAMA_VERSION = "0.3.36"
_REINSTALL = f"pip install --force-reinstall --no-cache-dir llama-cpp-python=={LLAMA_VERSION}"
# RPC stays on in every build edgeoss suggests: a rebuild for the GPU must not lose --workers.
FIX_CUDA = f'CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=on" {_REINSTALL}'
FIX_METAL = f'CMAKE_ARGS="-DGGML_METAL=on -DGGML_RPC=on" {_REINSTALL}'
FIX_LLAMA = f"pip install llama-cpp-python=={LLAMA_VERSION}"


@dataclass
class Check:
    section: str
    status: str  # pass, warn, fail, info
    label: str
    detail: str
    fix: str | None = None


def _hardware(report: HardwareReport, bandwidth: MachineBandwidth | None = None) -> list[Check]:
    checks = [Check("hardware", "info", "system", f"{report.os} {report.os_version or ''} ({report.arch})".strip())]
    c = report.cpu
    flags = ", ".join(c.flags) or "unknown"
    slow = report.arch == "x86_64" and c.flags and "avx2" not in c.flags
    checks.append(
        Check(
            "hardware",
            "warn" if slow else "pass",
            "CPU",
            f"{c.name}, {c.cores_physical or '?'} cores / {c.cores_logical or '?'} threads; {flags}",
            "a CPU without AVX2 runs llama.cpp's slowest kernels" if slow else None,
        )
    )
    checks.append(
        Check(
            "hardware",
            "info",
            "RAM",
            f"{gib(report.ram_total_bytes or 0)} total, {gib(report.ram_available_bytes or 0)} available, "
            f"{gib(report.swap_total_bytes or 0)} swap",
        )
    )
    for gpu in report.gpus:
        memory = gib(gpu.memory_total_bytes) if gpu.memory_total_bytes else "unknown memory"
        free = f", {gib(gpu.memory_free_bytes)} free" if gpu.memory_free_bytes is not None else ""
        extra = [f"driver {gpu.driver}"] if gpu.driver else []
        extra += [f"CUDA {gpu.cuda_version}"] if gpu.cuda_version else []
        extra += [f"compute {gpu.compute_capability}"] if gpu.compute_capability else []
        extra += [f"Metal may use {gib(gpu.working_set_bytes)}"] if gpu.working_set_bytes else []
        kind = "unified" if gpu.unified_memory else "dedicated"
        checks.append(
            Check("hardware", "pass", f"GPU ({gpu.vendor})", f"{gpu.name}: {memory} {kind}{free}; " + ", ".join(extra))
        )
    if not report.gpus:
        checks.append(Check("hardware", "info", "GPU", "none that edgeoss can use; models run on the CPU"))
    if bandwidth is not None:
        # The limit of decode speed (planning/speed.py): worth seeing beside the memory sizes.
        lines = [f"RAM {bandwidth.cpu.describe()}"]
        lines += [f"{g.name} {b.describe()}" for g, b in zip(report.gpus, bandwidth.gpus, strict=False)]
        checks.append(Check("hardware", "info", "memory bandwidth", "; ".join(lines)))
    for note in report.notes:
        checks.append(Check("hardware", "warn", "probe", note))
    return checks


def _backends(report: HardwareReport) -> list[Check]:
    checks = []
    llama = report.backends.llama_cpp
    has_nvidia = any(g.vendor == "nvidia" for g in report.gpus)
    has_apple = any(g.vendor == "apple" for g in report.gpus)
    if not llama.available:
        checks.append(Check("backends", "fail", "llama.cpp", "llama-cpp-python is not installed", FIX_LLAMA))
    else:
        devices = ", ".join(llama.devices) or "CPU"
        checks.append(Check("backends", "pass", "llama.cpp", f"llama-cpp-python {llama.version}; devices: {devices}"))
        if has_nvidia and "CUDA" not in llama.devices:
            checks.append(
                Check(
                    "backends",
                    "warn",
                    "CUDA",
                    "an NVIDIA GPU is present but this llama.cpp build has no CUDA",
                    FIX_CUDA,
                )
            )
        if has_apple and "Metal" not in llama.devices:
            checks.append(Check("backends", "warn", "Metal", "this llama.cpp build has no Metal", FIX_METAL))
    ort = report.backends.ort_genai
    checks.append(
        Check(
            "backends",
            "info",
            "ONNX Runtime GenAI",
            f"onnxruntime-genai {ort.version}, providers: {', '.join(ort.providers)}"
            if ort.available
            else "not installed (optional)",
        )
    )
    if report.os == "windows" and any(g.vendor != "nvidia" for g in report.gpus):
        checks.append(
            Check(
                "backends",
                "warn",
                "DirectML",
                "no DirectML build of gpt-oss is known to load (the export decomposes the MoE and the graph "
                "fails); edgeoss plans DirectML only for a model verified to load here",
                "edgeoss export-onnx CHECKPOINT -o OUT --ep dml checks a new export; import it if it loads",
            )
        )
    return checks


def _plan(plan: Plan) -> list[Check]:
    if not plan.fits:
        checks = [Check("plan", "fail", "what will run", "; ".join(plan.reasons), "; ".join(plan.fixes) or None)]
    else:
        where = f"{plan.backend}, {plan.placement}, context {plan.context_length}"
        checks = [Check("plan", "pass", "what will run", f"{plan.variant} ({where}); {plan.speed_class}")]
        if plan.speed.get("trade"):
            checks.append(Check("plan", "info", "speed or size", plan.speed["trade"]))
        checks += [Check("plan", "info", "why", reason) for reason in plan.reasons]
    checks += [Check("plan", "warn", "note", w) for w in plan.warnings]
    checks += [Check("plan", "info", f"rejected {r.variant} on {r.backend}", r.why) for r in plan.rejected]
    return checks


def _models(report: HardwareReport, plan: Plan, store: Store) -> list[Check]:
    from edgeoss.weights.verify import verify_path

    checks = []
    models = store.list()
    for manifest in models:
        result = verify_path(store.entry_path(manifest), store=store, fresh=False)
        checks.append(
            Check(
                "models",
                "pass" if result.ok else "fail",
                manifest.name,
                f"{manifest.variant}, {manifest.format}, {manifest.total_bytes / 1e9:.2f} GB: {result.summary()}",
                None if result.ok else f"edgeoss rm {manifest.name} && edgeoss pull",
            )
        )
    needed = plan.artifact.get("approx_bytes") if plan.fits else None
    if not models:
        checks.append(Check("models", "info", "store", f"empty ({store.root})", "edgeoss pull"))
    if needed and report.disk_free_bytes is not None:
        enough = report.disk_free_bytes > needed
        checks.append(
            Check(
                "models",
                "pass" if enough else "fail",
                "disk for a pull",
                f"{gib(report.disk_free_bytes)} free at {report.disk_path}; {plan.variant} needs {gib(needed)}",
                None if enough else "free disk space, or set EDGEOSS_HOME to a larger disk",
            )
        )
    return checks


def _server() -> list[Check]:
    free = port_free(constants.DEFAULT_PORT)
    status = "pass" if free else "warn"
    detail = {True: "free", False: "in use", None: "could not be checked"}[free]
    fix = None if free else f"another program listens on {constants.DEFAULT_PORT}; serve with --port N"
    return [Check("server", status, f"port {constants.DEFAULT_PORT}", detail, fix)]


def _tools() -> list[Check]:
    """The python tool runs only in a sandbox: say which this machine has, or the fix.
    A warning, not a failure: the tools are off unless turned on."""
    from edgeoss.tools import sandbox

    status = sandbox.status()
    if status.available:
        return [Check("tools", "pass", "python sandbox", status.detail)]
    return [Check("tools", "warn", "python sandbox", f"the python tool is unavailable: {status.detail}", status.fix)]


def _expert_placement(report: HardwareReport, plan: Plan) -> list[Check]:
    """Say plainly whether the plan's experts-on-CPU placement is what will really happen."""
    supported = report.backends.llama_cpp.expert_overrides
    backend = backends.backend_of_key(plan.backend)
    on_llama = backend is not None and backend.engine is backends.LLAMA_CPP
    if not plan.fits or not on_llama or not plan.n_cpu_moe_layers or supported is None:
        return []
    n = plan.n_cpu_moe_layers
    if supported:
        return [
            Check("plan", "pass", "expert placement", f"experts of {n} layers on the CPU (tensor buffer overrides)")
        ]
    return [
        Check(
            "plan",
            "warn",
            "expert placement",
            f"this llama-cpp-python cannot keep MoE experts on the CPU; {n} whole layers will stay on the CPU "
            "instead (slower)",
            "pip install --force-reinstall 'edgeoss[llama]'",
        )
    ]


def diagnose(
    report: HardwareReport, plan: Plan, store: Store | None = None, bandwidth: MachineBandwidth | None = None
) -> list[Check]:
    store = store or Store()
    checks = _hardware(report, bandwidth) + _backends(report) + _plan(plan) + _expert_placement(report, plan)
    return checks + _models(report, plan, store) + _server() + _tools()


def workers(states: Sequence[WorkerState], pooled: PoolPlan | None, rpc_missing: str | None) -> list[Check]:
    """`doctor --workers`: whether this machine can use workers, each worker's state, and the pool's plan."""
    from edgeoss.engines.llamacpp.rpc import BUILD_HINT

    section = "workers"
    checks = [
        Check(section, "fail", "llama.cpp RPC", rpc_missing, BUILD_HINT)
        if rpc_missing
        else Check(section, "pass", "llama.cpp RPC", "this llama-cpp-python can place layers on workers")
    ]
    for state in states:
        status = "pass" if state.profile is not None else "fail"
        checks.append(Check(section, status, state.endpoint, state.describe(), state.fix or None))
    if pooled is not None:
        if pooled.fits:
            checks.append(Check(section, "pass", "pooled plan", f"{pooled.summary()}, context {pooled.context_length}"))
            checks += [Check(section, "info", "", reason) for reason in pooled.reasons]
        else:
            fix = pooled.reasons[1] if len(pooled.reasons) > 1 else None
            checks.append(Check(section, "fail", "pooled plan", pooled.reasons[0], fix))
    return checks


def as_json(
    report: HardwareReport, plan: Plan, checks: list[Check], bandwidth: MachineBandwidth | None = None
) -> dict[str, Any]:
    data = report.to_dict()
    if bandwidth is not None:  # read back by `edgeoss plan --hardware` (bandwidth.for_saved_report)
        data[REPORT_KEY] = bandwidth.to_dict()
    data["plan"] = plan.to_dict()
    data["checks"] = [asdict(c) for c in checks]
    return data


def main() -> None:
    from edgeoss.discover import bandwidth as bandwidths
    from edgeoss.discover.probe import probe
    from edgeoss.planning.planner import plan_here as make_plan

    report = probe()
    found = bandwidths.for_machine(report)
    the_plan = make_plan(report, bandwidth=found)
    print(json.dumps(as_json(report, the_plan, diagnose(report, the_plan, bandwidth=found), found), indent=2))


if __name__ == "__main__":
    main()
