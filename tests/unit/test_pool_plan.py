"""The pool planner on recorded machines: a 120b across a desktop with a 24 GB GPU and a
64 GB laptop, and the two refusals (a link too slow, a sum too small), with their numbers."""

from __future__ import annotations

import pytest

from edgeoss import spec
from edgeoss.cluster.protocol import Device, WorkerProfile
from edgeoss.planning import pool
from edgeoss.planning.memory import GIB, Weights

CONTEXTS = (131072, 65536, 32768, 16384, 8192, 4096)
HP_120B = spec.VARIANTS["gpt-oss-120b"]
HP_20B = spec.VARIANTS["gpt-oss-20b"]
# A desktop: an RTX 4090 with 23.5 GiB free, 28 GiB of RAM available.
DESKTOP_GPU = [("CUDA0", "NVIDIA GeForce RTX 4090", int(23.5 * GIB))]
DESKTOP_RAM = pool.ram_budget(28 * GIB)


def laptop(rtt_s: float = 0.0006, free: int = 56 * GIB, endpoint: str = "192.168.1.20:50052") -> WorkerProfile:
    """A 64 GB laptop running edgeoss worker on its CPU, on the same wired network."""
    return WorkerProfile(endpoint, (7, 0, 0), [Device(0, free, 64 * GIB)], rtt_s=rtt_s)


def test_120b_fits_across_a_24gb_desktop_and_a_64gb_laptop() -> None:
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [laptop()], CONTEXTS)
    assert plan.fits, plan.reasons
    assert plan.context_length == 131072
    by_kind = {s.place.kind: s for s in plan.shares}
    # Every layer placed once, in llama.cpp's order: the RAM's first, then the worker, then the GPU.
    assert sum(s.layers for s in plan.shares) == HP_120B.num_layers
    cpu_layers, worker_layers = by_kind["cpu"].layers, by_kind["worker"].layers
    assert [s.first_layer for s in plan.shares] == [0, cpu_layers, cpu_layers + worker_layers]
    assert by_kind["gpu"].layers > 0 and by_kind["worker"].layers > 0 and by_kind["cpu"].layers > 0
    # Local memory is preferred: the worker takes only what this machine cannot hold.
    assert by_kind["worker"].layers <= HP_120B.num_layers - by_kind["cpu"].layers - by_kind["gpu"].layers
    for share in plan.shares:
        assert share.bytes <= share.place.budget, share
    # The output matrix stays here, on the GPU, the last device (llama.cpp gives it the output "layer").
    assert by_kind["gpu"].output and not by_kind["worker"].output and not by_kind["cpu"].output
    assert plan.devices == [("192.168.1.20:50052#0", worker_layers), ("CUDA0", by_kind["gpu"].layers + 1)]
    assert plan.n_gpu_layers == by_kind["gpu"].layers + worker_layers + 1
    assert plan.uses_workers
    # One round trip of 0.6 ms a token, and the step's bytes over a link taken as 1 Gbit/s.
    link = pool.ASSUMED_LINK_BYTES_PER_S
    assert plan.network_s_per_token == pytest.approx(0.0006 + pool.STEP_BYTES / link)
    assert plan.over_link_bytes["192.168.1.20:50052"] == by_kind["worker"].bytes
    text = "\n".join(plan.reasons)
    assert "go to the workers" in text and "0.8 ms to each token at the start of a chat" in text
    full = 0.0006 + (pool.STEP_BYTES + pool.MASK_BYTES_PER_CELL * 131072) / link
    assert f"{full * 1000:.1f} ms with all 131072 tokens in use" in text
    assert "links taken as 1 Gbit/s, not measured" in text
    assert "1 Gbit/s link (not measured yet)" in text
    assert plan.summary().startswith("gpt-oss-120b layers: ")


def test_without_a_gpu_the_output_stays_in_this_machines_ram() -> None:
    """The CPU is named as the last device for the output alone: the logits never cross the network."""
    other = laptop(free=30 * GIB, endpoint="10.0.0.3:50052")
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, [], [laptop(), other], CONTEXTS)
    assert plan.fits, plan.reasons
    cpu = plan.shares[0]
    assert cpu.place.kind == "cpu" and cpu.output and cpu.first_layer == 0
    assert plan.devices[-1] == (pool.CPU_DEVICE, 1)
    assert all(device.endswith("#0") for device, _ in plan.devices[:-1])
    assert plan.n_gpu_layers == HP_120B.num_layers - cpu.layers + 1
    # The network is counted only for the workers that hold layers.
    used = [s.place.endpoint for s in plan.shares if s.place.kind == "worker" and s.layers]
    one = 0.0006 + pool.STEP_BYTES / pool.ASSUMED_LINK_BYTES_PER_S
    assert plan.network_s_per_token == pytest.approx(one * len(used))
    assert ("10.0.0.3" in plan.reasons[-1]) == ("10.0.0.3:50052" in used)


def test_the_desktop_alone_cannot_hold_120b() -> None:
    """The comparison that makes the pool worth it: the same desktop with no worker."""
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [], CONTEXTS)
    assert not plan.fits
    assert "needs about" in plan.reasons[0] and "add " in plan.reasons[1]


def test_a_link_too_slow_is_refused_with_the_numbers() -> None:
    slow = laptop(rtt_s=0.6)  # 600 ms: a worker at the other end of a satellite link
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [slow], CONTEXTS)
    assert not plan.fits
    assert plan.reasons[0].startswith("refused: the links are too slow: even at 4096 tokens")
    rate = 1 / (0.6 + (pool.STEP_BYTES + pool.MASK_BYTES_PER_CELL * 4096) / pool.ASSUMED_LINK_BYTES_PER_S)
    assert f"at {rate:.2f} tokens/s, under 2" in plan.reasons[0]
    assert "192.168.1.20:50052 600.0 ms" in plan.reasons[0]
    assert "wired network" in plan.reasons[1]


def test_a_slow_link_shortens_the_context_and_says_so() -> None:
    """1 MB/s: the masks of a full 131072-token context (512 KiB a step) would hold decoding
    under 2 tokens/s; at 65536 tokens they do not."""
    measured = laptop(rtt_s=0.005)
    measured.link_bytes_per_s = 1e6
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [measured], CONTEXTS)
    assert plan.fits and plan.context_length == 65536
    full = 0.005 + (pool.STEP_BYTES + pool.MASK_BYTES_PER_CELL * 131072) / 1e6
    assert plan.reasons[-1] == (
        f"the context is 65536 tokens, not 131072: with 131072 in use the links alone would hold decoding at "
        f"{1 / full:.2f} tokens/s"
    )
    assert plan.network_s_per_token == pytest.approx(0.005 + pool.STEP_BYTES / 1e6)
    assert "at the measured 1 MB/s" in "\n".join(plan.reasons)


def test_a_sum_too_small_is_refused_with_the_shortfall() -> None:
    small = laptop(free=8 * GIB)
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [small], CONTEXTS)
    assert not plan.fits
    need_text, add_text = plan.reasons
    assert "needs about" in need_text and "192.168.1.20:50052 7.5 GiB" in need_text
    # The shortfall is the difference of the two figures the first reason gives.
    need = float(need_text.split("needs about ")[1].split(" GiB")[0])
    have = float(need_text.split("offer ")[1].split(" GiB")[0])
    add = float(add_text.split("add ")[1].split(" GiB")[0])
    assert add == pytest.approx(need - have, abs=0.11)
    assert add > 0


def test_the_workers_are_not_used_when_this_machine_holds_the_model() -> None:
    plan = pool.plan_pool(HP_20B, Weights.estimate(HP_20B), pool.ram_budget(60 * GIB), [], [laptop()], CONTEXTS)
    assert plan.fits and not plan.uses_workers
    assert plan.devices == [] and plan.n_gpu_layers == 0  # the normal plan applies, not a pool
    assert plan.network_s_per_token == 0
    assert "the workers are not needed" in plan.reasons[0]


def test_a_shorter_context_is_taken_before_refusing() -> None:
    """Just too small for 131072 tokens of KV cache: the plan settles on a shorter context."""
    weights = Weights.estimate(HP_120B)
    full = pool.plan_pool(HP_120B, weights, DESKTOP_RAM, DESKTOP_GPU, [laptop()], CONTEXTS)
    worker_need = next(s for s in full.shares if s.place.kind == "worker").bytes
    tight = laptop(free=worker_need + pool.DEVICE_MARGIN - 64 * 1024 * 1024)
    plan = pool.plan_pool(HP_120B, weights, DESKTOP_RAM, DESKTOP_GPU, [tight], CONTEXTS)
    assert plan.fits and plan.context_length < 131072


def test_workers_are_tried_largest_offer_first() -> None:
    big = laptop(free=56 * GIB, endpoint="10.0.0.2:50052")
    small = laptop(free=16 * GIB, endpoint="10.0.0.3:50052")
    names = [p.name for p in pool.places(DESKTOP_RAM, DESKTOP_GPU, [small, big])]
    assert names[-2:] == ["10.0.0.2:50052", "10.0.0.3:50052"]
    plan = pool.plan_pool(HP_120B, Weights.estimate(HP_120B), DESKTOP_RAM, DESKTOP_GPU, [small, big], CONTEXTS)
    assert plan.fits
    assert list(plan.over_link_bytes) == ["10.0.0.2:50052"]  # one hop is enough
