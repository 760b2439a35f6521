"""Sounds as the evaluation reads them: mono ``(samples,)`` or multichannel ``(samples, channels)``.

Every metric accepts both layouts, as :func:`engine.analysis.audio_io.load_audio` returns them. The
single-spectrum metrics (envelope statistics, held-out Gram, mean spectrum, flatness, novelty) see one
magnitude per bin and frame: the root of the power averaged over the channels
(:func:`power_mean_stft`), so a mono sound and the same sound on two identical channels measure the
same, and two independent channels are not 3 dB quieter than one (as a downmix would make them).
:func:`level_db` gives both readings of a sound's level: the channels' mean power, and the power of their mono mix
(the learned embedding's reading, :mod:`engine.evaluation.embedding`), which two independent channels put 3 dB under.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.spectral import stft
from engine.errors import ParameterError

#: Mean square (full scale 1) under which a sound's level reads as this floor, -200 dB: silence has a finite level.
LEVEL_FLOOR = 1e-20
#: Seconds left out at each end of a sound when it is long enough: fades in and out are not part of
#: a texture, and the envelope statistics (skewness, kurtosis) react strongly to a 50 ms fade.
EDGE_SECONDS = 0.25


def as_channels(y: np.ndarray, *, role: str) -> np.ndarray:
    """``y`` as float64 ``(samples, channels)``; ParameterError naming ``role`` if it is not audio.

    Accepts ``(samples,)`` (one channel) and ``(samples, channels)`` floating, finite arrays.
    """
    y = np.asarray(y)
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating) or y.size == 0:
        raise ParameterError(f"{role} must be float audio of shape (samples,) or (samples, channels). "
                             f"Found {y.dtype} {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"{role} contains NaN or Inf samples")
    return (y[:, None] if y.ndim == 1 else y).astype(np.float64, copy=False)


def trim_edges(y: np.ndarray, *, sample_rate: int, need: int) -> np.ndarray:
    """``y`` without :data:`EDGE_SECONDS` at either end when at least ``need`` samples remain, else ``y``."""
    edge = int(EDGE_SECONDS * sample_rate)
    return y[edge:len(y) - edge] if len(y) - 2 * edge >= need else y


def mono_mix(y: np.ndarray, *, role: str) -> np.ndarray:
    """The channels' mean, float64 ``(samples,)`` (what a mono analysis of a stereo file hears)."""
    return as_channels(y, role=role).mean(axis=1)


def level_db(y: np.ndarray, *, role: str) -> tuple[float, float]:
    """``(channels, mono)``: the mean over the channels of each one's mean square, and the mean square of their mean
    (:func:`mono_mix`), in dB re full scale (floored at ``10 log10(LEVEL_FLOOR)``). Equal for one channel or two
    identical ones; two independent channels of equal power read 3 dB lower by the mono mix. ParameterError as
    :func:`as_channels`."""
    ch = as_channels(y, role=role)
    powers = (np.mean(ch ** 2), np.mean(ch.mean(axis=1) ** 2))
    return tuple(float(10.0 * np.log10(max(p, LEVEL_FLOOR))) for p in powers)


def power_mean_stft(y: np.ndarray, *, n_fft: int, hop: int, role: str) -> np.ndarray:
    """Magnitude ``sqrt(mean_c |STFT_c|²)`` over the channels, float64 ``(n_fft // 2 + 1, frames)``.

    The centred STFT of :func:`engine.analysis.spectral.stft` (periodic Hann) of each channel.
    """
    ch = as_channels(y, role=role)
    power = sum(np.abs(stft(ch[:, c], n_fft=n_fft, hop=hop)) ** 2 for c in range(ch.shape[1]))
    return np.sqrt(power / ch.shape[1])
