"""Output stage after the phase: DC blocker, gain ramp, resampling to the device rate, limiter, fades, clip.

Mono blocks ``(n,)`` or channels last ``(n, channels)`` (the same for a whole stream); every stage
works on each channel alike.

Lifecycle: :meth:`OutputChain.prepare` → :meth:`process` per block → (:meth:`start_fade_out`, more
:meth:`process` until :attr:`faded_out`). Runs in the producer thread, never in the audio callback.

* DC blocker: one-pole high-pass ``y[n] = x[n] − x[n−1] + R·y[n−1]``, corner ``dc_hz`` (10 Hz).
* Gain: linear 0..1, ramped over the first 10 ms of a block from the previous value, so moves
  never click and land quickly.
* Resampling: :class:`engine.live.resample.StreamResampler` (1.5 ms delay), engine rate → device rate.
* Limiter: :class:`engine.live.limiter.Limiter`, a look-ahead gain that keeps peaks under -1 dBFS (2 ms
  delay).
* Fades: a raised-cosine fade-in of ``fade_ms`` at start; :meth:`start_fade_out` fades to silence (after the
  limiter, so a stream that has faded out has played its fade).
* A hard clip at ±1 as the last guarantee: ``|sample| ≤ 1`` always, as float32.
"""
from __future__ import annotations

import numpy as np

from engine.live.limiter import Limiter
from engine.live.resample import StreamResampler


#: Length of a gain change's ramp.
GAIN_RAMP_SECONDS = 0.01


def _column(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``v`` ``(n,)`` shaped to multiply ``like`` ``(n,)`` or ``(n, channels)`` sample by sample."""
    return v.reshape(-1, *([1] * (like.ndim - 1)))


class OutputChain:
    """Engine-rate samples in, bounded device-rate float32 samples out (see module doc)."""

    def __init__(self, engine_rate: int, device_rate: int, *, dc_hz: float = 10.0, fade_ms: float = 50.0) -> None:
        self.engine_rate = int(engine_rate)
        self.device_rate = int(device_rate)
        self._r = float(np.exp(-2 * np.pi * dc_hz / engine_rate))
        self._fade_len = max(1, int(fade_ms * 1e-3 * device_rate))
        self._gain_ramp = max(1, int(GAIN_RAMP_SECONDS * engine_rate))

    def prepare(self) -> None:
        """Reset filter, resampler and fades."""
        self._y_prev = 0.0
        self._x_prev = 0.0
        self._gain = None
        self._resampler = StreamResampler(self.engine_rate, self.device_rate)
        self._resampler.prepare()
        self._fade_in_pos = 0
        self._fade_out_pos: int | None = None
        self._limiter: Limiter | None = None  # made for the first block's channels

    @property
    def fade_samples(self) -> int:
        """Length of the fades at the device rate."""
        return self._fade_len

    @property
    def faded_out(self) -> bool:
        """True once a fade-out has reached silence."""
        return self._fade_out_pos is not None and self._fade_out_pos >= self._fade_len

    def start_fade_out(self) -> None:
        """From the next :meth:`process` on, fade to silence over ``fade_ms``."""
        if self._fade_out_pos is None:
            self._fade_out_pos = 0

    def _dc_block(self, x: np.ndarray) -> np.ndarray:
        """``y[n] = d[n] + R y[n−1]`` with ``d = diff(x)``, solved in closed form per chunk of 1024 samples.

        Within a chunk ``y[n] = R^{n+1} (y₋₁ + Σ_{k≤n} d[k] R^{−k−1})``; chunks keep ``R^{−k}`` small
        (18.5 at 22050 Hz) so float64 matches scipy's lfilter to ~1e-14 (tested), and scipy.signal
        stays off the live path (its import costs about a second at start-up).
        """
        diff = np.empty_like(x)
        diff[0] = x[0] - self._x_prev
        diff[1:] = x[1:] - x[:-1]
        self._x_prev = x[-1].copy()
        y = np.empty_like(x)
        for start in range(0, len(x), 1024):
            d = diff[start:start + 1024]
            powers = _column(self._r ** np.arange(1, len(d) + 1), x)
            y[start:start + len(d)] = powers * (self._y_prev + np.cumsum(d / powers, axis=0))
            self._y_prev = y[start + len(d) - 1]
        return y

    def _ramp(self, n: int, pos: int, rising: bool) -> tuple[np.ndarray, int]:
        idx = np.clip(np.arange(pos, pos + n) / self._fade_len, 0.0, 1.0)
        ramp = 0.5 - 0.5 * np.cos(np.pi * idx)
        return (ramp if rising else 1.0 - ramp), pos + n

    def process(self, x: np.ndarray, gain: float) -> np.ndarray:
        """One block: ``x`` at the engine rate (any length ≥ 0), ``gain`` linear 0..1."""
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return np.zeros(x.shape, dtype=np.float32)
        y = self._dc_block(x)
        start = gain if self._gain is None else self._gain
        ramp = np.full(len(y), gain)
        n = min(len(y), self._gain_ramp)
        ramp[:n] = np.linspace(start, gain, n, endpoint=False)
        y = y * _column(ramp, y)
        self._gain = gain
        y = self._resampler.process(y)
        if self._limiter is None:
            self._limiter = Limiter(self.device_rate, 0 if y.ndim == 1 else y.shape[1])
        y = self._limiter.process(y)
        if self._fade_in_pos < self._fade_len:
            ramp, self._fade_in_pos = self._ramp(len(y), self._fade_in_pos, True)
            y = y * _column(ramp, y)
        if self._fade_out_pos is not None:
            ramp, self._fade_out_pos = self._ramp(len(y), self._fade_out_pos, False)
            y = y * _column(ramp, y)
        return np.clip(y, -1.0, 1.0).astype(np.float32)
