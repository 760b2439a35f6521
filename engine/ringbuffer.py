"""A single-producer, single-consumer ring of float32 samples that needs no lock.

Real-time contract: :meth:`RingBuffer.read_into` is the only method the audio callback calls; it
copies at most ``len(out)`` samples into a caller-owned array and never allocates a buffer, blocks or
takes a lock. Only the producer thread calls :meth:`RingBuffer.write`. Each side advances only its
own counter (Python ints, written atomically under the GIL), so neither can see a half-written
position; the counters only grow, so ``write_count - read_count`` is always the fill.
"""
from __future__ import annotations

import numpy as np


class RingBuffer:
    """Lock-free SPSC ring of ``capacity`` float32 samples (see module doc)."""

    __slots__ = ("_buf", "capacity", "write_count", "read_count")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sample. Found: {capacity}")
        self._buf = np.zeros(int(capacity), dtype=np.float32)
        self.capacity = int(capacity)
        self.write_count = 0
        self.read_count = 0

    @property
    def available(self) -> int:
        """Samples ready to read."""
        return self.write_count - self.read_count

    @property
    def free(self) -> int:
        """Samples that can be written now."""
        return self.capacity - (self.write_count - self.read_count)

    def write(self, samples: np.ndarray) -> int:
        """Producer side: copy as many of ``samples`` as fit; returns how many were written."""
        n = min(len(samples), self.free)
        if n <= 0:
            return 0
        start = self.write_count % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = samples[:first]
        if n > first:
            self._buf[:n - first] = samples[first:n]
        self.write_count += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer side (audio callback): copy up to ``len(out)`` samples into ``out``; returns the count.

        ``out[count:]`` is left untouched: the caller fills the rest (with zeros) and counts the underrun.
        """
        n = min(len(out), self.write_count - self.read_count)
        if n <= 0:
            return 0
        start = self.read_count % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:n] = self._buf[:n - first]
        self.read_count += n
        return n
