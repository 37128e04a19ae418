"""One Crowdlab server process on a shared port (``SO_REUSEPORT``), for the load bench.

Several of these on one port get connections spread by the kernel, as a load balancer
would spread them over machines. ``uvicorn --workers N`` shares one listening socket
instead, and with a keep-alive client the first worker to wake takes every connection.

    python bench/serve_reuseport.py PORT
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        "app.main:create_app", factory=True, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(int(sys.argv[1]))
