"""Reference texture generators that the neural synthesis has to beat.

* :func:`spectral_noise` — the style's mean magnitude spectrum with random phase: right timbre, no
  temporal structure at all (every frame is the same magnitude).
* :func:`paulstretch` — PaulStretch (P. Nasca, 2006): short windows read from the style at a slowly
  advancing position, magnitudes kept, phases randomised, overlap-added. Keeps the style's timbre
  and its slow evolution, smears everything faster than a window.

Both are pure functions: randomness comes from the ``rng`` passed in. Both return float32 audio of
exactly ``round(seconds * sample_rate)`` samples, with the style's channels (mono ``(n,)`` or
``(n, channels)``), at the style's RMS level (scaled down further only if a peak would exceed full
scale), so ``|x| <= 1``. A multichannel style keeps each channel's magnitudes under **one** set of
random phases shared by all channels (so the baselines' stereo image is as narrow as their
magnitudes allow: a partial in both channels stays in the middle).
"""
from __future__ import annotations

import numpy as np

from engine.errors import ParameterError
from engine.analysis.spectral import DEFAULT_HOP, DEFAULT_N_FFT, SpectralConfig, frame_count, hann_window, istft, stft


def _check(style: np.ndarray, *, seconds: float, sample_rate: int) -> tuple[np.ndarray, int]:
    """Validated style as float64 (its shape kept) and the output length in samples."""
    SpectralConfig(sample_rate=sample_rate)
    style = np.asarray(style)
    if style.ndim not in (1, 2) or not np.issubdtype(style.dtype, np.floating):
        raise ParameterError(f"style must be float audio of shape (n,) or (n, channels). "
                             f"Found {style.dtype} {style.shape}")
    if style.ndim == 2 and style.shape[1] > 2:
        raise ParameterError(f"style has {style.shape[1]} channels; the baselines take one or two (shape (n, 2))")
    if not np.all(np.isfinite(style)):
        raise ParameterError("style contains NaN or Inf samples")
    if not np.any(style):
        raise ParameterError("style is silent (all samples are zero)")
    if not (np.isfinite(seconds) and seconds > 0):
        raise ParameterError(f"seconds must be finite and > 0. Found: {seconds}")
    n = round(seconds * sample_rate)
    if n < 1:
        raise ParameterError(f"seconds gives no samples at {sample_rate} Hz. Found: {seconds}")
    return style.astype(np.float64), n


def _channels(style: np.ndarray) -> list[np.ndarray]:
    """The style's channels, each ``(n,)``."""
    return [style] if style.ndim == 1 else [style[:, c] for c in range(style.shape[1])]


def _with_random_phase(magnitudes: list[np.ndarray], rng: np.random.Generator, *, hop: int, n: int,
                       style: np.ndarray) -> np.ndarray:
    """Each channel's ``magnitude · exp(iφ)`` overlap-added (``istft`` at ``hop``, ``n`` samples), one
    ``φ`` uniform in [0, 2π) for all channels; the style's layout and level (:func:`_level`)."""
    phase = np.exp(2j * np.pi * rng.random(magnitudes[0].shape))
    out = [istft(m * phase, hop=hop, length=n) for m in magnitudes]
    return _level(out[0] if style.ndim == 1 else np.stack(out, axis=1), style=style)


def _level(y: np.ndarray, *, style: np.ndarray) -> np.ndarray:
    """``y`` scaled to the style's RMS, then down to peak 1 if it clips; float32."""
    y = y * (np.sqrt(np.mean(style ** 2)) / max(np.sqrt(np.mean(y ** 2)), 1e-30))
    peak = np.max(np.abs(y))
    if peak > 1.0:
        y = y / peak
    return y.astype(np.float32)


def spectral_noise(style: np.ndarray, *, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Spectral-noise baseline: the style's mean STFT magnitude under fresh random phases.

    Every frame of an STFT (n_fft 1024, hop 256) gets the style's time-averaged magnitude
    ``mean_t |X[f, t]|`` ``(513,)`` with phases uniform in [0, 2π); :func:`engine.analysis.spectral.istft`
    overlap-adds them.

    Parameters
    ----------
    style : np.ndarray [shape=(n,) or (n, 2)], floating, finite, not silent
        Audio, any length.
    seconds : float > 0
        Output duration in seconds.
    sample_rate : int
        Rate of the style and the output in Hz.
    rng : np.random.Generator
        Source of the phases.

    Returns
    -------
    np.ndarray [shape=(round(seconds * sample_rate),) or (..., channels)], float32, |x| <= 1
    """
    style, n = _check(style, seconds=seconds, sample_rate=sample_rate)
    frames = frame_count(n, hop=DEFAULT_HOP)
    magnitudes = [np.repeat(np.abs(stft(y, n_fft=DEFAULT_N_FFT, hop=DEFAULT_HOP)).mean(axis=1)[:, None], frames, axis=1)
                  for y in _channels(style)]
    return _with_random_phase(magnitudes, rng, hop=DEFAULT_HOP, n=n, style=style)


def paulstretch(style: np.ndarray, *, seconds: float, sample_rate: int, rng: np.random.Generator,
                window_seconds: float = 0.25) -> np.ndarray:
    """PaulStretch-style texture of any length (Nasca 2006).

    The output is a sequence of Hann windows of ``window_seconds`` (rounded to an even number of
    samples ``w``) placed every ``w / 4`` samples (75 % overlap). Window ``k`` of ``K`` reads the style
    at position ``k / (K − 1) · (len(style) − w)``: the read position advances evenly from the start
    to the end of the style over the whole output, so the style is stretched (or compressed) to the
    requested duration. Each window keeps its magnitude spectrum, gets uniform random phases, and is
    overlap-added with squared-window normalisation (:func:`engine.analysis.spectral.istft`).

    Parameters
    ----------
    style : np.ndarray [shape=(n,) or (n, 2)], floating, finite, not silent
        Audio, at least one window long.
    seconds : float > 0
        Output duration in seconds.
    sample_rate : int
        Rate of the style and the output in Hz.
    rng : np.random.Generator
        Source of the phases.
    window_seconds : float > 0
        Window length in seconds (0.25 s is 5512 samples at 22050 Hz); at least 16 samples.

    Returns
    -------
    np.ndarray [shape=(round(seconds * sample_rate),) or (..., channels)], float32, |x| <= 1

    Raises
    ------
    ParameterError
        Bad audio or settings, or a style shorter than one window.
    """
    style, n = _check(style, seconds=seconds, sample_rate=sample_rate)
    if not (np.isfinite(window_seconds) and window_seconds > 0):
        raise ParameterError(f"window_seconds must be finite and > 0. Found: {window_seconds}")
    w = 2 * round(window_seconds * sample_rate / 2)
    if w < 16:
        raise ParameterError(f"window_seconds gives {w} samples at {sample_rate} Hz; need at least 16. "
                             f"Found: {window_seconds}")
    if len(style) < w:
        raise ParameterError(f"style is shorter than one window: {len(style)} samples < {w} "
                             f"({window_seconds} s at {sample_rate} Hz)")
    hop = w // 4
    frames = frame_count(n, hop=hop)
    starts = np.round(np.linspace(0, len(style) - w, frames)).astype(np.int64)
    magnitudes = [np.abs(np.fft.rfft(y[starts[:, None] + np.arange(w)] * hann_window(w), axis=1)).T
                  for y in _channels(style)]
    return _with_random_phase(magnitudes, rng, hop=hop, n=n, style=style)
