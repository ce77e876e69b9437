"""Reading llama.cpp's allocation log: buffer sizes by kind and device (the memory
model against a real load: tests/integration/test_memory_model.py)."""

from __future__ import annotations

from edgeoss.planning import memory
from edgeoss.planning.measured import parse_log


def test_parse_log_by_device() -> None:
    log = (
        "load_tensors:        CUDA0 model buffer size = 10240.00 MiB\n"
        "load_tensors:   CPU_Mapped model buffer size =   586.82 MiB\n"
        "llama_kv_cache:      CUDA0 KV buffer size =    96.00 MiB\n"
        "sched_reserve:      CUDA0 compute buffer size =   415.00 MiB\n"
        "sched_reserve:  CUDA_Host compute buffer size =    20.00 MiB\n"
    )
    measured = parse_log(log)
    assert measured.gpu == int((10240 + 96 + 415) * memory.MIB)
    assert measured.host == int((586.82 + 20) * memory.MIB)
    assert measured.device("CUDA0") == measured.gpu
