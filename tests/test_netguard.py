"""The network guard refuses non-loopback connections and lets loopback through."""

from __future__ import annotations

import socket
import threading

import pytest

from kit import netguard


def test_outside_connection_is_blocked_and_recorded():
    before = len(netguard.attempts)
    with pytest.raises(netguard.NetworkBlocked, match="runs offline"):
        socket.create_connection(("huggingface.co", 443), timeout=2)
    with pytest.raises(netguard.NetworkBlocked):
        socket.socket().connect(("93.184.216.34", 80))
    assert len(netguard.attempts) == before + 2
    del netguard.attempts[before:]  # expected attempts: do not fail this test via the fixture


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    with socket.create_connection(("localhost", port), timeout=5):
        pass
    server.close()


@pytest.mark.parametrize(
    "host,local", [("127.0.0.1", True), ("::1", True), ("localhost", True), ("10.0.0.1", False)]
)
def test_is_local(host, local):
    assert netguard.is_local(host) is local
