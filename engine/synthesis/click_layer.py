"""Click layer: new clicks at a blend's rate, added to the phase's samples (:mod:`engine.analysis.clicks`).

Each click is white noise under an envelope (an attack of :data:`ATTACK_SECONDS`, then the style's
exponential decay), then filtered by the style's mean click spectrum times the half-octave profile of one of
the clicks found in the style (filtering after the envelope keeps a style's low-pass edge: the other way
round a 3 ms envelope smears the spectrum over it). Profiles are dealt from a shuffled deck, every one once
before any twice: where a few clicks hold a band, random draws made its level a lottery (one of campfire's 52
crackles holds 85 % of its clicks' power above 11 kHz; drawn at random it is missing from one 15 s render in
23, and four seeds' top octaves were -7.4 to +2.3 dB off the unseen half's; docs/EXPERIMENTS.md section 39).
A click's expected energy is the style's mean click energy times its profile's. It is placed between the
channels as the style's click that gave its profile was: its two channels' correlation, level difference and
energy over the mid's (:func:`engine.synthesis.stereo.mix_rows`, a second burst of the same shape as the
independent part; width 0 gives one channel twice, as for the frames). Clicks come as a Poisson process at each style's rate times its
blend weight: a morph moves from one style's clicks to the other's. A click that runs past the end of a
block is carried into the next one, so no click is cut whatever the block size (prepare / process /
release). The engine's frames leave the clicks' share of the power to them
(:func:`engine.analysis.clicks.bed_gains`). Runs in the engine's producer thread, never the audio callback.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.fft

from engine.analysis.clicks import ClickTarget
from engine.synthesis.stereo import mix_rows

__all__ = ["ClickLayer"]

#: Rise time of a click, s.
ATTACK_SECONDS = 0.0002
#: A click lasts this many decay time constants (its tail is then 52 dB down).
CLICK_TAUS = 6.0


class ClickLayer:
    """New clicks for a stream of blocks (see the module doc).

    Parameters
    ----------
    sample_rate : int
        The engine's rate, Hz.
    channels : int
        1 or 2.
    """

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._tail = np.zeros((0, self.channels))
        self._rng = np.random.default_rng(0)
        self._decks: dict[ClickTarget, list[int]] = {}

    def prepare(self, seed: int) -> None:
        """Start a new stream: no click carried over, fresh decks, draws from ``seed``."""
        self._tail = np.zeros((0, self.channels))
        self._rng = np.random.default_rng([int(seed), 0xC11C])
        self._decks = {}

    def release(self) -> None:
        """Drop the carried tail and the decks."""
        self._tail = np.zeros((0, self.channels))
        self._decks = {}

    def process(self, n: int, targets: Sequence[ClickTarget | None], weights: Sequence[float], width: float) -> np.ndarray:
        """The clicks of the next ``n`` samples ``(n, channels)`` float64 (zeros without clicks).

        ``targets`` and ``weights`` are the blend's styles' clicks (None for a style without) and weights
        (summing to 1); ``width`` in [0, 1] scales each click's place between the channels from the middle
        (0: both channels the same) to the style's.
        """
        clicks = []
        self._decks = {t: self._decks.get(t, []) for t in targets if t is not None}  # a style that left: its deck too
        for target, weight in zip(targets, weights):
            if target is not None and weight > 0:
                count = self._rng.poisson(target.rate_hz * weight * n / self.sample_rate)
                clicks += [(target, int(p)) for p in self._rng.integers(0, n, count)]
        longest = max([len(self._tail)] + [self._length(t) for t, _ in clicks])
        out = np.zeros((n + longest, self.channels))
        out[:len(self._tail)] += self._tail
        for target, start in clicks:
            wave = self._place(target, self._deal(target), width)
            out[start:start + len(wave)] += wave
        self._tail = self._trim(out[n:])
        return out[:n]

    @staticmethod
    def _trim(rest: np.ndarray) -> np.ndarray:
        """``rest`` without its trailing silent samples."""
        nonzero = np.flatnonzero(np.any(rest != 0.0, axis=1))
        return rest[: nonzero[-1] + 1] if len(nonzero) else rest[:0]

    def _length(self, target: ClickTarget) -> int:
        """Samples of one click: its decay and, either side, the spectral shape's ringing (one fine window), rounded
        up to a length whose FFT is fast (a length with a large prime factor, as 5804 = 4 · 1451, took 9 times as
        long: 0.77 against 0.09 ms, docs/EXPERIMENTS.md section 50)."""
        ring = int(np.ceil(2.0 * (len(target.freqs) - 1) * self.sample_rate / (2.0 * target.freqs[-1])))
        return scipy.fft.next_fast_len(int(np.ceil(CLICK_TAUS * target.decay_seconds * self.sample_rate)) + 2 * ring,
                                       real=True)

    def _click(self, target: ClickTarget, row: int) -> np.ndarray:
        """One click ``(m,)`` of profile ``row``: noise under the decay's envelope, then shaped by the style's
        click spectrum times the profile (in that order, so that the short envelope does not smear the spectrum
        over a style's low-pass edge); its expected energy spectrum is ``energy · shape · profile``."""
        m = self._length(target)
        ring = (m - int(np.ceil(CLICK_TAUS * target.decay_seconds * self.sample_rate))) // 2
        t = np.arange(m - 2 * ring) / self.sample_rate
        envelope = np.exp(-t / target.decay_seconds) * np.minimum(1.0, t / ATTACK_SECONDS)
        burst = np.zeros(m)
        burst[ring:m - ring] = self._rng.standard_normal(len(t)) * envelope
        profile = target.profiles[row].astype(np.float64)
        band = np.clip(np.searchsorted(target.edges, target.freqs, side="right") - 1, 0, len(profile) - 1)
        shape = target.shape * profile[band]
        energy = target.energy * float(shape.sum())
        freqs = np.fft.rfftfreq(m, 1.0 / self.sample_rate)
        density = np.interp(freqs, target.freqs, shape, right=0.0)
        gain = np.sqrt(density / max(float(np.mean(density)), 1e-30))  # keeps the expected energy
        return np.fft.irfft(np.fft.rfft(burst) * gain, m) * np.sqrt(energy / np.sum(envelope ** 2))

    def _deal(self, target: ClickTarget) -> int:
        """The next profile's row from ``target``'s deck, shuffled anew when it is spent."""
        deck = self._decks[target]
        if not deck:
            deck.extend(self._rng.permutation(len(target.profiles)).tolist())
        return deck.pop()

    def _place(self, target: ClickTarget, row: int, width: float) -> np.ndarray:
        """Click ``row`` of ``target`` ``(m, channels)`` at its image and ``width``."""
        common = self._click(target, row)
        if self.channels == 1:
            return common[:, None]
        a, b, g_left, g_right = mix_rows(target.image, width)[:, row]
        own = self._click(target, row) * b if b > 0 else np.zeros_like(common)
        return np.stack([g_left * (a * common + own), g_right * (a * common - own)], axis=1)
