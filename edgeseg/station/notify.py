"""systemd's notify protocol, for a unit with ``Type=notify`` and ``WatchdogSec``: READY=1 once
the station runs, WATCHDOG=1 pings while every camera is healthy, STOPPING=1 on the way out. A
few lines over the datagram socket systemd names in ``NOTIFY_SOCKET``; nothing where it is unset."""

from __future__ import annotations

import os
import socket


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    return "\0" + address[1:] if address.startswith("@") else address  # '@': the abstract namespace


def notify(state: str) -> bool:
    """Send one state line (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``); False where there is no
    systemd to tell, or it cannot be reached."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """How often to ping (half of ``WatchdogSec``), where systemd asked for pings of this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
