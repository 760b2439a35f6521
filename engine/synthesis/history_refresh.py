"""History refresh: what the step's statistics remember of the engine's own output is forgotten every few seconds.

The step matches statistics over a window of committed history and in-flight frames (the band envelopes' over the
last :data:`engine.synthesis.step_graph.LIVE_DURATIONS_MS` ``history``, the trend's over ``coarse_history``). At the
start that history is noise, and the in-flight frames and trend values are made to carry the style's statistics
themselves; once the history is the engine's own output, which already holds them, the step only continues it, and
the texture drifts towards its bypass: the learned ear put every recording further after 45 s of play than in its
first 15 s (``docs/EXPERIMENTS.md`` section 47). A texture whose optimiser had run 28 s before the first sample
scored like one after 45 s, and forgetting one history or the other brought recordings back to their start (section
48). So every :data:`ENVELOPE_REFRESH_SECONDS` of play the envelope history is refilled with new noise frames, and
every :data:`TREND_REFRESH_SECONDS` or so (an interval drawn anew each time, :data:`TREND_REFRESH_SPREAD`) the
trend's statistics see new trend noise in place of its history, as at the start;
committed values then take their places again one by one. The history only feeds the statistics, so the played level
does not step at a refresh (section 48); but the step's loss jumps, and for about half a second it moves the frames
next to be played more: on a steady sound the level's 50-ms movement doubles then, and rises again 3-4 s later, when
the frames made then leave the statistics' window (section 51; ``docs/bench_refresh.py`` measures it).

The new envelope frames are the blend's frame noise (:class:`engine.synthesis.frame_noise.FrameNoise`, a second one
with its own random stream, so the new frames' noise goes on undisturbed), drawn a block's worth at a time while
the optimiser runs: the whole history at once took 56 ms, more than two blocks.

The trend's history also serves ``freeze`` (new trend values drawn from it), so it is kept as played, and
:meth:`HistoryRefresh.seen` gives the statistics their view of it. The envelope history feeds the statistics only, and
the engine refills it in place.

Lifecycle as JUCE's: :meth:`HistoryRefresh.prepare` at a stream's start, :meth:`retarget` when the blend changes,
:meth:`start` when the synthesiser fills its windows; each
played block :meth:`due`, and while optimising :meth:`draw` and, when due, :meth:`refill` and :meth:`forget_trend`; each
committed trend value :meth:`committed`; each step :meth:`seen`.
"""
from __future__ import annotations

import numpy as np

from engine.analysis.targets import StyleTarget
from engine.synthesis.frame_noise import FrameNoise

#: Seconds of play between two refreshes of the band-envelope history the step's statistics span (3 s long).
ENVELOPE_REFRESH_SECONDS = 5.0
#: Mean seconds of play between two refreshes of what the trend's statistics see of its history (8.9 s long): 8 s
#: kept the learned ear's median after 45 s of play at its first 15 s' (6 s and 10 s did not; section 49).
TREND_REFRESH_SECONDS = 8.0
#: Each interval between two trend refreshes is drawn uniformly within ± this share of :data:`TREND_REFRESH_SECONDS`:
#: a texture swells after a trend refresh and sags some seconds later, and at a fixed 8 s that was a pulse (the
#: celesta's mean 0.5-s level over the 8-s cycle ranged over 20 dB, speech's 12, seashore's 16;
#: docs/EXPERIMENTS.md section 64).
TREND_REFRESH_SPREAD = 0.5


class HistoryRefresh:
    """When the step's statistics forget the engine's own output, and the trend history they see (module doc).

    Parameters
    ----------
    block_seconds : float
        Duration of one block, seconds (> 0): the refresh periods are counted in played blocks.
    envelope_map : np.ndarray [shape=(bands, bins)]
        The envelope bands' weights over the bins (:meth:`engine.analysis.spectral.SpectralConfig.envelope_map`).
    """

    def __init__(self, block_seconds: float, envelope_map: np.ndarray) -> None:
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be > 0. Found: {block_seconds}")
        self._envelope_blocks = max(1, round(ENVELOPE_REFRESH_SECONDS / block_seconds))
        self._trend_blocks = max(1, round(TREND_REFRESH_SECONDS / block_seconds))
        self._emap = np.asarray(envelope_map, dtype=np.float32)
        self._noise = FrameNoise()
        self.prepare()

    def prepare(self) -> None:
        """A new stream: forget the target and everything drawn (:meth:`start` begins the counting)."""
        self._noise.prepare()
        self.start(0, np.zeros((self._emap.shape[0], 1), np.float32))

    def start(self, seed: int, history: np.ndarray) -> None:
        """The synthesiser (re)starts from variation ``seed`` with the envelope history ``history`` ``(bands, H)``
        (noise): nothing forgotten, the count of played blocks at 0, the new envelope frames going on from it."""
        self._rng = np.random.default_rng([int(seed), 1])  # a stream of its own beside the synthesiser's
        self._timing = np.random.default_rng([int(seed), 2])  # the trend refreshes' intervals
        self._next_trend = self._trend_interval()
        self._envelopes = np.array(history, dtype=np.float32)
        self._blocks = 0
        self._trend_noise: np.ndarray | None = None  # (bands, Hc) what the trend's statistics saw at the last refresh
        self._kept = 0  # trend values committed since then

    def due(self) -> tuple[bool, bool]:
        """Count one played block; returns whether the envelope history and the trend's history are to be
        forgotten now."""
        self._blocks += 1
        trend = self._blocks >= self._next_trend
        if trend:
            self._next_trend += self._trend_interval()
        return self._blocks % self._envelope_blocks == 0, trend

    def _trend_interval(self) -> int:
        """Played blocks until the next trend refresh: :data:`TREND_REFRESH_SECONDS` ± :data:`TREND_REFRESH_SPREAD`."""
        shortest = max(1, round(self._trend_blocks * (1.0 - TREND_REFRESH_SPREAD)))
        return int(self._timing.integers(shortest, max(shortest, round(self._trend_blocks * (1.0 + TREND_REFRESH_SPREAD))) + 1))

    def retarget(self, target: StyleTarget, purity: float) -> None:
        """Draw the new envelope frames from ``target`` (as :meth:`engine.synthesis.frame_noise.FrameNoise.retarget`)."""
        self._noise.retarget(target, purity)

    def draw(self, n: int, upper: np.ndarray) -> None:
        """Draw ``n`` new noise frames (each bin in ``[0, upper]``, ``(bins,)``) into the envelopes :meth:`refill`
        gives, the oldest ``n`` out. RuntimeError before :meth:`retarget`."""
        new = self._emap @ self._noise.process(n, self._rng, upper)
        self._envelopes = np.concatenate([self._envelopes[:, n:], new], axis=1)

    def refill(self) -> np.ndarray:
        """A new envelope history ``(bands, H)``: the band envelopes of the last ``H`` frames :meth:`draw` made."""
        return self._envelopes.copy()

    def forget_trend(self, noise: np.ndarray) -> None:
        """From now on the trend's statistics see ``noise`` ``(bands, Hc)`` (normalised trend values) in place of
        its history, less the values committed after this call."""
        self._trend_noise, self._kept = np.asarray(noise, dtype=np.float32), 0

    def committed(self) -> None:
        """One trend value was committed to the history."""
        self._kept += 1

    def seen(self, history: np.ndarray) -> np.ndarray:
        """What the trend's statistics see of ``history`` ``(bands, Hc)``, oldest first: the values committed since
        the last :meth:`forget_trend` after as much of its noise as they have not yet pushed out (``history``
        itself once they fill it)."""
        if self._trend_noise is None:
            return history
        n = history.shape[1] - self._kept
        if n <= 0:
            self._trend_noise = None
            return history
        seen = np.array(history, dtype=np.float32)
        seen[:, :n] = self._trend_noise[:, self._kept:]
        return seen
