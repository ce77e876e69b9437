"""Facts about gpt-oss, in one place.

Every number the rest of edgeoss needs about the models lives here: the
hyper-parameters of both variants, the tensor inventory of the original
(Hugging Face) checkpoint and of a GGUF conversion, the harmony special tokens
and the KV-cache arithmetic. Sources: OpenAI's model card and config.json,
llama.cpp's gpt-oss loader and gguf-py 0.19.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

# --- vocabulary ---------------------------------------------------------------

VOCAB_SIZE = 201088
"""Rows of the embedding and unembedding matrices (o200k_harmony, padded)."""

BPE_RANKS = 199998
"""Ordinary (mergeable) tokens in o200k_base; ids 0..199997."""

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""sha256 of o200k_base.tiktoken, the digest openai-harmony and tiktoken expect."""

O200K_GGUF_TOKENS_SHA256 = "0fc8da96e9c1e979d83a0ad79129255c04f3d2806273de8cba33bbc584ed23fe"
"""sha256 of o200k_base's 199998 tokens as a GGUF spells them (byte-level BPE
text, joined by newlines): what a gpt-oss GGUF's token list must hash to. It
follows from o200k_base.tiktoken (O200K_SHA256); kept here so that checking a
file does not rebuild the vocabulary (a second per load), and re-derived from
the vocabulary by the tests."""

CHAT_TEMPLATE_SHA256 = "a4c9919cbbd4acdd51ccffe22da049264b1b73e59055fa58811a99efbd7c8146"
"""sha256 of OpenAI's published gpt-oss chat_template.jinja."""

# o200k_base's pre-tokenizer: tiktoken's pattern, also the HF Split regex.
O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)

# Harmony control tokens (ids shared by openai-harmony, the HF tokenizer and GGUF).
STARTOFTEXT = 199998
ENDOFTEXT = 199999
RETURN = 200002
CONSTRAIN = 200003
CHANNEL = 200005
START = 200006
END = 200007
MESSAGE = 200008
CALL = 200012
ENDOFPROMPT = 200018

NAMED_SPECIAL_TOKENS: dict[int, str] = {
    STARTOFTEXT: "<|startoftext|>",
    ENDOFTEXT: "<|endoftext|>",
    RETURN: "<|return|>",
    CONSTRAIN: "<|constrain|>",
    CHANNEL: "<|channel|>",
    START: "<|start|>",
    END: "<|end|>",
    MESSAGE: "<|message|>",
    CALL: "<|call|>",
    # The HF tokenizer (and so every GGUF) names 200018 <|endofprompt|>, as in
    # o200k_base; openai-harmony calls it <|reserved_200018|>. Same id, unused
    # by the harmony format.
    ENDOFPROMPT: "<|endofprompt|>",
}

STOP_TOKENS = (RETURN, CALL)
"""Generation ends on these: <|return|> (final answer) and <|call|> (tool call)."""

BOS_TOKEN = STARTOFTEXT
EOS_TOKEN = RETURN
PAD_TOKEN = ENDOFTEXT
GENERATION_EOS_TOKENS = (RETURN, ENDOFTEXT, CALL)
"""eos_token_id list of the published generation_config.json."""


def special_token_text(token_id: int) -> str:
    """The text of a special token id in 199998..201087 (HF / GGUF naming)."""
    if not BPE_RANKS <= token_id < VOCAB_SIZE:
        raise ValueError(f"{token_id} is not a special token id of o200k_harmony")
    return NAMED_SPECIAL_TOKENS.get(token_id, f"<|reserved_{token_id}|>")


# --- MXFP4 ----------------------------------------------------------------------

MXFP4_BLOCK = 32
"""Elements per MXFP4 block (one shared E8M0 scale)."""

MXFP4_BLOCK_BYTES = MXFP4_BLOCK // 2
"""Packed nibbles per block in the original checkpoint (`*_blocks` last dim)."""

E8M0_BIAS = 127
"""Exponent bias of the original checkpoint's `*_scales` (value = 2**(e - 127))."""

FP4_E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
"""Value of each 4-bit E2M1 code, the lookup table of OpenAI's reference."""

GGML_TYPE_MXFP4 = 39
"""GGML tensor type id of MXFP4 (block: u8 e, u8 qs[16]; 17 bytes per 32)."""

GGML_FILE_TYPE_MXFP4_MOE = 38
"""general.file_type of a gpt-oss GGUF whose experts are MXFP4 (llama.cpp's
MOSTLY_MXFP4_MOE: MXFP4 experts, Q8_0 for the other matrices when quantized)."""

Q8_0_BLOCK = 32
Q8_0_BLOCK_BYTES = 34
"""GGML Q8_0: blocks of 32 int8 codes after one f16 scale."""


# --- hyper-parameters -------------------------------------------------------------

VariantName = Literal["gpt-oss-20b", "gpt-oss-120b"]


SHAPE_LIMITS: dict[str, int] = {
    # Far above any gpt-oss (120b: 36 layers, 128 experts, 2880 wide, 131072 positions) and
    # below what would make a shape's tensor inventory or arithmetic a cost of its own.
    "num_layers": 1024,
    "num_experts": 4096,
    "experts_per_token": 64,
    "hidden_size": 65536,
    "intermediate_size": 65536,
    "num_attention_heads": 1024,
    "num_kv_heads": 1024,
    "head_dim": 1024,
    "vocab_size": 1 << 20,
    "sliding_window": 1 << 24,
    "context_length": 1 << 24,
    "initial_context_length": 1 << 24,
}


@dataclass(frozen=True)
class Hparams:
    """The shape of one gpt-oss model. Real variants and synthetic scales alike."""

    name: str
    num_layers: int
    num_experts: int
    hidden_size: int = 2880
    intermediate_size: int = 2880
    num_attention_heads: int = 64
    num_kv_heads: int = 8
    head_dim: int = 64
    experts_per_token: int = 4
    vocab_size: int = VOCAB_SIZE
    sliding_window: int = 128
    context_length: int = 131072
    initial_context_length: int = 4096
    rope_theta: float = 150000.0
    rope_scaling_factor: float = 32.0
    rope_beta_fast: float = 32.0
    rope_beta_slow: float = 1.0
    swiglu_limit: float = 7.0
    swiglu_alpha: float = 1.702
    rms_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        problems = []
        # Bounded first: shapes come from files (a GGUF header, a config.json), and
        # everything below, and every caller, sizes work by them.
        for field, limit in SHAPE_LIMITS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
                problems.append(f"{field} ({value!r}) must be an integer from 1 to {limit:,}")
        if problems:
            raise ValueError(f"invalid gpt-oss shape {self.name!r}: " + "; ".join(problems))
        if self.num_layers < 1:
            problems.append("num_layers must be at least 1")
        if self.num_experts < self.experts_per_token:
            problems.append(
                f"num_experts ({self.num_experts}) must be at least experts_per_token ({self.experts_per_token})"
            )
        for field in ("hidden_size", "intermediate_size"):
            value = getattr(self, field)
            if value < MXFP4_BLOCK or value % MXFP4_BLOCK:
                problems.append(f"{field} ({value}) must be a positive multiple of {MXFP4_BLOCK} (MXFP4 block)")
        if self.num_kv_heads < 1 or self.num_attention_heads % self.num_kv_heads:
            problems.append("num_attention_heads must be a multiple of num_kv_heads")
        if problems:
            raise ValueError(f"invalid gpt-oss shape {self.name!r}: " + "; ".join(problems))

    def replace(self, **changes: object) -> Hparams:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # Layers alternate: even layers use the 128-token sliding window, odd ones full attention.
    def is_sliding(self, layer: int) -> bool:
        return layer % 2 == 0

    @property
    def layer_types(self) -> list[str]:
        return ["sliding_attention" if self.is_sliding(i) else "full_attention" for i in range(self.num_layers)]

    @property
    def num_sliding_layers(self) -> int:
        return sum(self.is_sliding(i) for i in range(self.num_layers))

    @property
    def num_full_layers(self) -> int:
        return self.num_layers - self.num_sliding_layers

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    # --- parameters ---

    @property
    def expert_params_per_layer(self) -> int:
        """Weights and biases of all experts of one layer."""
        h, f = self.hidden_size, self.intermediate_size
        return self.num_experts * (2 * f * h + 2 * f + h * f + h)

    @property
    def dense_params_per_layer(self) -> int:
        """Attention, norms and router of one layer (everything but the experts)."""
        h = self.hidden_size
        attn = (self.q_dim + 2 * self.kv_dim) * (h + 1) + h * self.q_dim + h + self.num_attention_heads
        return attn + 2 * h + self.num_experts * (h + 1)

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        per_layer = self.expert_params_per_layer + self.dense_params_per_layer
        return self.num_layers * per_layer + 2 * self.embedding_params + self.hidden_size

    @property
    def active_params(self) -> int:
        """Parameters used per token, counted as OpenAI does: the unembedding
        but not the embedding lookup, and experts_per_token of the experts."""
        active_experts = self.expert_params_per_layer * self.experts_per_token // self.num_experts
        return (
            self.num_layers * (self.dense_params_per_layer + active_experts) + self.embedding_params + self.hidden_size
        )

    # --- KV cache ---

    def kv_bytes_per_token_per_layer(self, bytes_per_element: int = 2) -> int:
        """K and V for one token in one layer (f16 by default)."""
        return 2 * self.kv_dim * bytes_per_element

    def kv_cache_bytes(self, context: int, bytes_per_element: int = 2) -> int:
        """KV-cache bytes for `context` tokens: full layers hold every token,
        sliding layers only the window."""
        per = self.kv_bytes_per_token_per_layer(bytes_per_element)
        sliding_tokens = min(context, self.sliding_window)
        return per * (self.num_full_layers * context + self.num_sliding_layers * sliding_tokens)

    # --- tensor inventories ---

    def original_tensors(self) -> list[TensorSpec]:
        """Tensors of the Hugging Face checkpoint (openai/gpt-oss-*), by name."""
        h, f, e = self.hidden_size, self.intermediate_size, self.num_experts
        nb = h // MXFP4_BLOCK  # blocks along the input dimension of gate_up
        nbd = f // MXFP4_BLOCK  # and of down
        out = [
            TensorSpec("model.embed_tokens.weight", (self.vocab_size, h), "BF16"),
            TensorSpec("model.norm.weight", (h,), "BF16"),
            TensorSpec("lm_head.weight", (self.vocab_size, h), "BF16"),
        ]
        for i in range(self.num_layers):
            p = f"model.layers.{i}."
            out += [
                TensorSpec(p + "input_layernorm.weight", (h,), "BF16"),
                TensorSpec(p + "post_attention_layernorm.weight", (h,), "BF16"),
                TensorSpec(p + "self_attn.q_proj.weight", (self.q_dim, h), "BF16"),
                TensorSpec(p + "self_attn.q_proj.bias", (self.q_dim,), "BF16"),
                TensorSpec(p + "self_attn.k_proj.weight", (self.kv_dim, h), "BF16"),
                TensorSpec(p + "self_attn.k_proj.bias", (self.kv_dim,), "BF16"),
                TensorSpec(p + "self_attn.v_proj.weight", (self.kv_dim, h), "BF16"),
                TensorSpec(p + "self_attn.v_proj.bias", (self.kv_dim,), "BF16"),
                TensorSpec(p + "self_attn.o_proj.weight", (h, self.q_dim), "BF16"),
                TensorSpec(p + "self_attn.o_proj.bias", (h,), "BF16"),
                TensorSpec(p + "self_attn.sinks", (self.num_attention_heads,), "BF16"),
                TensorSpec(p + "mlp.router.weight", (e, h), "BF16"),
                TensorSpec(p + "mlp.router.bias", (e,), "BF16"),
                # gate_up rows interleave gate (even rows) and up (odd rows).
                TensorSpec(p + "mlp.experts.gate_up_proj_blocks", (e, 2 * f, nb, MXFP4_BLOCK_BYTES), "U8"),
                TensorSpec(p + "mlp.experts.gate_up_proj_scales", (e, 2 * f, nb), "U8"),
                TensorSpec(p + "mlp.experts.gate_up_proj_bias", (e, 2 * f), "BF16"),
                TensorSpec(p + "mlp.experts.down_proj_blocks", (e, h, nbd, MXFP4_BLOCK_BYTES), "U8"),
                TensorSpec(p + "mlp.experts.down_proj_scales", (e, h, nbd), "U8"),
                TensorSpec(p + "mlp.experts.down_proj_bias", (e, h), "BF16"),
            ]
        return out

    def gguf_tensors(self, outtype: str = "bf16") -> list[TensorSpec]:
        """Tensors of a GGUF for llama.cpp's gpt-oss loader.

        Shapes are row-major (NumPy order; GGUF stores them reversed). The
        dtype is what `edgeoss convert --outtype OUTTYPE` writes: MXFP4
        experts, F32 for the small vectors (norms, biases, sinks, router), and
        GGUF_OUTTYPES[outtype] for the large matrices (embedding, attention,
        output); the default bf16 is the checkpoint's own, lossless.
        """
        m = matrix_dtype(outtype)
        h, f, e = self.hidden_size, self.intermediate_size, self.num_experts
        out = [
            TensorSpec("token_embd.weight", (self.vocab_size, h), m),
            TensorSpec("output_norm.weight", (h,), "F32"),
            TensorSpec("output.weight", (self.vocab_size, h), m),
        ]
        for i in range(self.num_layers):
            p = f"blk.{i}."
            out += [
                TensorSpec(p + "attn_norm.weight", (h,), "F32"),
                TensorSpec(p + "post_attention_norm.weight", (h,), "F32"),
                TensorSpec(p + "attn_q.weight", (self.q_dim, h), m),
                TensorSpec(p + "attn_q.bias", (self.q_dim,), "F32"),
                TensorSpec(p + "attn_k.weight", (self.kv_dim, h), m),
                TensorSpec(p + "attn_k.bias", (self.kv_dim,), "F32"),
                TensorSpec(p + "attn_v.weight", (self.kv_dim, h), m),
                TensorSpec(p + "attn_v.bias", (self.kv_dim,), "F32"),
                TensorSpec(p + "attn_output.weight", (h, self.q_dim), m),
                TensorSpec(p + "attn_output.bias", (h,), "F32"),
                TensorSpec(p + "attn_sinks.weight", (self.num_attention_heads,), "F32"),
                TensorSpec(p + "ffn_gate_inp.weight", (e, h), "F32"),
                TensorSpec(p + "ffn_gate_inp.bias", (e,), "F32"),
                TensorSpec(p + "ffn_gate_exps.weight", (e, f, h), "MXFP4"),
                TensorSpec(p + "ffn_gate_exps.bias", (e, f), "F32"),
                TensorSpec(p + "ffn_up_exps.weight", (e, f, h), "MXFP4"),
                TensorSpec(p + "ffn_up_exps.bias", (e, f), "F32"),
                TensorSpec(p + "ffn_down_exps.weight", (e, h, f), "MXFP4"),
                TensorSpec(p + "ffn_down_exps.bias", (e, h), "F32"),
            ]
        return out

    def gguf_file_bytes(self, outtype: str = "bf16") -> int:
        """Predicted size in bytes of the GGUF `edgeoss convert --outtype
        OUTTYPE` writes for this shape: the tensor data and index exactly
        (each tensor padded to GGUF's alignment), the metadata as
        GGUF_METADATA_BYTES measures it."""
        tensors = self.gguf_tensors(outtype)
        index = sum(8 + len(t.name) + 4 + 8 * len(t.shape) + 4 + 8 for t in tensors)
        header = 24 + GGUF_METADATA_BYTES + index  # magic, version, two counts
        return _align(header) + sum(_align(t.nbytes) for t in tensors)

    def to_hf_config(self) -> dict[str, object]:
        """config.json exactly as published with openai/gpt-oss-20b and -120b."""
        return {
            "architectures": ["GptOssForCausalLM"],
            "attention_bias": True,
            "attention_dropout": 0.0,
            "eos_token_id": EOS_TOKEN,
            "experts_per_token": self.experts_per_token,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initial_context_length": self.initial_context_length,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "layer_types": self.layer_types,
            "max_position_embeddings": self.context_length,
            "model_type": "gpt_oss",
            "num_attention_heads": self.num_attention_heads,
            "num_experts_per_tok": self.experts_per_token,
            "num_hidden_layers": self.num_layers,
            "num_key_value_heads": self.num_kv_heads,
            "num_local_experts": self.num_experts,
            "output_router_logits": False,
            "pad_token_id": PAD_TOKEN,
            "quantization_config": {
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
                "quant_method": "mxfp4",
            },
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": {
                "beta_fast": self.rope_beta_fast,
                "beta_slow": self.rope_beta_slow,
                "factor": self.rope_scaling_factor,
                "original_max_position_embeddings": self.initial_context_length,
                "rope_type": "yarn",
                "truncate": False,
            },
            "rope_theta": self.rope_theta,
            "router_aux_loss_coef": 0.9,
            "sliding_window": self.sliding_window,
            "swiglu_limit": self.swiglu_limit,
            "tie_word_embeddings": False,
            "transformers_version": "4.55.0.dev0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


DType = Literal["BF16", "F16", "F32", "U8", "MXFP4", "Q8_0"]

DTYPE_BYTES: dict[str, float] = {
    "BF16": 2,
    "F16": 2,
    "F32": 4,
    "U8": 1,
    "MXFP4": 17 / 32,
    "Q8_0": Q8_0_BLOCK_BYTES / Q8_0_BLOCK,
}

GGUF_OUTTYPES: dict[str, DType] = {"bf16": "BF16", "f32": "F32", "q8_0": "Q8_0"}
"""`edgeoss convert --outtype` -> the GGML type of the large matrices (token
embedding, attention q/k/v/o, output). bf16 is the checkpoint's own (lossless,
the default); f32 widens it exactly (lossless, for numerical comparisons);
q8_0 is what ggml-org's published GGUFs use (llama.cpp's MXFP4_MOE mix):
about half the bytes of bf16, rounded to 8 bits per weight. The experts stay
the release's MXFP4 in all three."""


def matrix_dtype(outtype: str) -> DType:
    """GGUF_OUTTYPES[outtype], or a usage error naming the choices."""
    if outtype not in GGUF_OUTTYPES:
        from edgeoss.errors import UsageError

        raise UsageError(f"unknown outtype {outtype!r}", hint=f"choose one of {', '.join(GGUF_OUTTYPES)}")
    return GGUF_OUTTYPES[outtype]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: DType

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return int(self.numel * DTYPE_BYTES[self.dtype])


GPT_OSS_20B = Hparams(name="gpt-oss-20b", num_layers=24, num_experts=32)
GPT_OSS_120B = Hparams(name="gpt-oss-120b", num_layers=36, num_experts=128)

VARIANTS: dict[str, Hparams] = {v.name: v for v in (GPT_OSS_20B, GPT_OSS_120B)}

SHAPE_FIELDS = ("num_layers", "num_experts", "hidden_size", "intermediate_size", "num_attention_heads", "num_kv_heads")
"""What tells the variants apart; everything else is shared by all gpt-oss."""


def variant_of(hp: Hparams) -> str | None:
    """ "gpt-oss-20b" or "gpt-oss-120b" when `hp` has that shape, else None."""
    return next((v.name for v in VARIANTS.values() if all(getattr(v, f) == getattr(hp, f) for f in SHAPE_FIELDS)), None)


def describe_shape(hp: Hparams) -> str:
    """The variant's name, or a description of a custom (e.g. synthetic) shape."""
    return variant_of(hp) or (
        f"custom gpt-oss shape ({hp.num_layers} layers, {hp.num_experts} experts, hidden {hp.hidden_size})"
    )


# Published figures, used to cross-check the arithmetic above (tests) and the planner.
PUBLISHED = {
    "gpt-oss-20b": {"total_params_b": 20.91, "active_params_b": 3.61, "ggml_org_gguf_gib": 11.27},
    "gpt-oss-120b": {"total_params_b": 116.83, "active_params_b": 5.13, "ggml_org_gguf_gib": 59.02},
}

HF_REPOS = {
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "gpt-oss-120b": "openai/gpt-oss-120b",
}

OLLAMA_TAGS = {"gpt-oss-20b": "gpt-oss:20b", "gpt-oss-120b": "gpt-oss:120b"}
"""Ollama's library name for each variant (`ollama pull gpt-oss:120b`)."""
OLLAMA_NAMES = {
    **{tag: variant for variant, tag in OLLAMA_TAGS.items()},
    # Ollama's default tag is 20b.
    "gpt-oss": "gpt-oss-20b",
    "gpt-oss:latest": "gpt-oss-20b",
}
"""Every Ollama name that means a variant."""


def ollama_name(variant: str) -> str | None:
    """Ollama's name for a variant ("gpt-oss-120b" -> "gpt-oss:120b")."""
    return OLLAMA_TAGS.get(variant)


GENERATION_CONFIG: dict[str, object] = {
    "bos_token_id": BOS_TOKEN,
    "do_sample": True,
    "eos_token_id": list(GENERATION_EOS_TOKENS),
    "pad_token_id": PAD_TOKEN,
    "transformers_version": "4.55.0.dev0",
}

# --- GGUF -------------------------------------------------------------------------

GGUF_ARCH = "gpt-oss"

GGUF_HPARAM_KEYS: dict[str, tuple[str, type]] = {
    # `gpt-oss.<key>`: (Hparams attribute, value type). llama.cpp aborts the
    # process when one of these is missing, so the converter writes and the
    # verifier requires every one.
    "context_length": ("context_length", int),
    "embedding_length": ("hidden_size", int),
    "block_count": ("num_layers", int),
    "feed_forward_length": ("intermediate_size", int),
    "expert_feed_forward_length": ("intermediate_size", int),
    "expert_count": ("num_experts", int),
    "expert_used_count": ("experts_per_token", int),
    "attention.head_count": ("num_attention_heads", int),
    "attention.head_count_kv": ("num_kv_heads", int),
    "attention.key_length": ("head_dim", int),
    "attention.value_length": ("head_dim", int),
    "attention.layer_norm_rms_epsilon": ("rms_norm_eps", float),
    "attention.sliding_window": ("sliding_window", int),
    "rope.freq_base": ("rope_theta", float),
    "rope.scaling.factor": ("rope_scaling_factor", float),
    "rope.scaling.original_context_length": ("initial_context_length", int),
}

GGUF_ALIGNMENT = 32
"""general.alignment of the files edgeoss writes (GGUF's default)."""

GGUF_METADATA_BYTES = 12_988_754
"""Bytes of the key-value section `edgeoss convert` writes for the full
o200k_harmony vocabulary (tokens, types, merges: nearly all of it), OpenAI's
chat template and the default general.name "gpt-oss"; measured, and held to
the byte by tests/integration/test_convert_q8_0.py (another name or template
moves a file by its difference in length)."""


def _align(n: int) -> int:
    return -(-n // GGUF_ALIGNMENT) * GGUF_ALIGNMENT


GGUF_OPTIONAL_KEYS = ("feed_forward_length",)
"""Written by edgeoss and by llama.cpp's converter, but not read by the loader."""

GGUF_TOKENIZER_MODEL = "gpt2"
GGUF_TOKENIZER_PRE = "gpt-4o"
GGUF_TOKEN_TYPE_NORMAL = 1
GGUF_TOKEN_TYPE_CONTROL = 3


def variant_names(variant: str | None) -> list[str]:
    """The variants a command asked about ("20b", "gpt-oss-120b"; None: both); a usage error for others."""
    from edgeoss.errors import UsageError

    names = list(VARIANTS) if variant is None else [variant if variant.startswith("gpt-oss") else f"gpt-oss-{variant}"]
    if any(n not in VARIANTS for n in names):
        raise UsageError(f"unknown variant {variant!r}", hint=f"choose one of {', '.join(VARIANTS)}")
    return names


def facts(name: str) -> dict[str, int | str]:
    """One variant's facts as `edgeoss spec --json` prints them."""
    hp = VARIANTS[name]
    return {
        "layers": hp.num_layers,
        "experts": hp.num_experts,
        "experts_per_token": hp.experts_per_token,
        "hidden_size": hp.hidden_size,
        "attention_heads": hp.num_attention_heads,
        "kv_heads": hp.num_kv_heads,
        "head_dim": hp.head_dim,
        "sliding_window": hp.sliding_window,
        "context_length": hp.context_length,
        "vocab_size": hp.vocab_size,
        "total_params": hp.total_params,
        "active_params": hp.active_params,
        "kv_cache_bytes_per_token_f16": hp.kv_bytes_per_token_per_layer() * hp.num_full_layers,
        "kv_cache_bytes_at_max_context_f16": hp.kv_cache_bytes(hp.context_length),
        "hf_repo": HF_REPOS[name],
    }
