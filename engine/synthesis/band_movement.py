"""Band movement: each band's level moves in what is played as much as in the styles.

A band's *envelope* is its mean log1p magnitude frame by frame (the envelope bands of
:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`); its *movement* is that envelope's standard
deviation over time. The committed frames' envelopes move as much as the style's, but the streaming phase
plays frames that no signal has, and what it plays moves less: speech's bands below 400 Hz, in and out of
its syllables, by about a third less, which the learned ear hears as a texture further from the speech
(``docs/EXPERIMENTS.md`` section 34).

:class:`BandMovement` measures each band's movement in the samples as played (the click layer's clicks
included; each channel's, averaged over the channels; at the frames' own level, the spectral balance's gains
divided out) over :data:`MOVEMENT_SECONDS`, each frame's deviation divided by the widening it was played with, so
the estimate is of the engine's own movement and the widening its inverse (no feedback loop that could ring, as
in the spectral balance). The next committed frames' band envelopes are widened about their running mean (over
:data:`MEAN_SECONDS`) by ``style / played`` within [1, :data:`MAX_MOVEMENT_GAIN`], the widening spread over each
band's bins (:func:`engine.synthesis.stereo.bins_from_bands`), and then scaled so that each band keeps the power
it had over the same seconds: a wider spread of log levels is louder on average (a band in bursts played 1.4-2.6
dB over its style, the spectral balance still catching up), and the level is the balance's to keep. Only ever
wider: narrowing the bands of rain, the dark forest and seashore, which play more movement than their styles,
took them further from their sources by the learned ear (section 33). The styles' movement is
:func:`style_movement`.

Lifecycle as JUCE's: :meth:`BandMovement.prepare`; each block :meth:`BandMovement.process` on the committed
frames before the phase and :meth:`BandMovement.observe` of what was played; :meth:`BandMovement.release`.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.targets import StyleTarget
from engine.synthesis.spectral_balance import PlayedBands

#: Time constant of the played movement's estimate, seconds.
MOVEMENT_SECONDS = 10.0
#: Time constant of the running mean the committed frames' band envelopes are widened about, seconds.
MEAN_SECONDS = 2.3
#: Played seconds before the first widening (the estimate of a fraction of a second is noise).
SETTLE_SECONDS = 0.9
#: Largest widening of a band's movement (1.5 measured; speech's low bands ask for up to 1.5).
MAX_MOVEMENT_GAIN = 1.5
#: Movement (log1p units) under which a band counts as still, in the style or as played: it is left alone.
STILL_MOVEMENT = 1e-3


def style_movement(target: StyleTarget) -> np.ndarray | None:
    """Each envelope band's movement in a (blended) style target, ``(bands,)`` float64, log1p units: the
    standard deviations of its detrended envelope and of its coarse envelope (the trend,
    :mod:`engine.analysis.trend`) added in quadrature. None for a target without them."""
    if target.envelope is None or target.coarse is None:
        return None
    fast = target.envelope[1].numpy().astype(np.float64)
    slow = target.coarse[1].numpy().astype(np.float64)
    return np.sqrt(fast * fast + slow * slow)


def movement_gains(movement: np.ndarray, played_var: np.ndarray, keep: float, low: float,
                   high: float) -> np.ndarray:
    """Gains ``style / played`` of movement, clipped to [``low``, ``high``] and taken ``keep`` in [0, 1] of the way
    from 1, for the styles' ``movement`` and the played ``played_var`` (its variance), any shape alike; 1 where either
    is under :data:`STILL_MOVEMENT`."""
    played = np.sqrt(played_var)
    moving = (played > STILL_MOVEMENT) & (movement > STILL_MOVEMENT)
    ratio = np.divide(movement, played, out=np.ones_like(played), where=moving)
    return 1.0 + keep * (np.clip(ratio, low, high) - 1.0)


class BandMovement(PlayedBands):
    """Widens the committed frames' band envelopes to the styles' movement (see module doc; parameters as
    :class:`engine.synthesis.spectral_balance.PlayedBands`, a band's envelope being its row of the map times a frame,
    and ``block_seconds`` > 0, the duration of one block in seconds)."""

    def __init__(self, envelope_map: np.ndarray, *, n_fft: int, hop: int, block_seconds: float) -> None:
        super().__init__(envelope_map, n_fft=n_fft, hop=hop)
        self._rate = block_seconds / MOVEMENT_SECONDS
        self._mean_rate = block_seconds / MEAN_SECONDS
        self._settle_blocks = int(np.ceil(SETTLE_SECONDS / block_seconds))
        self.prepare()

    def prepare(self) -> None:
        """Forget what was played (a new stream): no widening until :data:`SETTLE_SECONDS` are played."""
        bands = self._emap.shape[0]
        self._played_mean: np.ndarray | None = None  # (bands,) the played envelopes' running mean
        self._played_var: np.ndarray | None = None  # (bands,) their variance, divided by the widening
        self._blocks = 0
        self._frames_mean: np.ndarray | None = None  # (bands,) the committed frames' envelopes' running mean
        self._power: np.ndarray | None = None  # (2, bands) running mean power of the frames before / after widening
        self._widening = np.ones(bands)  # what the frames being played were widened by
        self._frames.reset()

    def release(self) -> None:
        """Drop the estimates."""
        self.prepare()

    @property
    def widening(self) -> np.ndarray:
        """Each band's widening of the last :meth:`process`, ``(bands,)``, in [1, :data:`MAX_MOVEMENT_GAIN`]."""
        return self._widening.copy()

    def process(self, frames: np.ndarray, movement: np.ndarray | None, keep: float = 1.0) -> np.ndarray:
        """``frames`` ``(bins, n)`` (log1p magnitudes) with each band's envelope widened about its running
        mean towards the style's ``movement`` (:func:`style_movement`; None: as they are), ``keep`` in [0, 1]
        of the way (the share of frames the engine makes, as for the phase's widening); float32."""
        bands = self._emap @ frames
        if self._frames_mean is None:
            self._frames_mean = bands.mean(axis=1)
        self._frames_mean = self._frames_mean + self._mean_rate * (bands.mean(axis=1) - self._frames_mean)
        widening = np.ones(len(bands))
        if movement is not None and self._played_var is not None and self._blocks > self._settle_blocks:
            widening = movement_gains(movement, self._played_var, keep, 1.0, MAX_MOVEMENT_GAIN)
        self._widening = widening
        widened = frames + self._bin_map @ ((widening - 1.0)[:, None] * (bands - self._frames_mean[:, None]))
        power = np.stack([self._emap @ np.mean(np.expm1(np.maximum(x, 0.0)) ** 2, axis=1) for x in (frames, widened)])
        self._power = power if self._power is None else self._power + self._mean_rate * (power - self._power)
        if np.all(widening == 1.0):
            return np.asarray(frames, dtype=np.float32)
        kept = np.sqrt(np.divide(self._power[0], self._power[1], out=np.ones(len(bands)), where=self._power[1] > 0))
        return np.log1p((self._bin_map @ kept)[:, None] * np.expm1(np.maximum(widened, 0.0))).astype(np.float32)

    def observe(self, samples: np.ndarray, gains: np.ndarray) -> None:
        """Take in a block of played samples, ``(n,)`` or ``(n, channels)``, made from frames under the last
        :meth:`process` and then scaled by the per-bin magnitude ``gains`` ``(bins,)`` (the spectral balance's,
        :attr:`engine.synthesis.spectral_balance.SpectralBalance.applied`): each bin is divided by its gain, so
        the movement is measured at the frames' own level, where the style's was (log1p compresses quiet
        values; in a crackling band the balance leaves most of the power to the click layer)."""
        mags = self._frames.process(samples)
        if not mags:
            return
        scale = 1.0 / np.maximum(gains, 1e-6)[:, None]
        envelopes = [self._emap @ np.log1p(m * scale) for m in mags]
        mean = np.mean([e.mean(axis=1) for e in envelopes], axis=0)
        if self._played_mean is None:
            self._played_mean = mean
            self._played_var = np.mean([e.var(axis=1) for e in envelopes], axis=0) / self._widening ** 2
        else:
            rate = max(self._rate, 1.0 / (self._blocks + 1))
            deviation = np.mean([((e - self._played_mean[:, None]) / self._widening[:, None]) ** 2 for e in envelopes],
                                axis=(0, 2))
            self._played_var = self._played_var + rate * (deviation - self._played_var)
            self._played_mean = self._played_mean + rate * (mean - self._played_mean)
        self._blocks += 1
