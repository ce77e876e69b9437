"""Hardware discovery: what this machine has and which backends can use it.

Each source lives in its own module (cpu, nvidia, apple, windows, linux_gpu,
backends) and is split in two: a collector that runs a command or library
call under a short timeout, and a parser that turns its raw output into
typed values. Tests feed recorded outputs of real machines to the parsers.
"""
