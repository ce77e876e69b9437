"""What enforcing a schema costs per token: constrained against unconstrained decoding.

The same forced harmony turn (reasoning, then a final answer that is valid
JSON of a nested schema) is decoded by the real llama.cpp engine the server
uses (the batched one) three times per round, interleaved: with the forced
script alone (the baseline); with the script and the schema's constraint
(edgeoss/structured) composed as the server composes them, the engine
telling the constraint each sampled token so that it prepares the next mask
while the model decodes; and the same without that overlap (the mask
computed when the logits arrive). Both decode exactly the same tokens, so the
difference is the constraint's work: advancing llguidance's matcher, its
token mask, and applying it to the logits. Reported per token, and as a
share of the decode time, on the demo model (a tiny gpt-oss, where decode is
fastest and the share largest) and on a 20b-shaped model with fewer layers.
The mask alone (no engine) is timed too.

    python benchmarks/constraint.py [--scales tiny,20b] [--layers 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from edgeoss import harmony, spec
from edgeoss.engines.base import LoadSettings, Sampling, tokens_of
from edgeoss.engines.llamacpp.batch import BatchEngine
from edgeoss.harmony.encoding import encoding
from edgeoss.structured import constraint, grammar
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert
from forced import ForcedScript

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["city", "days", "unit", "hours", "source"],
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23}},
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "score"],
            "properties": {"name": {"type": "string"}, "score": {"type": "number"}},
        },
    },
}
TURN = (
    "<|channel|>analysis<|message|>The user wants a forecast for Lisbon over the next three days, "
    "in celsius, with the hours that matter for a walk along the river.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>"
    '{"city": "Lisbon, Portugal", "days": 3, "unit": "celsius", "hours": [8, 12, 17, 20], '
    '"source": {"name": "Instituto Portugues do Mar e da Atmosfera", "score": 0.92}}<|return|>'
)


def decode(
    engine: BatchEngine,
    prompt: list[int],
    script: list[int],
    compiled: constraint.Compiled | None,
    overlap: bool = True,
) -> float:
    forced = ForcedScript(script)
    processor: Callable[[np.ndarray, np.ndarray], np.ndarray] = forced
    if compiled is not None:
        processor = constraint.composed(forced, constraint.Constraint(compiled))
        if not overlap:
            processor = processor.__call__  # the bound call alone: no accept() for the engine to find
    sampling = Sampling(max_tokens=len(script))
    start = time.perf_counter()
    out = list(tokens_of(lambda emit: engine.submit(prompt, sampling, emit, spec.STOP_TOKENS, None, processor)))
    took = time.perf_counter() - start
    assert out == script, "the constraint changed a valid script"
    return took


def mask_alone(compiled: constraint.Compiled, script: list[int], prompt: list[int]) -> float:
    """Seconds per token of the constraint by itself, over the same script."""
    logits = np.zeros(spec.VOCAB_SIZE, dtype=np.float32)
    runs = []
    for _ in range(5):
        enforce = constraint.Constraint(compiled)
        ids = list(prompt)
        start = time.perf_counter()
        for token in script:
            enforce(np.asarray(ids), logits.copy())
            ids.append(token)
        runs.append((time.perf_counter() - start) / len(script))
    return statistics.median(runs)


def model(scale: str, layers: int, work: Path) -> Path:
    hp = synth.hparams_for(scale, layers=layers if scale != "tiny" else None)
    ckpt = synth.write_checkpoint(work / f"{scale}-ckpt", synth.plan(hp))
    gguf = work / f"{scale}.gguf"
    convert.convert(ckpt, gguf)
    shutil.rmtree(ckpt)
    return gguf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="tiny,20b")
    parser.add_argument("--layers", type=int, default=2, help="layers of the 20b-shaped model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    script = encoding().encode(TURN, allowed_special="all")
    prompt = harmony.render([harmony.Turn("user", "Forecast for Lisbon, as JSON.")])
    shape = grammar.shape_of(harmony.RenderOptions(response_schema=SCHEMA), False, False, 4096)
    started = time.perf_counter()
    compiled = constraint.Compiled(shape)
    print(
        f"grammar compiled in {(time.perf_counter() - started) * 1000:.0f} ms (vocabulary included, once per process)"
    )
    started = time.perf_counter()
    constraint.Compiled(shape)
    print(f"the same schema again: {(time.perf_counter() - started) * 1000:.1f} ms (once per request)")
    alone = mask_alone(compiled, script, prompt)
    print(f"the constraint alone: {alone * 1e6:.0f} us per token over {len(script)} tokens")
    work = Path(tempfile.mkdtemp(prefix="edgeoss-constraint-", dir=args.dir))
    try:
        for scale in args.scales.split(","):
            gguf = model(scale, args.layers, work)
            layers = 99 if args.gpu else 0
            engine = BatchEngine(gguf, LoadSettings(context_length=2048, n_gpu_layers=layers))
            decode(engine, prompt, script, None)  # warm-up: page in, build kernels
            decode(engine, prompt, script, compiled)
            free, bound, serial = [], [], []
            for _ in range(args.rounds):
                free.append(decode(engine, prompt, script, None))
                bound.append(decode(engine, prompt, script, compiled))
                serial.append(decode(engine, prompt, script, compiled, overlap=False))
            engine.close()
            f, b, s = (statistics.median(x) / len(script) for x in (free, bound, serial))
            where = "GPU" if args.gpu else "CPU"
            print(
                f"{scale}{'' if scale == 'tiny' else f' ({args.layers} layers)'} on {where}, {len(script)} tokens, "
                f"median of {args.rounds}: unconstrained {f * 1000:.2f} ms/token; constrained {b * 1000:.2f} "
                f"ms/token, ratio {b / f:.3f} ({(b - f) / f * 100:+.1f}% of decode time; target < 5%); "
                f"without the overlap {s * 1000:.2f} ms/token, ratio {s / f:.3f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
