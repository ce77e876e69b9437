"""The official gpt-oss artifacts edgeoss knows how to fetch.

One entry per (variant, format): the Hub repository, which files in it make
the artifact, the file a backend loads, and the published size (for planning
before the Hub is asked; `pull` always takes the real sizes and sha256 from
the Hub's metadata).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeoss import spec
from edgeoss.backends import LLAMA_CPP, ORT_GENAI

GIB = 1024**3

FORMATS = ("gguf", "onnx-cuda", "onnx-cpu", "onnx-webgpu", "safetensors")


@dataclass(frozen=True)
class Artifact:
    variant: str
    format: str
    repo: str
    patterns: tuple[str, ...]
    """Files of the repository that make the artifact (fnmatch patterns)."""
    entry: str
    """What a backend opens: the (first) GGUF, the ONNX folder, the checkpoint folder."""
    backend: str
    approx_bytes: int | None
    """About the published size, or None where no figure is known until the Hub is asked."""

    @property
    def name(self) -> str:
        """The store name it gets by default."""
        return self.variant if self.format == "gguf" else f"{self.variant}-{self.format}"


_ORIGINAL_FILES = (
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)

ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(
        "gpt-oss-20b",
        "gguf",
        "ggml-org/gpt-oss-20b-GGUF",
        ("gpt-oss-20b-mxfp4.gguf",),
        "gpt-oss-20b-mxfp4.gguf",
        LLAMA_CPP.key,
        int(spec.PUBLISHED["gpt-oss-20b"]["ggml_org_gguf_gib"] * GIB),
    ),
    Artifact(
        "gpt-oss-120b",
        "gguf",
        "ggml-org/gpt-oss-120b-GGUF",
        tuple(f"gpt-oss-120b-mxfp4-0000{i}-of-00003.gguf" for i in (1, 2, 3)),
        "gpt-oss-120b-mxfp4-00001-of-00003.gguf",
        LLAMA_CPP.key,
        int(spec.PUBLISHED["gpt-oss-120b"]["ggml_org_gguf_gib"] * GIB),
    ),
    Artifact("gpt-oss-20b", "onnx-cuda", "onnxruntime/gpt-oss-20b-onnx", ("cuda/*",), "cuda", ORT_GENAI.key, None),
    Artifact(
        "gpt-oss-20b",
        "onnx-cpu",
        "onnxruntime/gpt-oss-20b-onnx",
        ("cpu_and_mobile/*",),
        "cpu_and_mobile",
        ORT_GENAI.key,
        None,
    ),
    Artifact(
        "gpt-oss-20b", "onnx-webgpu", "onnxruntime/gpt-oss-20b-onnx", ("webgpu/*",), "webgpu", ORT_GENAI.key, None
    ),
    Artifact(
        "gpt-oss-20b", "safetensors", spec.HF_REPOS["gpt-oss-20b"], _ORIGINAL_FILES, ".", "convert", 13_761_300_000
    ),
    Artifact(
        "gpt-oss-120b", "safetensors", spec.HF_REPOS["gpt-oss-120b"], _ORIGINAL_FILES, ".", "convert", 65_280_000_000
    ),
)


def find(variant_or_repo: str, fmt: str = "gguf") -> Artifact | None:
    """The artifact for a variant ("20b", "gpt-oss-20b") or a repository id."""
    wanted = spec.OLLAMA_NAMES.get(variant_or_repo, variant_or_repo)
    if not wanted.startswith(("gpt-oss", "openai/")):
        wanted = f"gpt-oss-{wanted}"
    for artifact in ARTIFACTS:
        if artifact.format != fmt:
            continue
        if wanted in (artifact.variant, artifact.repo) or variant_or_repo == artifact.repo:
            return artifact
    return None
