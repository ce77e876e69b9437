"""How much memory llama.cpp needs for a gpt-oss model, per device.

The parts, each as llama.cpp allocates it (checked against its allocator's
own figures by tests/test_memory_model.py and benchmarks/memory_model.py):

- weights: the GGUF's tensors. token_embd always stays in host memory (llama.cpp
  reads it with get_rows on the CPU); the rest follows its layer. With
  n_cpu_moe = N the expert tensors (weights and biases) of layers 0..N-1 stay
  on the CPU, as llama.cpp's --n-cpu-moe does.
- KV cache (f16): full-attention layers hold the context, padded to 256
  cells; sliding-window layers hold window + n_ubatch cells, padded to 256
  (llama.cpp's iSWA cache with swa_full off).
- compute buffer: the graph's scratch, dominated by the logits of one
  micro-batch: n_ubatch x 4 x (vocabulary + experts_per_token x ff width),
  with flash attention on (without it the attention scores grow with the
  context).
- runtime overhead: the process itself, and each GPU's CUDA/Metal context.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeoss import spec
from edgeoss.weights.gguf.reader import GGUFModel

MIB = 1024 * 1024
GIB = 1024 * MIB

KV_PAD = 256
N_UBATCH = 512
PROCESS_OVERHEAD = 300 * MIB  # Python, edgeoss, llama.cpp's libraries
CUDA_CONTEXT = 600 * MIB  # CUDA runtime, cuBLAS workspace and kernels, per GPU
METAL_CONTEXT = 256 * MIB

# Bytes per element of the GGML types gpt-oss GGUFs use.
TYPE_BYTES = {"F32": 4.0, "F16": 2.0, "BF16": 2.0, "Q8_0": 34 / 32, "MXFP4": 17 / 32}

_EXPERT_PARTS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")


@dataclass(frozen=True)
class Weights:
    """A model's tensor bytes, split the way placement moves them."""

    token_embd: int
    output: int  # output.weight and output_norm
    dense_per_layer: tuple[int, ...]  # attention, norms, router
    experts_per_layer: tuple[int, ...]  # expert weights and biases

    @property
    def total(self) -> int:
        return self.token_embd + self.output + sum(self.dense_per_layer) + sum(self.experts_per_layer)

    @property
    def layers(self) -> int:
        return len(self.dense_per_layer)

    @classmethod
    def from_gguf(cls, model: GGUFModel) -> Weights:
        layers = 1 + max(int(n.split(".")[1]) for n in model.tensors if n.startswith("blk."))
        dense, experts = [0] * layers, [0] * layers
        embd = output = 0
        for name, info in model.tensors.items():
            if name.startswith("blk."):
                layer = int(name.split(".")[1])
                if any(part in name for part in _EXPERT_PARTS):
                    experts[layer] += info.nbytes
                else:
                    dense[layer] += info.nbytes
            elif name.startswith("token_embd"):
                embd += info.nbytes
            else:
                output += info.nbytes
        return cls(embd, output, tuple(dense), tuple(experts))

    @classmethod
    def estimate(cls, hp: spec.Hparams, matrix_type: str = "Q8_0") -> Weights:
        """From the spec alone: MXFP4 experts, `matrix_type` for the other
        matrices (Q8_0 in ggml-org's published files, BF16 in edgeoss's lossless
        conversion), F32 vectors."""
        by_name: dict[str, float] = {}
        for t in hp.gguf_tensors():
            dtype = matrix_type if t.dtype == "BF16" else t.dtype
            by_name[t.name] = t.numel * TYPE_BYTES[dtype]
        dense = [0.0] * hp.num_layers
        experts = [0.0] * hp.num_layers
        for name, nbytes in by_name.items():
            if name.startswith("blk."):
                layer = int(name.split(".")[1])
                if any(part in name for part in _EXPERT_PARTS):
                    experts[layer] += nbytes
                else:
                    dense[layer] += nbytes
        return cls(
            int(by_name["token_embd.weight"]),
            int(by_name["output.weight"] + by_name["output_norm.weight"]),
            tuple(int(d) for d in dense),
            tuple(int(e) for e in experts),
        )


def pad(n: int, to: int = KV_PAD) -> int:
    return -(-n // to) * to


def kv_cache_bytes(hp: spec.Hparams, context: int, layers: range | None = None, n_ubatch: int = N_UBATCH) -> int:
    """f16 KV cache of `layers` (all by default) for a context of `context` tokens."""
    per_cell = hp.kv_bytes_per_token_per_layer()
    total = 0
    for layer in layers if layers is not None else range(hp.num_layers):
        cells = pad(min(context, hp.sliding_window + n_ubatch)) if hp.is_sliding(layer) else pad(context)
        total += per_cell * min(cells, pad(context))
    return total


def compute_bytes(hp: spec.Hparams, n_ubatch: int = N_UBATCH) -> int:
    """The compute buffer of one device that runs the whole graph (flash attention on)."""
    return n_ubatch * 4 * (hp.vocab_size + hp.experts_per_token * hp.intermediate_size)


def host_compute_bytes(hp: spec.Hparams, n_ubatch: int = N_UBATCH) -> int:
    """The host-side buffer when a GPU runs the graph: embedding rows in, logits out."""
    return n_ubatch * 4 * (hp.hidden_size + hp.vocab_size // 8)


@dataclass(frozen=True)
class Footprint:
    """Predicted bytes per device for one placement."""

    gpu: int  # all GPUs together (0 for CPU only)
    cpu: int

    @property
    def total(self) -> int:
        return self.gpu + self.cpu


def footprint(
    hp: spec.Hparams,
    weights: Weights,
    context: int,
    *,
    on_gpu: bool,
    n_cpu_moe: int = 0,
    gpus: int = 1,
    context_overhead: int = CUDA_CONTEXT,
    n_ubatch: int = N_UBATCH,
) -> Footprint:
    """Bytes on the GPU(s) and in host memory for a placement.

    on_gpu=False: everything on the CPU. on_gpu=True: every layer offloaded,
    with the experts of the first `n_cpu_moe` layers kept on the CPU.
    """
    kv = kv_cache_bytes(hp, context, n_ubatch=n_ubatch)
    if not on_gpu:
        cpu = weights.total + kv + compute_bytes(hp, n_ubatch) + PROCESS_OVERHEAD
        return Footprint(0, cpu)
    cpu_experts = sum(weights.experts_per_layer[:n_cpu_moe])
    gpu = (
        weights.output
        + sum(weights.dense_per_layer)
        + sum(weights.experts_per_layer[n_cpu_moe:])
        + kv
        + compute_bytes(hp, n_ubatch)
        + gpus * context_overhead
    )
    cpu = weights.token_embd + cpu_experts + host_compute_bytes(hp, n_ubatch) + PROCESS_OVERHEAD
    if n_cpu_moe:
        cpu += compute_bytes(hp, n_ubatch) // 4  # the CPU runs those layers' expert matmuls
    return Footprint(gpu, cpu)


def ort_footprint(
    hp: spec.Hparams, weights: Weights, context: int, *, on_gpu: bool, context_overhead: int = CUDA_CONTEXT
) -> Footprint:
    """An estimate for onnxruntime-genai (not checked against its allocator):
    the whole model on one device, int4 weights about as large as MXFP4, and
    a KV cache like llama.cpp's (0.18 keeps only the window on sliding layers)."""
    kv = kv_cache_bytes(hp, context)
    model = weights.total + kv + compute_bytes(hp)
    if not on_gpu:
        return Footprint(0, model + PROCESS_OVERHEAD)
    return Footprint(model + context_overhead, host_compute_bytes(hp) + PROCESS_OVERHEAD)
