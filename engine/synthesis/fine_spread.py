"""Fine spread: each bin's level widened about its band's for the phase, in the bins where the styles are a noise.

A committed frame's deviation from each bin's mean level splits into what its envelope band does (the
band's deviation spread back over the band's bins) and the rest, the *fine* part: how the bins of a band
move against each other. The streaming phase plays both narrower than the frames hold them, the fine part
most: played, the bins of rain and the two night recordings move 0.3-1.0 dB less against their bands than in
their styles (per-bin standard deviation of the log power about the half-octave band's mean), while their
bands move as much as the styles' or more (``docs/EXPERIMENTS.md`` section 36). :func:`widened_within_bands`
widens the fine part's fast movement alone, by :func:`fine_gains`: :data:`FINE_SPREAD_GAIN` in the bins whose levels
spread in the style as a steady noise's do, and no more than the rest of the deviation where they spread wider (a
bin carrying syllables, chirps or swells: widened there, speech and birdsong went further from their sources
by the learned ear). The fine part's slow movement, its exponential mean over :data:`FINE_SLOW_SECONDS`, keeps the
rest of the deviation's gain: widened as well, it gave back most of what the wider fast part brings rain and
night_mediterran by the learned ear (``docs/EXPERIMENTS.md`` section 54).

Lifecycle of the streaming form: :meth:`FineSpread.prepare` forgets the carried mean, :meth:`FineSpread.process`
widens the next frames; it equals :func:`widened_within_bands` over all the frames at once.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

#: How much wider the fine part of a noise-like bin's level is played than the frames hold it, about the bin's mean
#: level (the whole deviation is widened by :data:`engine.synthesis.block_synth.PHASE_SPREAD_GAIN`; this is the
#: fast fine part's whole gain). ``docs/EXPERIMENTS.md`` sections 36 (1.6 on the whole fine part) and 54.
FINE_SPREAD_GAIN = 1.8
#: Time constant (s) of the exponential mean that is the fine part's slow movement, left unwidened: 8 frames of 11.6 ms
#: (``docs/EXPERIMENTS.md`` section 54: 4 and 16 frames brought rain and night_mediterran less).
FINE_SLOW_SECONDS = 0.093
#: Spread (dB, standard deviation over time of the bin's log power in the style) at or under which a bin counts as
#: a noise and gets all of :data:`FINE_SPREAD_GAIN`, and at or over which it gets none; linear between. A steady
#: noise's bins spread 5.6 dB (a Rayleigh magnitude's log power); rain's 5.7-6.4, speech's 13-22, seashore's swells 7.5-8.1.
#: Steadier bins (a held tone's, a silent band's) count as noise too: in a style whose partials hold most of its power
#: the partial floor keeps its frames from being widened at all (``keep`` in the block synthesiser).
NOISE_SPREAD_DB = (6.5, 8.0)
#: Magnitude (the analysis' |STFT| scale) added before taking decibels, so silent bins have a finite level.
MAGNITUDE_FLOOR = 1e-3


def fine_gains(levels: np.ndarray, base: float) -> np.ndarray:
    """Each bin's gain for its fine part, ``(bins, 1)`` float32, from the blend's levels.

    Parameters
    ----------
    levels : np.ndarray [shape=(bins, P)]
        Each bin's log1p magnitudes at ``P`` evenly spaced probabilities
        (:func:`engine.analysis.levels.level_percentiles`); their spread in dB says how noise-like the bin is.
    base : float > 0
        The gain of a bin that is not noise-like (the rest of the deviation's).

    Returns
    -------
    np.ndarray [shape=(bins, 1)], float32: from ``base`` to :data:`FINE_SPREAD_GAIN`.
    """
    spread = np.std(20.0 * np.log10(np.expm1(np.maximum(np.asarray(levels, dtype=np.float64), 0.0)) + MAGNITUDE_FLOOR),
                    axis=1)
    low, high = NOISE_SPREAD_DB
    noise = np.clip((high - spread) / (high - low), 0.0, 1.0)
    return (base + (FINE_SPREAD_GAIN - base) * noise)[:, None].astype(np.float32)


def widened_within_bands(frames: np.ndarray, centre: np.ndarray, gain: float | np.ndarray, envelope_map: np.ndarray,
                         bin_map: np.ndarray, *, slow_frames: float,
                         slow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` with the fast movement of the fine part of each bin's deviation from ``centre`` scaled by ``gain``.

    Parameters
    ----------
    frames : np.ndarray [shape=(bins, n)], finite, n >= 1
        Log1p magnitudes.
    centre : np.ndarray [shape=(bins, 1)]
        Each bin's mean level, the deviations' origin.
    gain : float > 0 or np.ndarray [shape=(bins, 1)]
        1 leaves the frames as they are.
    envelope_map : np.ndarray [shape=(bands, bins)]
        Each band's weights over the bins (rows sum to 1; :meth:`engine.analysis.spectral.SpectralConfig.envelope_map`).
    bin_map : np.ndarray [shape=(bins, bands)]
        The bands spread back over the bins (:func:`engine.synthesis.stereo.bins_from_bands`).
    slow_frames : float >= 1
        Time constant in frames of the exponential mean that is the fine part's slow movement (kept as it is).
    slow : np.ndarray [shape=(bins,)] or None
        That mean at the frame before ``frames`` (the carried tail of a stream); None: start from the first frame.

    Returns
    -------
    (np.ndarray [shape=(bins, n)], float32, not clipped (the caller keeps the frames in range);
     np.ndarray [shape=(bins,)], the mean at the last frame, to pass as ``slow`` with the next frames)
    """
    deviation = frames - centre
    fine = deviation - bin_map @ (envelope_map @ deviation)
    a = 1.0 / slow_frames
    start = fine[:, 0] if slow is None else slow
    mean, _ = scipy.signal.lfilter([a], [1.0, a - 1.0], fine, axis=1, zi=((1.0 - a) * start)[:, None])
    return (frames + (gain - 1.0) * (fine - mean)).astype(np.float32), mean[:, -1].copy()


class FineSpread:
    """:func:`widened_within_bands` over a stream of frames, carrying the fine part's slow mean between calls.

    Parameters
    ----------
    frame_seconds : float > 0
        Hop of the frames in seconds; the slow mean's time constant is :data:`FINE_SLOW_SECONDS`.
    """

    def __init__(self, frame_seconds: float) -> None:
        self.slow_frames = max(1.0, FINE_SLOW_SECONDS / frame_seconds)
        self._slow: np.ndarray | None = None

    def prepare(self) -> None:
        """Forget the carried mean: the next frames start a new stream."""
        self._slow = None

    def process(self, frames: np.ndarray, centre: np.ndarray, gain: float | np.ndarray, envelope_map: np.ndarray,
                bin_map: np.ndarray) -> np.ndarray:
        """The next ``frames`` ``(bins, n)`` widened (see :func:`widened_within_bands`), float32."""
        out, self._slow = widened_within_bands(frames, centre, gain, envelope_map, bin_map,
                                               slow_frames=self.slow_frames, slow=self._slow)
        return out
