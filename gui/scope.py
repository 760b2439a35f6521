"""The newest output samples for the waveform view, fed by an engine tap.

:meth:`OutputScope.tap` runs in the producer thread and only appends a copy of the block to a
bounded deque (``deque.append`` is atomic under the GIL; no lock, no waiting). The GUI thread reads
:meth:`OutputScope.latest` on its timer.
"""
from __future__ import annotations

import collections

import numpy as np


class OutputScope:
    """Keeps about ``seconds`` of the newest output blocks (float32 mono, device rate)."""

    def __init__(self, seconds: float = 0.5, *, block_hint: int = 4096, rate: int = 48000) -> None:
        self._blocks: collections.deque = collections.deque(maxlen=max(2, int(seconds * rate / block_hint) + 2))
        self.blocks_seen = 0

    def tap(self, block: np.ndarray) -> None:
        """Engine tap (producer thread): remember a copy of ``block``."""
        self._blocks.append(np.array(block, dtype=np.float32))
        self.blocks_seen += 1

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples (fewer right after start), oldest first."""
        blocks = list(self._blocks)
        if not blocks:
            return np.zeros(0, np.float32)
        y = np.concatenate(blocks)
        return y[-n:]
