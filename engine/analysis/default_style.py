"""The embedded default style: a synthetic "rain on a warm drone" texture made from code, not a file.

It gives ``python main.py`` something to play on a fresh machine with no sound files: a bed of
band-passed noise, a few hundred short filtered noise drops per ten seconds, and a soft two-note
drone with slow beating. Deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np

DEFAULT_STYLE_NAME = "default: rain on a drone"


def _band(noise: np.ndarray, lo: float, hi: float, sample_rate: int) -> np.ndarray:
    """``noise`` band-limited to [lo, hi] Hz by zeroing FFT bins (numpy only: fast to import)."""
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(noise), 1.0 / sample_rate)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    return np.fft.irfft(spec, n=len(noise))


def default_style(*, sample_rate: int = 22050, seconds: float = 8.0, seed: int = 7) -> np.ndarray:
    """The default style as mono float32 audio, peak 0.5, ``round(seconds * sample_rate)`` samples."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    nyq = sample_rate / 2
    bed = _band(rng.standard_normal(n), 300.0, min(4000.0, 0.95 * nyq), sample_rate)
    bed *= 0.15 / np.std(bed)
    drops = np.zeros(n)
    for start in rng.integers(0, n - 2000, size=int(40 * seconds)):
        length = int(rng.integers(200, 1500))
        centre = rng.uniform(1500, min(7000, nyq * 0.9))
        burst = _band(rng.standard_normal(length), centre * 0.7, centre * 1.3, sample_rate)
        burst *= np.exp(-np.arange(length) / (length / 5)) / (np.std(burst) + 1e-12)
        drops[start:start + length] += burst * rng.uniform(0.2, 1.0)
    drone = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * a
                for f, a in ((110.0, 0.25), (110.7, 0.2), (165.0, 0.12), (220.4, 0.06)))
    drone *= 0.75 + 0.25 * np.sin(2 * np.pi * 0.2 * t)
    y = bed + drops + drone
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)
