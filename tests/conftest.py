"""Shared fixtures: offscreen Qt, a private graph cache, and a real JACK dummy server.

The JACK server is the one ``.ci/run`` started (named in ``TEXTURE_TEST_JACK``), or else one started once per test session (``jackd --no-realtime -d dummy``, paced in real
time like a sound card) under a private server name, so tests never touch a user's JACK. PortAudio
and rtmidi reach it through ``JACK_DEFAULT_SERVER``. If ``jackd`` is missing the tests that need it
fail with the install hint (they are never skipped silently).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.jack_server import JackServer, jack_running  # noqa: E402 - after the path is set

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
JACK_NAME = f"texture-test-{os.getpid()}"
JACK_RATE = 48000
JACK_PERIOD = 256


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Graph cache, user config and performance logs in a temporary folder, for every test."""
    base = tmp_path_factory.mktemp("cache")
    os.environ["TEXTURE_CACHE_DIR"] = str(base / "graphs")
    os.environ["TEXTURE_CONFIG_DIR"] = str(base / "config")
    os.environ["XDG_STATE_HOME"] = str(base / "state")


def _reinit_portaudio() -> None:
    """Make an already-imported PortAudio re-scan its host APIs, so it sees the new JACK server."""
    if "sounddevice" in sys.modules:
        sd = sys.modules["sounddevice"]
        sd._terminate()
        sd._initialize()


@pytest.fixture(scope="session")
def jack_server() -> str:
    """Name of a running JACK dummy server (48 kHz, period 256); ``JACK_DEFAULT_SERVER`` is set to it."""
    shared = os.environ.get("TEXTURE_TEST_JACK")
    if shared and jack_running(shared):  # .ci/run started one for the whole run
        JackServer(shared).point_clients_here()
        _reinit_portaudio()
        yield shared
        if "sounddevice" in sys.modules:
            sys.modules["sounddevice"]._terminate()
        return
    server = JackServer(JACK_NAME, JACK_RATE, JACK_PERIOD)
    try:
        server.start()
    except (RuntimeError, AssertionError) as exc:
        pytest.fail(str(exc))
    server.point_clients_here()
    _reinit_portaudio()
    yield JACK_NAME
    if "sounddevice" in sys.modules:
        sys.modules["sounddevice"]._terminate()  # PortAudio asserts if JACK vanishes under it
    server.close()


@pytest.fixture
def private_jack():
    """A JACK dummy server of this test's own, which it may kill and restart (tests/jack_server.py)."""
    import hashlib
    server = JackServer(f"texture-private-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MB tmpfs (a real ENOSPC when it fills), mounted for this test; skipped with the reason
    where mounting is not allowed (not root, no CAP_SYS_ADMIN in a container)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
