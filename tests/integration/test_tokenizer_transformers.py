"""The synthetic checkpoint's tokenizer and chat template as transformers loads
them (slow: imports transformers) agree with openai-harmony."""

from __future__ import annotations

from pathlib import Path

from edgeoss import harmony, spec


def test_transformers_tokenizer_and_chat_template(tiny_checkpoint: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    assert tok.eos_token_id == spec.RETURN and tok.pad_token_id == spec.ENDOFTEXT
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True, reasoning_effort="high"
    )
    assert "Reasoning: high" in rendered
    assert rendered.endswith("<|start|>user<|message|>Hi<|end|><|start|>assistant")
    assert tok(rendered, add_special_tokens=False).input_ids == harmony.encoding().encode(
        rendered, allowed_special="all"
    )
