"""Constrained decoding without an engine: a test double of a model (random
logits, seeded) walks the real constraint (llguidance over the real
o200k_harmony vocabulary) token by token. Whatever the random model would
pick, the turn is harmony, its reasoning is free text, and its answer or
call arguments validate against their schema. (Through the real engines and
server: tests/system/test_structured_output.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgeoss import harmony, spec
from edgeoss.engines.base import sampled
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


def walk(
    processor: Callable[[np.ndarray, np.ndarray], np.ndarray], seed: int, limit: int = 600, tell: bool = False
) -> list[int]:
    """The random model's turn: at each step the processor masks seeded random logits and
    the highest survivor is taken (temperature 0). `tell`: as the server's engines do, say
    each sampled token before the next step (engines.base.sampled), so the constraint
    prepares the next mask ahead."""
    rng = np.random.default_rng(seed)
    prompt = [200006, 173781]  # <|start|>assistant, as a prompt ends
    ids = list(prompt)
    for _ in range(limit):
        logits = processor(np.array(ids), rng.standard_normal(spec.VOCAB_SIZE).astype(np.float32))
        token = int(np.argmax(logits))
        ids.append(token)
        if token in spec.STOP_TOKENS:
            break
        if tell:
            sampled(processor, token)
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
    header = encoding().decode(tokens[:final_at])
    assert re.search(r"<\|channel\|>final( ?<\|constrain\|>json)?<\|message\|>$", header), header[-80:]


def test_the_reasoning_is_free_and_bounded(nested: constraint.Compiled) -> None:
    enforce = constraint.Constraint(nested)
    ids = [200006, 173781]
    opening = encoding().encode("<|channel|>analysis<|message|>", allowed_special="all")
    ones = np.zeros(spec.VOCAB_SIZE, dtype=np.float32)
    for token in opening:
        assert np.isfinite(enforce(np.array(ids), ones.copy())[token])
        ids.append(token)
    logits = enforce(np.array(ids), ones.copy())
    free = np.isfinite(logits)
    # Every ordinary token may be written there, but the few hundred byte pieces that cannot
    # begin a UTF-8 character (a lone continuation byte).
    assert free[: spec.BPE_RANKS].sum() > spec.BPE_RANKS - 400
    assert free[spec.END] and not free[spec.RETURN] and not free[spec.CALL]
    # A model that would reason forever is made to end the message at the bound (400 // 8).
    word = encoding().encode(" think", allowed_special=set())[0]
    for step in range(200):  # noqa: B007
        if not np.isfinite(logits[word]):
            break
        ids.append(word)
        logits = enforce(np.array(ids), ones.copy())
    assert step == 50 and np.isfinite(logits[spec.END]), step


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


@pytest.mark.parametrize(
    "text",
    [
        "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo", "days": 3}<|call|>',
        # the recipient before the channel, on the analysis channel (gpt-oss does both)
        "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant to=functions.get_weather"
        '<|channel|>analysis <|constrain|>json<|message|>{"city": "Paris", "days": 1}<|call|>',
        # a preamble, then a call without <|constrain|>
        "<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant to=functions.get_weather"
        '<|channel|>commentary json<|message|>{"city": "Oslo", "days": 14}<|call|>',
        "<|channel|>analysis<|message|>Just answer.<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|return|>",
        "<|channel|>final <|constrain|>json<|message|>Hi!<|return|>",
    ],
)
def test_a_well_formed_turn_passes_through_unchanged(text: str) -> None:
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


@pytest.mark.parametrize("allowed", [0.0, 0.001, 0.4, 0.6, 0.999, 1.0])
def test_the_mask_is_applied_exactly(allowed: float) -> None:
    """Both ways of applying llguidance's bitmask against the plain reading of it, on a
    vocabulary that is not a multiple of 32 as well as the real one."""
    rng = np.random.default_rng(int(allowed * 1000))
    for n in (spec.VOCAB_SIZE, spec.VOCAB_SIZE - 7):
        bits = rng.random(n) < allowed
        mask = np.packbits(np.concatenate([bits, rng.random(-n % 32) < 0.5]), bitorder="little").tobytes()
        logits = rng.standard_normal(n).astype(np.float32)
        expected = np.where(bits, logits, np.float32(-np.inf))
        assert np.array_equal(constraint.apply_mask(logits.copy(), mask), expected)


@pytest.mark.parametrize("seed", range(4))
def test_a_mask_prepared_ahead_is_the_same_mask(nested: constraint.Compiled, seed: int) -> None:
    """The engines tell the constraint each sampled token so it computes the next mask while
    the model decodes: the turn is token for token the one computed step by step."""
    ahead = walk(constraint.Constraint(nested), seed, tell=True)
    assert ahead == walk(constraint.Constraint(nested), seed)
    assert ahead[-1] == spec.RETURN
    script = MalformedScript("<|channel|>final<|message|>{oops<|return|>")
    composed = constraint.composed(script, constraint.Constraint(nested))
    jsonschema.validate(json.loads(parsed(walk(composed, seed, tell=True)).content), NESTED)
