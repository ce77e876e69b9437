"""Constrained decoding without an engine: a test double of a model (random
logits, seeded) walks the real constraint (llguidance over the real
o200k_harmony vocabulary) token by token. Whatever the random model would
pick, the turn is harmony, its reasoning is free text, and its answer or
call arguments validate against their schema. (Through the real engines and
server: tests/system/test_structured_output.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgeoss import harmony, spec
from edgeoss.harmony.encoding import encoding
from edgeoss.structured import constraint, grammar

jsonschema = pytest.importorskip("jsonschema")

NESTED: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "size", "ratio", "kind", "tags", "inner"],
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "size": {"type": "integer", "minimum": -5, "maximum": 100},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.125},
        "kind": {"enum": ["cat", "dog", 3, None]},
        "tags": {"type": "array", "items": {"enum": ["a", "bb"]}, "minItems": 1, "maxItems": 3},
        "inner": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ok", "points"],
            "properties": {
                "ok": {"type": "boolean"},
                "points": {
                    "type": "array",
                    "maxItems": 2,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["x"],
                        "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 9}},
                    },
                },
            },
        },
    },
}
WEATHER = harmony.Tool(
    "get_weather",
    "Weather in a city",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["city", "days"],
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
        },
    },
)
CONTROL = {spec.RETURN, spec.CALL, spec.END, spec.START, spec.MESSAGE, spec.CHANNEL, spec.CONSTRAIN}


def walk(processor: Callable[[np.ndarray, np.ndarray], np.ndarray], seed: int, limit: int = 600) -> list[int]:
    """The random model's turn: at each step the processor masks seeded random logits and
    the highest survivor is taken (temperature 0)."""
    rng = np.random.default_rng(seed)
    prompt = [200006, 173781]  # <|start|>assistant, as a prompt ends
    ids = list(prompt)
    for _ in range(limit):
        logits = processor(np.array(ids), rng.standard_normal(spec.VOCAB_SIZE).astype(np.float32))
        token = int(np.argmax(logits))
        ids.append(token)
        if token in spec.STOP_TOKENS:
            break
    return ids[len(prompt) :]


def parsed(tokens: list[int]) -> harmony.Result:
    parser = harmony.StreamParser(())
    for token in tokens:
        parser.feed(token)
    list(parser.finish("stop"))
    return parser.result


def shape(**kw: Any) -> constraint.Compiled:
    options = harmony.RenderOptions(**{k: v for k, v in kw.items() if k in ("response_schema", "tools")})
    return constraint.Compiled(grammar.shape_of(options, kw.get("call_required", False), False, kw.get("budget", 400)))


@pytest.fixture(scope="module")
def nested() -> constraint.Compiled:
    return shape(response_schema=NESTED)


@pytest.mark.parametrize("seed", range(12))
def test_a_random_model_answers_in_the_schema(nested: constraint.Compiled, seed: int) -> None:
    tokens = walk(constraint.Constraint(nested), seed)
    assert tokens[-1] == spec.RETURN, encoding().decode(tokens)[-300:]
    result = parsed(tokens)
    jsonschema.validate(json.loads(result.content), NESTED)
    # Harmony's structure is intact: the answer's JSON holds no control token, and the
    # reasoning stays free text (the random model wrote some in most turns).
    final_at = len(tokens) - tokens[::-1].index(spec.MESSAGE)
    assert not CONTROL & set(tokens[final_at:-1])
    assert encoding().decode(tokens[:final_at]).endswith("<|channel|>final<|message|>")


def test_the_reasoning_is_free_and_bounded(nested: constraint.Compiled) -> None:
    thoughts = [parsed(walk(constraint.Constraint(nested), seed)).reasoning for seed in range(6)]
    assert sum(bool(t) for t in thoughts) >= 3, thoughts  # not suppressed
    assert all(len(encoding().encode(t, allowed_special=set())) <= 4 * 50 + 8 for t in thoughts)


@pytest.mark.parametrize("seed", range(6))
def test_a_required_call_always_parses_and_validates(seed: int) -> None:
    compiled = shape(tools=(WEATHER,), call_required=True)
    tokens = walk(constraint.Constraint(compiled), seed)
    assert tokens[-1] == spec.CALL
    (call,) = parsed(tokens).tool_calls
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), WEATHER.parameters)


class MalformedScript:
    """A test double of a model that insists on malformed arguments, token by token."""

    def __init__(self, text: str) -> None:
        self.script = encoding().encode(text, allowed_special="all")
        self.step = 0

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        forced = np.full_like(logits, -np.inf)
        forced[self.script[min(self.step, len(self.script) - 1)]] = 0.0
        self.step += 1
        return forced


def test_malformed_arguments_come_out_valid() -> None:
    script = MalformedScript(
        "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
        '{city: \'Paris\', "days": "three", "extra": true,}<|call|>'
    )
    compiled = shape(tools=(WEATHER,), call_required=True)
    tokens = walk(constraint.composed(script, constraint.Constraint(compiled)), seed=1)
    (call,) = parsed(tokens).tool_calls
    jsonschema.validate(json.loads(call.arguments), WEATHER.parameters)


def test_a_well_formed_script_passes_through_unchanged() -> None:
    text = (
        "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo", "days": 3}<|call|>'
    )
    compiled = shape(tools=(WEATHER,))
    tokens = walk(constraint.composed(MalformedScript(text), constraint.Constraint(compiled)), seed=0)
    assert encoding().decode(tokens) == text


def test_a_schema_that_cannot_be_enforced_is_named() -> None:
    impossible = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)y"}}, "required": ["a"]}
    with pytest.raises(grammar.ShapeError):
        shape(response_schema=impossible)
    with pytest.raises(grammar.ShapeError, match="no tool"):
        grammar.lark(grammar.Shape(call_required=True))
    with pytest.raises(grammar.ShapeError, match="cannot be enforced"):
        grammar.lark(grammar.Shape(calls=(('bad"name', None),)))


def test_nothing_to_enforce_leaves_decoding_free() -> None:
    free = grammar.shape_of(harmony.RenderOptions(), call_required=False, lenient=False, max_tokens=100)
    assert not free.constrains
    assert grammar.shape_of(harmony.RenderOptions(), True, False, 100).constrains


def test_a_new_round_starts_the_grammar_afresh(nested: constraint.Compiled) -> None:
    """The tool loop's next round is the last prompt plus the turn plus the tool's answer:
    the sequence grows by more than one token, and the grammar begins again."""
    enforce = constraint.Constraint(nested)
    first = walk(enforce, seed=3)
    prompt = [200006, 173781, *first, 200006, 173781]
    rng = np.random.default_rng(9)
    logits = enforce(np.array(prompt), rng.standard_normal(spec.VOCAB_SIZE).astype(np.float32))
    allowed = {int(i) for i in np.flatnonzero(np.isfinite(logits))}
    assert allowed == {spec.CHANNEL}, "a turn begins with <|channel|> (or a recipient)"
