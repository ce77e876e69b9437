"""Ollama-compatible routes (/api/*), so that Open WebUI and the `ollama`
client use edgeoss as their Ollama.

`think` takes true/false or an effort (low/medium/high). gpt-oss always
reasons: `think: false` asks for low effort and leaves the thinking out of
the reply (it never leaks into the answer); true or a level returns it
apart, in `thinking`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from edgeoss import harmony, spec
from edgeoss.errors import ApiError
from edgeoss.runtime.reply import Reply
from edgeoss.server.api.openai_chat import arguments_text, sampling_of, text_of, tools_of
from edgeoss.server.generation import Ask
from edgeoss.server.host import ModelHost
from edgeoss.server.http_errors import bad_request, list_of
from edgeoss.tools import loop

API_VERSION = "0.12.0"  # the Ollama API level these routes follow


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def display_name(host: ModelHost) -> str:
    variant = host.info.variant
    return "gpt-oss:" + variant.removeprefix("gpt-oss-") if variant in spec.VARIANTS else host.info.name


def details(host: ModelHost) -> dict[str, Any]:
    hp = spec.VARIANTS.get(host.info.variant)
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "gptoss",
        "families": ["gptoss"],
        "parameter_size": f"{hp.total_params / 1e9:.1f}B" if hp else "synthetic",
        "quantization_level": host.info.quantization,
    }


def tag(host: ModelHost) -> dict[str, Any]:
    modified = dt.datetime.fromtimestamp(host.info.path.stat().st_mtime, dt.timezone.utc)
    return {
        "name": display_name(host),
        "model": display_name(host),
        "modified_at": modified.isoformat().replace("+00:00", "Z"),
        "size": host.info.size_bytes,
        "digest": "",
        "details": details(host),
    }


def show(host: ModelHost) -> dict[str, Any]:
    hp = spec.VARIANTS.get(host.info.variant)
    info: dict[str, Any] = {"general.architecture": "gpt-oss", "general.name": host.info.name}
    if hp is not None:
        info.update(
            {
                "gpt-oss.block_count": hp.num_layers,
                "gpt-oss.context_length": hp.context_length,
                "gpt-oss.embedding_length": hp.hidden_size,
                "gpt-oss.expert_count": hp.num_experts,
                "gpt-oss.expert_used_count": hp.experts_per_token,
                "general.parameter_count": hp.total_params,
            }
        )
    return {
        "license": "Apache-2.0",
        "modelfile": f"# served by edgeoss\nFROM {host.info.path}\n",
        "parameters": f"num_ctx {host.settings.context_length // host.parallel}\ntemperature 1\ntop_p 1",
        "template": "harmony (rendered by edgeoss with openai-harmony)",
        "details": details(host),
        "model_info": info,
        "capabilities": ["completion", "tools", "thinking"],
        "modified_at": tag(host)["modified_at"],
    }


def ps(host: ModelHost) -> dict[str, Any]:
    if host.state != "ready":
        return {"models": []}
    expires = (
        dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=host.keep_alive_s)
        if host.keep_alive_s is not None
        else dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)
    )
    on_gpu = host.settings.n_gpu_layers > 0
    return {
        "models": [
            {
                **tag(host),
                "expires_at": expires.isoformat().replace("+00:00", "Z"),
                "size_vram": host.info.size_bytes if on_gpu else 0,
                "context_length": host.settings.context_length // host.parallel,
            }
        ]
    }


def think_of(body: Mapping[str, Any]) -> tuple[str, bool]:
    """(effort, whether to return the thinking); `options.reasoning_effort` (Open
    WebUI's setting) counts where `think` does not name an effort."""
    think = body.get("think")
    options = body.get("options")
    named = options.get("reasoning_effort") if isinstance(options, Mapping) else None
    if named is not None and (not isinstance(named, str) or named not in harmony.EFFORTS):
        raise bad_request("options.reasoning_effort must be low, medium or high", "options")
    if think is False:
        return "low", False
    if named is not None and (think is None or think is True):
        return named, True
    if think is None or think is True:
        return "medium", True
    if isinstance(think, str) and think in harmony.EFFORTS:
        return think, True
    raise bad_request("think must be true, false, low, medium or high", "think")


# Ollama's options and the JSON type each must have (its api.Options); edgeoss uses the
# sampling ones and accepts the others, as Ollama does, but a wrong type is a 400 there and here.
_INTEGER_OPTIONS = (
    "num_ctx num_batch num_gpu main_gpu num_thread num_keep seed num_predict top_k repeat_last_n mirostat"
)
_NUMBER_OPTIONS = (
    "top_p min_p typical_p temperature repeat_penalty presence_penalty frequency_penalty tfs_z mirostat_tau"
)
_BOOLEAN_OPTIONS = "use_mmap use_mlock numa low_vram f16_kv vocab_only penalize_newline"
_OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys([*_INTEGER_OPTIONS.split(), "mirostat"], "integer"),
    **dict.fromkeys([*_NUMBER_OPTIONS.split(), "mirostat_tau", "mirostat_eta"], "number"),
    **dict.fromkeys(_BOOLEAN_OPTIONS.split(), "boolean"),
    "stop": "strings",
    "reasoning_effort": "string",
}


def _typed(name: str, value: Any) -> bool:
    kind = _OPTION_TYPES.get(name)
    if kind is None or value is None:
        return True  # an option Ollama does not have is ignored there too
    if kind == "integer":
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


def _options(body: Mapping[str, Any], max_tokens: int) -> tuple[dict[str, Any], list[str]]:
    raw = body.get("options") or {}
    if not isinstance(raw, Mapping):
        raise bad_request("options must be an object", "options")
    for name, value in raw.items():
        if not _typed(name, value):
            kind = _OPTION_TYPES[name]
            what = "a list of strings" if kind == "strings" else f"of type {kind}"
            raise bad_request(f"option {name!r} must be {what}, not {json.dumps(value)[:40]}", "options")
    mapped = {
        "temperature": raw.get("temperature"),
        "top_p": raw.get("top_p"),
        "top_k": int(raw["top_k"]) if raw.get("top_k") is not None else None,
        "min_p": raw.get("min_p"),
        "seed": int(raw["seed"]) if raw.get("seed") is not None else None,
        "frequency_penalty": raw.get("frequency_penalty"),
        "presence_penalty": raw.get("presence_penalty"),
    }
    predict = raw.get("num_predict")
    # -1 (no limit) and -2 (fill the context) take the server's budget, as 0 does.
    if predict is not None and predict > 0:
        mapped["max_tokens"] = int(predict)
    stop = raw.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    return {k: v for k, v in mapped.items() if v is not None}, list(stop)


def _schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("format")
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return {"type": "object"}
    if isinstance(fmt, Mapping):
        return dict(fmt)
    raise bad_request('format must be "json" or a JSON schema', "format")


def chat_ask(body: Mapping[str, Any], max_tokens: int, timeout_s: float | None) -> tuple[Ask, bool, bool]:
    """(what to generate, stream?, return thinking?) for /api/chat."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list", "messages")
    turns: list[harmony.Turn] = []
    last_call = ""
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise bad_request(f"{where} must be an object", where)
        role = m.get("role")
        content = text_of(m.get("content"), where)
        if m.get("images"):
            raise bad_request(f"{where}: gpt-oss reads text only, not images", where)
        if role in ("system", "user"):
            turns.append(harmony.Turn(role, content))
        elif role == "assistant":
            calls = []
            for j, call in enumerate(list_of(m.get("tool_calls") or [], f"{where}.tool_calls")):
                fn = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                    raise bad_request(f"{where}.tool_calls[{j}] needs function.name", where)
                calls.append(harmony.ToolCall(fn["name"], arguments_text(fn.get("arguments", {})), f"call_{i}_{j}"))
                last_call = fn["name"]
            turns.append(harmony.Turn("assistant", content, str(m.get("thinking") or ""), tuple(calls)))
        elif role == "tool":
            name = m.get("tool_name") or m.get("name") or last_call
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}: a tool message needs tool_name", where)
            turns.append(harmony.Turn("tool", content, name=name))
        else:
            raise bad_request(f"{where}.role {role!r}: use system, user, assistant or tool", where)
    effort, show = think_of(body)
    tools, instruction = tools_of({"tools": body.get("tools") or []})
    options = harmony.RenderOptions(effort=effort, tools=tools, response_schema=_schema(body), instructions=instruction)
    sampling, stop = _options(body, max_tokens)
    # Ollama's format has no strict flag: a keyword the constraint cannot enforce is ignored.
    ask = Ask(turns, options, sampling_of(sampling, max_tokens), stop, timeout_s, lenient=True, schema_param="format")
    return ask, body.get("stream", True) is not False, show


def generate_ask(body: Mapping[str, Any], max_tokens: int, timeout_s: float | None) -> tuple[Ask, bool, bool]:
    """(what to generate, stream?, return thinking?) for /api/generate."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise bad_request("prompt must be a string", "prompt")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        raise bad_request("system must be a string", "system")
    turns = [harmony.Turn("system", system)] if system else []
    turns.append(harmony.Turn("user", prompt))
    effort, show = think_of(body)
    options = harmony.RenderOptions(effort=effort, response_schema=_schema(body))
    sampling, stop = _options(body, max_tokens)
    return (
        Ask(turns, options, sampling_of(sampling, max_tokens), stop, timeout_s, lenient=True, schema_param="format"),
        body.get("stream", True) is not False,
        show,
    )


def _final(outcome: Reply, name: str, started: float) -> dict[str, Any]:
    t = outcome.timings
    total = int((time.monotonic() - started) * 1e9)
    first = int(t.time_to_first_token_s * 1e9)
    return {
        "model": name,
        "created_at": now_iso(),
        "done": True,
        "done_reason": "stop" if outcome.finish_reason == "tool_calls" else outcome.finish_reason or "stop",
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_count": outcome.prompt_tokens,
        "prompt_eval_duration": first,
        "eval_count": t.generated_tokens,
        "eval_duration": int(max(0.0, t.generation_s - t.time_to_first_token_s) * 1e9),
    }


def _call(call: harmony.ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = json.loads(call.arguments)
    except json.JSONDecodeError:
        arguments = {"_raw": call.arguments}  # Ollama's type is an object; keep what the model wrote
    return {
        "function": {"name": call.name, "arguments": arguments if isinstance(arguments, dict) else {"value": arguments}}
    }


def stream_error(error: ApiError) -> bytes:
    """How Ollama ends a stream that fails: a line with only the error."""
    return (json.dumps({"error": error.message}) + "\n").encode()


async def chat_stream(
    events: AsyncIterator[harmony.Event], outcome: Reply, name: str, show_thinking: bool, started: float
) -> AsyncIterator[bytes]:
    def line(message: dict[str, Any]) -> bytes:
        body = {"model": name, "created_at": now_iso(), "message": {"role": "assistant", **message}, "done": False}
        return (json.dumps(body, ensure_ascii=False) + "\n").encode()

    try:
        async for event in events:
            if event.kind == "reasoning" and show_thinking:
                yield line({"content": "", "thinking": event.text})
            elif event.kind in ("content", "preamble"):
                yield line({"content": event.text})
            elif event.kind == "tool_call" and event.tool_call is not None:
                yield line({"content": "", "tool_calls": [_call(event.tool_call)]})
            elif event.kind in ("builtin_call", "builtin_result") and show_thinking:
                yield line({"content": "", "thinking": loop.activity_text(event)})
    except ApiError as exc:
        yield stream_error(exc)
        return
    final = _final(outcome, name, started)
    final["message"] = {"role": "assistant", "content": ""}
    yield (json.dumps(final) + "\n").encode()


def chat_reply(outcome: Reply, name: str, show_thinking: bool, started: float) -> dict[str, Any]:
    r = outcome.result
    message: dict[str, Any] = {"role": "assistant", "content": r.preamble + r.content}
    if show_thinking and r.reasoning:
        message["thinking"] = r.reasoning
    if r.tool_calls:
        message["tool_calls"] = [_call(c) for c in r.tool_calls]
    reply = {**_final(outcome, name, started), "message": message}
    if outcome.tool_activity:
        reply["edgeoss"] = {"tool_activity": outcome.tool_activity}
    return reply


async def generate_stream(
    events: AsyncIterator[harmony.Event], outcome: Reply, name: str, show_thinking: bool, started: float
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            body: dict[str, Any] | None = None
            if event.kind == "reasoning" and show_thinking:
                body = {"response": "", "thinking": event.text}
            elif event.kind in ("content", "preamble"):
                body = {"response": event.text}
            elif event.kind in ("builtin_call", "builtin_result") and show_thinking:
                body = {"response": "", "thinking": loop.activity_text(event)}
            if body is not None:
                yield (json.dumps({"model": name, "created_at": now_iso(), **body, "done": False}) + "\n").encode()
    except ApiError as exc:
        yield stream_error(exc)
        return
    yield (json.dumps({**_final(outcome, name, started), "response": ""}) + "\n").encode()


def generate_reply(outcome: Reply, name: str, show_thinking: bool, started: float) -> dict[str, Any]:
    r = outcome.result
    body = {**_final(outcome, name, started), "response": r.preamble + r.content}
    if show_thinking and r.reasoning:
        body["thinking"] = r.reasoning
    if outcome.tool_activity:
        body["edgeoss"] = {"tool_activity": outcome.tool_activity}
    return body
