"""Fine spread: each bin's level widened about its band's for the phase, more than the band's own level.

A committed frame's deviation from each bin's mean level splits into what its envelope band does (the
band's deviation spread back over the band's bins) and the rest, the *fine* part: how the bins of a band
move against each other. The streaming phase plays both narrower than the frames hold it, the fine part
most: played, the bins of rain and the two night recordings move 0.4-0.7 dB less against their bands than in
their styles (per-bin standard deviation of the log power about the half-octave band's mean), while their
bands move as much as the styles' or more (``docs/EXPERIMENTS.md`` section 36). :func:`widened_within_bands`
widens the fine part alone.
"""
from __future__ import annotations

import numpy as np

#: How much wider the fine part of each bin's level is played than the frames hold it, about each bin's mean level
#: (the whole deviation is widened by :data:`engine.synthesis.block_synth.PHASE_SPREAD_GAIN` first; this is the
#: fine part's whole gain). ``docs/EXPERIMENTS.md`` section 36.
FINE_SPREAD_GAIN = 1.45


def widened_within_bands(frames: np.ndarray, centre: np.ndarray, gain: float, envelope_map: np.ndarray,
                         bin_map: np.ndarray) -> np.ndarray:
    """``frames`` with the fine part of each bin's deviation from ``centre`` scaled by ``gain``.

    Parameters
    ----------
    frames : np.ndarray [shape=(bins, n)], finite
        Log1p magnitudes.
    centre : np.ndarray [shape=(bins, 1)]
        Each bin's mean level, the deviations' origin.
    gain : float > 0
        1 leaves the frames as they are.
    envelope_map : np.ndarray [shape=(bands, bins)]
        Each band's weights over the bins (rows sum to 1; :meth:`engine.analysis.spectral.SpectralConfig.envelope_map`).
    bin_map : np.ndarray [shape=(bins, bands)]
        The bands spread back over the bins (:func:`engine.synthesis.stereo.bins_from_bands`).

    Returns
    -------
    np.ndarray [shape=(bins, n)], float32; not clipped (the caller keeps the frames in range).
    """
    deviation = frames - centre
    band = bin_map @ (envelope_map @ deviation)
    return (frames + (gain - 1.0) * (deviation - band)).astype(np.float32)
