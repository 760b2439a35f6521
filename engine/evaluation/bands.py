"""Third-octave bands (base 2): centres ``1000 · 2^(k/3)`` Hz, edges at ``centre · 2^(±1/6)``.

The band grid of the top-octave level (:mod:`engine.evaluation.spectrum_shape`) and of the L/R
coherence (:mod:`engine.evaluation.stereo`).
"""
from __future__ import annotations

import numpy as np

from engine.errors import ParameterError


def third_octave_bands(lo_hz: float, hi_hz: float, *, nyquist_hz: float) -> np.ndarray:
    """Edges ``(bands, 2)`` in Hz of the third-octave bands whose centres lie in [``lo_hz``, ``hi_hz``]
    and whose upper edge is at most ``nyquist_hz``; ``(0, 2)`` when none fits.

    Raises
    ------
    ParameterError
        ``lo_hz`` not positive or above ``hi_hz``.
    """
    if not (0 < lo_hz <= hi_hz):
        raise ParameterError(f"band range must satisfy 0 < lo <= hi. Found: {lo_hz} .. {hi_hz} Hz")
    k = np.arange(np.ceil(3 * np.log2(lo_hz / 1000) - 1e-9), np.floor(3 * np.log2(hi_hz / 1000) + 1e-9) + 1)
    centres = 1000.0 * 2.0 ** (k / 3)
    edges = np.stack([centres * 2 ** (-1 / 6), centres * 2 ** (1 / 6)], axis=1)
    return edges[edges[:, 1] <= nyquist_hz + 1e-9].reshape(-1, 2)


def band_matrix(freqs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """0/1 matrix ``(bands, bins)``: bin ``f`` belongs to band ``b`` when ``lo_b <= f < hi_b``."""
    f = np.asarray(freqs, dtype=np.float64)
    return ((f[None, :] >= edges[:, :1]) & (f[None, :] < edges[:, 1:])).astype(np.float64)
