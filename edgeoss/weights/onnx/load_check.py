"""Does an ONNX folder really load and run on an execution provider here?

Loads the model on exactly that provider (no CPU fallback), evaluates a
short harmony prompt and checks that the logits are finite. It runs in a
child process, because a provider that cannot run a graph (DirectML and
gpt-oss's MoE) may crash in native code rather than raise.

    python -m edgeoss.weights.onnx.load_check FOLDER PROVIDER     (prints JSON)
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

TIMEOUT_S = 900.0  # a 20b model on a slow disk


@dataclass(frozen=True)
class LoadCheck:
    provider: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _in_process(folder: Path, provider: str) -> LoadCheck:
    import numpy as np

    from edgeoss import harmony
    from edgeoss.engines.base import Sampling
    from edgeoss.engines.ortgenai.engine import OrtGenAIEngine
    from edgeoss.errors import EdgeossError

    try:
        engine = OrtGenAIEngine(folder, provider, context_length=256, fallback=False)
    except EdgeossError as exc:
        return LoadCheck(provider, False, exc.message)
    seen: list[np.ndarray] = []

    def keep(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        seen.append(scores)
        return scores

    prompt = harmony.render([harmony.Turn("user", "Hi")], harmony.RenderOptions(date="2026-01-01"))
    try:
        token = next(iter(engine.generate(prompt, Sampling(temperature=0, max_tokens=1), logits_processor=keep)))
    except Exception as exc:  # whatever the provider raised: that is the answer
        return LoadCheck(provider, False, f"running a prompt failed: {exc}")
    finally:
        engine.close()
    if not seen or not np.isfinite(seen[0]).all():
        return LoadCheck(provider, False, "the logits are not finite")
    return LoadCheck(provider, True, f"loaded and ran a {len(prompt)}-token prompt (next token {token})")


def check(folder: Path, provider: str) -> LoadCheck:
    """The load check, in a child process (in this one when frozen into a binary)."""
    if getattr(sys, "frozen", False):
        return _in_process(folder, provider)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edgeoss.weights.onnx.load_check", str(folder), provider],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return LoadCheck(provider, False, f"no answer within {TIMEOUT_S:.0f} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        try:
            return LoadCheck(**json.loads(lines[-1]))
        except (ValueError, TypeError):
            pass
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return LoadCheck(provider, False, f"the check process ended with code {done.returncode}: {tail}")


def main() -> None:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(_in_process(Path(sys.argv[1]), sys.argv[2]).to_dict()))


if __name__ == "__main__":
    main()
