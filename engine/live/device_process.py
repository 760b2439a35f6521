"""The sound device lives in a child process: it can die, hang or be restarted without the app.

Why a process (measured here with PortAudio 19.6.0, Debian's build, on a JACK dummy server that was
killed under a playing stream): PortAudio marks the stream inactive, but ``Pa_StopStream`` and
``Pa_AbortStream`` then wait 10 minutes for a JACK thread that is gone, ``Pa_CloseStream`` aborts
first (same wait), and ``Pa_Terminate`` — the only way to make PortAudio see a restarted server —
fails an ``assert`` in ``pa_jack.c`` (``jack_deactivate`` on the dead client) and aborts the whole
process, also at interpreter exit. None of that can be bounded from Python in the process that
owns the PortAudio instance. A child can simply be killed, and a new child is a fresh PortAudio.

The parent (:class:`engine.live.device_sink.SoundDeviceSink`) and the child share one file mapping
(:class:`SharedBlock`): a :class:`SharedState` header (ring counters, flags, counters the callback
keeps, the live gain) and the samples of an :class:`engine.live.ringbuffer.RingBuffer`. The parent only
writes samples and the gain; the child's PortAudio callback (:mod:`engine.live.device_child`) only copies
from the ring, scales by the gain and counts — no allocation of buffers, no lock, no I/O, and it
shares its GIL with nothing but the child's idle threads. Control is a line protocol:

* parent → child (stdin): ``start`` (the header is ready: start the stream), ``stop`` (stop it and
  exit); end of file (the parent died or closed us) exits too.
* child → parent (stdout), one JSON object per line: ``{"event": "opened", name, hostapi, index,
  rate, channels, latency, priority}`` (priority: the audio thread's scheduling,
  :func:`engine.live.priority.raise_thread_priority`), ``{"event": "error", "message": ...}`` (then it exits),
  ``{"event": "lost", "message": ...}`` (the stream stopped under us: then it exits).

The child's watchdog reports ``lost`` when PortAudio marks the stream inactive (a JACK server that
went away does exactly this within a period) or when the callback has not run for
``STALL_SECONDS``. It always leaves with ``os._exit``, so a dead JACK client never meets
``Pa_Terminate``. In ``wait`` mode the child looks for the device every ``RETRY_SECONDS`` (a fresh
PortAudio scan each time) until it appears, so a parent waiting for a restarted server spawns one
process, not one a second.

This module is the parent's side and the shared layout; the child runs :mod:`engine.live.device_child`
(``python -m engine.live.device_child list`` prints the JSON device list the app sees). POSIX only (the
mapping's file descriptor is handed to the child with ``pass_fds``).
"""
from __future__ import annotations

import collections
import ctypes
import json
import mmap
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine.errors import TextureError

#: The child reports ``lost`` after this long without a callback, in seconds.
STALL_SECONDS = 1.0
#: A waiting child looks for its device this often, in seconds.
RETRY_SECONDS = 0.5
#: Longest wait for a child to open a device (PortAudio scans every host API), in seconds.
OPEN_TIMEOUT_SECONDS = 15.0
#: Longest wait for a child to stop its stream and exit before it is killed, in seconds.
STOP_TIMEOUT_SECONDS = 1.0
_ROOT = Path(__file__).resolve().parents[2]


#: Channels of the shared ring: two whatever the engine makes (a mono engine's samples are put on both)
#: or the device plays (a one-channel device gets their mean).
RING_CHANNELS = 2


class SharedState(ctypes.Structure):
    """Header of the shared mapping. Who writes each field: P = parent, C = child's callback."""

    _fields_ = [
        ("write_count", ctypes.c_int64),       # P: frames written (ring; a frame is RING_CHANNELS samples)
        ("read_count", ctypes.c_int64),        # C: frames read (ring)
        ("capacity", ctypes.c_int64),          # P: ring capacity in frames, before ``start``
        ("prime_samples", ctypes.c_int64),     # P: play only once this much is queued
        ("draining", ctypes.c_int64),          # P: 1 while the ring drains at stop (no underruns counted)
        ("primed", ctypes.c_int64),            # C: 1 once playback started
        ("underruns", ctypes.c_int64),         # C: callbacks the ring could not fill, once primed
        ("underrun_samples", ctypes.c_int64),  # C: zeros those callbacks played in place of audio
        ("xruns", ctypes.c_int64),             # C: PortAudio output_underflow flags
        ("callbacks", ctypes.c_int64),         # C: callbacks so far (the watchdog's heartbeat)
        ("first_audio_time", ctypes.c_double),  # C: time.monotonic() of the first real sample (0: none)
        ("gain", ctypes.c_double),             # P: live gain 0..1 applied in the callback
    ]


class SharedBlock:
    """A file mapped in both processes: :class:`SharedState` + float32 storage for ``max_samples``.

    The parent makes it (``fd=None``: an unlinked temporary file) and hands :attr:`fd` to children,
    which map the same file with ``SharedBlock(max_samples, fd=...)``.
    """

    HEADER_BYTES = 128

    def __init__(self, max_samples: int, *, fd: int | None = None) -> None:
        self.max_samples = int(max_samples)
        self.size = self.HEADER_BYTES + 4 * self.max_samples
        self._file = None
        if fd is None:
            self._file = tempfile.TemporaryFile(prefix="texture-audio-")
            fd = self._file.fileno()
            os.ftruncate(fd, self.size)
        self.fd = fd
        self.map = mmap.mmap(fd, self.size)
        self.state = SharedState.from_buffer(self.map)
        self.samples = np.frombuffer(self.map, dtype=np.float32, count=self.max_samples, offset=self.HEADER_BYTES)


# ====================================================================== parent side
class DeviceProcess:
    """One child process that opens one output device and plays one stream from a :class:`SharedBlock`.

    Parameters
    ----------
    block : SharedBlock
    device : int, str or None
        PortAudio index, (part of a) name, or None for the default output.
    hostapi : str or None
        With a name: the host API it must belong to (an exact reopen of a lost device).
    latency : str or float
        PortAudio's suggested latency.
    wait : bool
        Wait (in the child) until the device appears, instead of failing at once.
    """

    def __init__(self, block: SharedBlock, device: str | int | None, *, hostapi: str | None = None,
                 latency: str | float = "low", wait: bool = False) -> None:
        request = {"mode": "play", "fd": block.fd, "max_samples": block.max_samples, "device": device,
                   "hostapi": hostapi, "latency": latency, "wait": wait, "parent": os.getpid()}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._stderr: collections.deque = collections.deque(maxlen=8)
        self.info: dict | None = None
        self.lost_reason: str | None = None
        self.started = False
        self._proc = _spawn(request, pass_fds=(block.fd,))
        threading.Thread(target=self._read_events, name="texture-device-events", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="texture-device-stderr", daemon=True).start()

    def _read_events(self) -> None:
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "lost":
                self.lost_reason = str(event.get("message"))
            self._events.put(event)
        self._events.put({"event": "exit"})

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            if line.strip():
                self._stderr.append(line.strip())

    def _exit_message(self) -> str:
        try:  # its output has ended: it is exiting, give it a moment to be reaped
            code = self._proc.wait(0.5)
        except subprocess.TimeoutExpired:
            code = None
        tail = f": {self._stderr[-1]}" if self._stderr else ""
        return f"the audio device process exited (status {code}){tail}"

    def poll_opened(self) -> dict | None:
        """The ``opened`` info once the child has opened the device, else None (never blocks).

        Raises
        ------
        TextureError
            The child reported an error or exited first.
        """
        if self.info is not None:
            return self.info
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return None
            kind = event.get("event")
            if kind == "opened":
                self.info = event
                return event
            if kind == "error":
                raise TextureError(str(event.get("message")))
            if kind == "exit":
                raise TextureError(self._exit_message())

    def wait_opened(self, timeout: float = OPEN_TIMEOUT_SECONDS) -> dict:
        """Block (at most ``timeout`` seconds) until the device is open; its info.

        Raises
        ------
        TextureError
            It could not be opened (the child's one-line reason), or the child did not answer in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            info = self.poll_opened()
            if info is not None:
                return info
            if time.monotonic() > deadline:
                self.kill()
                raise TextureError(f"the audio device did not open within {timeout:g} s")
            time.sleep(0.005)

    def start(self) -> None:
        """Tell the child to start its stream (the shared header must be ready)."""
        self._send("start")
        self.started = True

    def _send(self, line: str) -> None:
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):  # it already died: the watch finds that out
            pass

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def lost(self) -> str | None:
        """Why the stream is gone (the child said so, or exited), or None while it plays."""
        if self.lost_reason is not None:
            return self.lost_reason
        if self._proc.poll() is not None:
            return self._exit_message()
        return None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Ask the child to stop its stream and exit; kill it if it has not after ``timeout`` seconds."""
        self._send("stop")
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """End the child at once (SIGKILL: no PortAudio teardown, which may hang or abort)."""
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        for f in (self._proc.stdin,):
            try:
                f.close()
            except OSError:
                pass


def no_output_message() -> str:
    """The one line for a machine where PortAudio finds no output device at all: what was looked
    for (JACK's server by the name this process would reach, ALSA cards and the PulseAudio /
    PipeWire plug-ins ALSA offers) and what to start."""
    server = os.environ.get("JACK_DEFAULT_SERVER", "default")
    return (f"no audio output: PortAudio found no output device (looked for the JACK server {server!r}, "
            "ALSA sound cards and PulseAudio/PipeWire); start a sound server, e.g. `jackd -d dummy` "
            "or PipeWire, or use `render` to write files")


def _spawn(request: dict, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # cwd: ``-m`` puts the working directory first on sys.path, and an ``engine`` folder where the
    # user happens to stand must not be the one the child imports.
    return subprocess.Popen([sys.executable, "-m", "engine.live.device_child", json.dumps(request)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1, pass_fds=pass_fds, env=env, close_fds=True, cwd=str(_ROOT))


def list_outputs(timeout: float = OPEN_TIMEOUT_SECONDS) -> list[dict]:
    """Output devices as a fresh PortAudio sees them (in a child): ``[{index, name, hostapi, channels,
    rate, default}]``.

    Raises
    ------
    TextureError
        PortAudio cannot be loaded, or the child did not answer within ``timeout`` seconds.
    """
    proc = _spawn({"mode": "list"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TextureError(f"listing the audio devices took more than {timeout:g} s") from None
    for line in out.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "devices":
            return list(event["devices"])
        if event.get("event") == "error":
            raise TextureError(str(event["message"]))
    tail = err.strip().splitlines()[-1:] or [f"status {proc.returncode}"]
    raise TextureError(f"listing the audio devices failed: {tail[0]}")
