"""JACK dummy servers for the tests and the benchmark scripts: the one place that starts ``jackd``.

:class:`JackServer` starts a named dummy server and waits until it answers; the session's shared
server (``conftest.jack_server``), a test's private one (``conftest.private_jack``) and the servers
``docs/bench_midi.py``, ``docs/bench_stream.py`` and ``docs/bench_window.py`` start are all one.

A test may kill its private server and restart it under a playing engine; never the shared server
of the session: killing that one would pull the ground from under every other test. This process never loads PortAudio on it either (PortAudio
aborts the process that owns a client of a server that died, see engine.live.device_process): what is
played is recorded with ``jack_rec`` in its own process.

JACK keeps the servers of a machine in a shared registry of 8 entries, and a server killed with
SIGKILL never leaves it: only a new server of the same name reclaims the entry (seen here: after
six killed test servers of different names no JACK server could start on the machine, "Too many
servers already active"). So :meth:`JackServer.close` brings a killed server back and stops it with
SIGTERM, which unregisters it, and the fixture's name is fixed per checkout, so even a test run that
is itself killed leaves at most one entry, which the next run reclaims.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile as sf


#: What to do when ``jackd`` is missing.
INSTALL_HINT = "jackd is not installed: apt-get install -y --no-install-recommends jackd2"


def jack_running(name: str) -> bool:
    """Whether a JACK server named ``name`` answers clients."""
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    return subprocess.run(["jack_wait", "-c"], env=env, capture_output=True, text=True).stdout.strip().startswith("running")


class JackServer:
    """``jackd -n NAME --no-realtime -d dummy -r 48000 -p 256`` that can be killed and started again."""

    def __init__(self, name: str, rate: int = 48000, period: int = 256) -> None:
        self.name, self.rate, self.period = name, rate, period
        self._proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment that points JACK clients (PortAudio, rtmidi, jack tools) at this server."""
        return dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")

    def running(self) -> bool:
        return jack_running(self.name)

    def point_clients_here(self) -> None:
        """Point this process's JACK clients (PortAudio, rtmidi) and its children at this server."""
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_START_SERVER"] = "1"

    def start(self, timeout: float = 15.0) -> None:
        """Start it and wait until clients can connect.

        Raises
        ------
        RuntimeError
            ``jackd`` is not installed (:data:`INSTALL_HINT`).
        AssertionError
            It did not answer within ``timeout`` seconds (it is killed then).
        """
        if shutil.which("jackd") is None:
            raise RuntimeError(INSTALL_HINT)
        env = dict(self.env, JACK_NO_AUDIO_RESERVATION="1")
        self._proc = subprocess.Popen(["jackd", "-n", self.name, "--no-realtime", "-d", "dummy", "-r", str(self.rate),
                                       "-p", str(self.period)], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.running():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._proc.kill()
                self._proc = None
                raise AssertionError(f"JACK dummy server {self.name} did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the server vanishes the way a crash does, without telling its clients."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
        self._proc = None

    def close(self) -> None:
        """Stop for good and leave JACK's server registry as it was (see the module doc)."""
        if self._proc is None:
            self.start()  # reclaims the registry entry the killed server left
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    def ports(self) -> list[str]:
        return subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True).stdout.split()

    def record(self, path: Path, seconds: float = 1.0, timeout: float = 15.0) -> np.ndarray:
        """Record ``seconds`` from the first output port of a PortAudio client (waits for it to appear)."""
        deadline = time.monotonic() + timeout
        while True:
            outs = [p for p in self.ports() if p.startswith("PortAudio") and ":out_" in p]
            if outs:
                break
            assert time.monotonic() < deadline, f"no PortAudio output port on {self.name}: {self.ports()}"
            time.sleep(0.1)
        subprocess.run(["jack_rec", "-f", str(path), "-d", f"{seconds:g}", "-b", "32", outs[0]], env=self.env,
                       capture_output=True, timeout=timeout + seconds, check=True)
        return sf.read(path, dtype="float32")[0]

    def record_sounding(self, path: Path, tries: int = 20) -> np.ndarray:
        """Record half-seconds from the player's port until one is not silent (it may still be
        priming); AssertionError if none of ``tries`` is."""
        for _ in range(tries):
            y = self.record(path, 0.5)
            if np.sqrt(np.mean(y ** 2)) > 0.01:
                return y
        raise AssertionError(f"the output on {self.name} stayed silent")
