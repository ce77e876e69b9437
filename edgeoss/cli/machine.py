"""Commands about this machine and gpt-oss: doctor, plan, spec, paths."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from edgeoss import backends, spec
from edgeoss.cli.cluster import WorkersOption
from edgeoss.cli.output import out, print_json, reported
from edgeoss.errors import EXIT_CHECKS_FAILED
from edgeoss.paths import paths as current_paths

if TYPE_CHECKING:
    from edgeoss.discover.hardware import HardwareReport
    from edgeoss.planning.doctor import Check

_MARKS = {"pass": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "info": "[dim]--[/]"}


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report, plan and checks as JSON.")] = False,
    workers: WorkersOption = None,
) -> None:
    """Check this machine: hardware, backends, memory bandwidth, what will run, how fast and why, models,
    and what to fix."""
    from edgeoss.discover import bandwidth
    from edgeoss.discover.probe import probe
    from edgeoss.planning import doctor as doctor_mod
    from edgeoss.planning.planner import plan_here as make_plan

    with reported():
        report = probe()
        found = bandwidth.for_machine(report)  # measured once per machine, then remembered
        the_plan = make_plan(report, bandwidth=found)
        checks = doctor_mod.diagnose(report, the_plan, bandwidth=found)
        pooled_json: dict[str, Any] = {}
        if workers:
            pooled_json = _workers(report, workers, None, None, checks)
        if as_json:
            print_json({**doctor_mod.as_json(report, the_plan, checks, found), **pooled_json})
            return
        _print_checks(checks)
        failures = sum(c.status == "fail" for c in checks)
        if failures:
            raise typer.Exit(EXIT_CHECKS_FAILED)


def _print_checks(checks: list[Check]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    section = ""
    for check in checks:
        if check.section != section:
            section = check.section
            table.add_row("", f"[bold]{section}[/]", "")
        table.add_row(_MARKS[check.status], escape(check.label), escape(check.detail))
        if check.fix:
            table.add_row("", "", f"[cyan]fix:[/] {escape(check.fix)}")
    out.print(table)


def _workers(
    report: HardwareReport, workers: str, variant: str | None, ctx: int | None, checks: list[Check]
) -> dict[str, Any]:
    """--workers for plan and doctor: each worker's state and the pooled plan, as checks (added to
    `checks`) and as JSON."""
    from edgeoss.engines.llamacpp import rpc
    from edgeoss.planning import doctor as doctor_mod
    from edgeoss.runtime import pooled

    states = pooled.survey(pooled.parse_workers(workers))
    ready = [s.profile for s in states if s.profile is not None]
    the_pool = pooled.plan_variants(report, ready, variant, ctx)
    checks += doctor_mod.workers(states, the_pool, rpc.unsupported_reason())
    return {"workers": [s.to_dict() for s in states], "pooled_plan": the_pool.to_dict()}


def plan_cmd(
    hardware: Annotated[
        Path | None, typer.Option(help="A saved report (edgeoss doctor --json) instead of probing this machine.")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="20b or 120b (default: the largest that fits).")] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help=f"{', '.join(backends.PLAN_OPTIONS)} (default: best): llama.cpp's devices, or onnxruntime-genai."
        ),
    ] = None,
    ctx: Annotated[int | None, typer.Option(min=256, help="Context length (default: the longest that fits).")] = None,
    prefer: Annotated[str, typer.Option(help="quality (largest variant) or speed (smallest).")] = "quality",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    workers: WorkersOption = None,
) -> None:
    """Show the plan for this machine, or for a saved hardware report: placement, memory, expected speed;
    with --workers, the model across this machine and its workers."""
    from edgeoss import fsutil
    from edgeoss.discover import bandwidth
    from edgeoss.discover.hardware import HardwareReport
    from edgeoss.discover.probe import probe
    from edgeoss.planning.planner import Preferences, plan, plan_here

    with reported():
        prefs = Preferences.parse(variant, backend, ctx, prefer)
        if hardware is not None:
            report = HardwareReport.load(hardware)
            # Another machine's report is planned without this machine's load checks, and
            # with the bandwidth its own doctor measured (saved beside the report), if any.
            saved = fsutil.read_json(hardware)
            found = bandwidth.for_saved_report(report, saved.get(bandwidth.REPORT_KEY))
            the_plan = plan(report, prefs, bandwidth=found)
        else:
            report = probe()
            the_plan = plan_here(report, prefs, bandwidth.for_machine(report))
        if workers:
            checks: list[Check] = []
            data = _workers(report, workers, prefs.variant, ctx, checks)
            if as_json:
                print_json(data)
            else:
                _print_checks(checks)
            if any(c.status == "fail" for c in checks):
                raise typer.Exit(EXIT_CHECKS_FAILED)
            return
        if as_json:
            print_json(the_plan.to_dict())
        else:
            if the_plan.fits:
                experts = (
                    f", experts of {the_plan.n_cpu_moe_layers} layers on the CPU" if the_plan.n_cpu_moe_layers else ""
                )
                out.print(
                    f"[green]plan:[/] {the_plan.variant} on {the_plan.backend} ({the_plan.placement}{experts}), "
                    f"context {the_plan.context_length}",
                    highlight=False,
                )
                sizes = ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in the_plan.predicted_bytes.items())
                out.print(f"predicted memory: {sizes}", highlight=False)
                out.print(f"speed: {the_plan.speed_class}", highlight=False, markup=False)
                if the_plan.speed.get("trade"):
                    out.print(f"  or {the_plan.speed['trade']}", highlight=False, markup=False)
            else:
                out.print("[bold red]nothing fits[/]", highlight=False)
            for reason in the_plan.reasons:
                out.print(f"  - {reason}", highlight=False, markup=False)
            for warning in the_plan.warnings:
                out.print(f"  [yellow]![/] {escape(warning)}", highlight=False)
            for rejected in the_plan.rejected:
                out.print(f"  x {rejected.variant} on {rejected.backend}: {rejected.why}", style="dim", markup=False)
            for fix in the_plan.fixes:
                out.print(f"  [cyan]fix:[/] {escape(fix)}", highlight=False)
        if not the_plan.fits:
            raise typer.Exit(EXIT_CHECKS_FAILED)


def spec_cmd(
    variant: Annotated[str | None, typer.Argument(help="gpt-oss-20b or gpt-oss-120b (default: both).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the gpt-oss facts edgeoss works from: shapes, parameters, KV cache."""
    with reported():
        rows = {name: spec.facts(name) for name in spec.variant_names(variant)}
        if as_json:
            print_json(rows)
            return
        table = Table(title="gpt-oss")
        table.add_column("")
        for name in rows:
            table.add_column(name, justify="right")
        for key in next(iter(rows.values())):
            cells = []
            for row in rows.values():
                value = row[key]
                cells.append(f"{value:,}" if isinstance(value, int) else str(value))
            table.add_row(key.replace("_", " "), *cells)
        out.print(table)


def paths_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show where edgeoss keeps config, cache, data, logs and models (EDGEOSS_HOME moves them all)."""
    folders = current_paths().as_dict()
    if as_json:
        print_json(folders)
        return
    for key, value in folders.items():
        out.print(f"{key:>7}  {value}", highlight=False, markup=False)
