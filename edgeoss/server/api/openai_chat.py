"""OpenAI Chat Completions (/v1/chat/completions): requests to harmony, replies back.

Reasoning comes back apart from the answer, as `reasoning_content` and, for
clients that read that name, `reasoning`; tool calls come back with ids and
`finish_reason: tool_calls` whether the model put them on the commentary or
the analysis channel; a preamble (commentary text before a call) is answer
text, as harmony intends it to be shown.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from edgeoss import harmony
from edgeoss.engines.base import Sampling
from edgeoss.runtime.reply import Reply
from edgeoss.server.generation import Ask
from edgeoss.server.http_errors import ApiError, bad_request, list_of, object_of
from edgeoss.server.logprobs import MAX_TOP
from edgeoss.tools import loop

_EFFORT_ALIASES = {"minimal": "low", "none": "low"}


def effort_of(body: Mapping[str, Any], default: str = "medium") -> str:
    reasoning = body.get("reasoning")
    value = body.get("reasoning_effort")
    if value is None and isinstance(reasoning, Mapping):
        value = reasoning.get("effort")
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request("reasoning_effort must be a string: low, medium or high", "reasoning_effort")
    effort = _EFFORT_ALIASES.get(value.lower(), value.lower())
    if effort not in harmony.EFFORTS:
        raise bad_request(f"reasoning_effort {value!r}: choose low, medium or high", "reasoning_effort")
    return effort


def text_of(content: Any, where: str) -> str:
    """Message content as text: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, Mapping):
                raise bad_request(f"{where}: gpt-oss reads text only, not {part.get('type')!r} parts", where)
            else:
                raise bad_request(f"{where}: content parts must be objects", where)
        return "".join(parts)
    raise bad_request(f"{where}: content must be a string or a list of parts", where)


def tools_of(body: Mapping[str, Any]) -> tuple[tuple[harmony.Tool, ...], str]:
    """(tools the model sees, an extra developer instruction)."""
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise bad_request("tools must be a list", "tools")
    tools = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or item.get("type", "function") != "function":
            raise bad_request(f"tools[{i}]: only function tools are supported", f"tools[{i}]")
        fn = item.get("function", item)  # Chat Completions nests it; Responses does not
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"tools[{i}]: a function needs a name", f"tools[{i}]")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, Mapping):
            raise bad_request(f"tools[{i}].parameters must be a JSON schema object", f"tools[{i}]")
        tools.append(harmony.Tool(fn["name"], str(fn.get("description") or ""), dict(params) if params else None))
    choice = body.get("tool_choice", "auto")
    if choice in (None, "auto"):
        return tuple(tools), ""
    if choice == "none":
        return (), ""
    if choice == "required":
        return tuple(tools), "Call one of the functions before answering." if tools else ""
    if isinstance(choice, Mapping):
        fn = choice.get("function") or choice  # Chat Completions nests the name; Responses does not
        name = fn.get("name") if isinstance(fn, Mapping) else None
        chosen = [t for t in tools if t.name == name]
        if not chosen:
            raise bad_request(f"tool_choice names {name!r}, which is not among the tools", "tool_choice")
        return tuple(chosen), f"Call the function {name}."
    raise bad_request("tool_choice must be auto, none, required or a function", "tool_choice")


def call_required(body: Mapping[str, Any]) -> bool:
    """tool_choice asks for a call (required, or a named function) and there are functions."""
    choice = body.get("tool_choice")
    return bool(body.get("tools")) and (choice == "required" or isinstance(choice, Mapping))


def strict_of(fmt: object) -> bool:
    """A json_schema format's strict flag (OpenAI's default is false)."""
    return isinstance(fmt, Mapping) and fmt.get("strict") is True


def top_logprobs_of(body: Mapping[str, Any], flag: str | None) -> int | None:
    """How many alternatives each answer token lists (None: no logprobs). `flag` names the
    switch that must be on for top_logprobs (Chat Completions' logprobs; None: Responses)."""
    top = body.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP):
        raise bad_request(f"top_logprobs must be an integer from 0 to {MAX_TOP}", "top_logprobs")
    if flag is None:
        return top
    on = body.get(flag)
    if on is not None and not isinstance(on, bool):
        raise bad_request(f"{flag} must be true or false", flag)
    if top is not None and not on:
        raise bad_request(f"top_logprobs needs {flag}: true", "top_logprobs")
    return (top or 0) if on else None


def schema_of(body: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise bad_request("response_format.json_schema.schema must be a JSON schema object", "response_format")
        return dict(schema)
    raise bad_request("response_format.type must be text, json_object or json_schema", "response_format")


def _number(body: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_request(f"{key} must be a number from {low} to {high}", key)
    return float(value)


def sampling_of(body: Mapping[str, Any], max_tokens: int) -> Sampling:
    limit = body.get("max_completion_tokens", body.get("max_tokens", body.get("max_output_tokens")))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise bad_request("max_tokens must be a positive integer", "max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("seed must be an integer", "seed")
    return Sampling(
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        top_k=int(_number(body, "top_k", 0, 0, 1_000_000)),
        min_p=_number(body, "min_p", 0.0, 0.0, 1.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        seed=seed,
        max_tokens=limit or max_tokens,
    )


def stops_of(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        return list(stop)
    raise bad_request("stop must be a string or a list of up to 4 strings", "stop")


def arguments_text(value: Any) -> str:
    """Tool-call arguments as the JSON text harmony carries (clients send a string or an object)."""
    return value if isinstance(value, str) else json.dumps(value)


def turns_of(messages: Any) -> list[harmony.Turn]:
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list", "messages")
    turns: list[harmony.Turn] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise bad_request(f"{where} must be an object", where)
        role = m.get("role")
        if role in ("system", "developer", "user"):
            turns.append(harmony.Turn(role, text_of(m.get("content"), where)))
        elif role == "assistant":
            reasoning = m.get("reasoning_content") or m.get("reasoning") or m.get("thinking") or ""
            calls = []
            for j, call in enumerate(list_of(m.get("tool_calls") or [], f"{where}.tool_calls")):
                fn = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                    raise bad_request(f"{where}.tool_calls[{j}] needs function.name", where)
                arguments = arguments_text(fn.get("arguments", "{}"))
                call_id = str(call.get("id") or f"call_{i}_{j}")
                names[call_id] = fn["name"]
                calls.append(harmony.ToolCall(fn["name"], arguments, call_id))
            turns.append(
                harmony.Turn(
                    "assistant", text_of(m.get("content"), where), text_of(reasoning, where), tool_calls=tuple(calls)
                )
            )
        elif role == "tool":
            name = m.get("name") or names.get(str(m.get("tool_call_id")))
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}: a tool message needs a tool_call_id of an earlier call, or a name", where)
            turns.append(harmony.Turn("tool", text_of(m.get("content"), where), name=name))
        else:
            raise bad_request(f"{where}.role {role!r}: use system, developer, user, assistant or tool", where)
    return turns


def parse(body: Mapping[str, Any], max_tokens: int, timeout_s: float | None) -> tuple[Ask, bool, bool]:
    """(what to generate, stream?, include usage in the stream?)"""
    if body.get("n", 1) != 1:
        raise bad_request("n > 1 is not supported: send the request n times (edgeoss batches them)", "n")
    tools, instruction = tools_of(body)
    options = harmony.RenderOptions(
        effort=effort_of(body), tools=tools, response_schema=schema_of(body), instructions=instruction
    )
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
    ask = Ask(
        turns_of(body.get("messages")),
        options,
        sampling_of(body, max_tokens),
        stops_of(body),
        timeout_s,
        call_required=call_required(body),
        lenient=not strict_of(spec),
        logprobs=top_logprobs_of(body, "logprobs"),
    )
    stream_options = object_of(body.get("stream_options") or {}, "stream_options")
    return ask, bool(body.get("stream")), bool(stream_options.get("include_usage"))


def usage(outcome: Reply) -> dict[str, Any]:
    u = outcome.usage()
    return {
        "prompt_tokens": u["prompt_tokens"],
        "completion_tokens": u["completion_tokens"],
        "total_tokens": u["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
    }


def tool_call_json(call: harmony.ToolCall, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    if index is not None:
        out["index"] = index
    return out


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def logprobs_json(outcome: Reply, entries: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """A choice's `logprobs`: the answer tokens' entries (all of them, or a chunk's)."""
    if not outcome.wants_logprobs:
        return None
    return {"content": outcome.logprobs if entries is None else entries, "refusal": None}


def completion(outcome: Reply, model: str, cid: str, created: int) -> dict[str, Any]:
    r = outcome.result
    message: dict[str, Any] = {"role": "assistant", "content": (r.preamble + r.content) or None}
    if r.reasoning:
        message["reasoning_content"] = message["reasoning"] = r.reasoning
    if r.tool_calls:
        message["tool_calls"] = [tool_call_json(c) for c in r.tool_calls]
    if outcome.citations:  # the browser's pages the answer cites (offsets into content)
        at = len(r.preamble)
        message["annotations"] = [
            {
                "type": "url_citation",
                "url_citation": {"start_index": at + a, "end_index": at + b, "url": s.url, "title": s.title},
            }
            for a, b, s in outcome.citations
        ]
    if outcome.tool_activity:
        message["edgeoss"] = {"tool_activity": outcome.tool_activity}  # what edgeoss's tools did, in order
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": logprobs_json(outcome), "finish_reason": outcome.finish_reason}
        ],
        "usage": usage(outcome),
    }


def sse(data: Mapping[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


async def stream(
    events: AsyncIterator[harmony.Event], outcome: Reply, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    cid, created = new_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, scores: dict[str, Any] | None = None) -> bytes:
        return sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": scores, "finish_reason": finish}],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    calls = 0
    try:
        async for event in events:
            if event.kind == "reasoning":
                yield chunk({"reasoning_content": event.text, "reasoning": event.text})
            elif event.kind in ("content", "preamble"):
                yield chunk({"content": event.text}, scores=logprobs_json(outcome, event.logprobs or []))
            elif event.kind == "tool_call" and event.tool_call is not None:
                yield chunk({"tool_calls": [tool_call_json(event.tool_call, calls)]})
                calls += 1
            elif event.kind in ("builtin_call", "builtin_result"):
                text = loop.activity_text(event)
                delta: dict[str, Any] = {"reasoning_content": text, "reasoning": text}
                if event.kind == "builtin_result" and outcome.tool_activity:
                    delta["edgeoss"] = {"tool_activity": [outcome.tool_activity[-1]]}
                yield chunk(delta)
    except ApiError as exc:
        yield error_event(exc)  # as OpenAI ends a stream that fails: an error event, no [DONE]
        return
    yield chunk({}, outcome.finish_reason or "stop")
    if include_usage:
        yield sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage(outcome),
            }
        )
    yield sse("[DONE]")


def error_event(error: ApiError) -> bytes:
    return sse(error.openai())
