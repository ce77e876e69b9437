"""Prometheus metrics at /metrics: requests, tokens, tokens/s, queue depth and
time to first token, in a registry of the server's own (no process globals,
so tests and several apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edgeoss.runtime.reply import Reply

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "edgeoss_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.prompt_tokens = Counter("edgeoss_prompt_tokens", "Prompt tokens received", registry=r)
        self.cached_tokens = Counter(
            "edgeoss_cached_prompt_tokens", "Prompt tokens reused from the KV cache", registry=r
        )
        self.generated_tokens = Counter("edgeoss_generated_tokens", "Tokens generated", registry=r)
        self.reasoning_tokens = Counter("edgeoss_reasoning_tokens", "Generated tokens that were reasoning", registry=r)
        self.in_flight = Gauge("edgeoss_requests_in_flight", "Generations running or queued", registry=r)
        self.queue_depth = Gauge("edgeoss_queue_depth", "Generations waiting for a decoding slot", registry=r)
        self.rejected = Counter("edgeoss_rejected_busy", "Requests refused with 429 (queue full)", registry=r)
        self.ttft = Histogram(
            "edgeoss_time_to_first_token_seconds",
            "Time from a generation's start to its first token",
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "edgeoss_generation_tokens_per_second",
            "Decoding speed of each generation",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.model_loaded = Gauge("edgeoss_model_loaded", "1 while the model is loaded", registry=r)

    def generation(self, outcome: Reply) -> None:
        t = outcome.timings
        self.prompt_tokens.inc(outcome.prompt_tokens)
        self.cached_tokens.inc(t.cached_tokens)
        self.generated_tokens.inc(t.generated_tokens)
        self.reasoning_tokens.inc(outcome.result.reasoning_tokens)
        if t.generated_tokens:
            self.ttft.observe(t.time_to_first_token_s)
        if t.generated_tokens > 1:
            self.tokens_per_s.observe(t.tokens_per_s)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
