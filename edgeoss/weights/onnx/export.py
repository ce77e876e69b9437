"""`edgeoss export-onnx`: make an ONNX Runtime GenAI folder from an original
gpt-oss checkpoint, offline, with onnxruntime-genai's own model builder.

    python -m edgeoss.weights.onnx.export SRC_DIR OUT_DIR [--ep cpu] [--precision int4]

The builder needs torch, transformers and onnx-ir (`pip install
'edgeoss[export]'`); it runs as a child process with its log kept beside the
cache. The folder is built in a temporary folder next to OUT_DIR and takes
its name only once the builder finished and edgeoss's verify passed, so an
interrupted export leaves nothing that looks usable. For `--ep dml` the
result is then loaded on DirectML in a child process, because no DirectML
export of gpt-oss is known to load; the answer is reported either way.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeoss import fsutil, lifeline
from edgeoss.engines.ortgenai import binding as ort_binding
from edgeoss.errors import EdgeossError, ExportError, UsageError
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.onnx.load_check import LoadCheck, check
from edgeoss.weights.report import Report

log = logging.getLogger(__name__)

EPS = ("cpu", "cuda", "webgpu", "dml")
PRECISIONS = ("int4", "fp16", "fp32")
INSTALL_HINT = "pip install 'edgeoss[export]'  (torch, transformers, onnx-ir and onnxruntime-genai)"
LOG_TAIL_LINES = 12


@dataclass(frozen=True)
class Exported:
    folder: Path
    report: Report
    load_check: LoadCheck | None
    log_file: Path


def missing_dependencies() -> list[str]:
    return [
        name
        for name in ("onnxruntime_genai", "torch", "transformers", "onnx_ir")
        if importlib.util.find_spec(name) is None
    ]


def builder_command(src: Path, out: Path, ep: str, precision: str, cache: Path) -> list[str]:
    # The checkpoint folder serves as both the model (its config.json) and the input weights.
    # It runs under edgeoss.lifeline, so that a builder whose export was killed stops too.
    return [
        sys.executable,
        "-m",
        "edgeoss.lifeline",
        "onnxruntime_genai.models.builder",
        "-m",
        str(src),
        "-i",
        str(src),
        "-o",
        str(out),
        "-p",
        precision,
        "-e",
        ep,
        "-c",
        str(cache),
    ]


def export(
    src: Path,
    out: Path,
    *,
    ep: str = "cpu",
    precision: str = "int4",
    overwrite: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> Exported:
    if ep not in EPS:
        raise UsageError(f"--ep {ep!r}", hint=f"choose one of {', '.join(EPS)}")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}", hint=f"choose one of {', '.join(PRECISIONS)}")
    ckpt = open_checkpoint(src)  # a wrong folder is refused before the builder starts
    missing = missing_dependencies()
    if missing:
        raise ExportError(f"the ONNX exporter needs {', '.join(missing)}", hint=INSTALL_HINT)
    if getattr(sys, "frozen", False):
        raise ExportError("export-onnx runs from a Python install, not from the edgeoss binary", hint=INSTALL_HINT)
    log.info("exporting %s (%s) for %s at %s", src, ckpt.hparams.name, ep, precision)
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    # The builder's cache can hold gigabytes: beside the output, not in a small /tmp.
    with fsutil.scratch_dir(out) as cache_dir:
        log_file = cache_dir / "builder.log"
        try:
            with fsutil.atomic_dir(out, overwrite=overwrite) as tmp:
                _build(src, tmp, ep, precision, cache_dir, log_file, on_line)
                report = onnx_checks.verify(tmp, deep=True)
                if not report.ok:
                    raise ExportError(
                        f"the builder's output does not pass verify: {report.error().message}",
                        hint="report it with the builder log; nothing was written to the output folder",
                    )
        finally:
            kept = out.parent / f"{out.name}.export.log"
            if log_file.is_file():
                shutil.copyfile(log_file, kept)
    load = check(out, ep) if ep == "dml" else None
    return Exported(out, report, load, kept)


def _build(
    src: Path,
    tmp: Path,
    ep: str,
    precision: str,
    cache: Path,
    log_file: Path,
    on_line: Callable[[str], None] | None,
) -> None:
    command = builder_command(src, tmp, ep, precision, cache)
    ort_binding.quiet_environment()  # the builder imports onnxruntime-genai too
    tail: list[str] = []
    with log_file.open("w", encoding="utf-8") as log_fh:
        process, line_to_child = lifeline.spawn(command, dict(os.environ), subprocess.PIPE)
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace")
                log_fh.write(line)
                tail = [*tail, line.rstrip()][-LOG_TAIL_LINES:]
                if on_line is not None:
                    on_line(line.rstrip())
            code = process.wait()
        except BaseException:
            process.kill()  # Ctrl-C: stop the builder too; atomic_dir removes its half-written folder
            process.wait()
            raise
        finally:
            line_to_child.close()
    if code != 0:
        raise ExportError(
            f"onnxruntime-genai's model builder failed (exit {code}) for --ep {ep} --precision {precision}:\n"
            + "\n".join(tail[-6:]),
            hint="its whole log is kept as OUT_DIR.export.log; int4 for cpu/webgpu and fp16 for cuda are the "
            "combinations Microsoft publishes",
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeoss.weights.onnx.export", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ep", default="cpu", choices=EPS)
    parser.add_argument("--precision", default="int4", choices=PRECISIONS)
    parser.add_argument("--force", action="store_true")
    a = parser.parse_args(argv)
    try:
        done = export(a.src, a.out, ep=a.ep, precision=a.precision, overwrite=a.force)
    except EdgeossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc
    print(done.folder)


if __name__ == "__main__":
    main()
