"""Load, resample and save sound files; the errors a user sees for a bad file.

Anything libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, aiff, ...) loads, as mono (channels mixed
by averaging) or as stereo (a mono file on both sides; of more than two channels the first two, the
left and right of every common layout), resampled with soxr (high quality) to the engine rate.
Audio arrays are shaped ``(samples,)`` when mono and ``(samples, channels)`` otherwise, as soundfile
reads and writes them.

Every failure raises :class:`engine.errors.AudioFileError` with a one-line message that names the
file and the problem: missing path, a directory, permission denied, empty file, corrupt or
unsupported format, no samples, NaN/Inf samples, all-zero (silent), shorter than the analysis needs.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from engine.errors import AudioFileError, ParameterError

#: Peak level (linear) below which a file counts as silent: -120 dBFS.
SILENCE_PEAK = 1e-6

#: Formats :func:`save_audio` writes, by file suffix.
WRITE_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(path, "no such file")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, not a sound file")
    if not os.access(path, os.R_OK):
        raise AudioFileError(path, "permission denied (file is not readable)")
    if path.stat().st_size == 0:
        raise AudioFileError(path, "file is empty (0 bytes)")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence C-level stderr (libmpg123 prints 'Note: ...' lines for bad MP3s) for the duration."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def resample(y: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float audio, ``(samples,)`` or ``(samples, channels)``, from ``from_rate`` to
    ``to_rate`` Hz (soxr, high quality).

    Returns float32; the input itself when the rates agree.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ParameterError(f"sample rates must be positive. Found: {from_rate} -> {to_rate}")
    y = np.asarray(y, dtype=np.float32)
    if from_rate == to_rate:
        return y
    return soxr.resample(y, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


#: Frames read (and mixed to mono) at a time by :func:`load_audio`.
READ_BLOCK_FRAMES = 1 << 18
#: Channel counts :func:`load_audio` returns: mono, stereo.
CHANNEL_COUNTS = (1, 2)


def file_rate(path: str | os.PathLike) -> int | None:
    """The sample rate in Hz a sound file's header gives, or None when it cannot be read (the caller's
    :func:`load_audio` then names the reason)."""
    try:
        with _quiet_native_stderr():
            return int(sf.info(str(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError):
        return None


def load_audio(path: str | os.PathLike, *, sample_rate: int, min_samples: int = 0,
               max_seconds: float | None = None, channels: int | None = 1) -> np.ndarray:
    """Read a sound file as float32 at ``sample_rate`` Hz, mono or stereo.

    The file is read :data:`READ_BLOCK_FRAMES` frames at a time (and mixed to mono when asked), so a
    long multichannel file never exists in memory as a whole (peak: the kept channels at the file's
    rate plus the resampled ones).

    Parameters
    ----------
    path : path-like
        Any file libsndfile reads.
    sample_rate : int
        Engine rate in Hz; the file is resampled to it.
    min_samples : int
        Fewest samples (at ``sample_rate``) the caller's analysis needs.
    max_seconds : float or None
        Longest file the caller accepts, checked from the header before anything is read.
    channels : 1, 2 or None
        1 (default): mono, the channels' mean. 2: stereo; a mono file is put on both sides, a file of
        more than two channels gives its first two. None: the file's own count, at most 2.

    Returns
    -------
    np.ndarray [shape=(n,) when mono, (n, 2) when stereo], float32, finite, peak > -120 dBFS

    Raises
    ------
    AudioFileError
        With a one-line reason, for every kind of unusable file (see module doc).
    ParameterError
        ``channels`` is not 1, 2 or None.
    """
    if channels is not None and channels not in CHANNEL_COUNTS:
        raise ParameterError(f"channels must be 1 (mono), 2 (stereo) or None (the file's). Found: {channels}")
    p = Path(path)
    _check_readable(p)
    try:
        with _quiet_native_stderr(), sf.SoundFile(str(p)) as f:
            rate = f.samplerate
            if max_seconds is not None and f.frames > max_seconds * rate:
                raise AudioFileError(p, f"is {f.frames / rate / 60:.1f} min long; it may be at most "
                                        f"{max_seconds / 60:g} min here; cut it shorter")
            keep = min(f.channels, 2) if channels is None else channels
            audio = _read_channels(f, keep)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        raise AudioFileError(p, "not a readable sound file (corrupt or unsupported format)") from None
    except PermissionError:
        raise AudioFileError(p, "permission denied (file is not readable)") from None
    if audio.shape[0] == 0:
        raise AudioFileError(p, "contains no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(p, "contains NaN or Inf samples")
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise AudioFileError(p, "is silent (all samples are zero or below -120 dBFS)")
    y = resample(audio, int(rate), sample_rate)
    if len(y) < min_samples:
        raise AudioFileError(
            p, f"is too short: {len(y) / sample_rate:.3f} s, the analysis needs at least "
               f"{min_samples / sample_rate:.3f} s")
    return y


def _read_channels(f: sf.SoundFile, channels: int) -> np.ndarray:
    """All of ``f`` as float32 ``(n,)`` (mono: the channel mean) or ``(n, 2)`` (stereo: a mono file
    on both sides, else the first two channels), read in blocks into one array."""
    shape = (max(f.frames, 0),) if channels == 1 else (max(f.frames, 0), channels)
    out = np.empty(shape, dtype=np.float32)
    filled, extra = 0, []
    for block in f.blocks(blocksize=READ_BLOCK_FRAMES, dtype="float32", always_2d=True):
        if channels == 1:
            m = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        else:
            m = block[:, [0, min(1, block.shape[1] - 1)]]
        take = min(len(m), len(out) - filled)
        out[filled:filled + take] = m[:take]
        filled += take
        if take < len(m):  # a format whose length the header got wrong
            extra.append(m[take:].copy())
    return np.concatenate([out[:filled], *extra]) if extra or filled < len(out) else out


#: Bytes per sample of one channel as written (32-bit float WAV; 24-bit FLAC stays below it).
BYTES_PER_SAMPLE = 4
#: Room kept beyond the samples for headers and file system blocks, in bytes.
WRITE_MARGIN_BYTES = 1 << 16


def bytes_needed(samples: int, channels: int = 1) -> int:
    """An upper bound on the size of a file of ``samples`` samples of ``channels`` channels (wav or
    flac), in bytes."""
    return int(samples) * int(channels) * BYTES_PER_SAMPLE + WRITE_MARGIN_BYTES


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes a non-root user may still write where ``path`` goes (its nearest existing folder), or None."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def check_space(path: str | os.PathLike, samples: int, channels: int = 1) -> None:
    """Raise AudioFileError when the file system of ``path`` has less room than a file of
    ``samples`` samples of ``channels`` channels needs (:func:`bytes_needed`); the message gives
    both figures."""
    free, need = free_bytes(path), bytes_needed(samples, channels)
    if free is not None and free < need:
        raise AudioFileError(path, f"no space left on device: {_megabytes(free)} free in {Path(path).absolute().parent}, "
                                   f"about {_megabytes(need)} needed; free some space or write elsewhere")


def write_failure(path: str | os.PathLike, exc: BaseException, samples: int | None = None,
                  channels: int = 1) -> str:
    """Why writing ``path`` failed, in words: a full disk (with the free and needed megabytes when
    ``samples``, the file's whole length, is given), a read-only file system, a quota, or the error."""
    code = getattr(exc, "errno", None)
    free = free_bytes(path)
    full = code == errno.ENOSPC or (code is None and free is not None and free < WRITE_MARGIN_BYTES)
    if full:
        need = f", about {_megabytes(bytes_needed(samples, channels))} needed" if samples else ""
        return f"no space left on device: {_megabytes(free or 0)} free{need}"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    try:
        read_only = code == errno.EROFS or bool(os.statvfs(Path(path).absolute().parent).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return "the file system is read-only"
    return f"cannot write: {getattr(exc, 'strerror', None) or exc}"


def partial_path(path: str | os.PathLike) -> Path:
    """The name a file is written under until it is complete: ``NAME.partial`` beside it (visible, so
    the one thing a power cut or SIGKILL can leave behind is found and named for what it is)."""
    p = Path(path)
    return p.with_name(f"{p.name}.partial")


def save_audio(path: str | os.PathLike, y: np.ndarray, *, sample_rate: int) -> Path:
    """Write audio, ``(samples,)`` or ``(samples, channels)``, as wav (32-bit float) or flac (24-bit),
    chosen by suffix.

    The file is written to :func:`partial_path` and renamed, so the final name only ever holds a
    complete file; an exception or interruption (KeyboardInterrupt) on the way deletes the partial.

    Raises
    ------
    AudioFileError
        Unsupported suffix, or the folder cannot be written (the cause in words, :func:`write_failure`:
        a full disk, a read-only file system, a quota).
    """
    p = Path(path)
    fmt = WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise AudioFileError(p, f"cannot write '{p.suffix}' files; use one of {', '.join(WRITE_FORMATS)}")
    y = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"refusing to write NaN/Inf samples to {p}")
    tmp = partial_path(p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp), y, sample_rate, format=fmt[0], subtype=fmt[1])
        os.replace(tmp, p)
    except (OSError, sf.LibsndfileError) as exc:
        raise AudioFileError(p, write_failure(p, exc, len(y), 1 if y.ndim == 1 else y.shape[1])) from None
    finally:
        tmp.unlink(missing_ok=True)
    return p
