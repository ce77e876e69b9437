"""Soak: a few hundred streaming requests against `edgeoss serve demo` (a real
process) at a concurrency above --parallel and --queue, a third of the
clients hanging up mid-stream, some bodies malformed. Bounded in count and in
time; only 127.0.0.1 is ever contacted.

Clients honour 429's Retry-After, as real ones do. It reports what came back
(answered, 429s seen and retried, cut by the client, 4xx for the
malformed ones, 5xx, dropped connections) and the server's resident memory
and open file descriptors after warm-up and at the end, as ratios, and what
/metrics says is still in flight. Targets: 0 5xx, 0 dropped, RSS growth under
5% after warm-up, descriptors back to baseline, nothing in flight at the end.

    python benchmarks/soak.py [--requests 300] [--concurrency 12] [--parallel 2] [--queue 4] [--tokens 24]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

import httpx
import psutil

HELLO = [{"role": "user", "content": "Tell me a story."}]
RETRIES = 60
MALFORMED = [
    b"{not json",
    b'{"messages": "not a list"}',
    b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def usage(proc: psutil.Process) -> tuple[int, int]:
    """Resident memory and open descriptors of the server and its children."""
    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    return rss, proc.num_fds()


async def one(client: httpx.AsyncClient, url: str, kind: str, tokens: int, outcomes: Counter[str]) -> None:
    try:
        if kind == "malformed":
            r = await client.post(url, content=random.choice(MALFORMED), headers={"content-type": "application/json"})
            outcomes["5xx" if r.status_code >= 500 else "4xx (malformed)" if r.status_code >= 400 else "other"] += 1
            return
        body = {"messages": HELLO, "max_tokens": tokens, "stream": True}
        for _ in range(RETRIES):
            async with client.stream("POST", url, json=body) as r:
                if r.status_code != 429:
                    await _read(r, kind, outcomes)
                    return
                outcomes["429 (then retried)"] += 1
                wait = float(r.headers.get("retry-after", "1"))
            await asyncio.sleep(wait * random.uniform(0.5, 1.5))  # as a client that honours Retry-After
        outcomes["gave up after retries"] += 1
    except httpx.HTTPError as exc:
        outcomes[f"dropped ({type(exc).__name__})"] += 1


async def _read(r: httpx.Response, kind: str, outcomes: Counter[str]) -> None:
    if r.status_code >= 500:
        outcomes["5xx"] += 1
        return
    async for line in r.aiter_lines():
        if kind == "hang-up" and line.startswith("data: "):
            outcomes["cut by the client"] += 1
            return  # leaving the stream's block closes the connection mid-stream
        if line == "data: [DONE]":
            outcomes["answered"] += 1
            return
    outcomes["ended without [DONE]"] += 1


async def wave(url: str, kinds: list[str], concurrency: int, tokens: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def gated(kind: str) -> None:
            async with gate:
                await one(client, url, kind, tokens, outcomes)

        await asyncio.gather(*(gated(k) for k in kinds))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--queue", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=900, help="seconds for the whole soak")
    args = parser.parse_args()
    random.seed(args.seed)
    port = free_port()
    home = tempfile.mkdtemp(prefix="edgeoss-soak-")
    command = [sys.executable, "-m", "edgeoss", "serve", "demo", "--port", str(port)]
    command += ["--parallel", str(args.parallel), "--queue", str(args.queue)]
    server = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "EDGEOSS_HOME": home},
    )
    base = f"http://127.0.0.1:{port}"
    url = base + "/v1/chat/completions"
    started = time.monotonic()
    try:
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).json().get("status") == "ready":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if server.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        proc = psutil.Process(server.pid)
        # Warm-up: every code path once (answered, hung up, malformed), so that what
        # grows later is growth, not first use.
        asyncio.run(wave(url, ["full"] * 8 + ["hang-up"] * 4 + ["malformed"] * 5, args.concurrency, args.tokens))
        rss0, fds0 = usage(proc)
        kinds = ["hang-up" if i % 3 == 0 else "malformed" if i % 10 == 1 else "full" for i in range(args.requests)]
        random.shuffle(kinds)
        soak_started = time.monotonic()
        outcomes = asyncio.run(asyncio.wait_for(wave(url, kinds, args.concurrency, args.tokens), args.time_limit))
        soak_s = time.monotonic() - soak_started
        time.sleep(2)  # cancelled generations end within a token; give the sockets a moment to close
        rss1, fds1 = usage(proc)
        metrics = httpx.get(base + "/metrics", timeout=5).text
        in_flight = next(
            (line.split()[-1] for line in metrics.splitlines() if line.startswith("edgeoss_requests_in_flight")), "?"
        )
        alive = httpx.get(base + "/health", timeout=5).json()["status"]
    finally:
        server.terminate()
        server.wait(30)

    print(
        f"soak: {args.requests} requests in {soak_s:.1f} s, concurrency {args.concurrency}, "
        f"--parallel {args.parallel} --queue {args.queue}, {args.tokens} tokens each (demo model)"
    )
    for key in sorted(outcomes):
        print(f"  {key:28} {outcomes[key]}")
    print(f"  {'5xx':28} {outcomes.get('5xx', 0)}")
    print(
        f"server RSS after warm-up {rss0 / 2**20:.1f} MiB, at the end {rss1 / 2**20:.1f} MiB: ratio {rss1 / rss0:.3f}"
    )
    print(f"open descriptors after warm-up {fds0}, at the end {fds1}: ratio {fds1 / fds0:.3f}")
    print(f"in flight at the end (/metrics): {in_flight}; health: {alive}")
    failed = outcomes.get("5xx", 0) or any(k.startswith("dropped") for k in outcomes) or rss1 > rss0 * 1.05
    failed = failed or fds1 > fds0 or in_flight not in ("0.0", "0")
    print("targets met" if not failed else "TARGETS MISSED")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
