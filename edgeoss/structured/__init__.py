"""Constrained decoding: answers and tool arguments that always match their
schema, with harmony's own structure left intact.

One grammar describes the whole assistant turn as harmony writes it:
reasoning and preamble messages (free text, bounded), then either the final
answer (constrained to the response schema, ended by `<|return|>`) or a call
(a developer function's arguments constrained to its parameter schema, ended
by `<|call|>`; a built-in tool's input free). llguidance (Microsoft's
constraint engine, the one OpenAI's structured outputs, llama.cpp and vLLM
use) turns the grammar into a token mask per step, and one logits processor
applies it for both engines: the grammar knows harmony's control tokens, so
they are never blocked where harmony needs them and never allowed inside a
JSON value.

    grammar.py     a request's shape (schema, functions, built-ins, tool choice) -> Lark text
    vocab.py       the o200k_harmony vocabulary as llguidance's tokenizer (built once)
    constraint.py  the logits processor that masks each step
"""
