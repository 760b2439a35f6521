"""Level map: each bin of the committed frames moved, frame by frame, from the frames' own running
distribution to the blended styles' levels in that bin.

The committed frames are a residual plus the trend laid over it, drawn apart and moved by the optimiser;
their sum can spend frames far under the style's quietest level in a bin (clipped at 0 there: the dark
forest's frog in 13-18 % of its frames, which its recording never is) and keeps neither the style's skew
nor its tails (``docs/EXPERIMENTS.md`` section 29). :class:`LevelMap` keeps a running estimate, over
:data:`LEVEL_SECONDS`, of how the frames it is given fall between each pair of neighbouring percentiles
of the blend's levels (:func:`engine.analysis.levels.level_percentiles`), and maps each value to the
blend's level at the same probability (linear within a cell; values beyond the outermost percentiles
go to the middle of what lies there), widened about the bin's mean level where the caller asks. A
quantile map keeps each bin's order in time and gives it the style's distribution. The estimate is of
the frames before the mapping, so there is no loop; it starts at the blend's own distribution (the map
starts as the identity), and when the blend moves it is carried over to the new percentiles as the
distribution it describes (:meth:`LevelMap.retarget`).

The per-bin passes are compiled (numba, ``nogil``): as numpy calls, about twenty small ones a block over
1025 bins × 101 levels, they cost about 1 ms a block inside the stream (section 29); compiled, 0.13 ms
(section 30).

Lifecycle as JUCE's: :meth:`LevelMap.prepare`, :meth:`LevelMap.retarget` when the blend changes,
:meth:`LevelMap.process` on each block's committed frames, :meth:`LevelMap.release`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: Time constant of the running estimate of the committed frames' distribution in each bin, seconds.
LEVEL_SECONDS = 10.0
#: Blocks between two readings of the estimate into each bin's cumulative shares (what the map reads): reading
#: it every block cost as much again as the map, and 8 blocks are 0.19 s of a 10 s estimate.
FOLD_BLOCKS = 8
#: Weight of a new frame above which the estimate's counts are scaled back (every few minutes).
RENORMALISE_ABOVE = 1e6


@njit(nogil=True, cache=True)
def _count_and_map(frames: np.ndarray, edges: np.ndarray, levels: np.ndarray, shares: np.ndarray, counts: np.ndarray,
                   weight: float, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Count ``frames`` ``(bins, n)`` at ``weight`` each into the cells between ``edges`` ``(bins, P)``
    (``counts`` ``(bins, P + 1)``: cell ``c`` lies between edges ``c − 1`` and ``c``), and write to ``out`` each
    value's level in ``levels`` ``(bins, P)`` at its probability under ``shares`` ``(bins, P + 2)`` (the share
    of the counts in the cells below each cell, :func:`_fold`)."""
    bins, n = frames.shape
    p = edges.shape[1]
    for k in range(bins):
        e = edges[k]
        for j in range(n):
            x = frames[k, j]
            cell = np.searchsorted(e, x, side="right")  # e[cell - 1] <= x < e[cell]: a cell is never empty
            counts[k, cell] += weight
            frac = 0.5 if cell == 0 or cell == p else (x - e[cell - 1]) / (e[cell] - e[cell - 1])
            pos = (shares[k, cell] + frac * (shares[k, cell + 1] - shares[k, cell])) * (p - 1)
            i = min(int(pos), p - 2)
            out[k, j] = levels[k, i] + (pos - i) * (levels[k, i + 1] - levels[k, i])


@njit(nogil=True, cache=True)
def _fold(counts: np.ndarray, shares: np.ndarray) -> None:  # pragma: no cover - compiled
    """Each bin's share of ``counts`` ``(bins, P + 1)`` in the cells below each cell, into ``shares``
    ``(bins, P + 2)`` (0 below the first, 1 below the one past the last)."""
    bins, cells = counts.shape
    for k in range(bins):
        total = counts[k].sum()
        acc = 0.0
        shares[k, 0] = 0.0
        for c in range(cells):
            acc += counts[k, c]
            shares[k, c + 1] = acc / total


@njit(nogil=True, cache=True)
def _carried(counts: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``counts`` ``(bins, P + 1)`` over the cells of edges ``old`` ``(bins, P)`` redistributed over those of
    ``new``: the distribution they describe (linear between edges, what lies beyond the outermost edges at
    them) read at the new edges, in one walk along both."""
    bins, p = old.shape
    out = np.empty_like(counts)
    for k in range(bins):
        total = counts[k].sum()
        below = counts[k, 0]  # the mass below old edge i
        i = 0
        prev = 0.0
        for m in range(p):
            x = new[k, m]
            while i < p and old[k, i] <= x:
                i += 1
                below += counts[k, i] if i < p else 0.0
            if i == 0:
                share = 0.0
            elif i == p:
                share = total - counts[k, p] if x == old[k, p - 1] else total
            else:  # old[i - 1] <= x < old[i]
                frac = (x - old[k, i - 1]) / (old[k, i] - old[k, i - 1])
                share = below - counts[k, i] + frac * counts[k, i]
            out[k, m] = share - prev
            prev = share
        out[k, p] = total - prev
    return out


class LevelMap:
    """The committed frames' levels mapped to the blend's, bin by bin (see module doc).

    Parameters
    ----------
    frame_seconds : float
        Duration of one frame (the STFT hop), seconds: sets the estimate's forgetting.
    """

    def __init__(self, frame_seconds: float) -> None:
        self.forget = float(np.exp(-frame_seconds / LEVEL_SECONDS))
        self.prepare()

    def prepare(self) -> None:
        """Forget the estimate; the next :meth:`retarget` starts it at the blend's own distribution."""
        self._edges: np.ndarray | None = None  # (bins, P) float32: the blend's levels
        self._counts: np.ndarray | None = None  # (bins, P + 1) float64: the estimate, cells between edges
        self._shares: np.ndarray | None = None  # (bins, P + 2) float32: as _fold reads it
        self._widened: tuple[float, np.ndarray | None] = (1.0, None)  # (spread gain, the levels it maps to)
        self._blocks = 0
        # Forgetting by weighing each new frame 1 / forget more than the last (no pass over the counts),
        # brought back to 1 now and then.
        self._weight = 1.0

    def retarget(self, levels: np.ndarray) -> None:
        """The blend's levels ``(bins, P)`` (:func:`engine.analysis.levels.level_percentiles`, non-decreasing
        rows); the estimate so far is carried over to them."""
        edges = np.ascontiguousarray(levels, dtype=np.float32)
        if self._counts is None or self._counts.shape != (edges.shape[0], edges.shape[1] + 1):
            counts = np.ones((edges.shape[0], edges.shape[1] + 1))
            counts[:, [0, -1]] = 0.0
            self._counts = counts * (self._weight / (edges.shape[1] - 1) / (1.0 - self.forget))
            self._shares = np.empty((edges.shape[0], edges.shape[1] + 2), np.float32)
        else:
            self._counts = _carried(self._counts, self._edges, edges)
        _fold(self._counts, self._shares)
        self._edges = edges
        self._widened = (1.0, edges)

    @property
    def mean_levels(self) -> np.ndarray:
        """Each bin's mean level in the blend (the mean of its percentiles), ``(bins, 1)`` float32: the centre
        :meth:`process` widens about. Raises RuntimeError before :meth:`retarget`."""
        if self._edges is None:
            raise RuntimeError("LevelMap.mean_levels before retarget")
        return self._edges.mean(axis=1, keepdims=True)

    def process(self, frames: np.ndarray, spread_gain: float = 1.0) -> np.ndarray:
        """``frames`` ``(bins, n)`` (log1p magnitudes, finite) mapped to the blend's levels, float32.

        ``spread_gain`` > 0: the levels mapped to are widened by it about each bin's mean level (1: as they
        are). Raises RuntimeError before :meth:`retarget`."""
        if self._edges is None:
            raise RuntimeError("LevelMap.process before retarget")
        if spread_gain != self._widened[0]:
            mean = self.mean_levels
            self._widened = (spread_gain, (mean + spread_gain * (self._edges - mean)).astype(np.float32))
        if self._weight > RENORMALISE_ABOVE:
            self._counts /= self._weight
            self._weight = 1.0
        self._weight /= self.forget ** frames.shape[1]
        out = np.empty(frames.shape, np.float32)
        _count_and_map(np.asarray(frames, dtype=np.float32), self._edges, self._widened[1], self._shares,
                       self._counts, self._weight, out)
        self._blocks += 1
        if self._blocks % FOLD_BLOCKS == 0:
            _fold(self._counts, self._shares)
        return out

    def release(self) -> None:
        """Drop the estimate."""
        self.prepare()
