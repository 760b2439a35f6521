"""Look-ahead peak limiter: the output chain's last gain, so that a loud texture is turned down, not bent.

The memoryless tanh knee it replaces (above -1.9 dBFS) bent the top of every loud wave and added its harmonics and
their intermodulation: a C major triad peaking 3.5 dB over full scale came out with -20.1 dB of its power away from
its partials (this limiter: -38.4 dB), and the corpus' celesta, whose texture swells past its style's loudest
moment, held 0.26 % of its samples over the knee (``docs/EXPERIMENTS.md`` section 63). This gain moves smoothly
instead, ahead of the peaks.

Per sample ``n`` (``p[n]`` the largest magnitude over the channels, ``L`` = :data:`LOOKAHEAD_SECONDS`):

* ``r[n] = min(1, CEILING / p[n])``, the gain the sample needs (:data:`CEILING`);
* ``m[n] = min(r[n − H .. n + L])``, the least gain of the next ``L`` samples and the last ``H``
  (:data:`HOLD_SECONDS`);
* ``a[n] = mean(m[n − L .. n])``: every ``m`` in that mean covers ``n``, so ``a[n] ≤ r[n]``, and the gain falls
  over ``L`` samples before a peak;
* ``1 − g[n] = max(1 − a[n], d (1 − g[n − 1]))`` with ``d = exp(−1 / (RELEASE_SECONDS · rate))``: the gain comes
  back up after the hold no faster than :data:`RELEASE_SECONDS`, and is never more than ``a`` lets it be, so
  ``g[n] ≤ r[n]``.

The output is the input ``L`` samples late, times ``g``: ``|y| ≤ CEILING`` up to rounding. The release's
recursion is solved per block as a running maximum in the log domain,
``log(1 − g[n]) = n log d + max_{k ≤ n} (log(1 − a[k]) − k log d)`` (with the carried value as ``k = −1``).
A stream limited block by block equals the whole signal limited at once, up to rounding (tested); the first ``L``
samples out are silence (the delay's). Lifecycle as JUCE's: :meth:`Limiter.prepare`, :meth:`Limiter.process`
per block, :meth:`Limiter.release`. Runs in the producer thread (:mod:`engine.live.output_chain`), never in the
audio callback.
"""
from __future__ import annotations

import numpy as np

#: Largest magnitude the limiter lets through, linear (-1 dBFS: the resampled signal's peaks between samples
#: have room).
CEILING = 10.0 ** (-1.0 / 20.0)
#: How far ahead the gain sees, s: the delay it adds, and the length of the gain's fall before a peak.
LOOKAHEAD_SECONDS = 0.002
#: A gain reduction under this is dropped at the end of a block, and with nothing near the ceiling the next
#: block passes with no gain computed (2.8 s after the last peak; the computation costs 185 µs a 23-ms block at
#: 48 kHz stereo, the check 40 µs).
NEGLIGIBLE_REDUCTION = 1e-12
#: How long the gain a peak needed is held before it returns, s: longer than a beat of two partials a tone
#: apart at middle C (15 ms), whose envelope the gain would otherwise follow.
HOLD_SECONDS = 0.02
#: Time constant of the gain's return after the hold, s (the triad above: 0.05 s -36.6 dB, 0.1 s -38.4 dB; without
#: the hold 0.05 s -28.8 dB, 0.2 s -36.0 dB).
RELEASE_SECONDS = 0.1


def lookahead_samples(sample_rate: int) -> int:
    """The limiter's delay at ``sample_rate`` Hz, samples: :data:`LOOKAHEAD_SECONDS`, at least one."""
    return max(1, int(round(LOOKAHEAD_SECONDS * sample_rate)))


class Limiter:
    """Samples ``(n,)`` or ``(n, channels)`` in, the same ``L`` samples late and limited out (see module doc).

    Parameters
    ----------
    sample_rate : int
        Rate of the samples it is given, Hz.
    channels : int
        Channels of each block (0 for mono blocks ``(n,)``).
    """

    def __init__(self, sample_rate: int, channels: int = 0) -> None:
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.lookahead = lookahead_samples(sample_rate)
        self._hold = int(round(HOLD_SECONDS * sample_rate))
        self._log_decay = -1.0 / (RELEASE_SECONDS * sample_rate)
        self.prepare()

    def prepare(self) -> None:
        """Start a new stream: silence before it, no gain reduction held."""
        shape = (self.lookahead,) if self.channels == 0 else (self.lookahead, self.channels)
        self._delayed = np.zeros(shape)  # the last L samples in, not yet out
        self._needed = np.ones(2 * self.lookahead + self._hold)  # r of the last 2 L + H samples in
        self._reduction = 0.0  # 1 − g of the last sample out

    def release(self) -> None:
        """Drop the stream state (:meth:`prepare` starts a new one)."""
        self.prepare()

    def process(self, x: np.ndarray) -> np.ndarray:
        """The block ``x`` (float, the shape :meth:`prepare` set) limited, :attr:`lookahead` samples late:
        as many samples out as in, float64, each within ±:data:`CEILING` (up to rounding)."""
        x = np.asarray(x, dtype=np.float64)
        n, span, hold = len(x), self.lookahead, self._hold
        if n == 0:
            return x.copy()
        peak = np.abs(x) if x.ndim == 1 else np.abs(x).max(axis=1)
        needed = np.concatenate([self._needed, np.minimum(1.0, CEILING / np.maximum(peak, 1e-30))])
        delayed = np.concatenate([self._delayed, x])
        self._delayed = delayed[n:]
        if self._reduction == 0.0 and needed.min() >= 1.0:  # nothing near the ceiling: no gain to compute
            self._needed = needed[n:]
            return delayed[:n]
        ahead = np.lib.stride_tricks.sliding_window_view(needed, hold + span + 1).min(axis=1)  # m, n + L values
        sums = np.concatenate([[0.0], np.cumsum(ahead)])
        smooth = (sums[span + 1:] - sums[:-span - 1]) / (span + 1)  # a of the n samples going out
        steps = np.arange(n) * self._log_decay
        held = np.log(self._reduction) + self._log_decay if self._reduction > 0.0 else -np.inf
        with np.errstate(divide="ignore"):
            wanted = np.log(np.maximum(1.0 - smooth, 0.0)) - steps
        reduction = np.exp(steps + np.maximum(held, np.maximum.accumulate(wanted)))
        self._reduction = float(reduction[-1]) if reduction[-1] > NEGLIGIBLE_REDUCTION else 0.0
        gain = 1.0 - reduction
        self._needed = needed[n:]
        return delayed[:n] * (gain if x.ndim == 1 else gain[:, None])
