"""Real-time output to a sound device, played by a child process, that survives losing the device.

:class:`SoundDeviceSink` keeps the pacing contract of :mod:`engine.live.sinks` (lead, start-up cushion,
lead growth after underruns). The stream itself runs in an :class:`engine.live.device_process.DeviceProcess`
(why: see that module), fed through a lock-free ring in a shared mapping; the callback there copies,
applies the live gain and counts. This side copies the gain from :attr:`Sink.gain_source` into the
mapping every time it waits (every 2 ms or so while it paces), so a gain move is heard after the
device's latency plus at most one block's compute.

Loss. Every wait here is bounded. :meth:`wait_for_room`, :meth:`write` and :meth:`release` raise
:class:`engine.errors.DeviceLost` when the child reports the stream lost (a JACK server that went
away is seen within a JACK period), when the child exits, or when queued audio has not been taken
for ``STALL_SECONDS`` (a device that stopped asking, a frozen child). :meth:`reopen` then waits for
the same device (same name and host API) to come back, in a child that rescans PortAudio every
half second, and returns True once it plays again, or False as soon as ``stop`` is set.
:meth:`release` never waits more than about two seconds, lost device or not.
"""
from __future__ import annotations

import threading
import time
import weakref

import numpy as np

from engine.live.device_process import OPEN_TIMEOUT_SECONDS, RING_CHANNELS, DeviceProcess, SharedBlock
from engine.errors import DeviceLost, ParameterError, TextureError
from engine.live.ringbuffer import RingBuffer
from engine.live.sinks import (DEFAULT_LEAD_SECONDS, LEAD_RETURN_SECONDS, LEAD_STEP_SECONDS, MAX_LEAD_SECONDS,
                               PRIME_EXTRA_SECONDS, Sink)

#: Queued audio not taken by the device for this long counts as a lost device, in seconds.
STALL_SECONDS = 1.0
#: Highest device rate the shared ring is sized for, in Hz.
MAX_DEVICE_RATE = 192000


class SoundDeviceSink(Sink):
    """Real-time output through PortAudio in a child process (see the module doc).

    Parameters
    ----------
    device : int, str or None
        Output device index or (part of a) name; None for the default.
    lead_seconds : float
        Audio queued ahead of each new block (see :mod:`engine.live.sinks`), 1 ms to 1 s (ParameterError
        otherwise). Smaller is quicker to respond and more likely to underrun when the machine is
        busy; the default 50 ms is about eight times the compute of a default block on a 2-core CPU.
    latency : str or float
        PortAudio's suggested latency ("low", "high" or seconds).
    wait : bool
        Wait here until the device is open (default). False returns at once, so the caller can do
        other work while the child starts (about 0.3 s); the first use of :attr:`name`,
        :attr:`rate` & co. or :meth:`prepare` then waits, and raises the error if there is one.

    Raises
    ------
    TextureError
        No such device, or it cannot be opened (one line); the child is gone then.
    """

    realtime = True
    applies_gain = True

    def __init__(self, device: str | int | None = None, *, lead_seconds: float = DEFAULT_LEAD_SECONDS,
                 latency: str | float = "low", wait: bool = True) -> None:
        if not 0.001 <= lead_seconds <= 1.0:
            raise ParameterError(f"the output lead must be 1..1000 ms. Found: {lead_seconds * 1000:g} ms")
        self.device = device
        self.lead_seconds = self.initial_lead_seconds = float(lead_seconds)
        self.latency = latency
        self._block = SharedBlock(int((max(MAX_LEAD_SECONDS, lead_seconds) + 0.5) * MAX_DEVICE_RATE) * RING_CHANNELS)
        self._state = self._block.state
        self._ring: RingBuffer | None = None
        self._lost: str | None = None
        self._counted, self._first_audio = (0, 0, 0.0, 0.0), None
        self._stream_rate = 1  # Hz of the stream the shared counters count (set by _start_stream)
        self._holder: list[DeviceProcess | None] = [None]  # the child to kill if this sink is dropped
        weakref.finalize(self, SoundDeviceSink._end, self._holder)
        self._info: dict | None = None
        self._proc = DeviceProcess(self._block, device, latency=latency)
        if wait:
            self._opened()

    # ---------------------------------------------------------------- the child
    @property
    def _proc(self) -> DeviceProcess | None:
        return self._holder[0]

    @_proc.setter
    def _proc(self, proc: DeviceProcess | None) -> None:
        self._holder[0] = proc

    @staticmethod
    def _end(holder: list) -> None:
        if holder[0] is not None:
            holder[0].kill()

    def _open(self, proc: DeviceProcess) -> dict:
        self._proc = proc
        try:
            return proc.wait_opened(OPEN_TIMEOUT_SECONDS)
        except TextureError:
            proc.kill()
            self._proc = None
            raise

    def _take(self, info: dict) -> None:
        self._info = info

    def _opened(self) -> dict:
        """The open device's info, waiting for the first child if it has not answered yet."""
        if self._info is None:
            self._take(self._open(self._proc))
        return self._info

    @property
    def name(self) -> str:
        """The device's PortAudio name."""
        return self._opened()["name"]

    @property
    def hostapi(self) -> str:
        """The device's host API (``JACK Audio Connection Kit``, ``ALSA``, ...)."""
        return self._opened()["hostapi"]

    @property
    def rate(self) -> int:
        """The device's own sample rate in Hz (the engine resamples to it)."""
        return int(self._opened()["rate"])

    @property
    def channels(self) -> int:
        """Output channels the device plays (at most 2; a one-channel device plays the mean of the two)."""
        return int(self._opened()["channels"])

    def _start_stream(self) -> None:
        """Reset the shared header and the ring (no child reads it yet) and start the child's stream.

        The counters the user sees (underruns, xruns, heard and lost seconds, first sound) run on
        across a reopen (heard and lost in seconds, since the device rate may change)."""
        s = self._state
        rate = self._stream_rate  # of the stream that played these counts
        self._counted = (self._counted[0] + s.underruns, self._counted[1] + s.xruns,
                         self._counted[2] + s.read_count / rate, self._counted[3] + s.underrun_samples / rate)
        self._stream_rate = self.rate
        if self._first_audio is None and s.first_audio_time:
            self._first_audio = s.first_audio_time
        self.lead_seconds = self.initial_lead_seconds
        self._prime_samples = int((self.lead_seconds + PRIME_EXTRA_SECONDS) * self.rate)
        capacity = min(self._block.max_samples // RING_CHANNELS,
                       int((max(MAX_LEAD_SECONDS, self.lead_seconds) + 0.5) * self.rate))
        s.write_count = s.read_count = 0
        s.capacity, s.prime_samples = capacity, self._prime_samples
        s.draining = s.primed = s.underruns = s.underrun_samples = s.xruns = s.callbacks = 0
        s.first_audio_time = 0.0
        self._pump_gain()
        self._ring = RingBuffer(capacity, buffer=self._block.samples, counters=s, channels=RING_CHANNELS)
        self._underruns_seen = self.underruns
        self._quiet_since = time.monotonic()
        self._lost = None
        self._progress = (0, time.monotonic())
        self._proc.start()

    def prepare(self) -> None:
        self._opened()
        if self._proc is None or self._proc.started or not self._proc.alive:
            if self._proc is not None:
                self._proc.kill()
            self._take(self._open(DeviceProcess(self._block, self.name, hostapi=self.hostapi, latency=self.latency)))
        self._state.underruns = self._state.underrun_samples = self._state.xruns = 0
        self._state.write_count = self._state.read_count = 0
        self._state.first_audio_time = 0.0
        self._counted, self._first_audio = (0, 0, 0.0, 0.0), None
        self._start_stream()

    # ---------------------------------------------------------------- figures
    @property
    def underruns(self) -> int:
        """Callbacks the ring could not fill since :meth:`prepare` (across reopens)."""
        return self._counted[0] + int(self._state.underruns)

    @property
    def xruns(self) -> int:
        """PortAudio's output_underflow flags seen by the callback since :meth:`prepare`."""
        return self._counted[1] + int(self._state.xruns)

    @property
    def heard_seconds(self) -> float:
        """Audio the device took from the ring since :meth:`prepare` (across reopens), in seconds."""
        return self._counted[2] + self._state.read_count / self._stream_rate

    @property
    def underrun_seconds(self) -> float:
        """Silence the device played in underruns since :meth:`prepare` (across reopens), in seconds."""
        return self._counted[3] + self._state.underrun_samples / self._stream_rate

    @property
    def first_audio_time(self) -> float | None:
        """time.monotonic() (one clock for both processes) of the first real sample since
        :meth:`prepare`, or None."""
        return self._first_audio or self._state.first_audio_time or None

    @property
    def queue_seconds(self) -> float:
        return self.lead_seconds + self.device_latency_seconds

    @property
    def device_latency_seconds(self) -> float:
        """PortAudio's reported output latency of the stream last opened."""
        return float(self._opened()["latency"])

    @property
    def queued_samples(self) -> int:
        """Samples waiting in the ring."""
        return self._ring.available if self._ring is not None else 0

    @property
    def lost(self) -> str | None:
        """Why the output is gone (None while it plays)."""
        return self._lost

    # ---------------------------------------------------------------- producer side
    def _pump_gain(self) -> None:
        self._state.gain = 1.0 if self.gain_source is None else float(self.gain_source())

    def _watch(self) -> None:
        """Raise DeviceLost if the child says so, is gone, or queued audio has not moved for STALL_SECONDS."""
        if self._lost is None:
            reason = self._proc.lost() if self._proc is not None else "the audio device is closed"
            if reason is None:
                rc, now = self._state.read_count, time.monotonic()
                playing = self._state.primed or self._ring.available >= self._prime_samples
                if rc != self._progress[0] or not playing or self._ring.available == 0:
                    self._progress = (rc, now)
                elif now - self._progress[1] > STALL_SECONDS:
                    reason = f"the device took no audio for {STALL_SECONDS:g} s"
            if reason is not None:
                self._lost = reason
                if self._proc is not None:
                    self._proc.kill()
        if self._lost is not None:
            raise DeviceLost(f"{self.name}: {self._lost}")

    def _adapt_lead(self) -> None:
        """One step up after new underruns (the machine could not keep up: queue more from now on),
        one step down towards the lead asked for after each ``LEAD_RETURN_SECONDS`` without one."""
        now = time.monotonic()
        if self.underruns > self._underruns_seen:
            self._underruns_seen = self.underruns
            self.lead_seconds = min(MAX_LEAD_SECONDS, self.lead_seconds + LEAD_STEP_SECONDS)
            self._quiet_since = now
        elif self.lead_seconds > self.initial_lead_seconds and now - self._quiet_since >= LEAD_RETURN_SECONDS:
            self.lead_seconds = max(self.initial_lead_seconds, self.lead_seconds - LEAD_STEP_SECONDS)
            self._quiet_since = now

    def wait_for_room(self, stop: threading.Event | None = None) -> None:
        self._adapt_lead()
        nap = min(0.002, 0.25 * self.lead_seconds)
        while True:
            self._pump_gain()
            self._watch()
            limit = int(self.lead_seconds * self.rate) if self._state.primed else self._prime_samples
            if self._ring.available <= limit or (stop is not None and stop.is_set()):
                return
            time.sleep(nap)

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        """Queue ``samples`` ``(n, 2)``, or ``(n,)`` mono (put on both channels), waiting for room."""
        if samples.ndim == 1:
            samples = np.repeat(samples[:, None], RING_CHANNELS, axis=1)
        pos = 0
        nap = min(0.002, 0.25 * self.lead_seconds)
        while pos < len(samples):
            self._watch()
            pos += self._ring.write(samples[pos:])
            if pos < len(samples):
                if stop is not None and stop.is_set():
                    return
                self._pump_gain()
                time.sleep(nap)

    def release(self, *, complete: bool = True) -> None:
        """Let the queue play out (at most its length + 0.5 s, less when the device is lost), stop the child."""
        proc = self._proc
        if proc is None or not proc.started:
            return
        self._state.draining = 1
        deadline = time.monotonic() + self.queued_samples / self.rate + 0.5
        try:
            while self.queued_samples > 0 and time.monotonic() < deadline:
                self._watch()
                time.sleep(0.005)
            time.sleep(min(self.device_latency_seconds, 0.5))
        except DeviceLost:
            pass
        proc.stop()
        self._proc = None

    def reopen(self, stop: threading.Event) -> bool:
        """After a DeviceLost: wait for the same device to come back and play again (see the module doc).

        Returns True once it plays (``rate`` may have changed: the device's own), False when
        ``stop`` was set first. Never raises for a missing device; it keeps waiting.
        """
        if self._proc is not None:
            self._proc.kill()
            self._proc = None
        while not stop.is_set():
            proc = DeviceProcess(self._block, self.name, hostapi=self.hostapi, latency=self.latency, wait=True)
            self._proc = proc
            while not stop.is_set():
                try:
                    info = proc.poll_opened()
                except TextureError:
                    break  # the child died or failed: start another after a pause
                if info is not None:
                    self._take(info)
                    self._start_stream()
                    return True
                stop.wait(0.05)
            proc.kill()
            self._proc = None
            stop.wait(1.0)
        return False
