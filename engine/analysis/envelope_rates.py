"""Envelope rates: a band envelope's movement split by how fast it moves.

A cascade of exponential means with the time constants :data:`RATE_SECONDS` (fastest first) splits an envelope
``e`` (a band's mean log1p magnitude frame by frame, :meth:`engine.analysis.spectral.SpectralConfig.envelope_map`)
into *rate parts*: ``e − m1``, ``m1 − m2``, … ``m3 − m4``, where ``m1`` is the exponential mean of ``e``, ``m2``
that of ``m1`` and so on. The parts add up to ``e − m4``: what is left under the slowest mean is the trend's
(:mod:`engine.analysis.trend`, 93 ms values). The parts' edges lie near 11, 4, 1.5 and 0.5 Hz: the learned ear hears
the steady textures' level movement at 1.5-16 Hz (``docs/EXPERIMENTS.md`` sections 54-55).

:class:`RateSplit` is the stream object (its means carried from call to call, :func:`scipy.signal.lfilter`'s
state); :func:`rate_movement` is its offline twin's summary of a whole style. Each mean starts at the envelope's
first frame, so a stream does not begin with a step.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

#: Time constants of the cascade's exponential means, seconds, fastest first.
RATE_SECONDS = (0.0145, 0.039, 0.106, 0.313)
#: Bands :func:`rate_movement` splits at a time: a five-minute style's fine bands at once took its analysis
#: over three times its spectrogram's memory (``tests/test_styles.py``).
CHUNK_BANDS = 16


class RateSplit:
    """The cascade over ``(bands, n)`` envelopes, carried from call to call; ``frame_seconds`` > 0 is the
    frames' hop in seconds. Stream object: :meth:`reset` starts a new stream."""

    def __init__(self, frame_seconds: float) -> None:
        self._alpha = tuple(1.0 / (1.0 + seconds / frame_seconds) for seconds in RATE_SECONDS)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the means start at the next envelopes' first frame."""
        self._state: list[np.ndarray] | None = None  # lfilter's state of each mean, (bands, 1)

    def process(self, envelopes: np.ndarray) -> np.ndarray:
        """Rate parts ``(rates, bands, n)`` float64 of ``envelopes`` ``(bands, n)`` (n >= 1), fastest first;
        their sum is the envelopes less the slowest mean."""
        x = np.asarray(envelopes, dtype=np.float64)
        if self._state is None:
            self._state = [(1.0 - a) * x[:, :1] for a in self._alpha]
        smooth = [x]
        for k, a in enumerate(self._alpha):
            mean, self._state[k] = lfilter([a], [1.0, a - 1.0], smooth[-1], axis=1, zi=self._state[k])
            smooth.append(mean)
        return np.stack([faster - slower for faster, slower in zip(smooth[:-1], smooth[1:])])


def rate_movement(envelopes: np.ndarray, frame_seconds: float) -> np.ndarray:
    """Each band's movement per rate part over a whole sound, ``(rates, bands)`` float64, log1p units: the
    standard deviation of each part of ``envelopes`` ``(bands, n)``, leaving out the first three slowest time
    constants' frames (the means' start) while at least half the frames remain. :data:`CHUNK_BANDS` bands are
    split at a time (bounded memory)."""
    skip = min(envelopes.shape[1] // 2, int(3 * RATE_SECONDS[-1] / frame_seconds))
    return np.concatenate([RateSplit(frame_seconds).process(envelopes[i:i + CHUNK_BANDS])[:, :, skip:].std(axis=2)
                           for i in range(0, envelopes.shape[0], CHUNK_BANDS)], axis=1)
