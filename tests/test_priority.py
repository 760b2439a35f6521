"""The producer's and the device thread's scheduling: raised for the calling thread only."""
import os
import threading

import pytest

from engine.live.priority import NICE_VALUE, REALTIME_PRIORITY, raise_thread_priority


def granted_in_a_thread() -> dict:
    """Call raise_thread_priority in a fresh thread; what it said and what the thread then has."""
    got: dict = {}

    def run() -> None:
        got["said"] = raise_thread_priority()
        got["policy"] = os.sched_getscheduler(0)
        got["rt_priority"] = os.sched_getparam(0).sched_priority
        got["nice"] = os.getpriority(os.PRIO_PROCESS, 0)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return got


def test_the_calling_thread_alone_gets_what_the_answer_says():
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    got = granted_in_a_thread()
    if got["said"].startswith("real-time"):
        assert got["policy"] == os.SCHED_RR and got["rt_priority"] == REALTIME_PRIORITY
    elif got["said"].startswith("nice"):
        assert got["policy"] == os.SCHED_OTHER and got["nice"] == NICE_VALUE
    else:
        assert got["said"].startswith("normal (") and "rtprio" in got["said"]
        assert got["policy"] == os.SCHED_OTHER
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before  # this thread untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="needs the permission CI has (root); a user needs an rtprio limit")
def test_with_the_permission_ci_has_the_thread_is_real_time():
    assert granted_in_a_thread()["said"] == f"real-time (SCHED_RR {REALTIME_PRIORITY})"
