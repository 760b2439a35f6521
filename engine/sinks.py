"""Where the samples go: a sound device, a file, or nowhere — behind one interface.

Every sink has ``rate`` (Hz it wants), ``realtime`` (whether :meth:`write` paces the producer at the
sample rate), ``underruns`` and the lifecycle ``prepare() → write(samples)… → release()``
(``release(complete=False)`` when the output was cut short, ``discard()`` when it failed). Sinks are
context managers.

:class:`SoundDeviceSink` real-time contract: the PortAudio callback (``_callback``) only copies from
a preallocated :class:`engine.ringbuffer.RingBuffer` into ``outdata`` and scales by the live gain
(read lock-free from the parameter store, ramped in preallocated buffers, so a gain move is heard
after the device's own latency, not the ring's) — no allocation of buffers, no lock, no I/O, no
exception escapes. When the ring runs dry it fills the rest with zeros and counts an
underrun (after the first samples arrived, and not while draining at stop). PortAudio's own
``output_underflow`` flags are counted apart in ``xruns``.

Pacing (pull model): the producer calls :meth:`Sink.wait_for_room` *before* it reads the parameters
and computes a block; a real-time sink returns only once no more than ``lead_seconds`` of audio are
queued. So a block is computed just in time, with the newest parameters, and lands behind about
``lead_seconds`` of queued audio: the lead is the producer's slack against compute jitter and the
part of the control latency the sink adds. Each underrun (the machine did not keep up) adds
``LEAD_STEP_SECONDS`` to a sound device's lead, up to ``MAX_LEAD_SECONDS``, so a busy machine
trades a little latency for no more dropouts. The ring holds half a second more than the largest
lead, so :meth:`write` never has to wait. Playback starts only once ``PRIME_EXTRA_SECONDS`` more than the
lead is queued, a cushion for the slow first blocks that drains to the lead within a few blocks.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio_io import WRITE_FORMATS, partial_path
from engine.errors import AudioFileError, ParameterError, TextureError
from engine.ringbuffer import RingBuffer


class Sink:
    """Interface of all sinks (see module doc)."""

    rate: int
    realtime: bool = False
    underruns: int = 0
    #: Sinks that apply the live gain themselves (at the device, for low latency) set this True;
    #: the engine then hands them :attr:`gain_source` and leaves gain out of the output chain.
    applies_gain: bool = False
    gain_source = None

    @property
    def queue_seconds(self) -> float:
        """Audio queued ahead of a block computed after :meth:`wait_for_room` (lead + device), in seconds."""
        return 0.0

    def prepare(self) -> None:
        """Open the output."""

    def wait_for_room(self, stop: threading.Event | None = None) -> None:
        """Return when the sink wants the next block (at once for files; real-time sinks pace here).

        Returns early when ``stop`` is set.
        """

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        """Take float32 mono samples at :attr:`rate`; a real-time sink returns early if ``stop`` is set."""
        raise NotImplementedError

    def release(self, *, complete: bool = True) -> None:
        """Finish and close the output; ``complete=False``: it was cut short (an interrupted render)."""

    def discard(self) -> None:
        """Close the output after a failure (a file sink deletes what it wrote)."""
        self.release(complete=False)

    def __enter__(self) -> "Sink":
        self.prepare()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.discard()


#: Default audio queued ahead of each newly computed block, in seconds (see the module doc).
DEFAULT_LEAD_SECONDS = 0.025
#: After an underrun a sound device's lead grows by this much, up to the maximum, in seconds.
LEAD_STEP_SECONDS, MAX_LEAD_SECONDS = 0.01, 0.2
#: A sound device starts playing once this much more than the lead is queued (start-up cushion).
PRIME_EXTRA_SECONDS = 0.06


class NullSink(Sink):
    """Discards samples; with ``realtime`` it sleeps as a device would, so a GUI runs at speed without one."""

    def __init__(self, rate: int = 48000, *, realtime: bool = False, lead_seconds: float = DEFAULT_LEAD_SECONDS) -> None:
        self.rate = int(rate)
        self.realtime = realtime
        self.lead_seconds = float(lead_seconds)
        self.samples_written = 0

    def prepare(self) -> None:
        self._t0 = time.monotonic()
        self.samples_written = 0

    @property
    def queue_seconds(self) -> float:
        return self.lead_seconds if self.realtime else 0.0

    def wait_for_room(self, stop: threading.Event | None = None) -> None:
        if self.realtime:
            ahead = self.samples_written / self.rate - (time.monotonic() - self._t0) - self.lead_seconds
            if ahead > 0:
                (stop or threading.Event()).wait(ahead)

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        self.samples_written += len(samples)


class FileSink(Sink):
    """Writes a wav (32-bit float) or flac (24-bit) file; the asked-for name only ever holds a whole one.

    Samples go to ``NAME.partial`` (:func:`engine.audio_io.partial_path`). ``release()`` renames it to
    ``path``; ``release(complete=False)`` (an interrupted render, already faded out by the engine) to
    :attr:`interrupted_path`, ``NAME.interrupted.wav``, leaving an older ``path`` as it was;
    ``discard()`` deletes it. :attr:`written_path` says where the samples ended up (None: nowhere).
    Only SIGKILL or a power cut can leave the ``.partial`` behind.

    Raises
    ------
    AudioFileError
        An unsupported suffix (at construction) or a folder that cannot be written (``prepare``).
    """

    def __init__(self, path: str | os.PathLike, rate: int) -> None:
        self.path = Path(path)
        self.rate = int(rate)
        fmt = WRITE_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise AudioFileError(self.path, f"cannot write '{self.path.suffix}' files; use one of {', '.join(WRITE_FORMATS)}")
        self._format = fmt
        self._file: sf.SoundFile | None = None
        self._tmp = partial_path(self.path)
        self.samples_written = 0
        self.written_path: Path | None = None

    @property
    def interrupted_path(self) -> Path:
        """Where an interrupted render is published: ``NAME.interrupted.SUFFIX`` beside ``path``."""
        return self.path.with_name(f"{self.path.stem}.interrupted{self.path.suffix}")

    def prepare(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(str(self._tmp), "w", self.rate, 1, self._format[1], format=self._format[0])
        except (OSError, sf.LibsndfileError) as exc:
            raise AudioFileError(self.path, f"cannot write: {getattr(exc, 'strerror', None) or exc}") from None
        self.samples_written = 0
        self.written_path = None

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        self._file.write(np.asarray(samples, dtype=np.float32))
        self.samples_written += len(samples)

    def release(self, *, complete: bool = True) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        target = self.path if complete else self.interrupted_path
        os.replace(self._tmp, target)
        self.written_path = target

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)
        self.written_path = None


def find_output_device(device: str | int | None) -> tuple[int, dict]:
    """Index and info of an output device by index, (part of a) name, or the default.

    Raises
    ------
    TextureError
        No output device at all, or none matching ``device``.
    """
    import sounddevice as sd
    try:
        if device is None:
            info = sd.query_devices(kind="output")
        else:
            key = int(device) if isinstance(device, str) and device.isdigit() else device
            info = sd.query_devices(key, kind="output")
    except (ValueError, sd.PortAudioError) as exc:
        what = "no default audio output device" if device is None else f"audio output device {device!r} not found"
        raise TextureError(f"{what} ({str(exc).splitlines()[0]}); see `python main.py devices`") from None
    if info["max_output_channels"] < 1:
        raise TextureError(f"audio device {info['name']!r} has no output channels")
    return int(info["index"]), info


class SoundDeviceSink(Sink):
    """Real-time output through PortAudio (python-sounddevice); see the module doc for the callback contract.

    Parameters
    ----------
    device : int, str or None
        Output device index or name; None for the default.
    lead_seconds : float
        Audio queued ahead of each new block (see the module doc), 1 ms to 1 s (ParameterError
        otherwise). Smaller is quicker to respond
        and more likely to underrun when the machine is busy; 25 ms is about four times the compute of
        a default block on a 2-core CPU.
    latency : str or float
        PortAudio's suggested latency ("low", "high" or seconds).
    """

    realtime = True
    applies_gain = True

    def __init__(self, device: str | int | None = None, *, lead_seconds: float = DEFAULT_LEAD_SECONDS,
                 latency: str | float = "low") -> None:
        if not 0.001 <= lead_seconds <= 1.0:
            raise ParameterError(f"the output lead must be 1..1000 ms. Found: {lead_seconds * 1000:g} ms")
        self.device = device
        self.lead_seconds = float(lead_seconds)
        self.latency = latency
        self.initial_lead_seconds = self.lead_seconds
        self.index, info = find_output_device(device)
        self.name = info["name"]
        self.rate = int(info["default_samplerate"])
        self.channels = min(2, int(info["max_output_channels"]))
        self.underruns = 0
        self.xruns = 0
        self.first_audio_time: float | None = None
        self._device_latency = 0.0
        self._stream = None

    def prepare(self) -> None:
        import sounddevice as sd
        self.lead_seconds = self.initial_lead_seconds
        self._prime_samples = int((self.lead_seconds + PRIME_EXTRA_SECONDS) * self.rate)
        self._ring = RingBuffer(int((max(MAX_LEAD_SECONDS, self.lead_seconds) + 0.5) * self.rate))
        self._scratch = np.zeros(max(8192, int(0.5 * self.rate)), dtype=np.float32)
        self._gains = np.zeros_like(self._scratch)
        self._steps = np.arange(len(self._scratch), dtype=np.float32)
        self._gain = None
        self._primed = False
        self.first_audio_time: float | None = None
        self._draining = False
        self.underruns = 0
        self._underruns_seen = 0
        self.xruns = 0
        try:
            self._stream = sd.OutputStream(device=self.index, samplerate=self.rate, channels=self.channels,
                                           dtype="float32", latency=self.latency, callback=self._callback)
            self._stream.start()
            self._device_latency = float(self._stream.latency)
        except sd.PortAudioError as exc:
            raise TextureError(f"cannot open audio device {self.name!r}: {exc}") from None

    @property
    def queue_seconds(self) -> float:
        return self.lead_seconds + self.device_latency_seconds

    @property
    def device_latency_seconds(self) -> float:
        """PortAudio's reported output latency of the stream last opened (0 before one was)."""
        return self._device_latency

    @property
    def queued_samples(self) -> int:
        """Samples waiting in the ring."""
        return self._ring.available

    def _callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if status.output_underflow:
            self.xruns += 1
        mono = self._scratch[:frames]
        if not self._primed and self._ring.available < self._prime_samples:
            n = 0  # start only with a cushion queued: the first blocks are the slowest (warm-up)
        else:
            n = self._ring.read_into(mono)
        if n < frames:
            mono[n:] = 0.0
            if self._primed and not self._draining:
                self.underruns += 1
        elif not self._primed:
            self._primed = True
            self.first_audio_time = time.monotonic()
        if self.gain_source is not None:
            self._apply_gain(mono, frames)
        outdata[:] = mono[:, None]

    def _apply_gain(self, mono: np.ndarray, frames: int) -> None:
        """Multiply by the live gain (0..1, so the bound holds), ramped across this buffer when it moved."""
        g = self.gain_source()
        g0 = g if self._gain is None else self._gain
        self._gain = g
        if g0 == g:
            mono *= g
            return
        ramp = self._gains[:frames]
        np.multiply(self._steps[:frames], (g - g0) / frames, out=ramp)
        ramp += g0
        mono *= ramp

    def wait_for_room(self, stop: threading.Event | None = None) -> None:
        if self.underruns > self._underruns_seen:  # the machine could not keep up: queue more from now on
            self._underruns_seen = self.underruns
            if self.lead_seconds < MAX_LEAD_SECONDS:
                self.lead_seconds = min(MAX_LEAD_SECONDS, self.lead_seconds + LEAD_STEP_SECONDS)
        nap = min(0.002, 0.25 * self.lead_seconds)
        while self._ring.available > (int(self.lead_seconds * self.rate) if self._primed else self._prime_samples):
            if stop is not None and stop.is_set():
                return
            time.sleep(nap)

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        pos = 0
        nap = min(0.002, 0.25 * self.lead_seconds)
        while pos < len(samples):
            pos += self._ring.write(samples[pos:])
            if pos < len(samples):
                if stop is not None and stop.is_set():
                    return
                time.sleep(nap)

    def release(self) -> None:
        if self._stream is None:
            return
        self._draining = True
        deadline = time.monotonic() + self._ring.available / self.rate + 1.0
        while self._ring.available > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(self.device_latency_seconds)
        self._stream.stop()
        self._stream.close()
        self._stream = None
