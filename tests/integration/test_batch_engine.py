"""The batched llama.cpp engine: several sequences decoded together in one context."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import needs_llama
from edgeoss import harmony, spec
from edgeoss.engines.base import LoadSettings, Sampling, Timings
from edgeoss.engines.llamacpp.batch import BatchEngine
from edgeoss.errors import EngineError
from forced import ForcedScript

needs_llama.llama_cpp()

enc = harmony.encoding
PROMPT = harmony.render([harmony.Turn("user", "Hello there")], harmony.RenderOptions(date="2026-11-23"))


@pytest.fixture(scope="module")
def engine(tiny_gguf: Path) -> Iterator[BatchEngine]:
    e = BatchEngine(tiny_gguf, LoadSettings(context_length=4096, use_mmap=False), parallel=3)
    yield e
    e.close()


def test_generates_n_tokens_with_timings(engine: BatchEngine) -> None:
    timings = Timings()
    tokens = list(engine.generate(PROMPT, Sampling(max_tokens=12, seed=1), timings=timings))
    assert len(tokens) == 12 == timings.generated_tokens
    assert timings.stop_reason == "length" and timings.prompt_tokens == len(PROMPT)
    assert 0 < timings.time_to_first_token_s <= timings.generation_s


def test_concurrent_streams_share_decode_steps_and_keep_their_own_tokens(engine: BatchEngine) -> None:
    texts = ["<|channel|>final<|message|>" + word * 20 + "<|return|>" for word in (" red", " green", " blue")]
    scripts = [enc().encode(t, allowed_special="all") for t in texts]
    out: dict[int, list[int]] = {}
    start = threading.Barrier(3)

    def run(i: int) -> None:
        start.wait()
        out[i] = list(
            engine.generate(
                PROMPT, Sampling(max_tokens=100), stop=spec.STOP_TOKENS, logits_processor=ForcedScript(scripts[i])
            )
        )

    steps = engine.steps
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [out[i] for i in range(3)] == scripts  # each slot got its own script, in order
    # Decoded together: far fewer steps than the tokens generated.
    assert engine.steps - steps < sum(len(s) for s in scripts) * 2 // 3
    assert engine.batched_tokens > 0


def test_slots_sampled_side_by_side_draw_what_they_draw_in_turn(tiny_gguf: Path) -> None:
    """The slots of a step are sampled on several threads: seeded streams must
    get exactly the tokens they get when the same steps are sampled one slot
    after another. Two fresh engines, all requests admitted in one step, so
    both decode the very same batches."""
    prompts = [
        harmony.render([harmony.Turn("user", f"Story {i}")], harmony.RenderOptions(date="2026-11-23")) for i in range(3)
    ]

    def run(sample_threads: int) -> list[list[int]]:
        engine = BatchEngine(tiny_gguf, LoadSettings(context_length=4096, threads=1), 3, sample_threads)
        out: list[list[int]] = [[], [], []]
        finished = threading.Semaphore(0)
        try:
            with engine._cond:  # admitted together: the same batches on both engines
                for i, prompt in enumerate(prompts):

                    def emit(item: object, i: int = i) -> None:
                        if isinstance(item, int):
                            out[i].append(item)
                        else:
                            finished.release()

                    engine.submit(prompt, Sampling(max_tokens=32, seed=11 + i), emit)
            for _ in prompts:
                assert finished.acquire(timeout=120)
            assert engine.batched_tokens > 0
        finally:
            engine.close()
        return out

    side_by_side, in_turn = run(3), run(1)
    assert all(len(tokens) == 32 for tokens in in_turn)
    assert side_by_side == in_turn


def test_cancel_ends_within_one_token(engine: BatchEngine) -> None:
    cancel = threading.Event()
    timings = Timings()
    got = []
    for token in engine.generate(PROMPT, Sampling(max_tokens=500), cancel=cancel, timings=timings):
        got.append(token)
        if len(got) == 5:
            cancel.set()
    assert 5 <= len(got) <= 6 and timings.stop_reason == "cancel"


def test_a_consumer_that_stops_early_frees_its_slot(engine: BatchEngine) -> None:
    for _, _ in zip(range(3), engine.generate(PROMPT, Sampling(max_tokens=500)), strict=False):
        pass
    deadline = time.monotonic() + 10
    while engine.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.busy() == 0


def test_a_repeated_prompt_reuses_its_prefix(engine: BatchEngine) -> None:
    list(engine.generate(PROMPT, Sampling(max_tokens=3)))
    timings = Timings()
    list(engine.generate(PROMPT, Sampling(max_tokens=3), timings=timings))
    assert timings.cached_tokens == len(PROMPT) - 1


def test_more_requests_than_slots_wait_their_turn(engine: BatchEngine) -> None:
    results: dict[int, int] = {}

    def run(i: int) -> None:
        results[i] = len(list(engine.generate(PROMPT, Sampling(max_tokens=8, seed=i))))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == dict.fromkeys(range(7), 8)


def test_a_prompt_longer_than_a_sequence_context_is_refused(engine: BatchEngine) -> None:
    with pytest.raises(EngineError, match=r"the prompt has 1400 tokens; the context holds 1365 per sequence"):
        list(engine.generate([200] * 1400, Sampling()))


def test_close_ends_waiting_generations(tiny_gguf: Path) -> None:
    e = BatchEngine(tiny_gguf, LoadSettings(context_length=1024, use_mmap=False), parallel=1)
    tokens = e.generate(PROMPT, Sampling(max_tokens=100_000))
    next(tokens)
    closer = threading.Thread(target=e.close)
    closer.start()
    with pytest.raises(EngineError, match="closed"):
        for _ in tokens:
            pass
    closer.join(timeout=30)
    assert not closer.is_alive()
