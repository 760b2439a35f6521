"""Load, resample and save sound files; the errors a user sees for a bad file.

Anything libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, aiff, ...) loads; channels are mixed to
mono by averaging and the signal is resampled with soxr (high quality) to the engine rate.

Every failure raises :class:`engine.errors.AudioFileError` with a one-line message that names the
file and the problem: missing path, a directory, permission denied, empty file, corrupt or
unsupported format, no samples, NaN/Inf samples, all-zero (silent), shorter than the analysis needs.
"""
from __future__ import annotations

import contextlib
import os
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
    """Resample mono float audio from ``from_rate`` to ``to_rate`` Hz (soxr, high quality).

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


def load_audio(path: str | os.PathLike, *, sample_rate: int, min_samples: int = 0,
               max_seconds: float | None = None) -> np.ndarray:
    """Read a sound file as mono float32 at ``sample_rate`` Hz.

    The file is read and mixed to mono :data:`READ_BLOCK_FRAMES` frames at a time, so a long
    multichannel file never exists in memory as a whole (peak: the mono signal at the file's rate
    plus the resampled one).

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

    Returns
    -------
    np.ndarray [shape=(n,)], float32, finite, peak > -120 dBFS

    Raises
    ------
    AudioFileError
        With a one-line reason, for every kind of unusable file (see module doc).
    """
    p = Path(path)
    _check_readable(p)
    try:
        with _quiet_native_stderr(), sf.SoundFile(str(p)) as f:
            rate = f.samplerate
            if max_seconds is not None and f.frames > max_seconds * rate:
                raise AudioFileError(p, f"is {f.frames / rate / 60:.1f} min long; it may be at most "
                                        f"{max_seconds / 60:g} min here; cut it shorter")
            mono = _read_mono(f)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        raise AudioFileError(p, "not a readable sound file (corrupt or unsupported format)") from None
    except PermissionError:
        raise AudioFileError(p, "permission denied (file is not readable)") from None
    if mono.shape[0] == 0:
        raise AudioFileError(p, "contains no samples")
    if not np.all(np.isfinite(mono)):
        raise AudioFileError(p, "contains NaN or Inf samples")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise AudioFileError(p, "is silent (all samples are zero or below -120 dBFS)")
    y = resample(mono, int(rate), sample_rate)
    if len(y) < min_samples:
        raise AudioFileError(
            p, f"is too short: {len(y) / sample_rate:.3f} s, the analysis needs at least "
               f"{min_samples / sample_rate:.3f} s")
    return y


def _read_mono(f: sf.SoundFile) -> np.ndarray:
    """All of ``f`` mixed to mono (channel mean) as float32, read in blocks into one array."""
    out = np.empty(max(f.frames, 0), dtype=np.float32)
    filled, extra = 0, []
    for block in f.blocks(blocksize=READ_BLOCK_FRAMES, dtype="float32", always_2d=True):
        m = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        take = min(len(m), len(out) - filled)
        out[filled:filled + take] = m[:take]
        filled += take
        if take < len(m):  # a format whose length the header got wrong
            extra.append(m[take:].copy())
    return np.concatenate([out[:filled], *extra]) if extra or filled < len(out) else out


def partial_path(path: str | os.PathLike) -> Path:
    """The name a file is written under until it is complete: ``NAME.partial`` beside it (visible, so
    the one thing a power cut or SIGKILL can leave behind is found and named for what it is)."""
    p = Path(path)
    return p.with_name(f"{p.name}.partial")


def save_audio(path: str | os.PathLike, y: np.ndarray, *, sample_rate: int) -> Path:
    """Write mono audio as wav (32-bit float) or flac (24-bit), chosen by suffix.

    The file is written to :func:`partial_path` and renamed, so the final name only ever holds a
    complete file; an exception or interruption (KeyboardInterrupt) on the way deletes the partial.

    Raises
    ------
    AudioFileError
        Unsupported suffix, or the folder cannot be written.
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
    except OSError as exc:
        raise AudioFileError(p, f"cannot write: {exc.strerror or exc}") from None
    except sf.LibsndfileError as exc:
        raise AudioFileError(p, f"cannot write: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return p
