"""The synthetic checkpoint's tokenizer splits text exactly as openai-harmony does
(through transformers' AutoTokenizer: tests/integration/test_tokenizer_transformers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from edgeoss import harmony, spec
from edgeoss.harmony import tokenizer

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, WE'VE SEEN IT.",
    "東京は今日も晴れです。日本語のテキストを正しく分割できますか？",
    "Ünïcödé façade naïve café — “quotes” and ‘apostrophes’",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\n",
    'for (int i = 0; i < 10; ++i) { printf("%d\\n", i); }  // C',
    "emoji 🚀🔥👩‍👩‍👧‍👦 🇯🇵 ✅",
    "numbers 1234567 3.14159 ０１２３ 10,000,000",
    "  leading and   trailing   spaces \t tabs\r\nwindows lines \n",
    "Привет, мир! مرحبا بالعالم שלום עולם नमस्ते दुनिया",
    "<|start|>system<|message|>You are ChatGPT.<|end|><|start|>user<|message|>hi<|end|>",
    "<|start|>assistant<|channel|>analysis<|message|>think<|end|>"
    "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{}<|call|>",
    "<|startoftext|>text<|endoftext|><|reserved_200000|><|return|>",
]


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_checkpoint: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny_checkpoint / "tokenizer.json"))


@pytest.mark.parametrize("text", CORPUS)
def test_hf_tokenizer_matches_openai_harmony(hf_tokenizer: Tokenizer, text: str) -> None:
    expected = harmony.encoding().encode(text, allowed_special="all")
    assert hf_tokenizer.encode(text).ids == expected
    assert hf_tokenizer.decode(expected, skip_special_tokens=False) == text


def test_whole_corpus_at_once(hf_tokenizer: Tokenizer) -> None:
    text = "\n".join(CORPUS)
    assert hf_tokenizer.encode(text).ids == harmony.encoding().encode(text, allowed_special="all")


def test_vocabulary_size_and_special_ids(hf_tokenizer: Tokenizer) -> None:
    assert hf_tokenizer.get_vocab_size(with_added_tokens=True) == spec.VOCAB_SIZE
    for token_id, text in spec.NAMED_SPECIAL_TOKENS.items():
        assert hf_tokenizer.token_to_id(text) == token_id
    assert hf_tokenizer.token_to_id("<|reserved_201087|>") == 201087


def test_files_are_consistent(tiny_checkpoint: Path) -> None:
    data = json.loads((tiny_checkpoint / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(data["model"]["vocab"]) == spec.BPE_RANKS
    assert len(data["added_tokens"]) == spec.VOCAB_SIZE - spec.BPE_RANKS
    assert len(data["model"]["merges"]) == len(tokenizer.merges())
    assert data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == spec.O200K_PATTERN


def test_token_list_for_gguf() -> None:
    tokens = tokenizer.tokens()
    assert len(tokens) == spec.VOCAB_SIZE
    assert tokens[spec.START] == "<|start|>"
    assert tokens[220] == "Ġ"  # a lone space, byte-level encoded


def test_the_gguf_token_digest_follows_from_the_vocabulary() -> None:
    """verify compares a GGUF's token list with this constant instead of
    rebuilding o200k's: it must be the digest of the vocabulary itself."""
    from edgeoss.weights.gguf.checks import token_list_digest

    assert token_list_digest(tokenizer.tokens()[: spec.BPE_RANKS]) == spec.O200K_GGUF_TOKENS_SHA256
