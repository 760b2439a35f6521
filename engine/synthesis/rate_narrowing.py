"""Rate narrowing: each band's level moves at each rate no more in what is played than in the styles.

The committed frames' band envelopes split into rate parts (:mod:`engine.analysis.envelope_rates`: the parts
near 11, 4, 1.5 and 0.5 Hz; what moves slower is the trend's and left alone). :class:`RateNarrowing` measures each
part's standard deviation in the mid (the channels' mean, what a mono mix and the learned ear hear) of the samples
the phase made, before the click layer's clicks are added (clicks move fast, and narrowing the frames for them
took campfire's envelopes 0.06 further), at the frames' own level (the spectral balance's gains divided out), each
divided by the gain it was played with, over :data:`ESTIMATE_SECONDS`. The next committed frames' parts are scaled
by ``style / played`` within [:data:`MIN_RATE_GAIN`, 1] (a part still in either, under
:data:`engine.synthesis.band_movement.STILL_MOVEMENT`, is left alone), each band's change spread over its bins in
proportion to their levels (:func:`engine.analysis.trend.level_spread_map`; spread evenly, it lifted the bins a
low-passed style leaves silent above 16.5 kHz from 61 to 47 dB under the total). Only ever narrower: a rate that moves too little is the band
movement's to widen (:mod:`engine.synthesis.band_movement`, which widens a band's whole movement).

The engine narrows twice: on the half-octave envelope bands, then on the twelfth-octave bands
(:meth:`engine.analysis.spectral.SpectralConfig.fine_envelope_map`; its change spread by level through a
pseudo-inverse, :data:`engine.analysis.trend.RANK_DEFICIENT_RCOND`, as low bands share bins). Neighbouring
twelfths of an octave can flicker against each other while their half-octave band stays still: jungle's did, 0.05
closer by the learned ear when narrowed. Over :data:`FINE_FAST_MAX_HZ` only the slow parts of a twelfth are
narrowed (:func:`fine_parts`): its fast parts narrowed took night_mediterran 0.05 further, and without its slow
parts birds went 0.02 further (``docs/EXPERIMENTS.md`` sections 57-58).

Why: the frames move at 1.5-16 Hz (periods longer than the in-flight window, shorter than the trend's values) more
than their styles do (night_mediterran's mid by 15 %), and the learned ear hears that movement most of all
(``docs/EXPERIMENTS.md`` sections 54-55: night_mediterran 0.30 → 0.20, birds 0.22 → 0.18).

Lifecycle as JUCE's: :meth:`RateNarrowing.prepare`; each block :meth:`RateNarrowing.process` on the committed frames
before the phase and :meth:`RateNarrowing.observe` of what the phase played; :meth:`RateNarrowing.release`.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.envelope_rates import RATE_SECONDS, RateSplit
from engine.synthesis.band_movement import movement_gains
from engine.synthesis.spectral_balance import PlayedBands

#: Smallest gain of a rate part: the estimate divides the gain out, and a gain near 0 would make it noise.
MIN_RATE_GAIN = 0.25
#: Time constant of the played parts' variance estimate, seconds.
ESTIMATE_SECONDS = 10.0
#: Played seconds before the first narrowing (the estimate of a fraction of a second is noise).
SETTLE_SECONDS = 0.9
#: Twelfth-octave bands centred at or over this, Hz, narrow only their slow parts (:func:`fine_parts`).
FINE_FAST_MAX_HZ = 2000.0
#: Rate parts (fastest first) those bands leave alone.
FINE_FAST_PARTS = 2


def fine_parts(centres_hz: np.ndarray) -> np.ndarray:
    """Which rate parts of the twelfth-octave bands centred at ``centres_hz`` (Hz) the fine stage narrows,
    ``(rates, bands)`` bool: all under :data:`FINE_FAST_MAX_HZ`, all but the :data:`FINE_FAST_PARTS` fastest over it."""
    parts = np.ones((len(RATE_SECONDS), len(centres_hz)), dtype=bool)
    parts[:FINE_FAST_PARTS, np.asarray(centres_hz) >= FINE_FAST_MAX_HZ] = False
    return parts


class RateNarrowing(PlayedBands):
    """Narrows the committed frames' band envelopes, rate by rate, to the styles' movement (see module doc;
    parameters as :class:`engine.synthesis.spectral_balance.PlayedBands`, ``block_seconds`` and ``frame_seconds`` > 0,
    a block's and a frame hop's duration in seconds, and ``parts`` ``(rates, bands)`` bool, the rate parts it narrows,
    e.g. :func:`fine_parts`; None: all)."""

    def __init__(self, envelope_map: np.ndarray, *, n_fft: int, hop: int, block_seconds: float,
                 frame_seconds: float, parts: np.ndarray | None = None) -> None:
        super().__init__(envelope_map, n_fft=n_fft, hop=hop)
        self._parts = np.ones((len(RATE_SECONDS), self._emap.shape[0]), dtype=bool) if parts is None else parts
        self._rate = block_seconds / ESTIMATE_SECONDS
        self._settle_blocks = int(np.ceil(SETTLE_SECONDS / block_seconds))
        self._frames_split = RateSplit(frame_seconds)
        self._played_split = RateSplit(frame_seconds)
        self.prepare()

    def prepare(self) -> None:
        """Forget what was played (a new stream): no narrowing until :data:`SETTLE_SECONDS` are played."""
        self._frames_split.reset()
        self._played_split.reset()
        self._frames.reset()
        self._played_var: np.ndarray | None = None  # (rates, bands) the played parts' variance, gains divided out
        self._blocks = 0
        self._gains = np.ones((len(RATE_SECONDS), self._emap.shape[0]))

    def release(self) -> None:
        """Drop the carried frames and the estimate."""
        self.prepare()

    @property
    def gains(self) -> np.ndarray:
        """Each rate part's gain of the last :meth:`process`, ``(rates, bands)``, in [:data:`MIN_RATE_GAIN`, 1]."""
        return self._gains.copy()

    def process(self, frames: np.ndarray, movement: np.ndarray | None, keep: float = 1.0,
                spread_map: np.ndarray | None = None) -> np.ndarray:
        """``frames`` ``(bins, n)`` (log1p magnitudes) with each band's rate parts narrowed towards the styles'
        ``movement`` ``(rates, bands)`` (:func:`engine.analysis.envelope_rates.rate_movement`; None: as they are),
        ``keep`` in [0, 1] of the way (the share of frames the engine makes); float32. Each band's change reaches
        its bins through ``spread_map`` ``(bins, bands)`` (:func:`engine.analysis.trend.level_spread_map`: a bin
        moves in proportion to its level, so the bins a band shares with a style's silence stay silent; None:
        :func:`engine.synthesis.stereo.bins_from_bands`, every bin alike)."""
        parts = self._frames_split.process(self._emap @ frames)
        gains = np.ones_like(self._gains)
        if movement is not None and self._played_var is not None and self._blocks > self._settle_blocks:
            gains = np.where(self._parts, movement_gains(movement, self._played_var, keep, MIN_RATE_GAIN, 1.0), 1.0)
        self._gains = gains
        if np.all(gains == 1.0):
            return np.asarray(frames, dtype=np.float32)
        change = np.einsum("kb,kbn->bn", gains - 1.0, parts)
        return (frames + (self._bin_map if spread_map is None else spread_map) @ change).astype(np.float32)

    def observe(self, samples: np.ndarray, gains: np.ndarray) -> None:
        """Take in a block of the phase's samples, ``(n,)`` or ``(n, channels)`` (their mid is analysed), made from
        frames under the last :meth:`process` and scaled by the per-bin magnitude ``gains`` ``(bins,)`` (the spectral
        balance's, :attr:`engine.synthesis.spectral_balance.SpectralBalance.applied`), which are divided out."""
        mid = samples.mean(axis=1) if samples.ndim == 2 else samples
        mags = self._frames.process(mid)
        if not mags:
            return
        level = np.log1p(mags[0] / np.maximum(gains, 1e-6)[:, None])
        variance = np.mean(self._played_split.process(self._emap @ level) ** 2, axis=2) / self._gains ** 2
        self._blocks += 1
        if self._played_var is None:
            self._played_var = variance
        else:
            rate = max(self._rate, 1.0 / self._blocks)
            self._played_var = self._played_var + rate * (variance - self._played_var)
