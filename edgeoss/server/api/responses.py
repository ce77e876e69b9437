"""The OpenAI Responses API (/v1/responses).

Input is a string or a list of items (messages, function calls and their
outputs, reasoning); output is a list of items (reasoning, message,
function_call) built from the harmony events in the order the model produced
them; streaming sends the documented event types. `previous_response_id`
continues a conversation kept in the response store (server/response_store.py,
SQLite in the data folder: it survives a restart); `background` runs a
response apart from its request (server/background.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgeoss import harmony
from edgeoss.errors import ApiError
from edgeoss.runtime.reply import Reply
from edgeoss.server.api.openai_chat import (
    arguments_text,
    call_required,
    effort_of,
    sampling_of,
    strict_of,
    text_of,
    tools_of,
    top_logprobs_of,
)
from edgeoss.server.generation import Ask
from edgeoss.server.http_errors import bad_request, list_of, object_of
from edgeoss.server.response_store import Conversation, ResponseStore
from edgeoss.tools import loop


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class Pending:
    """What a request leaves to store with its reply: the conversation so far, its input items."""

    conversation: Conversation
    input_items: list[dict[str, Any]]


def input_items_of(value: Any) -> list[dict[str, Any]]:
    """The request's input as GET .../input_items lists it: items, each with an id."""
    if isinstance(value, str):
        return [
            {
                "type": "message",
                "id": _id("msg"),
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_text", "text": value}],
            }
        ]
    items = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping):
            kind = item.get("type", "message")
            prefix = {"message": "msg", "function_call_output": "fco", "function_call": "fc"}.get(str(kind), "item")
            items.append({"id": _id(prefix), **item, "type": kind})
    return items


def flags_of(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """(store?, background?): background runs only with store on, as OpenAI's does."""
    store, background = body.get("store", True), body.get("background", False)
    if not isinstance(store, bool):
        raise bad_request("store must be true or false", "store")
    if not isinstance(background, bool):
        raise bad_request("background must be true or false", "background")
    if background and not store:
        raise bad_request("background responses are stored: background needs store true", "background")
    return store, background


def _schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = object_of(body.get("text") or {}, "text").get("format")
    if not fmt:
        return None
    fmt = object_of(fmt, "text.format")
    if fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), Mapping):
        return dict(fmt["schema"])
    raise bad_request("text.format must be text, json_object or json_schema with a schema", "text.format")


def turns_of(
    items: Any,
    names: dict[str, str],
    pending: dict[str, harmony.ToolCall] | None = None,
    approved: list[tuple[int, harmony.ToolCall]] | None = None,
) -> list[harmony.Turn]:
    """Harmony turns of Responses input items. `names` maps call ids to
    function names across the conversation; `pending`, the MCP calls waiting for
    approval, by their request id; each approved one is added to `approved`, with
    the index (in the turns returned) of the tool turn its answer will fill."""
    if isinstance(items, str):
        return [harmony.Turn("user", items)]
    if not isinstance(items, list) or not items:
        raise bad_request("input must be a string or a non-empty list of items", "input")
    turns: list[harmony.Turn] = []
    reasoning = ""
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise bad_request(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("system", "developer", "user", "assistant"):
                raise bad_request(f"{where}.role {role!r}: use system, developer, user or assistant", where)
            text = text_of(item.get("content"), where)
            if role == "assistant":
                turns.append(harmony.Turn("assistant", text, reasoning))
                reasoning = ""
            else:
                turns.append(harmony.Turn(role, text))
        elif kind == "reasoning":
            parts = list_of(item.get("content") or item.get("summary") or [], f"{where}.summary")
            reasoning += "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))
        elif kind == "function_call":
            name, call_id = item.get("name"), str(item.get("call_id") or item.get("id") or "")
            if not isinstance(name, str) or not name:
                raise bad_request(f"{where}: a function_call needs a name", where)
            names[call_id] = name
            arguments = item.get("arguments", "{}")
            call = harmony.ToolCall(name, arguments_text(arguments), call_id)
            turns.append(harmony.Turn("assistant", "", reasoning, tool_calls=(call,)))
            reasoning = ""
        elif kind == "function_call_output":
            call_id = str(item.get("call_id") or "")
            if call_id not in names:
                raise bad_request(f"{where}: call_id {call_id!r} matches no function_call", where)
            output = item.get("output", "")
            turns.append(
                harmony.Turn("tool", output if isinstance(output, str) else json.dumps(output), name=names[call_id])
            )
        elif kind == "mcp_approval_response":
            request_id = str(item.get("approval_request_id") or "")
            waiting = (pending or {}).get(request_id)
            if waiting is None:
                raise bad_request(f"{where}: approval_request_id {request_id!r} matches no pending request", where)
            if item.get("approve") is True:
                turns.append(harmony.Turn("tool", "", name=waiting.name))  # filled when the call has run
                if approved is not None:
                    approved.append((len(turns) - 1, waiting))
            else:
                turns.append(harmony.Turn("tool", "the user declined this call; it did not run", name=waiting.name))
        elif kind in HOSTED_ITEMS:
            # A built-in tool's call and answer, replayed from an earlier reply: they were
            # analysis-channel steps, which harmony drops once an answer follows them.
            continue
        else:
            raise bad_request(f"{where}.type {kind!r} is not supported", where)
    return turns


HOSTED_ITEMS = ("code_interpreter_call", "web_search_call", "mcp_call", "mcp_list_tools", "mcp_approval_request")


def parse(
    body: Mapping[str, Any], store: ResponseStore, owner: str, max_tokens: int, timeout_s: float | None
) -> tuple[Ask, bool, Pending]:
    """(what to generate, stream?, what to store with the reply)."""
    previous_turns: list[harmony.Turn] = []
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("instructions must be a string", "instructions")
    previous_id = body.get("previous_response_id")
    if previous_id:
        stored = store.conversation(str(previous_id), owner) if isinstance(previous_id, str) else None
        if stored is None:
            raise bad_request(
                f"previous response {str(previous_id)[:80]!r} is not stored here (never stored, deleted, expired, "
                "or one that ended in an error)",
                "previous_response_id",
                "previous_response_not_found",
            )
        previous_turns = list(stored.turns)
    names = {c.id: c.name for t in previous_turns for c in t.tool_calls}
    pending = {c.id: c for t in previous_turns for c in t.tool_calls if "." in c.name and c.id.startswith("mcpr_")}
    approved: list[tuple[int, harmony.ToolCall]] = []
    new_turns = turns_of(body.get("input"), names, pending, approved)
    turns = previous_turns + new_turns
    approved = [(len(previous_turns) + index, call) for index, call in approved]
    functions, builtin, servers = split_tools(body.get("tools"))
    tools, instruction = tools_of({**body, "tools": functions})
    options = harmony.RenderOptions(
        effort=effort_of(body),
        instructions="\n\n".join(p for p in (instructions or "", instruction) if p),
        tools=tools,
        response_schema=_schema(body),
    )
    ask = Ask(
        turns,
        options,
        sampling_of(body, max_tokens),
        [],
        timeout_s,
        builtin=builtin,
        mcp_servers=servers,
        can_approve=True,
        approved=tuple(approved),
        call_required=call_required({**body, "tools": functions}),
        lenient=not strict_of(object_of(body.get("text") or {}, "text").get("format")),
        logprobs=_logprobs_of(body),
        schema_param="text.format",
    )
    flags_of(body)
    saved = Pending(Conversation(turns, instructions or ""), input_items_of(body.get("input")))
    return ask, bool(body.get("stream")), saved


LOGPROBS_INCLUDE = "message.output_text.logprobs"


def _logprobs_of(body: Mapping[str, Any]) -> int | None:
    """Responses asks for logprobs with include ["message.output_text.logprobs"] or top_logprobs."""
    include = list_of(body.get("include") or [], "include")
    if not all(isinstance(name, str) for name in include):
        raise bad_request("include must be a list of strings", "include")
    top = top_logprobs_of(body, None)
    if LOGPROBS_INCLUDE in include or top is not None:
        return top or 0
    return None


BUILTIN_TYPES = {"code_interpreter": "python", "web_search": "browser", "web_search_preview": "browser"}
"""Responses' hosted tool types edgeoss runs itself, and the tool that does it."""
NOT_HERE = {
    "file_search": "edgeoss has no file search",
    "computer_use_preview": "edgeoss has no computer use",
    "image_generation": "gpt-oss does not make images",
}


def split_tools(raw: Any) -> tuple[list[Any], tuple[str, ...], tuple[str, ...]]:
    """(function tools, the built-in tools asked for by type, the MCP servers named by server_label)."""
    if raw is None:
        return [], (), ()
    if not isinstance(raw, list):
        raise bad_request("tools must be a list", "tools")
    functions: list[Any] = []
    builtin: list[str] = []
    servers: list[str] = []
    for i, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "mcp":
            assert isinstance(item, Mapping)
            label = item.get("server_label")
            if not isinstance(label, str) or not label:
                raise bad_request(f"tools[{i}]: an mcp tool needs a server_label", f"tools[{i}]")
            if item.get("server_url") or item.get("connector_id"):
                # A client must not make edgeoss connect somewhere: only servers the user configured.
                raise bad_request(
                    f"tools[{i}]: edgeoss uses only the MCP servers configured with --mcp; "
                    "name one by its server_label, without server_url",
                    f"tools[{i}]",
                )
            servers.append(label)
        elif isinstance(kind, str) and kind in BUILTIN_TYPES:
            builtin.append(BUILTIN_TYPES[kind])
        elif isinstance(kind, str) and kind in NOT_HERE:
            raise bad_request(f"tools[{i}]: {kind}: {NOT_HERE[kind]}", f"tools[{i}]")
        else:
            functions.append(item)
    return functions, tuple(dict.fromkeys(builtin)), tuple(dict.fromkeys(servers))


class Builder:
    """Output items from harmony events, and the stream events on the way."""

    def __init__(self, body: Mapping[str, Any], model: str) -> None:
        self.id = _id("resp")
        self.created = int(time.time())
        self.body, self.model = body, model
        self.output: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.sequence = 0
        self.calls: dict[str, dict[str, Any]] = {}  # built-in calls waiting for their answer
        self.container = "cntr_" + loop.conversation_key([])  # the python session's name (see container_of)

    def response(self, status: str, outcome: Reply | None = None) -> dict[str, Any]:
        body = self.body
        usage = None
        incomplete = None
        if outcome is not None:
            u = outcome.usage()
            usage = {
                "input_tokens": u["prompt_tokens"],
                "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
                "output_tokens": u["completion_tokens"],
                "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
                "total_tokens": u["total_tokens"],
            }
            if status == "incomplete":
                incomplete = {"reason": "max_output_tokens"}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": self.output,
            "usage": usage,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": effort_of(body), "summary": None},
            "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice", "auto"),
            "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "max_output_tokens": body.get("max_output_tokens"),
            "text": body.get("text") or {"format": {"type": "text"}},
            "truncation": "disabled",
            "store": body.get("store", True) is True,
            "background": body.get("background") is True,
            "metadata": body.get("metadata") or {},
        }

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence - 1, **fields}

    def start(self) -> list[dict[str, Any]]:
        snapshot = self.response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def _open(self, item: dict[str, Any], part: dict[str, Any] | None) -> list[dict[str, Any]]:
        self.output.append(item)
        self.current = item
        index = len(self.output) - 1
        events = [self._event("response.output_item.added", output_index=index, item=dict(item, content=[]))]
        if part is not None:
            item["content"] = [part]
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=dict(part),
                )
            )
        return events

    def close(self) -> list[dict[str, Any]]:
        item, self.current = self.current, None
        if item is None:
            return []
        index = self.output.index(item)
        item["status"] = "completed"
        part = item["content"][0]
        kind = "response.output_text.done" if item["type"] == "message" else "response.reasoning_text.done"
        extra: dict[str, Any] = {"logprobs": part["logprobs"]} if item["type"] == "message" else {}
        return [
            self._event(kind, item_id=item["id"], output_index=index, content_index=0, text=part["text"], **extra),
            self._event(
                "response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def feed(self, event: harmony.Event) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if event.kind == "reasoning":
            if self.current is None or self.current["type"] != "reasoning":
                events += self.close()
                item = {"type": "reasoning", "id": _id("rs"), "summary": [], "status": "in_progress"}
                events += self._open(item, {"type": "reasoning_text", "text": ""})
            assert self.current is not None
            self.current["content"][0]["text"] += event.text
            events.append(
                self._event(
                    "response.reasoning_text.delta",
                    item_id=self.current["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    delta=event.text,
                )
            )
        elif event.kind in ("content", "preamble"):
            if self.current is None or self.current["type"] != "message":
                events += self.close()
                item = {"type": "message", "id": _id("msg"), "role": "assistant", "status": "in_progress"}
                events += self._open(item, {"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            assert self.current is not None
            part = self.current["content"][0]
            start = len(part["text"])
            part["text"] += event.text
            part["logprobs"] += event.logprobs or []
            events.append(
                self._event(
                    "response.output_text.delta",
                    item_id=self.current["id"],
                    output_index=len(self.output) - 1,
                    content_index=0,
                    delta=event.text,
                    logprobs=event.logprobs or [],
                )
            )
            if event.source is not None:  # a citation the browser resolved: where it stands
                annotation = url_citation(event.source, start, len(part["text"]))
                part["annotations"].append(annotation)
                events.append(
                    self._event(
                        "response.output_text.annotation.added",
                        item_id=self.current["id"],
                        output_index=len(self.output) - 1,
                        content_index=0,
                        annotation_index=len(part["annotations"]) - 1,
                        annotation=annotation,
                    )
                )
        elif event.kind == "tool_call" and event.tool_call is not None:
            events += self.close()
            call = event.tool_call
            item = {
                "type": "function_call",
                "id": _id("fc"),
                "call_id": call.id,  # the parser's: unique, and what the server remembers the call by
                "name": call.name,
                "arguments": "",
                "status": "in_progress",
            }
            self.output.append(item)
            index = len(self.output) - 1
            events.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=call.arguments,
                )
            )
            item["arguments"], item["status"] = call.arguments, "completed"
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            events.append(self._event("response.output_item.done", output_index=index, item=item))
        elif event.kind == "builtin_call" and event.tool_call is not None:
            events += self.close()
            events += self._builtin_call(event.tool_call)
        elif event.kind == "builtin_result" and event.tool_call is not None:
            events += self._builtin_result(event.tool_call, event.text)
        elif event.kind == "approval_request" and event.tool_call is not None:
            events += self._approval_request(event.tool_call)
        return events

    def _approval_request(self, call: harmony.ToolCall) -> list[dict[str, Any]]:
        """The model called a tool that runs only with the user's yes: ask, and end here."""
        pending = self.calls.pop(call.id, None)  # the mcp_call item opened for it goes
        if pending is not None:
            self.output.remove(pending)
        server, _, name = call.name.partition(".")
        item = {
            "type": "mcp_approval_request",
            "id": _id("mcpr"),
            "server_label": server,
            "name": name,
            "arguments": call.arguments,
        }
        self.output.append(item)
        index = len(self.output) - 1
        return [
            self._event("response.output_item.added", output_index=index, item=item),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _builtin_call(self, call: harmony.ToolCall) -> list[dict[str, Any]]:
        """A code_interpreter_call or web_search_call item, as OpenAI's Responses streams one
        (the answer follows in _builtin_result)."""
        if call.name.startswith("browser."):
            return self._web_search_call(call)
        if call.name != "python":
            return self._mcp_call(call)
        item: dict[str, Any] = {
            "type": "code_interpreter_call",
            "id": _id("ci"),
            "status": "in_progress",
            "code": "",
            "container_id": self.container,
            "outputs": None,
        }
        ids = self._open_call(item, call)
        events = [
            self._event("response.output_item.added", output_index=ids["output_index"], item=dict(item)),
            self._event("response.code_interpreter_call.in_progress", **ids),
            self._event("response.code_interpreter_call_code.delta", **ids, delta=call.arguments),
        ]
        item["code"], item["status"] = call.arguments, "interpreting"
        events += [
            self._event("response.code_interpreter_call_code.done", **ids, code=call.arguments),
            self._event("response.code_interpreter_call.interpreting", **ids),
        ]
        return events

    def _open_call(self, item: dict[str, Any], call: harmony.ToolCall) -> dict[str, Any]:
        """Add a built-in call's item to the output, waiting for its answer (_builtin_result);
        the item_id and output_index its events carry."""
        self.output.append(item)
        self.calls[call.id] = item
        return {"item_id": item["id"], "output_index": len(self.output) - 1}

    def mcp_list_tools(self, namespaces: Sequence[harmony.Namespace]) -> list[dict[str, Any]]:
        """An mcp_list_tools item per MCP server the request named, before the model's output."""
        events = []
        for namespace in namespaces:
            item = {
                "type": "mcp_list_tools",
                "id": _id("mcpl"),
                "server_label": namespace.name,
                "tools": [
                    {"name": t.name, "description": t.description, "input_schema": t.parameters or {}}
                    for t in namespace.tools
                ],
            }
            self.output.append(item)
            index = len(self.output) - 1
            events += [
                self._event("response.output_item.added", output_index=index, item=dict(item, tools=[])),
                self._event("response.mcp_list_tools.in_progress", item_id=item["id"], output_index=index),
                self._event("response.mcp_list_tools.completed", item_id=item["id"], output_index=index),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        return events

    def _mcp_call(self, call: harmony.ToolCall) -> list[dict[str, Any]]:
        server, _, name = call.name.partition(".")
        item: dict[str, Any] = {
            "type": "mcp_call",
            "id": _id("mcp"),
            "server_label": server,
            "name": name,
            "arguments": call.arguments,
            "output": None,
            "error": None,
            "status": "in_progress",
        }
        ids = self._open_call(item, call)
        return [
            self._event("response.output_item.added", output_index=ids["output_index"], item=dict(item)),
            self._event("response.mcp_call.in_progress", **ids),
            self._event("response.mcp_call_arguments.delta", **ids, delta=call.arguments),
            self._event("response.mcp_call_arguments.done", **ids, arguments=call.arguments),
        ]

    def _web_search_call(self, call: harmony.ToolCall) -> list[dict[str, Any]]:
        item: dict[str, Any] = {
            "type": "web_search_call",
            "id": _id("ws"),
            "status": "in_progress",
            "action": web_search_action(call),
        }
        ids = self._open_call(item, call)
        return [
            self._event("response.output_item.added", output_index=ids["output_index"], item=dict(item)),
            self._event("response.web_search_call.in_progress", **ids),
            self._event("response.web_search_call.searching", **ids),
        ]

    def _builtin_result(self, call: harmony.ToolCall, text: str) -> list[dict[str, Any]]:
        item = self.calls.pop(call.id, None)
        if item is None:
            return []
        index = self.output.index(item)
        if item["type"] == "mcp_call":
            failed = text.startswith(("error:", "the MCP "))
            item["status"] = "failed" if failed else "completed"
            item["output" if not failed else "error"] = text
            kind = "response.mcp_call.failed" if failed else "response.mcp_call.completed"
            return [
                self._event(kind, item_id=item["id"], output_index=index),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        if item["type"] == "web_search_call":
            item["status"] = "completed"
            return [
                self._event("response.web_search_call.completed", item_id=item["id"], output_index=index),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        item["outputs"], item["status"] = [{"type": "logs", "logs": text}], "completed"
        return [
            self._event("response.code_interpreter_call.completed", item_id=item["id"], output_index=index),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def finish(self, outcome: Reply) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        events = self.close()
        status = "incomplete" if outcome.finish_reason == "length" else "completed"
        final = self.response(status, outcome)
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        return final, [*events, self._event(kind, response=final)]

    def conversation(self, stored: Conversation) -> Conversation:
        """The conversation with this reply appended, for the store."""
        turns = list(stored.turns)
        reasoning = ""
        for item in self.output:
            if item["type"] == "reasoning":
                reasoning += item["content"][0]["text"]
            elif item["type"] == "function_call":
                call = harmony.ToolCall(item["name"], item["arguments"], item["call_id"])
                turns.append(harmony.Turn("assistant", "", reasoning, tool_calls=(call,)))
                reasoning = ""
            elif item["type"] == "message":
                turns.append(harmony.Turn("assistant", item["content"][0]["text"], reasoning))
                reasoning = ""
            elif item["type"] == "mcp_approval_request":
                # The call waits for the user: the next request's mcp_approval_response answers it.
                name = f"{item['server_label']}.{item['name']}"
                call = harmony.ToolCall(name, item["arguments"], item["id"], "commentary")
                turns.append(harmony.Turn("assistant", "", reasoning, tool_calls=(call,)))
                reasoning = ""
        return Conversation(turns, stored.instructions)


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def save(builder: Builder, final: dict[str, Any], store: ResponseStore, pending: Pending, owner: str) -> None:
    """Store the finished response unless the request said store: false (then nothing is written)."""
    if builder.body.get("store", True) is True:
        conversation = builder.conversation(pending.conversation) if final["status"] != "failed" else None
        store.put(final, owner, pending.input_items, conversation)


async def stream(
    events: AsyncIterator[harmony.Event],
    outcome: Reply,
    builder: Builder,
    store: ResponseStore,
    pending: Pending,
    owner: str,
    listed: Sequence[harmony.Namespace] = (),
) -> AsyncIterator[bytes]:
    for event in [*builder.start(), *builder.mcp_list_tools(listed)]:
        yield sse(event)
    try:
        async for harmony_event in events:
            for event in builder.feed(harmony_event):
                yield sse(event)
    except ApiError as exc:
        failed = builder.response("failed", outcome)
        failed["error"] = {"code": exc.code or "server_error", "message": exc.message}
        yield sse({"type": "response.failed", "sequence_number": builder.sequence, "response": failed})
        return
    final, closing = builder.finish(outcome)
    save(builder, final, store, pending, owner)
    for event in closing:
        yield sse(event)


async def feeding(events: AsyncIterator[harmony.Event], builder: Builder) -> AsyncIterator[harmony.Event]:
    """The events, each fed to `builder` on the way (for a non-streaming reply)."""
    async for event in events:
        builder.feed(event)
        yield event


def complete(builder: Builder, outcome: Reply, store: ResponseStore, pending: Pending, owner: str) -> dict[str, Any]:
    final, _ = builder.finish(outcome)
    save(builder, final, store, pending, owner)
    return final


def url_citation(source: harmony.Source, start: int, end: int) -> dict[str, Any]:
    """Responses' annotation of a cited page: its span in the output text, its link."""
    return {"type": "url_citation", "start_index": start, "end_index": end, "url": source.url, "title": source.title}


def web_search_action(call: harmony.ToolCall) -> dict[str, Any]:
    """What a browser call did, in the shape of a web_search_call's action (search, open_page, find)."""
    try:
        args = json.loads(call.arguments)
    except ValueError:
        args = {}
    args = args if isinstance(args, dict) else {}
    function = call.name.removeprefix("browser.")
    if function == "search":
        return {"type": "search", "query": str(args.get("query", ""))}
    if function == "find":
        return {"type": "find", "pattern": str(args.get("pattern", "")), "url": ""}
    link = args.get("id", -1)
    where = link if isinstance(link, str) else f"link {link} on page {args.get('cursor', -1)}"
    return {"type": "open_page", "url": where}
