"""Run the calling thread ahead of the window and of background work, as audio programs do.

The producer (block synthesis and phase) and the device child's PortAudio thread must not wait for
the CPU while the window paints or another program (a compiler, a browser, a test suite) runs on
the same two cores. Audio programs ask the kernel for a real-time scheduling class for such threads
(JACK's ``--realtime`` mode; PipeWire and PulseAudio through RTKit). :func:`raise_thread_priority`
does the same for the calling thread only, in order of preference:

1. ``SCHED_RR`` at :data:`REALTIME_PRIORITY`: runs before every normal thread (the window, other
   programs). The priority is low on purpose: a JACK server's own threads (priority 70 and up by
   default) still come first. Linux caps real-time threads at 95 % of each second of CPU
   (``sched_rt_runtime_us``), so an overloaded producer cannot lock the machine up.
2. A nice value of :data:`NICE_VALUE` for the thread: a larger share of the CPU than normal threads.
3. Nothing: the thread stays at normal priority.

Steps 1 and 2 need the permission a Linux audio set-up grants (root, ``CAP_SYS_NICE``, or an
``rtprio`` / ``nice`` limit in ``/etc/security/limits.d/`` for the ``audio`` group); without it the
call changes nothing, never raises, and its answer says how to grant it. Other systems: nothing.
"""
from __future__ import annotations

import os

#: SCHED_RR priority (1-99) asked for the producer and the device thread: below a JACK server's.
REALTIME_PRIORITY = 10
#: Nice value (-20..19) asked for when a real-time class is refused.
NICE_VALUE = -10


def raise_thread_priority() -> str:
    """Ask for real-time scheduling, else a lower nice value, for the calling thread only.

    Returns
    -------
    str
        What the thread got, in words for logs: ``"real-time (SCHED_RR 10)"``, ``"nice -10"``, or
        ``"normal (...)"`` with the reason and the fix. Never raises.
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_RR"):
        try:  # pid 0: on Linux the calling thread, not the whole process
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))
            return f"real-time (SCHED_RR {REALTIME_PRIORITY})"
        except OSError:
            pass
    if hasattr(os, "setpriority") and os.name == "posix":
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE_VALUE)  # Linux: the calling thread
            return f"nice {NICE_VALUE}"
        except OSError:
            pass
        return ("normal (real-time scheduling not permitted: add an rtprio limit for your user, e.g. "
                "'@audio - rtprio 95' in /etc/security/limits.d/audio.conf, and join the audio group)")
    return "normal (no real-time scheduling on this system)"
