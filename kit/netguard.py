"""Netguard: refuse network connections to anything but this machine.

The kit promises to run offline. The tests switch this guard on (in pytest and inside every
notebook kernel they run) so any code that tries to reach the internet, a model hub or a
telemetry server fails the test run, even when the library that tried swallowed the error.

    from kit import netguard
    netguard.install()       # from now on, non-loopback connections raise NetworkBlocked
    netguard.attempts        # every blocked attempt, for a test to assert on
"""

from __future__ import annotations

import ipaddress
import socket

attempts: list[str] = []
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class NetworkBlocked(ConnectionError):
    """A connection to a non-loopback address while the guard is on."""


def is_local(host: object) -> bool:
    """True for loopback addresses and names (127.0.0.0/8, ::1, localhost). Unix sockets never
    reach this check: the guard only looks at internet (AF_INET/AF_INET6) sockets."""
    if host is None:
        return True
    text = str(host).strip("[]").lower()
    if text in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(target: object) -> None:
    attempts.append(str(target))
    raise NetworkBlocked(
        f"Blocked a network connection to {target}: the kit runs offline. Use the bundled "
        "models and data, or switch the guard off with kit.netguard.uninstall()."
    )


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):  # type: ignore[index]
        _refuse(address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):  # type: ignore[index]
        _refuse(address)
    return _original_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if not is_local(host if not isinstance(host, bytes) else host.decode()):
        _refuse(host)
    return _original_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    """Switch the guard on for this process."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


def uninstall() -> None:
    """Switch the guard off again."""
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _original_getaddrinfo
