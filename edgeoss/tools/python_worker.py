"""The python tool's interpreter, as it runs inside the sandbox.

Started by python_tool.py under bubblewrap with only the standard library
guaranteed: this file imports nothing from edgeoss. It first caps itself
(address space, CPU time, file size, open files, no core files; soft and hard
limits alike, so the code it runs cannot raise them again), then answers
requests, one JSON line each way:

    in:  {"code": "..."}
    out: {"stdout": "...", "stderr": "...", "result": "repr or null",
          "error": "traceback or null", "dropped": 0}

Like a notebook cell, a request's last statement, when it is an expression,
is evaluated and its repr returned. The namespace lives as long as the
process: state is kept between calls. Output past the cap is dropped and
counted. The protocol runs on duplicates of the original stdin and stdout;
fds 0, 1 and 2 are pointed at /dev/null, so code that writes to them directly
cannot corrupt an answer, and code that reads stdin reads nothing.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import resource
import sys
import traceback
from typing import Any

FILENAME = "<python>"


class Bounded(io.TextIOBase):
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = max(0, self.limit - self.kept)
        self.parts.append(text[:room])
        self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - room)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _cap(limit: int, value: int) -> None:
    resource.setrlimit(limit, (value, value))


def cap_self(args: argparse.Namespace) -> None:
    _cap(resource.RLIMIT_CORE, 0)
    if sys.platform != "darwin":
        # macOS does not enforce an address-space limit: the session watches the memory
        # from outside there (python_tool.WATCH_MEMORY).
        _cap(resource.RLIMIT_AS, args.memory)
    _cap(resource.RLIMIT_FSIZE, args.file_bytes)
    _cap(resource.RLIMIT_NOFILE, args.open_files)
    # Soft limit: SIGXCPU ends the process; the hard limit a second later is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu, args.cpu + 1))


def run(code: str, namespace: dict[str, Any], limit: int) -> dict[str, Any]:
    out, err = Bounded(limit), Bounded(limit)
    result: str | None = None
    error: str | None = None
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        tree = ast.parse(code, FILENAME, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            tree.body.pop()
        exec(compile(tree, FILENAME, "exec"), namespace)
        if last is not None:
            value = eval(compile(last, FILENAME, "eval"), namespace)
            if value is not None:
                result = repr(value)[:limit]
    except SyntaxError as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc))
    except BaseException as exc:  # the code's own error, SystemExit included, is its result
        # The first frame is this function's exec: the model needs only its own code's frames.
        error = "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        )
    finally:
        sys.stdout, sys.stderr = saved
    return {
        "stdout": out.text(),
        "stderr": err.text(),
        "result": result,
        "error": error[-limit:] if error else None,
        "dropped": out.dropped + err.dropped,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--file-bytes", type=int, required=True)
    parser.add_argument("--open-files", type=int, required=True)
    parser.add_argument("--output", type=int, required=True)
    parser.add_argument("--path", action="append", default=[])
    args = parser.parse_args(argv)
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = io.StringIO("")
    sys.path.extend(args.path)
    cap_self(args)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in requests:
        try:
            code = json.loads(line)["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        answer = run(code, namespace, args.output) if isinstance(code, str) else {"error": "a malformed request"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
