"""A free TCP port on the loopback interface, for a server a test starts."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Outgoing connections take their local port from the kernel's ephemeral range. A port picked there
# can be taken by one of them before the server binds it (a JVM may take a minute to get there on a
# loaded machine: Neo4j then fails with "Address already in use"), so servers get ports below it.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    # Free now and released at once: another process may still bind it first, which the servers
    # report clearly (port in use) rather than hang on.
    try:
        below = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        below = 0
    if below > _LOWEST:
        for _ in range(100):
            port = random.randrange(_LOWEST, below)
            if _bindable(port):
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
