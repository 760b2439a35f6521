"""Test signals generated in code (the tests never read ../shared)."""
from __future__ import annotations

import numpy as np
from scipy import signal

SR = 22050


def bursts_and_drone(seconds: float = 4.0, *, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """Band-passed noise bursts (1.5-4 kHz, ~6 per second) over a 110 Hz drone; peak 0.5, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    nyq = sample_rate / 2
    sos = signal.butter(4, [1500 / nyq, 4000 / nyq], "band", output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    env = np.zeros(n)
    for start in rng.integers(0, n - 2000, size=int(6 * seconds)):
        env[start:start + 2000] += np.exp(-np.arange(2000) / 300.0)
    y = noise * env + 0.3 * np.sin(2 * np.pi * 110 * t) + 0.15 * np.sin(2 * np.pi * 220.5 * t)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def brick_band(x: np.ndarray, lo: float, hi: float, *, sample_rate: int = SR) -> np.ndarray:
    """``x`` with everything outside ``lo`` .. ``hi`` Hz removed (FFT brick wall)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sample_rate)
    spec[(f < lo) | (f >= hi)] = 0
    return np.fft.irfft(spec, len(x))


def band_split_stereo_noise(seconds: float, coherence_below: float, coherence_above: float, split_hz: float, *,
                            seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """White noise ``(n, 2)`` whose L/R coherence is ``coherence_below`` below ``split_hz``, ``coherence_above``
    above; peak 0.3, float32."""
    rng = np.random.default_rng(seed)
    common, own = rng.standard_normal((2, int(seconds * sample_rate)))

    def mixed(c: float) -> np.ndarray:
        return c * common + np.sqrt(1 - c * c) * own
    right = brick_band(mixed(coherence_below), 0, split_hz, sample_rate=sample_rate) + \
        brick_band(mixed(coherence_above), split_hz, sample_rate, sample_rate=sample_rate)
    y = np.stack([common, right], axis=1)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def tone(seconds: float = 2.0, freq: float = 440.0, *, sample_rate: int = SR) -> np.ndarray:
    """A sine at ``freq`` Hz, amplitude 0.5, float32."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def harmonic_tone(seconds: float = 2.0, f0: float = 220.0, *, sample_rate: int = SR) -> np.ndarray:
    """20 partials of ``f0`` (those below Nyquist) with 1/k amplitudes and a 5 Hz, 1 % vibrato; peak
    about 0.5, float32."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * f0 * (t - 0.01 / (2 * np.pi * 5) * np.cos(2 * np.pi * 5 * t))
    y = sum(np.sin(k * phase) / k for k in range(1, 21) if k * f0 * 1.01 < sample_rate / 2)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def crackle(seconds: float = 6.0, *, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """A rain-like texture: pink-ish noise under a random 2-8 Hz envelope, with ~20 broadband drops a
    second of random level and length; every 11.6 ms frame differs from every other. Peak 0.5, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    nyq = sample_rate / 2
    bed = signal.sosfilt(signal.butter(2, 3000 / nyq, output="sos"), rng.standard_normal(n))
    slow = signal.sosfilt(signal.butter(2, 8 / nyq, output="sos"), rng.standard_normal(n))
    y = bed * (1.0 + 0.8 * slow / np.abs(slow).max())
    for start in rng.integers(0, n - 4000, size=int(20 * seconds)):
        length = int(rng.integers(200, 4000))
        drop = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / 5))
        y[start:start + length] += float(rng.uniform(0.5, 3.0)) * drop
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def click_train(seconds: float = 6.0, *, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """About 8 broadband clicks a second at random times (noise bursts decaying in 2 ms) over a floor
    50 dB down; peak 0.5, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    y = 0.01 * rng.standard_normal(n)
    for start in rng.integers(0, n - 400, size=int(8 * seconds)):
        y[start:start + 400] += rng.standard_normal(400) * np.exp(-np.arange(400) / (0.002 * sample_rate))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def swells(seconds: float = 8.0, *, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """A seashore-like texture: broadband noise under slow swells (three sines of 0.23, 0.37 and 0.61 Hz
    at random phases in the log amplitude, about 25 dB from trough to crest), so its loudness rises and
    falls over seconds across all bands together. Peak 0.5, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    nyq = sample_rate / 2
    bed = signal.sosfilt(signal.butter(1, 2000 / nyq, output="sos"), rng.standard_normal(n))
    slow = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in (0.23, 0.37, 0.61))
    y = bed * np.exp(0.5 * slow)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def struck_notes(seconds: float = 6.0, *, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """Bell-like notes every 0.4 s (a celesta's case): seven steady partials of 440 Hz (1, 2, 3, 4.2, 5.4,
    6.8 and 8.1 times, amplitudes 1/k) decaying over 0.3 s, each note at a random level with a 5 ms noise burst at its
    onset; peak about 0.5, float32."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    y = np.zeros(n)
    burst = round(0.005 * sample_rate)
    for start in range(0, n, round(0.8 * sample_rate)):
        tt, level = t[:n - start], rng.uniform(0.5, 1.0)
        y[start:] += level * np.exp(-tt / 0.6) * sum(np.sin(2 * np.pi * 440 * ratio * tt + rng.uniform(0, 2 * np.pi)) / k
                                                     for k, ratio in enumerate((1, 2, 3, 4.2, 5.4, 6.8, 8.1), start=1))
        y[start:start + burst] += 1.0 * level * rng.standard_normal(min(burst, n - start))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)
