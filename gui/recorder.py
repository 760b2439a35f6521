"""Record the engine's output to a file while it plays, crash-safe to the last second.

Data flow: the engine calls :meth:`Recorder.tap` in its producer thread with every output block; the
tap only copies the block into a queue (no I/O, no lock, no waiting). A writer thread drains the
queue into a **24-bit PCM WAV** (the plain ``WAVE_FORMAT_PCM`` kind every reader knows) and, every
``flush_seconds`` (1 s), flushes the data to the OS **and rewrites the WAV header** with the current
length (libsndfile ``SFC_UPDATE_HEADER_NOW``). So a crash, a kill -9 or a power cut (once the OS
wrote its cache) leaves a WAV whose header matches the data up to the last flush, which libsndfile,
Python's ``wave``, Audacity and ffmpeg open (the tests read a SIGKILLed take with soundfile and with
``wave``). 24 bits are not a loss here: the output chain's limiter keeps every sample below full
scale and 24 bits hold 144 dB. (A 32-bit float WAV, format 3, would not open in ``wave``.)

FLAC cannot be made crash-safe this way: its length and checksum are written only at close, and a
FLAC killed mid-write does not read back (measured with libsndfile 1.2.2). So a ``take.flac``
recording is written as the crash-safe WAV ``take.flac.recording.wav`` beside it (visible, named
for what it is) and encoded to ``take.flac`` (via ``take.flac.partial``, then ``os.replace``) by the
writer thread after :meth:`Recorder.stop`. After a crash that WAV holds the take up to the last
second; :func:`recover_recordings` (the window runs it on start-up for its recording folder)
encodes it to the FLAC that was asked for.

A 24-bit WAV grows 144 kB per second at 48 kHz mono; the RIFF size limit (4 GiB) is reached after
about eight hours.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from engine.analysis.audio_io import partial_path, write_failure
from engine.errors import AudioFileError

#: libsndfile command that rewrites the header with the current length (sndfile.h).
_SFC_UPDATE_HEADER_NOW = 0x1060
#: Suffixes a recording can have.
RECORD_FORMATS = (".wav", ".flac")
#: What a FLAC take is recorded as until it is encoded: ``take.flac`` → ``take.flac.recording.wav``.
RECORDING_SUFFIX = ".recording.wav"
#: Sample format of the crash-safe WAV (integer PCM, format tag 1).
WAV_SUBTYPE = "PCM_24"


def _update_header(f: sf.SoundFile) -> None:
    """Rewrite the header of ``f`` with the frames written so far (best effort: soundfile's C handle
    is not public API; without it libsndfile still reads the flushed data of a WAV)."""
    try:
        from soundfile import _ffi, _snd  # noqa: PLC0415 - private but stable since soundfile 0.9
        _snd.sf_command(f._file, _SFC_UPDATE_HEADER_NOW, _ffi.NULL, 0)
    except (ImportError, AttributeError):
        pass


def part_path(path: Path) -> Path:
    """The crash-safe WAV a recording to ``path`` is written to (``path`` itself for a ``.wav``)."""
    if path.suffix.lower() == ".wav":
        return path
    return path.with_name(f"{path.name}{RECORDING_SUFFIX}")


def encode_flac(wav: Path, flac: Path) -> float:
    """Encode the recording ``wav`` to 24-bit ``flac`` (through its ``.partial``, then renamed) and
    delete ``wav``; returns the seconds encoded. OSError / LibsndfileError when it cannot."""
    tmp = partial_path(flac)
    try:
        with sf.SoundFile(str(wav)) as src, \
                sf.SoundFile(str(tmp), "w", src.samplerate, src.channels, "PCM_24", format="FLAC") as dst:
            for block in src.blocks(blocksize=65536, dtype="float32", always_2d=True):
                dst.write(block)
            seconds = src.frames / src.samplerate
        os.replace(tmp, flac)
    finally:
        tmp.unlink(missing_ok=True)
    wav.unlink(missing_ok=True)
    return seconds


def recover_recordings(folder: str | os.PathLike) -> list[str]:
    """Encode the FLAC takes a crash left as ``NAME.flac.recording.wav`` in ``folder``; one line each.

    A take whose ``NAME.flac`` already exists is left alone (and said so); a folder that cannot be
    read gives no lines. Never raises.
    """
    lines = []
    try:
        leftovers = sorted(Path(folder).glob(f"*.flac{RECORDING_SUFFIX}"))
    except OSError:
        return lines
    for wav in leftovers:
        flac = wav.with_name(wav.name[: -len(RECORDING_SUFFIX)])
        if flac.exists():
            lines.append(f"{wav}: a take from an earlier crash; {flac.name} exists, so it was left as it is")
            continue
        try:
            seconds = encode_flac(wav, flac)
        except (OSError, sf.LibsndfileError) as exc:
            lines.append(f"{wav}: could not recover it as {flac.name}: {getattr(exc, 'strerror', None) or exc}")
            continue
        lines.append(f"recovered {seconds:.1f} s of an interrupted recording as {flac}")
    return lines


class Recorder:
    """Writes float32 blocks, ``(n, channels)`` or ``(n,)`` with one channel, to ``path`` (``.wav`` or
    ``.flac``) from a writer thread.

    Parameters
    ----------
    path : path-like
        Target file; its suffix picks the format (``.wav`` or ``.flac``, both 24-bit).
    rate : int
        Sample rate of the blocks in Hz (the engine's device rate).
    channels : int
        Channels of the blocks (the window passes the engine's: 2 for the stereo engine).
    flush_seconds : float
        Seconds between flush + header rewrite: the most audio a crash can lose.
    on_finished : callable or None
        Called once from the writer thread with one line for the user when the file is complete (or
        failed). It must only hand the line on (e.g. emit a Qt signal).

    Examples
    --------
    >>> rec = Recorder("take.wav", 48000)       # doctest: +SKIP
    >>> rec.start(); engine.taps.append(rec.tap)  # doctest: +SKIP
    >>> ...; engine.taps.remove(rec.tap); rec.stop()  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, rate: int, *, channels: int = 1, flush_seconds: float = 1.0,
                 on_finished: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in RECORD_FORMATS:
            raise AudioFileError(self.path, f"cannot record to '{self.path.suffix}' files; use .wav or .flac")
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0. Found: {flush_seconds!r}")
        self.rate = int(rate)
        self.channels = int(channels)
        self.flush_seconds = float(flush_seconds)
        self.on_finished = on_finished
        self.samples_written = 0
        self.error: str | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._file: sf.SoundFile | None = None

    # ------------------------------------------------------------------ producer side
    def tap(self, block: np.ndarray) -> None:
        """Engine tap (producer thread): enqueue a copy of ``block``; nothing else."""
        if self._accepting:
            self._queue.put(np.array(block, dtype=np.float32))

    # ------------------------------------------------------------------ control side
    @property
    def recording(self) -> bool:
        """Whether blocks are being accepted."""
        return self._accepting

    @property
    def seconds(self) -> float:
        """Seconds written to the file so far."""
        return self.samples_written / self.rate

    def start(self) -> None:
        """Create the file and start the writer thread.

        Raises
        ------
        AudioFileError
            The folder cannot be created or the file cannot be written (one line).
        """
        target = part_path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(str(target), "w", self.rate, self.channels, WAV_SUBTYPE, format="WAV")
        except (OSError, sf.LibsndfileError) as exc:
            raise AudioFileError(self.path, f"cannot record here: {getattr(exc, 'strerror', None) or exc}") from None
        self._accepting = True
        self._thread = threading.Thread(target=self._write_loop, name="texture-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting blocks; the writer drains the queue, closes (and encodes FLAC) on its own
        thread, then calls ``on_finished``. Returns at once."""
        if not self._accepting:
            return
        self._accepting = False
        self._queue.put(None)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the file is complete; True if it is (tests and shutdown use this)."""
        return self._done.wait(timeout)

    # ------------------------------------------------------------------ writer thread
    def _kept_after_failure(self, f: sf.SoundFile, exc: BaseException) -> str:
        """Close a take whose write failed; one line with the cause (a full disk, a read-only file
        system, a quota: :func:`engine.analysis.audio_io.write_failure`) and what the file keeps."""
        cause = write_failure(self.path, exc, channels=self.channels)
        try:
            f.close()  # rewrites the header in place: needs no new space
        except Exception:  # noqa: BLE001 - the header of the last flush stays valid
            pass
        part = part_path(self.path)
        try:
            kept = f"the first {sf.info(str(part)).duration:.1f} s are kept in {part}"
        except (OSError, sf.LibsndfileError, RuntimeError):
            kept = f"nothing readable was kept ({part})"
        return f"{self.path}: recording stopped: {cause}; {kept}"

    def _write_loop(self) -> None:
        f = self._file
        last_flush = time.monotonic()
        try:
            while True:
                try:
                    block = self._queue.get(timeout=0.25)
                except queue.Empty:
                    block = ...
                if block is None:
                    break
                if block is not ...:
                    f.write(np.clip(block, -1.0, 1.0))  # integer PCM would wrap around past full scale
                    self.samples_written += len(block)
                if time.monotonic() - last_flush >= self.flush_seconds:
                    f.flush()
                    _update_header(f)
                    last_flush = time.monotonic()
            f.close()
            if self.path.suffix.lower() == ".flac":
                encode_flac(part_path(self.path), self.path)
            message = f"recorded {self.seconds:.1f} s to {self.path}"
        except Exception as exc:  # noqa: BLE001 - disk full, permissions: one line, the sound plays on
            self._accepting = False
            self.error = message = self._kept_after_failure(f, exc)
        self._done.set()
        if self.on_finished is not None:
            self.on_finished(message)
