"""What a built-in tool call costs: the python sandbox and the tool loop.

1. The sandbox: the same interpreter and protocol (edgeoss/tools/python_worker.py)
   started plainly, without bubblewrap, is the baseline; edgeoss's sandboxed
   session is measured against it, for a first call (the interpreter starts)
   and for warm calls.
2. The loop: through the real llama.cpp engine on the demo model (built on
   first use), a forced reply that calls python once and then answers, against
   a forced reply of exactly as many tokens that makes no call. The difference
   is what the loop adds per call (the tool's run, its answer's tokens, the
   next round's prompt); both run here, in one process, interleaved.

    python benchmarks/tool_loop.py [--warm 50] [--starts 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from edgeoss.tools import python_tool, python_worker, sandbox


class Plain:
    """The baseline: python_worker.py in a plain child process, no sandbox."""

    def __init__(self) -> None:
        limits = python_tool.Limits()
        caps = ["--memory", str(limits.memory_bytes), "--cpu", str(limits.cpu_seconds)]
        caps += ["--file-bytes", str(limits.file_bytes), "--open-files", str(limits.open_files)]
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", python_worker.__file__, *caps, "--output", str(limits.output_chars)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._line()  # ready

    def _line(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def run(self, code: str) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"code": code}).encode() + b"\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def sandbox_costs(starts: int, warm: int) -> None:
    first_plain, first_box, warm_plain, warm_box = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(starts):
            t = time.perf_counter()
            plain = Plain()
            plain.run("1 + 1")
            first_plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            box = python_tool.PythonSession(scratch_root=Path(scratch))
            assert box.run("1 + 1").result == "2"
            first_box.append(time.perf_counter() - t)
            for _ in range(warm // starts):
                t = time.perf_counter()
                plain.run("1 + 1")
                warm_plain.append(time.perf_counter() - t)
                t = time.perf_counter()
                box.run("1 + 1")
                warm_box.append(time.perf_counter() - t)
            plain.close()
            box.close()
    print(f"{'measure':38} {'sandboxed':>12} {'plain':>12} {'ratio':>8}")
    for label, boxed, bare in (
        ("first call (interpreter starts)", first_box, first_plain),
        ("warm call (1 + 1)", warm_box, warm_plain),
    ):
        b, p = _median_ms(boxed), _median_ms(bare)
        print(f"{label:38} {b:9.2f} ms {p:9.2f} ms {b / p:8.2f}")


def loop_costs(rounds: int) -> None:
    from edgeoss import harmony
    from edgeoss.engines.base import LoadSettings, Sampling
    from edgeoss.engines.llamacpp.engine import LlamaCppEngine
    from edgeoss.runtime.choose import ensure_demo
    from edgeoss.runtime.reply import Reply
    from edgeoss.tools import loop
    from edgeoss.weights.store import Store
    from forced import ForcedScript

    store = Store()
    engine = LlamaCppEngine(store.entry_path(ensure_demo(store)), LoadSettings(context_length=4096, use_mmap=False))
    call = (
        "<|channel|>analysis<|message|>Compute.<|end|>"
        "<|start|>assistant to=python<|channel|>analysis code<|message|>6 * 7<|call|>"
        "<|channel|>final<|message|>It is 42.<|return|>"
    )
    encode = harmony.encoding().encode
    call_ids = encode(call, allowed_special="all")
    # As many tokens, no call: the same analysis and answer, the call's tokens spent as more analysis.
    filler = encode(" and so on", allowed_special="all")
    no_call_ids = encode("<|channel|>analysis<|message|>Compute.", allowed_special="all")
    answer = encode("<|end|><|start|>assistant<|channel|>final<|message|>It is 42.<|return|>", allowed_special="all")
    while len(no_call_ids) + len(answer) < len(call_ids):
        no_call_ids += filler[: len(call_ids) - len(no_call_ids) - len(answer)]
    no_call_ids += answer
    assert len(no_call_ids) == len(call_ids)
    with tempfile.TemporaryDirectory() as scratch:
        toolbox = loop.Toolbox(python=python_tool.Sessions(scratch_root=Path(scratch)))
        with_call, without = [], []

        def once(ids: list[int], key: str) -> float:
            reply = Reply()
            started = time.perf_counter()
            for _ in loop.stream(
                engine,
                [harmony.Turn("user", key)],
                harmony.RenderOptions(),
                Sampling(max_tokens=len(ids) + 10),
                reply,
                toolbox,
                processor=ForcedScript(ids),
            ):
                pass
            assert reply.result.content == "It is 42.", reply.result
            return time.perf_counter() - started

        once(call_ids, "warm-up")  # the model's first decode and the sandbox's first start
        for _ in range(rounds):
            with_call.append(once(call_ids, "warm-up"))  # the same conversation: a warm interpreter
            without.append(once(no_call_ids, "warm-up"))  # the same prompt: the same KV cache reuse
        toolbox.close()
    engine.close()
    c, n = _median_ms(with_call), _median_ms(without)
    print(f"\n{'measure':38} {'one call':>12} {'no call':>12} {'ratio':>8}")
    print(f"{f'a reply of {len(call_ids)} tokens':38} {c:9.1f} ms {n:9.1f} ms {c / n:8.2f}")
    print(f"the loop adds {c - n:.1f} ms per python call (warm interpreter, demo model, this machine)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    status = sandbox.status()
    if not status.available:
        raise SystemExit(f"no sandbox here: {status.detail} ({status.fix})")
    sandbox_costs(args.starts, args.warm)
    loop_costs(args.rounds)


if __name__ == "__main__":
    main()
