"""Keep libjack's own chatter off stderr in this process (the CLI promises one line per event).

A JACK client (here: rtmidi's, for MIDI) whose server dies prints ``Cannot read socket fd = 15 err =
Success``, ``CheckRes error``, ``JackSocketClientChannel read fail`` and, when it is closed, three
``Server is not running`` lines, through libjack's error and info functions. The engine reports a
lost audio server itself (:mod:`engine.live.device_sink`), so :func:`silence_jack` points both functions
of every libjack mapped into this process (python-rtmidi wheels bundle their own copy) at C's
``strlen``: a function with the same calling convention (one ``const char *``) that reads the message
and does nothing, so no Python runs on JACK's threads, not even while the interpreter exits.
Linux only (the libraries are found in ``/proc/self/maps``); elsewhere, or with ``TEXTURE_DEBUG``
set, nothing changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os


def _mapped_libjack() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if "libjack" in line and "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith("libjack"))


def silence_jack() -> int:
    """Silence every libjack loaded so far; returns how many were silenced. Never raises."""
    if os.environ.get("TEXTURE_DEBUG"):
        return 0
    done = 0
    try:
        strlen = ctypes.cast(ctypes.CDLL(ctypes.util.find_library("c")).strlen, ctypes.c_void_p)
    except (OSError, AttributeError, TypeError):
        return 0
    for path in _mapped_libjack():
        try:
            lib = ctypes.CDLL(path)
            for setter in (lib.jack_set_error_function, lib.jack_set_info_function):
                setter.argtypes = [ctypes.c_void_p]
                setter(strlen)
            done += 1
        except (OSError, AttributeError):
            continue
    return done
