"""Whether a TCP port is free to listen on: the one check `doctor` and `serve` share."""

from __future__ import annotations

import errno
import socket


def port_free(port: int, host: str = "127.0.0.1") -> bool | None:
    """True when host:port can be bound; False when it is taken (or denied);
    None when it cannot be told (an address this machine does not have)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port left in TIME_WAIT by a server that just stopped is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return False if exc.errno in (errno.EADDRINUSE, errno.EACCES) else None
    return True
