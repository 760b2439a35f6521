"""Each bin's levels: the distribution of a spectrogram's values bin by bin, as percentiles.

What :mod:`engine.synthesis.level_map` maps the engine's committed frames to. The frames the engine
commits are a residual plus a trend, both drawn apart and both moved by the optimiser; where a band is
one narrow steady source their sum spends frames far under the style's quietest (the dark forest's
frog: 0 in 13-18 % of the frames, ``docs/EXPERIMENTS.md`` section 29). A bin's percentiles say how
loud it is in its quietest and loudest frames, which its mean and spread do not. Pure functions of
float arrays; nothing of the recording's frames is kept but these statistics.
"""
from __future__ import annotations

import numpy as np

#: Percentiles kept per bin: 0, 1, ..., 100 (the quietest and the loudest frame included).
LEVELS = 101
#: Bins sorted at once: the sort works on a float64 copy, so a whole 5-minute spectrogram at once took 150 MB
#: more than the rest of a style's analysis (``tests/test_styles.py``); 64 bins of it take a few MB.
CHUNK_BINS = 64


def level_percentiles(log_mag: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Each bin's values at the probabilities ``k / (levels − 1)``, ``k = 0 … levels − 1``.

    Parameters
    ----------
    log_mag : np.ndarray [shape=(bins, frames)], finite
        A spectrogram (log1p magnitudes), at least 1 frame.
    levels : int >= 2

    Returns
    -------
    np.ndarray [shape=(bins, levels)], float32, non-decreasing along each row.
    """
    log_mag = np.asarray(log_mag)
    p = np.linspace(0.0, 1.0, levels)
    out = np.empty((log_mag.shape[0], levels), np.float32)
    for start in range(0, log_mag.shape[0], CHUNK_BINS):
        out[start:start + CHUNK_BINS] = np.quantile(log_mag[start:start + CHUNK_BINS], p, axis=1).T
    return out
