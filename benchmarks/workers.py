"""Benchmark: what placing layers on workers (llama.cpp RPC, `--workers`) costs per token,
measured on loopback, and what it would cost on a real network.

One synthetic 20b-shape GGUF (4 layers, 4 experts: real widths, random weights). Two
`edgeoss worker` processes on this machine, each offered one layer (--mem), and in front
of each a counting relay (this script's), so the traffic of every decode step is seen:
commands sent, bytes each way. The main loads the model twice in this process: all on
this machine (the baseline), and pooled as `serve --workers` would place it (this
machine's memory capped by EDGEOSS_LOCAL_MEMORY so that two layers must go out). Then
--runs rounds, each decoding --tokens one at a time from a fresh KV cache on one and
then the other (alternating), and reports medians and their ratio.

From the counts and the measured round trip it also models a real network: per token,
each worker costs (its round trips x the link's RTT) + (its bytes / the link's rate);
printed for a wired LAN, Wi-Fi and a VPN across town. On loopback the workers share this
machine's cores with the main process, so the pooled figure mixes the network's cost with
that contention; the "extra ms per token" is the whole difference, an upper bound for the
relay and RPC overhead on this machine.

    python benchmarks/workers.py [--tokens 32] [--runs 3] [--threads 1] [--gguf FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeoss.cluster import protocol
from edgeoss.engines.base import LoadSettings
from edgeoss.engines.llamacpp.engine import open_llama
from edgeoss.planning import pool as pool_module
from edgeoss.runtime import pooled
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert

LOCAL_MEMORY_GIB = "3.1"  # the host part (2.2 GiB of embedding and output) and two layers
WORKER_MEM = "300M"  # one layer each
PROMPT = [200006, 1428, 200008, 13225, 200007, 200006, 173781, 200005]
NETWORKS = {  # round trip, bytes/s: typical figures, for the model below
    "wired LAN (1 Gbit/s, 0.3 ms)": (0.3e-3, 125e6),
    "Wi-Fi (300 Mbit/s, 3 ms)": (3e-3, 37.5e6),
    "VPN across town (50 Mbit/s, 15 ms)": (15e-3, 6.25e6),
}


@dataclass
class Counts:
    commands: int = 0
    replies: int = 0  # each a round trip: llama.cpp's client sends nothing more until the reply is in
    sent: int = 0
    received: int = 0
    by_command: dict[int, int] = field(default_factory=dict)

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.commands, self.replies, self.sent, self.received


class CountingRelay:
    """main -> relay -> worker; counts the main's commands (| cmd u8 | size u64 | data |) and bytes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.counts = target, Counts()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _exactly(self, sock: socket.socket, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            chunk = sock.recv(min(n - len(data), 1 << 20))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while (header := self._exactly(client, 9)) is not None:
                command, size = struct.unpack("<BQ", header)
                self.counts.commands += 1
                self.counts.by_command[command] = self.counts.by_command.get(command, 0) + 1
                self.counts.sent += 9 + size
                server.sendall(header)
                left = size
                while left:
                    chunk = client.recv(min(left, 1 << 20))
                    if not chunk:
                        return
                    server.sendall(chunk)
                    left -= len(chunk)
        except OSError:
            pass
        finally:
            _hang_up(server)

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while (header := self._exactly(server, 8)) is not None:  # | size u64 | data |
                (size,) = struct.unpack("<Q", header)
                body = self._exactly(server, size) if size else b""
                if body is None:
                    return
                self.counts.replies += 1
                self.counts.received += 8 + size
                client.sendall(header + body)
        except OSError:
            pass
        finally:
            _hang_up(client)


def _hang_up(sock: socket.socket) -> None:
    """shutdown() first: close() alone leaves the connection open while another thread reads it."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def start_worker(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "EDGEOSS_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "worker", "--port", str(port), "--mem", WORKER_MEM, "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("a worker did not start")


def fresh(llm: Any, prompt: list[int]) -> None:
    """The prompt evaluated from an empty KV cache: no reuse between runs."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval(prompt)


def decode(llm: Any, tokens: int) -> float:
    """Seconds per token, decoding `tokens` fixed ids one at a time (the decode is timed, not a sampler)."""
    start = time.perf_counter()
    for token in range(1000, 1000 + tokens):
        llm.eval([token])
    return (time.perf_counter() - start) / tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--gguf", type=Path)
    p.add_argument("--prompt-tokens", type=int, default=8, help="KV cells in use before decoding")
    args = p.parse_args()
    prompt = (PROMPT * (args.prompt_tokens // len(PROMPT) + 1))[: args.prompt_tokens]
    work = Path(tempfile.mkdtemp(prefix="edgeoss-workers-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        gguf = args.gguf
        if gguf is None:
            hp = synth.hparams_for("20b", layers=4, experts=4)
            ckpt = synth.write_checkpoint(work / "ckpt", synth.plan(hp))
            gguf = work / "model.gguf"
            convert.convert(ckpt, gguf)
            shutil.rmtree(ckpt)
        relays = []
        for i in range(2):
            proc, port = start_worker(work / f"w{i}")
            procs.append(proc)
            relays.append(CountingRelay(("127.0.0.1", port)))
        endpoints = [f"127.0.0.1:{r.port}" for r in relays]
        rtts = [protocol.probe(e).rtt_s for e in endpoints]

        context = max(1024, args.prompt_tokens + args.tokens + 256)
        local_settings = LoadSettings(context_length=context, threads=args.threads)
        os.environ["EDGEOSS_LOCAL_MEMORY"] = LOCAL_MEMORY_GIB
        plan = pooled.plan_for(gguf, endpoints, context)
        pooled_settings = pooled.settings_for(local_settings, gguf, endpoints, context)
        local, _ = open_llama(gguf, local_settings)
        pool, _ = open_llama(gguf, pooled_settings)
        print(f"{gguf.name}: {plan.summary()}")
        print(
            f"{args.tokens} tokens a run after {len(prompt)} of prompt, median of {args.runs}, {args.threads} thread(s)"
        )

        local_s, pool_s = [], []
        per_token: list[list[tuple[int, ...]]] = [[] for _ in relays]
        for _ in range(args.runs):
            fresh(local, prompt)
            local_s.append(decode(local, args.tokens))
            fresh(pool, prompt)
            before = [r.counts.snapshot() for r in relays]
            mix_before = [dict(r.counts.by_command) for r in relays]
            pool_s.append(decode(pool, args.tokens))
            after = [r.counts.snapshot() for r in relays]
            mixes = [
                {c: (n - mix_before[i].get(c, 0)) / args.tokens for c, n in r.counts.by_command.items()}
                for i, r in enumerate(relays)
            ]
            for i in range(len(relays)):
                pairs = zip(after[i], before[i], strict=True)
                per_token[i].append(tuple(round((a - b) / args.tokens) for a, b in pairs))

        lo, po = statistics.median(local_s), statistics.median(pool_s)
        print(f"local   {1 / lo:7.2f} tok/s  ({lo * 1000:.1f} ms/token)")
        print(f"pooled  {1 / po:7.2f} tok/s  ({po * 1000:.1f} ms/token)  over loopback, two workers")
        print(f"ratio pooled/local: {lo / po:.3f}   extra per token: {(po - lo) * 1000:.2f} ms")
        total_trips = 0
        total_bytes = 0
        for i in range(len(endpoints)):
            commands, replies, sent, received = per_token[i][-1]
            total_trips += replies
            total_bytes += sent + received
            print(
                f"worker {i + 1}: {commands} commands a token, {replies} of them answered (round trips), "
                f"{sent} bytes out and {received} back a token; loopback round trip {rtts[i] * 1000:.3f} ms"
            )
            names = {6: "SET_TENSOR", 8: "GET_TENSOR", 10: "GRAPH_COMPUTE", 16: "GRAPH_RECOMPUTE"}
            mix = ", ".join(f"{names.get(c, c)} x{n:.1f}" for c, n in sorted(mixes[i].items()) if n)
            print(f"  per decoded token: {mix}")
        model_bytes = pool_module.STEP_BYTES + pool_module.MASK_BYTES_PER_CELL * (len(prompt) + args.tokens)
        print(
            f"planner's model (planning/pool.py): {pool_module.ROUND_TRIPS_PER_DEVICE} round trip and at most "
            f"{model_bytes} bytes a token a worker; measured {total_trips / len(endpoints):.1f} and "
            f"{total_bytes / len(endpoints):.0f}"
        )
        print("the same two hops on a real network (network time only, per token):")
        for name, (rtt, rate) in NETWORKS.items():
            cost = total_trips * rtt + total_bytes / rate
            print(
                f"  {name:38s} +{cost * 1000:6.2f} ms/token -> {1 / (lo + cost):6.2f} tok/s here "
                f"(local {1 / lo:.2f}); per hop {cost / len(endpoints) * 1000:.2f} ms"
            )
        local.close()
        pool.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
