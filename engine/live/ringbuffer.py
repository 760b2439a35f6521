"""A single-producer, single-consumer ring of float32 samples that needs no lock, in this process or
shared with another one.

It holds *frames* of ``channels`` samples each (one sample per channel, channels last: a write and a
read move ``(n, channels)`` arrays, or ``(n,)`` with one channel); every count and capacity is in frames.

Real-time contract: :meth:`RingBuffer.read_into` is the only method the audio callback calls; it
copies at most ``len(out)`` samples into a caller-owned array and never allocates a buffer, blocks or
takes a lock. Only the producer calls :meth:`RingBuffer.write`. Each side advances only its own
counter, so neither can see a half-written position; the counters only grow, so
``write_count - read_count`` is always the fill.

Storage: by default the samples and the two counters live in this process (Python ints, written
atomically under the GIL). Given ``buffer`` (a float32 array, e.g. a view of a shared mapping) and
``counters`` (any object with integer ``write_count`` and ``read_count`` attributes, e.g. a ctypes
structure in the same mapping) the ring works across processes: :mod:`engine.live.device_process` puts
it in a file mapping that the sound-device process reads from. There the counters are aligned
64-bit integers, whose loads and stores are single instructions on x86-64 and AArch64; the producer
stores the samples before it advances ``write_count`` (x86-64 keeps stores in order).
"""
from __future__ import annotations

import numpy as np


class _Counters:
    __slots__ = ("write_count", "read_count")

    def __init__(self) -> None:
        self.write_count = 0
        self.read_count = 0


class RingBuffer:
    """Lock-free SPSC ring of ``capacity`` frames of float32 samples (see module doc).

    Parameters
    ----------
    capacity : int >= 1
        Frames it holds.
    buffer : np.ndarray [shape=(>= capacity * channels,)], float32, optional
        Storage for the samples (default: a new array).
    counters : object, optional
        Holder of ``write_count`` / ``read_count`` (default: new ones at 0; given ones are used as
        they are, so both processes must agree on them before either side moves).
    channels : int >= 1
        Samples per frame (1: frames are plain samples, arrays ``(n,)``).
    """

    __slots__ = ("_buf", "capacity", "channels", "_c")

    def __init__(self, capacity: int, *, buffer: np.ndarray | None = None, counters: object = None,
                 channels: int = 1) -> None:
        if capacity < 1 or channels < 1:
            raise ValueError(f"capacity and channels must be >= 1. Found: {capacity}, {channels}")
        size = int(capacity) * int(channels)
        if buffer is not None and (buffer.dtype != np.float32 or len(buffer) < size):
            raise ValueError(f"buffer must be float32 with >= {size} samples. Found: {buffer.dtype}, {len(buffer)}")
        flat = np.zeros(size, dtype=np.float32) if buffer is None else buffer[:size]
        self._buf = flat if channels == 1 else flat.reshape(int(capacity), int(channels))
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._c = _Counters() if counters is None else counters

    @property
    def write_count(self) -> int:
        """Frames written since the start (producer's counter)."""
        return self._c.write_count

    @property
    def read_count(self) -> int:
        """Frames read since the start (consumer's counter)."""
        return self._c.read_count

    @property
    def available(self) -> int:
        """Frames ready to read."""
        c = self._c
        return c.write_count - c.read_count

    @property
    def free(self) -> int:
        """Frames that can be written now."""
        c = self._c
        return self.capacity - (c.write_count - c.read_count)

    def write(self, samples: np.ndarray) -> int:
        """Producer side: copy as many frames of ``samples`` as fit; returns how many were written."""
        c = self._c
        wc = c.write_count
        n = min(len(samples), self.capacity - (wc - c.read_count))
        if n <= 0:
            return 0
        start = wc % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = samples[:first]
        if n > first:
            self._buf[:n - first] = samples[first:n]
        c.write_count = wc + n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Consumer side (audio callback): copy up to ``len(out)`` frames into ``out``; returns the count.

        ``out[count:]`` is left untouched: the caller fills the rest (with zeros) and counts the underrun.
        """
        c = self._c
        rc = c.read_count
        n = min(len(out), c.write_count - rc)
        if n <= 0:
            return 0
        start = rc % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start:start + first]
        if n > first:
            out[first:n] = self._buf[:n - first]
        c.read_count = rc + n
        return n
