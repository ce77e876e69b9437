"""The harmony format (openai-harmony underneath, fully offline).

encoding.py loads the o200k_harmony encoding from the packaged vocabulary;
render.py turns a conversation into prompt token ids; parser.py turns
generated ids into reasoning, answer, preamble and tool-call events;
tokenizer.py writes the vocabulary in the forms other tools read.
"""

from edgeoss.harmony.encoding import encoding
from edgeoss.harmony.parser import MAX_HEADER_TOKENS, Event, Result, Source, StreamParser
from edgeoss.harmony.render import (
    BUILTIN_TOOLS,
    EFFORTS,
    KNOWLEDGE_CUTOFF,
    Namespace,
    RenderOptions,
    Tool,
    ToolCall,
    Turn,
    check_effort,
    render,
    tool_reply,
)

__all__ = [
    "BUILTIN_TOOLS",
    "EFFORTS",
    "KNOWLEDGE_CUTOFF",
    "MAX_HEADER_TOKENS",
    "Event",
    "Namespace",
    "RenderOptions",
    "Result",
    "Source",
    "StreamParser",
    "Tool",
    "ToolCall",
    "Turn",
    "check_effort",
    "encoding",
    "render",
    "tool_reply",
]
