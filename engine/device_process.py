"""The sound device lives in a child process: it can die, hang or be restarted without the app.

Why a process (measured here with PortAudio 19.6.0, Debian's build, on a JACK dummy server that was
killed under a playing stream): PortAudio marks the stream inactive, but ``Pa_StopStream`` and
``Pa_AbortStream`` then wait 10 minutes for a JACK thread that is gone, ``Pa_CloseStream`` aborts
first (same wait), and ``Pa_Terminate`` — the only way to make PortAudio see a restarted server —
fails an ``assert`` in ``pa_jack.c`` (``jack_deactivate`` on the dead client) and aborts the whole
process, also at interpreter exit. None of that can be bounded from Python in the process that
owns the PortAudio instance. A child can simply be killed, and a new child is a fresh PortAudio.

The parent (:class:`engine.sinks.SoundDeviceSink`) and the child share one file mapping
(:class:`SharedBlock`): a :class:`SharedState` header (ring counters, flags, counters the callback
keeps, the live gain) and the samples of an :class:`engine.ringbuffer.RingBuffer`. The parent only
writes samples and the gain; the child's PortAudio callback (:func:`_make_callback`) only copies
from the ring, scales by the gain and counts — no allocation of buffers, no lock, no I/O, and it
shares its GIL with nothing but the child's idle threads. Control is a line protocol:

* parent → child (stdin): ``start`` (the header is ready: start the stream), ``stop`` (stop it and
  exit); end of file (the parent died or closed us) exits too.
* child → parent (stdout), one JSON object per line: ``{"event": "opened", name, hostapi, index,
  rate, channels, latency}``, ``{"event": "error", "message": ...}`` (then it exits),
  ``{"event": "lost", "message": ...}`` (the stream stopped under us: then it exits).

The child's watchdog reports ``lost`` when PortAudio marks the stream inactive (a JACK server that
went away does exactly this within a period) or when the callback has not run for
``STALL_SECONDS``. It always leaves with ``os._exit``, so a dead JACK client never meets
``Pa_Terminate``. In ``wait`` mode the child looks for the device every ``RETRY_SECONDS`` (a fresh
PortAudio scan each time) until it appears, so a parent waiting for a restarted server spawns one
process, not one a second.

Run ``python -m engine.device_process list`` to see the JSON device list the app sees. POSIX only
(the mapping's file descriptor is handed to the child with ``pass_fds``).
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
_ROOT = Path(__file__).resolve().parents[1]


class SharedState(ctypes.Structure):
    """Header of the shared mapping. Who writes each field: P = parent, C = child's callback."""

    _fields_ = [
        ("write_count", ctypes.c_int64),       # P: samples written (ring)
        ("read_count", ctypes.c_int64),        # C: samples read (ring)
        ("capacity", ctypes.c_int64),          # P: ring capacity in samples, before ``start``
        ("prime_samples", ctypes.c_int64),     # P: play only once this much is queued
        ("draining", ctypes.c_int64),          # P: 1 while the ring drains at stop (no underruns counted)
        ("primed", ctypes.c_int64),            # C: 1 once playback started
        ("underruns", ctypes.c_int64),         # C: callbacks the ring could not fill, once primed
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


def _spawn(request: dict, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # cwd: ``-m`` puts the working directory first on sys.path, and an ``engine`` folder where the
    # user happens to stand must not be the one the child imports.
    return subprocess.Popen([sys.executable, "-m", "engine.device_process", json.dumps(request)],
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


# ====================================================================== child side
def _say(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _outputs(sd) -> list[dict]:
    apis = sd.query_hostapis()
    default = sd.default.device[1]
    return [{"index": int(d["index"]), "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": int(d["max_output_channels"]), "rate": float(d["default_samplerate"]),
             "default": int(d["index"]) == default}
            for d in sd.query_devices() if d["max_output_channels"] > 0]


def _find(sd, device: str | int | None, hostapi: str | None) -> dict:
    """The output device for a request (exact name + host API when ``hostapi`` is given)."""
    if hostapi is not None:
        for d in _outputs(sd):
            if d["name"] == device and d["hostapi"] == hostapi:
                return d
        raise LookupError(f"audio output device {device!r} ({hostapi}) is not there")
    try:
        if device is None:
            info = sd.query_devices(kind="output")
        else:
            key = int(device) if isinstance(device, str) and device.isdigit() else device
            info = sd.query_devices(key, kind="output")
    except (ValueError, sd.PortAudioError) as exc:
        what = "no default audio output device" if device is None else f"audio output device {device!r} not found"
        raise LookupError(f"{what} ({str(exc).splitlines()[0]}); see `python main.py devices`") from None
    if info["max_output_channels"] < 1:
        raise LookupError(f"audio device {info['name']!r} has no output channels")
    return next(d for d in _outputs(sd) if d["index"] == int(info["index"]))


def _make_callback(block: SharedBlock, ring_holder: list, scratch: np.ndarray, gains: np.ndarray,
                   steps: np.ndarray):
    """The PortAudio callback: ring → ``outdata`` × gain; counts underruns, xruns, callbacks."""
    state = block.state
    last_gain = [None]

    def callback(outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        state.callbacks += 1
        if status.output_underflow:
            state.xruns += 1
        ring = ring_holder[0]
        mono = scratch[:frames]
        if not state.primed and ring.available < state.prime_samples:
            n = 0  # start only with a cushion queued: the first blocks are the slowest (warm-up)
        else:
            n = ring.read_into(mono)
        if n < frames:
            mono[n:] = 0.0
            if state.primed and not state.draining:
                state.underruns += 1
        elif not state.primed:
            state.primed = 1
            state.first_audio_time = time.monotonic()
        g = state.gain
        g0 = g if last_gain[0] is None else last_gain[0]
        last_gain[0] = g
        if g0 == g:
            mono *= g
        else:  # a gain move: ramp across this buffer (preallocated arrays), so it never clicks
            ramp = gains[:frames]
            np.multiply(steps[:frames], (g - g0) / frames, out=ramp)
            ramp += g0
            mono *= ramp
        outdata[:] = mono[:, None]
    return callback


def _watch(stream, block: SharedBlock, started: threading.Event, stopping: threading.Event) -> None:
    """Report ``lost`` and exit when PortAudio stops the stream or the callback stalls.

    Runs from the ``start`` command on, so a ``stream.start()`` that never returns (a server that
    died while the stream was idle) is a stall like any other."""
    state = block.state
    seen, since = state.callbacks, time.monotonic()
    while not stopping.is_set():
        time.sleep(0.02)
        if stopping.is_set():
            return
        now = time.monotonic()
        if state.callbacks != seen:
            seen, since = state.callbacks, now
        reason = None
        if started.is_set() and not stream.active:
            reason = "the audio server stopped the stream (it went away or restarted)"
        elif now - since > STALL_SECONDS:
            reason = f"the device has asked for no audio for {STALL_SECONDS:g} s"
        if reason is not None:
            _say("lost", message=reason)
            os._exit(3)


def _open_device(request: dict):
    """Import PortAudio and find the device; in ``wait`` mode retry with a fresh scan until it appears."""
    try:
        import sounddevice as sd
    except OSError as exc:  # no PortAudio library at all
        _say("error", message=f"PortAudio is not available ({exc}); apt-get install libportaudio2")
        os._exit(2)
    while True:
        try:
            return sd, _find(sd, request["device"], request["hostapi"])
        except LookupError as exc:
            if not request["wait"]:
                _say("error", message=str(exc))
                os._exit(2)
        time.sleep(RETRY_SECONDS)
        if os.getppid() != request["parent"]:  # the app is gone: nobody waits for this device any more
            os._exit(0)
        sd._terminate()  # safe: a JACK host API that failed to connect has no client to tear down
        sd._initialize()


def _play(request: dict) -> None:
    block = SharedBlock(request["max_samples"], fd=request["fd"])
    sd, dev = _open_device(request)
    scratch = np.zeros(max(8192, int(0.5 * dev["rate"])), dtype=np.float32)
    ring_holder: list = [None]
    callback = _make_callback(block, ring_holder, scratch, np.zeros_like(scratch),
                              np.arange(len(scratch), dtype=np.float32))
    channels = min(2, dev["channels"])
    try:
        stream = sd.OutputStream(device=dev["index"], samplerate=dev["rate"], channels=channels, dtype="float32",
                                 latency=request["latency"], callback=callback)
    except sd.PortAudioError as exc:
        _say("error", message=f"cannot open audio device {dev['name']!r}: {exc}")
        os._exit(2)
    _say("opened", **{**dev, "channels": channels, "latency": float(stream.latency)})
    started, stopping = threading.Event(), threading.Event()
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            from engine.ringbuffer import RingBuffer
            ring_holder[0] = RingBuffer(int(block.state.capacity), buffer=block.samples, counters=block.state)
            threading.Thread(target=_watch, args=(stream, block, started, stopping), daemon=True).start()
            try:
                stream.start()
            except sd.PortAudioError as exc:
                _say("lost", message=f"the stream could not start: {str(exc).splitlines()[0]}")
                os._exit(3)
            started.set()
        elif command == "stop":
            break
    stopping.set()
    stopper = threading.Thread(target=stream.stop, daemon=True)  # bounded: a dead server makes it wait
    stopper.start()
    stopper.join(STOP_TIMEOUT_SECONDS / 2)
    os._exit(0)


def main(argv: list[str]) -> None:
    """Child entry point: ``list`` or a JSON request (see :class:`DeviceProcess`)."""
    request = {"mode": "list"} if argv[:1] == ["list"] else json.loads(argv[0])
    if request["mode"] == "list":
        try:
            import sounddevice as sd
        except OSError as exc:
            _say("error", message=f"PortAudio is not available ({exc}); apt-get install libportaudio2")
            os._exit(2)
        _say("devices", devices=_outputs(sd))
        os._exit(0)
    _play(request)


if __name__ == "__main__":
    main(sys.argv[1:])
