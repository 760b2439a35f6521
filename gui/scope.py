"""The newest output samples for the waveform view, fed by an engine tap.

:meth:`OutputScope.tap` runs in the producer thread and only appends a copy of the block to a deque
and drops the oldest blocks beyond the seconds kept (``deque.append`` and ``popleft`` are atomic
under the GIL; no lock, no waiting). The GUI thread reads :meth:`OutputScope.latest` on its timer.
"""
from __future__ import annotations

import collections

import numpy as np


class OutputScope:
    """Keeps the newest output blocks that hold at least ``seconds`` of samples at ``rate`` Hz
    (float32, device rate, ``(n,)`` mono or ``(n, channels)``), and no older block than that needs."""

    def __init__(self, seconds: float = 0.5, *, rate: int = 48000) -> None:
        self._keep = max(1, int(round(seconds * rate)))
        self._blocks: collections.deque = collections.deque()
        self._held = 0  # samples in _blocks
        self.blocks_seen = 0

    def tap(self, block: np.ndarray) -> None:
        """Engine tap (producer thread): remember a copy of ``block``, forget what is older than needed."""
        self._blocks.append(np.array(block, dtype=np.float32))
        self._held += len(self._blocks[-1])
        while self._held - len(self._blocks[0]) >= self._keep:
            self._held -= len(self._blocks.popleft())
        self.blocks_seen += 1

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples (frames of all channels; fewer right after start), oldest first."""
        blocks = list(self._blocks)
        if not blocks:
            return np.zeros(0, np.float32)
        y = np.concatenate(blocks)
        return y[-n:]
