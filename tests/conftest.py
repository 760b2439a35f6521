"""Shared fixtures: offscreen Qt, a private graph cache, and a real JACK dummy server.

The JACK server is the one ``.ci/run`` started (named in ``TEXTURE_TEST_JACK``), or else one started once per test session (``jackd --no-realtime -d dummy``, paced in real
time like a sound card) under a private server name, so tests never touch a user's JACK. PortAudio
and rtmidi reach it through ``JACK_DEFAULT_SERVER``. If ``jackd`` is missing the tests that need it
fail with the install hint (they are never skipped silently).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


def _jack_running(name: str) -> bool:
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    return subprocess.run(["jack_wait", "-c"], env=env, capture_output=True, text=True).stdout.strip().startswith("running")


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
    if shared and _jack_running(shared):  # .ci/run started one for the whole run
        os.environ["JACK_DEFAULT_SERVER"] = shared
        os.environ["JACK_NO_START_SERVER"] = "1"
        _reinit_portaudio()
        yield shared
        if "sounddevice" in sys.modules:
            sys.modules["sounddevice"]._terminate()
        return
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed: apt-get install -y --no-install-recommends jackd2")
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen(["jackd", "-n", JACK_NAME, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE),
                             "-p", str(JACK_PERIOD)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["JACK_DEFAULT_SERVER"] = JACK_NAME
    os.environ["JACK_NO_START_SERVER"] = "1"
    deadline = time.monotonic() + 15
    while not _jack_running(JACK_NAME):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"JACK dummy server {JACK_NAME} did not start")
        time.sleep(0.2)
    _reinit_portaudio()
    yield JACK_NAME
    if "sounddevice" in sys.modules:
        sys.modules["sounddevice"]._terminate()  # PortAudio asserts if JACK vanishes under it
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def private_jack():
    """A JACK dummy server of this test's own, which it may kill and restart (tests/jack_server.py)."""
    if shutil.which("jackd") is None:
        pytest.fail("jackd is not installed: apt-get install -y --no-install-recommends jackd2")
    import hashlib
    from tests.jack_server import JackServer
    server = JackServer(f"texture-private-{hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]}")
    server.start()
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
