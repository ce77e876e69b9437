"""More than one machine: llama.cpp's RPC backend, run and checked by edgeoss.

protocol.py asks a worker what it offers (version, devices, memory, round trip);
gate.py is the worker's front door (the allow list, one main at a time, the
memory it offers); worker.py runs `edgeoss worker`; endpoints.py parses and
checks the addresses of `--workers`. The planning is planning/pool.py, the
engine's side engines/llamacpp/rpc.py.
"""
