"""Commands of the weights stage: synth, convert, export-onnx, verify, pull,
import, list, clean, rm, bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgeoss.cli.output import err, out, print_json, progress_bar, reported
from edgeoss.errors import UsageError
from edgeoss.fsutil import human_bytes
from edgeoss.weights.report import Report
from edgeoss.weights.store import Store


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
    from edgeoss.weights import synth as synth_mod

    with reported():
        try:
            hp = synth_mod.hparams_for(scale, layers, experts)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        plan = synth_mod.plan(hp, seed, max_shard_size or synth_mod.MAX_SHARD_BYTES)
        progress = progress_bar(as_json)
        with progress:
            task = progress.add_task(f"{hp.name}", total=plan.tensor_bytes)
            synth_mod.write_checkpoint(out_dir, plan, overwrite=force, on_bytes=lambda n: progress.advance(task, n))
        result = plan.summary(out_dir)
        if as_json:
            print_json(result)
        else:
            out.print(
                f"[green]wrote[/] {hp.name} to {escape(str(result['path']))}: {hp.total_params / 1e9:.3f}B params, "
                f"{plan.tensor_bytes / 1e9:.2f} GB in {len(plan.shards)} file(s)"
            )


def render_report(report: Report, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    table = Table(title=f"{Path(report.path).name}: {report.variant}", show_header=False, box=None)
    for check in report.checks:
        mark = "[green]ok[/]" if check.ok else ("[yellow]warn[/]" if check.warning else "[bold red]FAIL[/]")
        table.add_row(mark, check.name, check.detail)
    out.print(table)
    # A GGUF counts its tensors by type; an ONNX folder's sizes are in its "files" check already.
    by_type = report.quantization.get("tensors_by_type")
    if by_type:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items()))
        out.print(f"tensors by type: {listed}", highlight=False)
    for name, digest in report.sha256.items():
        out.print(f"sha256 {digest}  {name}", highlight=False, markup=False)
    out.print(report.summary(), style="green" if report.ok else "bold red", highlight=False, markup=False)


def convert(
    src_dir: Annotated[Path, typer.Argument(help="Original gpt-oss checkpoint folder (config.json, safetensors).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="GGUF to write (default: ./NAME.gguf).")] = None,
    name: Annotated[str | None, typer.Option(help="Model name stored in the GGUF (general.name).")] = None,
    source: Annotated[str | None, typer.Option(help="Where the checkpoint came from (a URL or Hub repo).")] = None,
    outtype: Annotated[
        str,
        typer.Option(
            help="Type of the large matrices (embedding, attention, output): bf16, the checkpoint's own "
            "(lossless, default); f32 (lossless, for numerical comparisons); or q8_0, as in ggml-org's "
            "published GGUFs: lossy (8 bits per weight, 34 bytes per 32 against bf16's 64), 12% smaller "
            "for 20b and about 30% fewer bytes read per generated token, so faster decoding. The experts "
            "stay the release's MXFP4 bit for bit in all three."
        ),
    ] = "bf16",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verification report as JSON.")] = False,
) -> None:
    """Convert an original MXFP4 checkpoint to GGUF (losslessly unless --outtype q8_0) and verify the result."""
    from edgeoss.weights.gguf import convert as convert_mod

    with reported():
        target = output or Path.cwd() / f"{src_dir.absolute().name}.gguf"
        with progress_bar(as_json) as progress:
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
            print_json(report.to_dict())
        else:
            out.print(f"[green]wrote[/] {escape(f'{report.path}: {report.summary()}')}", highlight=False)


def export_onnx_cmd(
    src_dir: Annotated[Path, typer.Argument(help="Original gpt-oss checkpoint folder (config.json, safetensors).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX folder to write.")],
    ep: Annotated[str, typer.Option(help="Execution provider: cpu, cuda, webgpu or dml.")] = "cpu",
    precision: Annotated[str, typer.Option(help="int4, fp16 or fp32.")] = "int4",
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verification report as JSON.")] = False,
) -> None:
    """Export an original checkpoint to ONNX Runtime GenAI with onnxruntime-genai's builder, and verify it."""
    from edgeoss.errors import ExportDoesNotLoad
    from edgeoss.weights.onnx import export as export_onnx

    with reported():
        with progress_bar(as_json) as progress:
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
            print_json({**done.report.to_dict(), "load_check": done.load_check.to_dict() if done.load_check else None})
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
                raise typer.Exit(ExportDoesNotLoad.exit_code)


def verify_cmd(
    path: Annotated[
        Path, typer.Argument(help="A GGUF file (or first shard of a split one), an ONNX folder, or a stored model.")
    ],
    deep: Annotated[bool, typer.Option("--deep", help="Also read every byte: sha256, MXFP4 scales, NaN/Inf.")] = False,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 (implies --deep).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that a model file is gpt-oss, whole and undamaged. Exit code names the failure class."""
    from edgeoss.weights import verify as verify_mod

    with reported():
        report = verify_mod.verify_path(path, deep=deep, sha256=sha256)
        render_report(report, as_json)
        if not report.ok:
            raise typer.Exit(report.exit_code)


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
    from edgeoss.weights import pull as pull_mod

    def announce(what: str, total: int) -> None:
        if not as_json:
            err.print(f"fetching {what}: {total / 1e9:.2f} GB", highlight=False, markup=False)

    with reported():
        manifest = pull_mod.pull(
            model, fmt, name=name, revision=revision, overwrite=force, progress=not as_json, on_plan=announce
        )
    if as_json:
        print_json(manifest.to_dict())
    else:
        out.print(
            f"[green]stored[/] {escape(manifest.name)}: {manifest.variant}, {manifest.format}, verified",
            highlight=False,
        )


def import_cmd(
    path: Annotated[Path, typer.Argument(help="A GGUF (or first shard of a split one) or an ONNX GenAI folder.")],
    name: Annotated[str | None, typer.Option(help="Name in the store (default: from the file name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a stored model of the same name.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Copy (or hard-link) a model from disk or USB into the store, verified on arrival."""
    from edgeoss.weights import importer

    with reported(), progress_bar(as_json) as progress:
        task = progress.add_task("importing", total=None)
        manifest = importer.import_path(
            path,
            name=name,
            overwrite=force,
            on_bytes=lambda n: progress.advance(task, n),
            on_total=lambda total: progress.update(task, total=total),
        )
    if as_json:
        print_json(manifest.to_dict())
    else:
        out.print(
            f"[green]imported[/] {escape(manifest.name)}: {manifest.variant}, {manifest.format}, "
            f"{manifest.total_bytes / 1e9:.2f} GB, verified",
            highlight=False,
        )


def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON.")] = False) -> None:
    """List the models in the store."""
    with reported():
        store = Store()
        models = store.list()
        if as_json:
            print_json([m.to_dict() for m in models])
            return
        _tell_leftovers(store)
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


def _tell_leftovers(store: Store) -> None:
    """What stopped commands left in the store, on stderr: it is not a model, but it takes disk."""
    found = store.leftovers()
    if not found:
        return
    total = sum(item.bytes for item in found)
    err.print(f"{len(found)} leftover(s) of stopped commands, {human_bytes(total)}:", highlight=False, markup=False)
    for item in found:
        again = " (the same pull resumes from it)" if item.resumable else ""
        err.print(f"  {item.what}: {human_bytes(item.bytes)}{again}", highlight=False, markup=False)
    err.print("  `edgeoss clean` removes them", highlight=False, markup=False, style="dim")


def clean_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print what was removed as JSON.")] = False) -> None:
    """Remove what stopped commands left in the store (never a model, never a running command's files)."""
    with reported():
        removed = Store().clean()
        freed = sum(item.bytes for item in removed)
        if as_json:
            print_json(
                {"removed": [{"path": str(i.path), "what": i.what, "bytes": i.bytes} for i in removed], "bytes": freed}
            )
            return
        for item in removed:
            out.print(f"removed {item.what} ({human_bytes(item.bytes)})", highlight=False, markup=False)
        out.print(f"{human_bytes(freed)} freed" if removed else "nothing to clean", highlight=False, markup=False)


def rm_cmd(name: Annotated[str, typer.Argument(help="A model name from `edgeoss list`.")]) -> None:
    """Remove a model from the store."""
    with reported():
        freed = Store().remove(name)
        out.print(f"removed {name} ({human_bytes(freed)} freed)", highlight=False, markup=False)


def bundle(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (a USB stick).")],
    model: Annotated[str | None, typer.Argument(help="A stored model (default: the best installed).")] = None,
    binary: Annotated[
        Path | None, typer.Option(help="The edgeoss binary (onefile) or onedir folder (default: this one, if frozen).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it exists.")] = False,
) -> None:
    """Copy the binary, a model, its manifest and checksums into a folder an offline machine installs from."""
    from edgeoss.weights import bundle as bundle_mod

    with reported(), progress_bar(False) as progress:
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
