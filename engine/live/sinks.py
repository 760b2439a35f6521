"""Where the samples go: a sound device, a file, or nowhere — behind one interface.

Every sink has ``rate`` (Hz it wants), ``realtime`` (whether :meth:`write` paces the producer at the
sample rate), ``underruns`` and the lifecycle ``prepare() → write(samples)… → release()``
(``release(complete=False)`` when the output was cut short, ``discard()`` when it failed). Sinks are
context managers.

:class:`SoundDeviceSink` (in :mod:`engine.live.device_sink`, which imports this module, not the other
way round) plays through PortAudio in a child process, fed by a lock-free ring in shared memory; its callback only copies from
the ring into ``outdata`` and scales by the live gain — no allocation of buffers, no lock, no I/O,
no exception escapes. When the ring runs dry it fills the rest with zeros and counts an underrun
(after the first samples arrived, and not while draining at stop). PortAudio's own
``output_underflow`` flags are counted apart in ``xruns``. Its waits are bounded: a device that
goes away raises :class:`engine.errors.DeviceLost` and :meth:`Sink.reopen` waits for it to return.

Pacing (pull model): the producer calls :meth:`Sink.wait_for_room` *before* it reads the parameters
and computes a block; a real-time sink returns only once no more than ``lead_seconds`` of audio are
queued. So a block is computed just in time, with the newest parameters, and lands behind about
``lead_seconds`` of queued audio: the lead is the producer's slack against compute jitter and the
part of the control latency the sink adds. Each underrun (the machine did not keep up) adds
``LEAD_STEP_SECONDS`` to a sound device's lead, up to ``MAX_LEAD_SECONDS``, so a busy machine
trades a little latency for no more dropouts; after each ``LEAD_RETURN_SECONDS`` (5 s) without an
underrun the lead comes down one step again, to the lead asked for: from the largest lead (200 ms)
back to the default 50 ms takes 15 steps, 75 s of quiet (a 60 ms lead after one underrun: 5 s). The ring holds half a second more than the largest
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

from engine.analysis.audio_io import WRITE_FORMATS, partial_path, write_failure
from engine.errors import AudioFileError


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

    def reopen(self, stop: threading.Event) -> bool:
        """After :class:`engine.errors.DeviceLost`: wait until the output is back and playing (True), or
        until ``stop`` is set (False). Sinks that cannot be lost return False at once."""
        return False

    def __enter__(self) -> "Sink":
        self.prepare()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.discard()


#: Default audio queued ahead of each newly computed block, in seconds (see the module doc). A block
#: takes 6-7 ms on the 2-core AMD EPYC, but with the window open one block in a few thousand takes
#: 30-53 ms (the machine's other work, docs/bench_window.py); 25 ms underran a few times a minute.
DEFAULT_LEAD_SECONDS = 0.05
#: After an underrun a sound device's lead grows by this much, up to the maximum, in seconds.
LEAD_STEP_SECONDS, MAX_LEAD_SECONDS = 0.01, 0.2
#: After this long without an underrun a grown lead comes down one step, in seconds (module doc).
LEAD_RETURN_SECONDS = 5.0
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

    Samples go to ``NAME.partial`` (:func:`engine.analysis.audio_io.partial_path`). ``release()`` renames it to
    ``path``; ``release(complete=False)`` (an interrupted render, already faded out by the engine) to
    :attr:`interrupted_path`, ``NAME.interrupted.wav``, leaving an older ``path`` as it was;
    ``discard()`` deletes it. :attr:`written_path` says where the samples ended up (None: nowhere).
    Only SIGKILL or a power cut can leave the ``.partial`` behind.

    A write that fails (a full disk, a file system gone read-only, a quota) keeps what was written:
    the file is closed and published as :attr:`interrupted_path` (or, if even the rename fails, left
    as ``NAME.partial``), and :meth:`write` raises one line that names the cause
    (:func:`engine.analysis.audio_io.write_failure`, with the megabytes free and needed when
    ``expected_samples``, the whole render's length, is given) and the file that holds what fitted.

    ``channels`` (2 by default) must match the blocks written: ``(n, 2)``, or ``(n,)`` for 1.

    Raises
    ------
    AudioFileError
        An unsupported suffix (at construction), a folder that cannot be written (``prepare``), a
        write that failed (``write``, see above).
    """

    def __init__(self, path: str | os.PathLike, rate: int, *, expected_samples: int | None = None,
                 channels: int = 2) -> None:
        self.path = Path(path)
        self.rate = int(rate)
        self.channels = int(channels)
        self.expected_samples = expected_samples
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
            self._file = sf.SoundFile(str(self._tmp), "w", self.rate, self.channels, self._format[1], format=self._format[0])
        except (OSError, sf.LibsndfileError) as exc:
            raise AudioFileError(self.path, write_failure(self.path, exc, self.expected_samples, self.channels)) from None
        self.samples_written = 0
        self.written_path = None

    def write(self, samples: np.ndarray, stop: threading.Event | None = None) -> None:
        try:
            self._file.write(np.asarray(samples, dtype=np.float32))
        except (OSError, sf.LibsndfileError) as exc:
            raise AudioFileError(self.path, self._keep_after_failure(exc)) from None
        self.samples_written += len(samples)

    def _keep_after_failure(self, exc: BaseException) -> str:
        """Close the file a write failed on, publish what it holds; the one-line cause and what was kept."""
        cause = write_failure(self.path, exc, self.expected_samples, self.channels)
        try:
            self._file.close()  # rewrites the header in place: needs no new space
        except (OSError, sf.LibsndfileError):
            pass
        self._file = None
        try:
            os.replace(self._tmp, self.interrupted_path)
            self.written_path = self.interrupted_path
        except OSError:
            self.written_path = self._tmp
        return f"{cause}; kept the {self.samples_written / self.rate:.2f} s that fitted as {self.written_path}"

    def release(self, *, complete: bool = True) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        target = self.path if complete else self.interrupted_path
        os.replace(self._tmp, target)
        self.written_path = target

    def discard(self) -> None:
        """Delete what was written, unless a failed write already kept it (:attr:`written_path`)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.written_path is None:
            self._tmp.unlink(missing_ok=True)

