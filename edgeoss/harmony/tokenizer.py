"""The o200k_harmony tokenizer in the forms other tools read.

From the packaged o200k_base.tiktoken (ranks) this builds what a Hugging Face
`tokenizer.json` holds (byte-level vocabulary, BPE merges, the o200k split
regex, special tokens with their real ids) and the token list a GGUF carries.
The merges are derived from the ranks, so HF tokenizers and llama.cpp split
text exactly as tiktoken and openai-harmony do.
"""

from __future__ import annotations

import base64
import functools
import json

from edgeoss import resources, spec


@functools.lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (byte-level BPE)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def to_byte_level(token: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[b] for b in token)


@functools.lru_cache(maxsize=1)
def mergeable_ranks() -> dict[bytes, int]:
    """o200k_base: token bytes -> rank (= token id), 199998 entries."""
    ranks: dict[bytes, int] = {}
    with resources.vocab_path().open("rb") as fh:
        for line in fh:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != spec.BPE_RANKS or sorted(ranks.values()) != list(range(spec.BPE_RANKS)):
        raise ValueError("o200k_base.tiktoken does not hold ranks 0..199997")
    return ranks


@functools.lru_cache(maxsize=1)
def merges() -> tuple[tuple[bytes, bytes], ...]:
    """Every BPE merge, in priority order.

    tiktoken merges the adjacent pair whose concatenation has the lowest
    rank. A merge list holding every split (left, right) of every token,
    ordered by the rank of the result, makes a merge-list BPE do the same.
    """
    ranks = mergeable_ranks()
    found: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            lr, rr = ranks.get(left), ranks.get(right)
            if lr is not None and rr is not None:
                found.append((rank, lr, rr, left, right))
    found.sort()
    return tuple((left, right) for _, _, _, left, right in found)


def tokens() -> list[str]:
    """All VOCAB_SIZE token texts by id: byte-level BPE tokens, then specials."""
    by_id = sorted(mergeable_ranks().items(), key=lambda kv: kv[1])
    out = [to_byte_level(token) for token, _ in by_id]
    out += [spec.special_token_text(i) for i in range(spec.BPE_RANKS, spec.VOCAB_SIZE)]
    return out


def hf_tokenizer() -> dict[str, object]:
    """The content of a Hugging Face tokenizer.json for gpt-oss."""
    vocab = {to_byte_level(token): rank for token, rank in mergeable_ranks().items()}
    added = [
        {
            "id": i,
            "content": spec.special_token_text(i),
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i in range(spec.BPE_RANKS, spec.VOCAB_SIZE)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": spec.O200K_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            # tiktoken takes a pre-token that is itself a token as is.
            "ignore_merges": True,
            "vocab": vocab,
            "merges": [[to_byte_level(a), to_byte_level(b)] for a, b in merges()],
        },
    }


@functools.lru_cache(maxsize=1)
def hf_tokenizer_json() -> bytes:
    """tokenizer.json bytes (deterministic)."""
    return json.dumps(hf_tokenizer(), ensure_ascii=False, indent=2).encode("utf-8")


def hf_tokenizer_config() -> dict[str, object]:
    """tokenizer_config.json as published, with the chat template embedded."""
    return {
        "added_tokens_decoder": {
            str(i): {
                "content": spec.special_token_text(i),
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i in range(spec.BPE_RANKS, spec.VOCAB_SIZE)
        },
        "bos_token": spec.special_token_text(spec.BOS_TOKEN),
        "chat_template": resources.chat_template(),
        "clean_up_tokenization_spaces": False,
        "eos_token": spec.special_token_text(spec.EOS_TOKEN),
        "extra_special_tokens": {},
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": spec.special_token_text(spec.PAD_TOKEN),
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def special_tokens_map() -> dict[str, str]:
    return {
        "bos_token": spec.special_token_text(spec.BOS_TOKEN),
        "eos_token": spec.special_token_text(spec.EOS_TOKEN),
        "pad_token": spec.special_token_text(spec.PAD_TOKEN),
    }
