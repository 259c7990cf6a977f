"""A free TCP port on the loopback interface."""

from __future__ import annotations

import socket


def free_port() -> int:
    # The kernel picks a port nobody holds; it is released at once, so a rare race with another
    # process remains, which the servers report clearly (port in use) rather than hang on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
