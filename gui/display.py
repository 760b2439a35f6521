"""Is there a display the window can open on? Asked before Qt is imported.

Without one, Qt's xcb platform plugin aborts the process (exit 134, several lines, one of them
blaming a missing ``libxcb-cursor0``) and nothing can catch that, so ``main.py`` asks
:func:`display_problem` first and prints its answer as one line.

Rules (Linux and the BSDs; other systems have their own window servers and are never refused):

* ``QT_QPA_PLATFORM`` naming a platform that needs no window server (``offscreen``, ``minimal``,
  ``vnc``, ``eglfs``, ``linuxfb``, ...) is trusted as it is.
* Wayland: ``WAYLAND_DISPLAY`` must name a socket that accepts a connection (relative names live in
  ``XDG_RUNTIME_DIR``).
* X11: ``DISPLAY`` must reach an X server: ``:N`` / ``unix:N`` through the abstract or the
  ``/tmp/.X11-unix/XN`` socket, ``host:N`` through TCP port 6000 + N (1 s timeout).

Only the connection is tried (no X protocol), so a reachable server that refuses us (xauth) still
gets Qt's own error.
"""
from __future__ import annotations

import os
import re
import socket
import sys
from typing import Mapping

#: Qt platform plugins that talk to a window server; any other QT_QPA_PLATFORM is trusted.
WINDOWED_PLATFORMS = ("xcb", "wayland")
HEADLESS_HINT = ("run headless with `python main.py play --no-gui`, or under a virtual display: "
                 "`xvfb-run python main.py` (.ci/setup installs Xvfb)")


def _connects(address: str | tuple[str, int], family: int, timeout: float = 1.0) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


def _x11_reachable(display: str) -> bool:
    m = re.fullmatch(r"(?P<host>[^:]*):(?P<num>\d+)(\.\d+)?", display)
    if m is None:
        return False
    host, num = m.group("host"), int(m.group("num"))
    if host in ("", "unix") or host.startswith("/"):
        path = host if host.startswith("/") else f"/tmp/.X11-unix/X{num}"
        return _connects("\0" + path, socket.AF_UNIX) or _connects(path, socket.AF_UNIX)
    return _connects((host, 6000 + num), socket.AF_INET)


def _wayland_reachable(name: str, env: Mapping[str, str]) -> bool:
    path = name if name.startswith("/") else os.path.join(env.get("XDG_RUNTIME_DIR", ""), name)
    return _connects(path, socket.AF_UNIX)


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why the window cannot open here (one line, with the headless alternatives), or None if it can."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if qpa and qpa not in WINDOWED_PLATFORMS:
        return None
    wayland, x11 = env.get("WAYLAND_DISPLAY", ""), env.get("DISPLAY", "")
    if qpa != "xcb" and wayland and _wayland_reachable(wayland, env):
        return None
    if qpa != "wayland" and x11 and _x11_reachable(x11):
        return None
    if not wayland and not x11:
        return f"no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); {HEADLESS_HINT}"
    shown = ", ".join(f"{k}={v}" for k, v in (("DISPLAY", x11), ("WAYLAND_DISPLAY", wayland)) if v)
    return f"cannot reach the display ({shown}: no window server answers); {HEADLESS_HINT}"
