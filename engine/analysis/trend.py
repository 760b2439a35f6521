"""The slow part of a sound's band envelopes (its swells), and the spectrogram with it taken out.

A texture like a seashore is fast noise under slow, broadband swells of seconds. The live engine
makes the two at two rates (:mod:`engine.synthesis.block_synth`): coarse in-flight band
envelopes at one value per ``factor`` frames (the *trend*), and the per-bin frames around it (the
*residual*). The style is analysed the same way: the statistics of its coarse band envelopes are
the trend's target, and every other statistic (conv Grams, mean spectrum, spread, fine band
envelopes) is taken on the residual, ``s − P (trend − mean)``, so the per-window statistics no longer
pull each 0.5 s window of a swell back to the recording's global level (measured in
``docs/EXPERIMENTS.md`` section 9).

All functions are pure numpy. Units: log1p magnitude; ``bands`` are the rows of
:meth:`engine.analysis.spectral.SpectralConfig.envelope_map` (16 half-octave bands at 22050 Hz),
``factor`` in frames (8 frames = 93 ms at hop 256).
"""
from __future__ import annotations

import numpy as np

from engine.errors import ParameterError


def band_spread_map(envelope_map: np.ndarray) -> np.ndarray:
    """``P`` ``(bins, bands)`` float32, the pseudo-inverse of the envelope map ``E`` ``(bands, bins)``.

    Adding ``P d`` to frames moves their band envelopes by exactly ``d`` (``E P = I`` for the
    full-rank ``E`` of the half-octave bands), spreading each band's move over its bins.
    """
    return np.linalg.pinv(np.asarray(envelope_map, dtype=np.float64)).astype(np.float32)


def coarse_envelopes(band_envelopes: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``band_envelopes`` ``(bands, frames)`` over consecutive runs of ``factor`` frames.

    Returns ``(bands, frames // factor)`` float32 (a trailing partial run is dropped).

    Raises
    ------
    ParameterError
        If ``factor`` < 1 or there are fewer than ``factor`` frames.
    """
    e = np.asarray(band_envelopes, dtype=np.float32)
    n = e.shape[1] // factor if factor >= 1 else 0
    if n < 1:
        raise ParameterError(f"coarse envelopes need at least {factor} frames (factor >= 1). Found: {e.shape[1]}")
    return e[:, :n * factor].reshape(e.shape[0], n, factor).mean(axis=2)


def trend(coarse: np.ndarray, factor: int, start: int, stop: int) -> np.ndarray:
    """The coarse envelopes ``(bands, n)`` interpolated to frames ``start .. stop − 1``, ``(bands, stop − start)``.

    Coarse value ``k`` sits at the centre of its run, frame ``(k + 0.5) factor − 0.5``; linear in
    between, held flat before the first and after the last centre.
    """
    centres = (np.arange(coarse.shape[1]) + 0.5) * factor - 0.5
    t = np.arange(start, stop, dtype=np.float64)
    return np.stack([np.interp(t, centres, row) for row in coarse]).astype(np.float32)


def detrended(log_mag: np.ndarray, coarse: np.ndarray, factor: int, spread_map: np.ndarray,
              start: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames ``start:stop`` of ``log_mag`` ``(bins, frames)`` with the trend's deviation from its mean
    taken out: ``s − P (trend − mean(coarse))``, float32 (may dip slightly below 0)."""
    stop = log_mag.shape[1] if stop is None else stop
    dev = trend(coarse, factor, start, stop) - coarse.mean(axis=1, keepdims=True)
    return (np.asarray(log_mag[:, start:stop], dtype=np.float32) - spread_map @ dev).astype(np.float32)


def layout_weights(factor: int) -> np.ndarray:
    """Weights ``w`` ``(factor,)`` with which the engine lays a coarse value out over its ``factor`` frames.

    Frame ``p`` of coarse period ``k`` gets ``(1 − w_p) c_{k−1} + w_p c_k``, ``w_p = (p + 0.5) / factor``:
    the same linear interpolation as :func:`trend`, half a period later (the engine needs ``c_k``
    before period ``k`` starts).
    """
    return ((np.arange(factor) + 0.5) / factor).astype(np.float32)
