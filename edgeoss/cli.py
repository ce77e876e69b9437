"""The `edgeoss` command: parse, call the module that does the work, render."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgeoss import __version__, constants, logs, spec
from edgeoss.errors import EdgeossError, InterruptedByUser, UsageError
from edgeoss.paths import paths as current_paths

app = typer.Typer(
    name="edgeoss",
    help="Run OpenAI's gpt-oss models on the computer you have.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
log = logging.getLogger("edgeoss.cli")


def _version(value: bool) -> None:
    if value:
        out.print(f"edgeoss {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on the console (-vv: debug).")
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    logs.setup(verbose)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Turn our errors and Ctrl-C into a message and an exit code."""
    try:
        yield
    except KeyboardInterrupt:
        exc = InterruptedByUser("interrupted; nothing half-written was left behind")
        log.info("%s", exc.message)  # the file gets it; the console gets the message below, once
        err.print(f"[yellow]{escape(exc.message)}[/]", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except EdgeossError as exc:
        log.info("failed (exit %d): %s", exc.exit_code, exc)
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON.
    print(json.dumps(data, indent=2))


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create (must not exist, or be empty).")],
    scale: Annotated[str, typer.Option(help="tiny | small | 20b | 120b")] = "tiny",
    layers: Annotated[int | None, typer.Option(min=1, help="Override the number of layers.")] = None,
    experts: Annotated[int | None, typer.Option(min=1, help="Override the number of experts per layer.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; same seed, same bytes.")] = 0,
    max_shard_size: Annotated[
        int | None, typer.Option(min=1, help="Largest safetensors shard in bytes (default 5 GB).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it holds something.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a synthetic gpt-oss checkpoint (real layout and vocabulary, random weights)."""
    from edgeoss import synth as synth_mod

    with _reported():
        try:
            hp = synth_mod.hparams_for(scale, layers, experts)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        plan = synth_mod.plan(hp, seed, max_shard_size or synth_mod.MAX_SHARD_BYTES)
        progress = _progress(as_json)
        with progress:
            task = progress.add_task(f"{hp.name}", total=plan.tensor_bytes)
            synth_mod.write_checkpoint(out_dir, plan, overwrite=force, on_bytes=lambda n: progress.advance(task, n))
        result = {
            "path": str(out_dir.absolute()),
            "name": hp.name,
            "seed": seed,
            "layers": hp.num_layers,
            "experts": hp.num_experts,
            "params": hp.total_params,
            "tensor_bytes": plan.tensor_bytes,
            "shards": [name for name, _ in plan.shards],
        }
        if as_json:
            _print_json(result)
        else:
            out.print(
                f"[green]wrote[/] {hp.name} to {escape(str(result['path']))}: {hp.total_params / 1e9:.3f}B params, "
                f"{plan.tensor_bytes / 1e9:.2f} GB in {len(plan.shards)} file(s)"
            )


def _progress(disable: bool) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
        transient=True,
    )


def _render_report(report: Any, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_dict())
        return
    table = Table(title=f"{Path(report.path).name}: {report.variant}", show_header=False, box=None)
    for check in report.checks:
        mark = "[green]ok[/]" if check.ok else ("[yellow]warn[/]" if check.warning else "[bold red]FAIL[/]")
        table.add_row(mark, check.name, check.detail)
    out.print(table)
    if report.quantization:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(report.quantization["tensors_by_type"].items()))
        out.print(f"tensors by type: {by_type}", highlight=False)
    for name, digest in report.sha256.items():
        out.print(f"sha256 {digest}  {name}", highlight=False, markup=False)
    out.print(report.summary(), style="green" if report.ok else "bold red", highlight=False, markup=False)


@app.command()
def convert(
    src_dir: Annotated[Path, typer.Argument(help="Original gpt-oss checkpoint folder (config.json, safetensors).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="GGUF to write (default: ./NAME.gguf).")] = None,
    name: Annotated[str | None, typer.Option(help="Model name stored in the GGUF (general.name).")] = None,
    source: Annotated[str | None, typer.Option(help="Where the checkpoint came from (a URL or Hub repo).")] = None,
    outtype: Annotated[
        str, typer.Option(help="bf16 (the checkpoint's own) or f32 for the large float matrices; both lossless.")
    ] = "bf16",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verification report as JSON.")] = False,
) -> None:
    """Convert an original MXFP4 checkpoint to GGUF, losslessly, and verify the result."""
    from edgeoss.gguf import convert as convert_mod

    with _reported():
        target = output or Path.cwd() / f"{src_dir.absolute().name}.gguf"
        with _progress(as_json) as progress:
            task = progress.add_task("converting", total=None)

            def advance(n: int) -> None:
                progress.advance(task, n)

            report = convert_mod.convert(
                src_dir,
                target,
                name=name,
                source=source,
                outtype=outtype,
                overwrite=force,
                on_bytes=advance,
                on_total=lambda total: progress.update(task, total=total),
            )
        if as_json:
            _print_json(report.to_dict())
        else:
            out.print(f"[green]wrote[/] {escape(f'{report.path}: {report.summary()}')}", highlight=False)


@app.command("export-onnx")
def export_onnx_cmd(
    src_dir: Annotated[Path, typer.Argument(help="Original gpt-oss checkpoint folder (config.json, safetensors).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX folder to write.")],
    ep: Annotated[str, typer.Option(help="Execution provider: cpu, cuda, webgpu or dml.")] = "cpu",
    precision: Annotated[str, typer.Option(help="int4, fp16 or fp32.")] = "int4",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verification report as JSON.")] = False,
) -> None:
    """Export an original checkpoint to ONNX Runtime GenAI with onnxruntime-genai's builder, and verify it."""
    from edgeoss import export_onnx

    with _reported():
        with _progress(as_json) as progress:
            task = progress.add_task(f"exporting for {ep} ({precision})", total=None)
            done = export_onnx.export(
                src_dir,
                output,
                ep=ep,
                precision=precision,
                overwrite=force,
                on_line=lambda line: progress.update(task, description=f"exporting: {line[:70]}"),
            )
        if as_json:
            _print_json({**done.report.to_dict(), "load_check": done.load_check.to_dict() if done.load_check else None})
        else:
            out.print(f"[green]wrote[/] {escape(f'{done.folder}: {done.report.summary()}')}", highlight=False)
            out.print(f"builder log: {done.log_file}", highlight=False, markup=False, style="dim")
        if done.load_check is not None:
            style = "green" if done.load_check.ok else "bold red"
            verdict = "loads" if done.load_check.ok else "does not load"
            err.print(
                f"{ep}: the export {verdict} here: {done.load_check.detail}", style=style, markup=False, highlight=False
            )
            if not done.load_check.ok:
                raise typer.Exit(32)


@app.command("verify")
def verify_cmd(
    path: Annotated[
        Path, typer.Argument(help="A GGUF file (or first shard of a split one), an ONNX folder, or a stored model.")
    ],
    deep: Annotated[bool, typer.Option("--deep", help="Also read every byte: sha256, MXFP4 scales, NaN/Inf.")] = False,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 (implies --deep).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that a model file is gpt-oss, whole and undamaged. Exit code names the failure class."""
    from edgeoss import verify as verify_mod

    with _reported():
        report = verify_mod.verify_path(path, deep=deep, sha256=sha256)
        _render_report(report, as_json)
        if not report.ok:
            raise typer.Exit(report.exit_code)


@app.command()
def pull(
    model: Annotated[str, typer.Argument(help="20b, 120b, gpt-oss-20b, or a Hub repo id holding GGUF files.")] = "20b",
    fmt: Annotated[
        str, typer.Option("--format", help="gguf | onnx-cuda | onnx-cpu | onnx-webgpu | safetensors")
    ] = "gguf",
    name: Annotated[str | None, typer.Option(help="Name in the store (default: the variant).")] = None,
    revision: Annotated[str, typer.Option(help="Hub branch, tag or commit.")] = "main",
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if the name is stored.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Download an official gpt-oss artifact from the Hugging Face Hub, check it, and store it."""
    from edgeoss import pull as pull_mod

    def announce(what: str, total: int) -> None:
        if not as_json:
            err.print(f"fetching {what}: {total / 1e9:.2f} GB", highlight=False, markup=False)

    with _reported():
        manifest = pull_mod.pull(
            model, fmt, name=name, revision=revision, overwrite=force, progress=not as_json, on_plan=announce
        )
    if as_json:
        _print_json(manifest.to_dict())
    else:
        out.print(
            f"[green]stored[/] {escape(manifest.name)}: {manifest.variant}, {manifest.format}, verified",
            highlight=False,
        )


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A GGUF (or first shard of a split one) or an ONNX GenAI folder.")],
    name: Annotated[str | None, typer.Option(help="Name in the store (default: from the file name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a stored model of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Copy (or hard-link) a model from disk or USB into the store, verified on arrival."""
    from edgeoss import importer

    with _reported(), _progress(as_json) as progress:
        task = progress.add_task("importing", total=None)
        manifest = importer.import_path(
            path,
            name=name,
            overwrite=force,
            on_bytes=lambda n: progress.advance(task, n),
            on_total=lambda total: progress.update(task, total=total),
        )
    if as_json:
        _print_json(manifest.to_dict())
    else:
        out.print(
            f"[green]imported[/] {escape(manifest.name)}: {manifest.variant}, {manifest.format}, "
            f"{manifest.total_bytes / 1e9:.2f} GB, verified",
            highlight=False,
        )


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON.")] = False) -> None:
    """List the models in the store."""
    from edgeoss.store import Store

    with _reported():
        models = Store().list()
        if as_json:
            _print_json([m.to_dict() for m in models])
            return
        if not models:
            out.print("no models yet: `edgeoss pull`, `edgeoss import PATH` or `edgeoss convert`")
            return
        table = Table()
        for column in ("name", "variant", "format", "backend", "size", "verified", "source"):
            table.add_column(column, justify="right" if column == "size" else "left")
        for m in models:
            source = m.source.get("repo") or m.source.get("path") or m.source.get("kind", "")
            verified = m.verified_at[:16].replace("T", " ")
            table.add_row(
                m.name, m.variant, m.format, m.backend, f"{m.total_bytes / 1e9:.2f} GB", verified, str(source)
            )
        out.print(table)


@app.command("rm")
def rm_cmd(name: Annotated[str, typer.Argument(help="A model name from `edgeoss list`.")]) -> None:
    """Remove a model from the store."""
    from edgeoss.store import Store

    with _reported():
        manifest = Store().remove(name)
        out.print(f"removed {manifest.name} ({manifest.total_bytes / 1e9:.2f} GB freed)", highlight=False, markup=False)


_MARKS = {"pass": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]", "info": "[dim]--[/]"}


def _plan_prefs(variant: str | None, backend: str | None, ctx: int | None, prefer: str) -> Any:
    from edgeoss.planner import BACKEND_CHOICES, Preferences

    if prefer not in ("quality", "speed"):
        raise UsageError(f"--prefer {prefer!r}", hint="quality or speed")
    if backend not in (None, *BACKEND_CHOICES):
        raise UsageError(f"--backend {backend!r}", hint=", ".join(BACKEND_CHOICES))
    if variant is not None and variant.removeprefix("gpt-oss-") not in ("20b", "120b"):
        raise UsageError(f"--variant {variant!r}", hint="20b or 120b")
    return Preferences(variant=variant, backend=backend, context=ctx, prefer=prefer)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report, plan and checks as JSON.")] = False,
) -> None:
    """Check this machine: hardware, backends, what will run and why, models, and what to fix."""
    from edgeoss import doctor as doctor_mod
    from edgeoss.discover.probe import probe
    from edgeoss.planner import plan_here as make_plan

    with _reported():
        report = probe()
        the_plan = make_plan(report)
        checks = doctor_mod.diagnose(report, the_plan)
        if as_json:
            _print_json(doctor_mod.as_json(report, the_plan, checks))
            return
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
        failures = sum(c.status == "fail" for c in checks)
        if failures:
            raise typer.Exit(1)


@app.command("plan")
def plan_cmd(
    hardware: Annotated[
        Path | None, typer.Option(help="A saved report (edgeoss doctor --json) instead of probing this machine.")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="20b or 120b (default: the largest that fits).")] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="cuda, metal, cpu (llama.cpp), or ort, ort-cuda, ort-webgpu, ort-dml, ort-cpu (default: best)."
        ),
    ] = None,
    ctx: Annotated[int | None, typer.Option(min=256, help="Context length (default: the longest that fits).")] = None,
    prefer: Annotated[str, typer.Option(help="quality (largest variant) or speed (smallest).")] = "quality",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show the plan for this machine, or for a saved hardware report."""
    from edgeoss.discover.probe import probe
    from edgeoss.discover.report import HardwareReport
    from edgeoss.planner import plan, plan_here

    with _reported():
        prefs = _plan_prefs(variant, backend, ctx, prefer)
        if hardware is not None:
            try:
                report = HardwareReport.from_dict(json.loads(hardware.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise UsageError(f"{hardware} is not a hardware report: {exc}") from exc
        else:
            report = probe()
        # Another machine's report is planned without this machine's load checks.
        the_plan = plan(report, prefs) if hardware is not None else plan_here(report, prefs)
        if as_json:
            _print_json(the_plan.to_dict())
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
                out.print(f"predicted memory: {sizes}; speed: {the_plan.speed_class}", highlight=False)
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
            raise typer.Exit(1)


_BACKEND_HELP = "llama.cpp (GGUF) or ort (onnxruntime-genai, ONNX folders); default: whatever runs the model."


def _load(model: str | None, backend: str | None) -> tuple[Any, Any]:
    """(engine, chosen model) for MODEL, planned for this machine."""
    from edgeoss import models
    from edgeoss.discover.probe import probe
    from edgeoss.engines.loader import open_engine
    from edgeoss.planner import plan_here as make_plan

    the_plan = make_plan(probe()) if model != models.DEMO else None
    chosen = models.choose(model, plan=the_plan, backend=backend)
    if chosen.is_demo:
        err.print(models.DEMO_LABEL, style="bold yellow", markup=False, highlight=False, soft_wrap=True)
    engine = open_engine(chosen)
    log.info("running %s on %s, %s", chosen.name, engine.name, engine.placement)
    return engine, chosen


def _sampling(max_tokens: int, temperature: float, seed: int | None) -> Any:
    from edgeoss.engines.base import Sampling

    return Sampling(max_tokens=max_tokens, temperature=temperature, seed=seed)


@app.command()
def run(
    args: Annotated[
        list[str], typer.Argument(help="[MODEL] PROMPT  (MODEL: a stored name, a .gguf file, an ONNX folder, or demo)")
    ],
    backend: Annotated[str | None, typer.Option(help=_BACKEND_HELP)] = None,
    effort: Annotated[str, typer.Option(help="Reasoning effort: low, medium or high.")] = "medium",
    show_reasoning: Annotated[bool, typer.Option("--show-reasoning", help="Print the reasoning (dimmed).")] = False,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to generate.")] = 1024,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Reasoning, content, tool calls, usage and timings as JSON.")
    ] = False,
) -> None:
    """Answer one prompt and exit."""
    import threading

    from edgeoss import generate, harmony

    with _reported():
        if len(args) not in (1, 2):
            raise UsageError("give a PROMPT, or a MODEL and a PROMPT")
        model, prompt = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        if effort not in harmony.EFFORTS:
            raise UsageError(f"--effort {effort!r}", hint="low, medium or high")
        engine, chosen = _load(model, backend)
        reply = generate.Reply()
        cancel = threading.Event()
        try:
            for event in generate.stream(
                engine,
                [harmony.Turn("user", prompt)],
                harmony.RenderOptions(effort=effort),
                _sampling(max_tokens, temperature, seed),
                reply,
                cancel,
            ):
                if as_json:
                    continue
                if event.kind == "content":
                    print(event.text, end="", flush=True)
                elif event.kind == "reasoning" and show_reasoning:
                    err.print(event.text, end="", highlight=False, markup=False, style="dim")
        except KeyboardInterrupt:
            cancel.set()
        finally:
            engine.close()
        result, timings = reply.result, reply.timings
        if as_json:
            _print_json(
                {
                    "model": chosen.name,
                    "demo": chosen.is_demo,
                    "backend": f"{engine.name}, {engine.placement}",
                    "reasoning": result.reasoning,
                    "content": result.content,
                    "preamble": result.preamble,
                    "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls],
                    "finish_reason": result.finish_reason,
                    "malformed_tokens": result.malformed,
                    "usage": reply.usage,
                    "timings": {
                        "time_to_first_token_s": round(timings.time_to_first_token_s, 4),
                        "generation_s": round(timings.generation_s, 4),
                        "tokens_per_s": round(timings.tokens_per_s, 2),
                    },
                }
            )
        else:
            print()


@app.command()
def chat(
    model: Annotated[str | None, typer.Argument(help="A stored name, a .gguf file, an ONNX folder, or demo.")] = None,
    backend: Annotated[str | None, typer.Option(help=_BACKEND_HELP)] = None,
    effort: Annotated[str, typer.Option(help="Reasoning effort: low, medium or high.")] = "medium",
    reasoning: Annotated[str, typer.Option(help="Reasoning display: fold (one line), show or hide.")] = "fold",
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens per reply.")] = 2048,
) -> None:
    """Talk to a model: /effort low|medium|high, /reasoning fold|show|hide, /show, /clear, /exit;
    end a line with \\ to continue it."""
    import threading

    from edgeoss import chat_view, generate, harmony

    with _reported():
        if reasoning not in chat_view.MODES:
            raise UsageError(f"--reasoning {reasoning!r}", hint=f"choose one of {', '.join(chat_view.MODES)}")
        if effort not in harmony.EFFORTS:
            raise UsageError(f"--effort {effort!r}", hint=f"choose one of {', '.join(harmony.EFFORTS)}")
        engine, chosen = _load(model, backend)
        turns: list[Any] = []
        last_reasoning = ""
        err.print(f"chatting with {chosen.name} (effort {effort}); /exit to leave", highlight=False, markup=False)
        try:
            while True:
                try:
                    lines = [input("you> ")]
                    while lines[-1].endswith("\\"):
                        lines[-1] = lines[-1][:-1]
                        lines.append(input("...> "))
                except (EOFError, KeyboardInterrupt):
                    break
                text = "\n".join(lines).strip()
                if not text:
                    continue
                command, _, argument = text.partition(" ")
                if command in ("/exit", "/quit"):
                    break
                if command == "/clear":
                    turns.clear()
                    err.print("history cleared", highlight=False)
                    continue
                if command == "/effort":
                    if argument.strip() in harmony.EFFORTS:
                        effort = argument.strip()
                        err.print(f"effort {effort}", highlight=False)
                    else:
                        err.print("usage: /effort low|medium|high", highlight=False)
                    continue
                if command == "/reasoning":
                    if argument.strip() in chat_view.MODES:
                        reasoning = argument.strip()
                        err.print(f"reasoning {reasoning}", highlight=False)
                    else:
                        err.print("usage: /reasoning fold|show|hide", highlight=False)
                    continue
                if command == "/show":
                    err.print(last_reasoning or "(no reasoning in the last reply)", style="dim", markup=False)
                    continue
                turns.append(harmony.Turn("user", text))
                reply = generate.Reply()
                view = chat_view.ReplyView(reasoning, err)
                cancel = threading.Event()
                stopped = False
                try:
                    for event in generate.stream(
                        engine,
                        turns,
                        harmony.RenderOptions(effort=effort),
                        _sampling(max_tokens, 1.0, None),
                        reply,
                        cancel,
                    ):
                        if event.kind == "reasoning":
                            view.reasoning(event.text, reply.result.reasoning_tokens)
                        elif event.kind in ("content", "preamble"):
                            view.answer(event.text)
                except KeyboardInterrupt:
                    cancel.set()  # Ctrl-C stops this reply, not the chat
                    stopped = True
                view.finish(stopped)
                last_reasoning = reply.result.reasoning
                turns.append(harmony.Turn("assistant", reply.result.content, reply.result.reasoning))
        finally:
            engine.close()


@app.command()
def serve(
    model: Annotated[
        str | None, typer.Argument(help="A stored name, a .gguf file, an ONNX folder, or demo (default: planned).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help=_BACKEND_HELP)] = None,
    effort: Annotated[
        str, typer.Option(help="Reasoning effort when a request names none: low, medium, high.")
    ] = "medium",
    host: Annotated[str, typer.Option(help="Address to bind; not loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = constants.DEFAULT_PORT,
    api_key: Annotated[
        str | None, typer.Option(envvar=constants.ENV_API_KEY, help="Key clients must send (Bearer).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="A web origin allowed to call the API (repeatable).")
    ] = None,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Sequences decoded together.")] = 1,
    ctx: Annotated[int | None, typer.Option(min=256, help="Context tokens in all, split across --parallel.")] = None,
    keep_alive: Annotated[str, typer.Option(help='Unload after this idle time ("5m", "0", "-1": never).')] = "5m",
    queue: Annotated[int, typer.Option(min=0, help="Requests that may wait for a slot before 429.")] = 16,
    timeout: Annotated[float, typer.Option(min=0, help="Most seconds one generation may run (0: no limit).")] = 600,
    max_body: Annotated[int, typer.Option(min=1024, help="Largest request body in bytes.")] = 8 * 1024 * 1024,
    log_prompts: Annotated[bool, typer.Option(help="Write prompts to the access log.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Pull the planned model without asking.")] = False,
    insecure: Annotated[bool, typer.Option(help="Allow a non-loopback address without an API key.")] = False,
) -> None:
    """Serve a model: OpenAI Chat Completions and Responses, Ollama routes, and a web chat at /."""
    from edgeoss import harmony
    from edgeoss import serve as serve_mod
    from edgeoss.server.app import ServeOptions
    from edgeoss.server.host import parse_keep_alive

    with _reported():
        if effort not in harmony.EFFORTS:
            raise UsageError(f"--effort {effort!r}", hint="low, medium or high")
        options = ServeOptions(
            effort=effort,
            host=host,
            port=port,
            api_key=api_key or None,
            cors_origins=list(cors_origin or []),
            max_body_bytes=max_body,
            request_timeout_s=timeout or None,
            log_prompts=log_prompts,
        )
        request = serve_mod.ServeRequest(
            model=model,
            options=options,
            parallel=parallel,
            ctx=ctx,
            keep_alive_s=parse_keep_alive(keep_alive),
            queue_size=queue,
            yes=yes,
            insecure=insecure,
            backend=backend,
        )
        serve_mod.run(request)


@app.command()
def tray(
    no_start: Annotated[bool, typer.Option("--no-start", help="Do not start the server with the tray.")] = False,
) -> None:
    """The tray launcher: server status, start/stop, open chat, model, effort, logs, start at login."""
    from edgeoss.app import tray as tray_mod

    with _reported():
        tray_mod.run(start_server=not no_start)


@app.command()
def bundle(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (a USB stick).")],
    model: Annotated[str | None, typer.Argument(help="A stored model (default: the best installed).")] = None,
    binary: Annotated[
        Path | None, typer.Option(help="The edgeoss binary (onefile) or onedir folder (default: this one, if frozen).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it exists.")] = False,
) -> None:
    """Copy the binary, a model, its manifest and checksums into a folder an offline machine installs from."""
    from edgeoss import bundle as bundle_mod

    with _reported(), _progress(False) as progress:
        task = progress.add_task("bundling", total=None)
        done = bundle_mod.bundle(
            out_dir,
            model,
            binary=binary,
            overwrite=force,
            on_bytes=lambda n: progress.advance(task, n),
            on_total=lambda total: progress.update(task, total=total),
        )
    what = "the binary and " if done.binary is not None else "no binary (give --binary), "
    out.print(
        f"[green]wrote[/] {escape(str(done.folder))}: {what}{escape(done.manifest.name)} "
        f"({done.total_bytes / 1e9:.2f} GB); install there with install.sh or install.cmd",
        highlight=False,
    )


@app.command("spec")
def spec_cmd(
    variant: Annotated[str | None, typer.Argument(help="gpt-oss-20b or gpt-oss-120b (default: both).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the gpt-oss facts edgeoss works from: shapes, parameters, KV cache."""
    with _reported():
        names = (
            list(spec.VARIANTS)
            if variant is None
            else [variant if variant.startswith("gpt-oss") else f"gpt-oss-{variant}"]
        )
        unknown = [n for n in names if n not in spec.VARIANTS]
        if unknown:
            raise UsageError(f"unknown variant {variant!r}", hint=f"choose one of {', '.join(spec.VARIANTS)}")
        rows = {}
        for name in names:
            hp = spec.VARIANTS[name]
            rows[name] = {
                "layers": hp.num_layers,
                "experts": hp.num_experts,
                "experts_per_token": hp.experts_per_token,
                "hidden_size": hp.hidden_size,
                "attention_heads": hp.num_attention_heads,
                "kv_heads": hp.num_kv_heads,
                "head_dim": hp.head_dim,
                "sliding_window": hp.sliding_window,
                "context_length": hp.context_length,
                "vocab_size": hp.vocab_size,
                "total_params": hp.total_params,
                "active_params": hp.active_params,
                "kv_cache_bytes_per_token_f16": hp.kv_bytes_per_token_per_layer() * hp.num_full_layers,
                "kv_cache_bytes_at_max_context_f16": hp.kv_cache_bytes(hp.context_length),
                "hf_repo": spec.HF_REPOS[name],
            }
        if as_json:
            _print_json(rows)
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


@app.command("paths")
def paths_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show where edgeoss keeps config, cache, data, logs and models (EDGEOSS_HOME moves them all)."""
    folders = current_paths().as_dict()
    if as_json:
        _print_json(folders)
        return
    for key, value in folders.items():
        out.print(f"{key:>7}  {value}", highlight=False, markup=False)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean-up path as Ctrl-C.
    raise KeyboardInterrupt


def main() -> None:
    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, _terminate)
    app()
