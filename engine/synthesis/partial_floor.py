"""Partial floor: a blend's steady partials played as steady sinusoids would be, over a floor as quiet as
its styles'.

The engine keeps each bin's distribution, but not two things a partial is made of
(``docs/EXPERIMENTS.md`` section 24):

* how loud the floor between the partials is in the same frame as the partials: the celesta's floor is
  far under its partials except at onsets, the engine's frames hold it about 17 dB higher most of the
  time, and the phase plays that as a hiss between the partials;
* the shape of each partial's lobe: a sinusoid gives its 5 bins fixed proportions (the window's transform
  at the partial's frequency), the engine's bins move apart from frame to frame, and no signal has such
  frames, so the phase spreads them.

:class:`PartialFloor` keeps a running estimate, over :data:`FLOOR_SECONDS`, of the distribution of the
committed frames' floor level (:func:`engine.analysis.partials.floor_levels`) and scales each frame's
floor bins so that its level moves to the blended styles' distribution at the same probability (a
quantile mapping of one number a frame; the estimate is of the frames before the mapping, so there is no
loop). Each floor bin's power is then smoothed over frames by :data:`FLOOR_SMOOTHING` (in dB): the optimiser's
steps and the new frames' noise make the floor bins jump from frame to frame, no signal has such frames, and the
phase plays those jumps as a hiss between the partials that the recordings do not have (``docs/EXPERIMENTS.md``
section 26). It then gives each partial's lobe the shape of a sinusoid (:func:`engine.analysis.partials.lobe_shapes`)
with the lobe's power in the frame and at the frame's own peak (:func:`engine.analysis.partials.peak_offsets`),
both smoothed over frames by :data:`LOBE_SMOOTHING` (power in dB), so a partial glides as a vibrato does. Bins below and above the partials, and styles without partials
(:func:`engine.analysis.partials.partial_bins`: noise, rain, speech, field recordings), are left as they are.

Lifecycle as JUCE's: :meth:`prepare`; :meth:`process` on each block's committed magnitudes; :meth:`release`.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.one_pole import one_pole
from engine.analysis.partials import (FLOOR_PROBABILITIES, LOBE_HALF_WIDTH, POWER_FLOOR, FloorTarget, floor_bins,
                                      floor_levels, lobe_shapes, peak_offsets)

#: Time constant of the running estimate of the frames' floor distribution, seconds.
FLOOR_SECONDS = 5.0
#: Edges of the histogram the estimate is kept in, natural log of power ratios (0.1 apart, 0.43 dB):
#: an average of the blocks' histograms is the distribution of all their frames, where an average of
#: their quantiles is not (a block of onsets and a block of decays have very different floors).
FLOOR_EDGES = np.linspace(-40.0, 10.0, 501)
#: Pole of the one-pole smoothing of each lobe's log power and peak from frame to frame (0: none; 0.8 is a
#: time constant of 4.5 frames, 52 ms at 44.1 kHz; 0.5 and 0.9 were further from the recordings by the
#: learned ear or the envelope statistics, docs/EXPERIMENTS.md section 24).
LOBE_SMOOTHING = 0.8
#: Pole of the one-pole smoothing of each floor bin's log power from frame to frame (a time constant of 14
#: frames, 160 ms at 11.6 ms frames). Over four seeds the celesta's flatness came from 12.1 dB off the recording
#: to 1.8 dB and the violin's from 5.5 to -1.9; 0.9 left the celesta 3.2 dB off, 0.95 made its envelope
#: statistics 0.011 worse and the violin peakier than the recording (-2.5 dB) (docs/EXPERIMENTS.md section 26).
FLOOR_SMOOTHING = 0.93


class PartialFloor:
    """Quantile mapping of the floor between partials and lobes shaped as sinusoids' (see module doc).

    Parameters
    ----------
    block_seconds : float > 0
        Duration of one block of committed frames, seconds.
    """

    def __init__(self, *, block_seconds: float) -> None:
        self._rate = block_seconds / FLOOR_SECONDS
        self.prepare()

    def prepare(self) -> None:
        """Forget the frames seen (a new stream)."""
        self._estimate: np.ndarray | None = None  # share of the frames' floor levels in each histogram cell
        self._partials: np.ndarray | None = None
        self._lobe_state: np.ndarray | None = None  # (2 peaks, 1) carried state of the lobes' smoothing
        self._floor_state: np.ndarray | None = None  # (floor bins, 1) carried state of the floor's smoothing
        self._blocks = 0

    def release(self) -> None:
        """Drop the estimate."""
        self.prepare()

    def process(self, magnitudes: np.ndarray, target: FloorTarget | None) -> np.ndarray:
        """The committed ``magnitudes`` ``(bins, frames)`` (linear, >= 0) with each frame's floor moved
        towards ``target`` (:func:`engine.analysis.partials.blend_floors`) and its partials' lobes shaped;
        the same array when ``target`` is None or there are no frames.

        A change of the partials' bins starts a new estimate (the floor is then other bins).
        """
        if target is None:
            self._partials = None
            return magnitudes
        if magnitudes.shape[1] == 0:
            return magnitudes
        if self._partials is None or not np.array_equal(target.partials, self._partials):
            self._partials, self._estimate, self._lobe_state, self._floor_state = target.partials, None, None, None
            self._blocks = 0
            self._floor = floor_bins(target.partials)
        out = magnitudes.copy()
        out[self._floor] *= self._floor_gains(magnitudes, target)[None, :]
        level = np.log(out[self._floor] ** 2 + POWER_FLOOR)
        smooth, self._floor_state = one_pole(level, self._floor_state, FLOOR_SMOOTHING)
        out[self._floor] = np.exp(0.5 * (level + target.strength * (smooth - level)))
        lobes = target.starts[:, None] + np.arange(2 * LOBE_HALF_WIDTH + 1)[None, :]
        if len(lobes):
            power = out[lobes] ** 2  # (peaks, bins of a lobe, frames)
            db = 10.0 * np.log10(power[:, LOBE_HALF_WIDTH - 1:LOBE_HALF_WIDTH + 2] + POWER_FLOOR)
            track = np.concatenate([np.log(power.sum(axis=1) + POWER_FLOOR), peak_offsets(db[:, 0], db[:, 1], db[:, 2])])
            track, self._lobe_state = one_pole(track, self._lobe_state, LOBE_SMOOTHING)
            level, offset = np.split(track, 2)
            shaped = np.exp(0.5 * level)[:, None, :] * np.moveaxis(lobe_shapes(offset), -1, 1)
            out[lobes] += target.strength * (shaped - out[lobes])
        return out

    def _floor_gains(self, magnitudes: np.ndarray, target: FloorTarget) -> np.ndarray:
        """Per-frame magnitude gains ``(frames,)`` of the floor bins."""
        levels = floor_levels(magnitudes, target.partials)
        seen = np.histogram(np.clip(levels, FLOOR_EDGES[0], FLOOR_EDGES[-1]), FLOOR_EDGES)[0] / len(levels)
        self._blocks += 1
        rate = max(self._rate, 1.0 / self._blocks)
        self._estimate = seen if self._estimate is None else self._estimate + rate * (seen - self._estimate)
        quantiles = np.interp(FLOOR_PROBABILITIES, np.concatenate([[0.0], np.cumsum(self._estimate)]), FLOOR_EDGES)
        return np.exp(0.5 * target.strength * (np.interp(levels, quantiles, target.quantiles) - levels))
