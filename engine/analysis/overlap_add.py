"""Windowed overlap-add, the one implementation: frames in, normalised samples out, in a stream.

An inverse STFT adds each windowed frame into the output ``hop`` samples after the previous one and
divides every sample by the sum of the squared window over the frames that touch it.
:class:`OverlapAdd` does it in a stream and carries its tail between calls (the last
``n_fft - hop`` samples, which later frames still add to), as acids-ircam's ``cached_conv`` carries a
convolution's past: a whole signal is one :meth:`OverlapAdd.push` and a :meth:`OverlapAdd.flush`,
and any split of its frames into pushes gives the same samples, bit for bit, because
:func:`add_frames` adds each sample's frames oldest first however they were grouped.

Users: :func:`engine.analysis.spectral.istft`, the offline Griffin-Lim and the streaming phase's
commit (:mod:`engine.synthesis.phase`).
"""
from __future__ import annotations

import numpy as np

from engine.errors import ParameterError

#: Floor of the squared-window sum a sample is divided by (where no frame reaches, e.g. the edges).
NORM_FLOOR = 1e-8


def add_frames(frames: np.ndarray, hop: int, out: np.ndarray) -> None:
    """Add ``frames`` ``(n, n_fft)`` into the 1-D float array ``out`` at sample offsets ``0, hop, 2 hop, ...``, in place.

    Each sample receives its frames oldest first, as a loop over the frames would add them, so a sum
    does not depend on how the frames were grouped. The work is ``ceil(n_fft / hop)`` vectorised
    adds (one per hop-long chunk of the frame), not a loop over frames.

    Raises
    ------
    ParameterError
        When ``out`` holds fewer than ``(n - 1) * hop + n_fft`` samples.
    """
    n, n_fft = frames.shape
    if n == 0:
        return
    if len(out) < (n - 1) * hop + n_fft:
        raise ParameterError(f"overlap-add buffer too short: {len(out)} < {(n - 1) * hop + n_fft} samples")
    step = out.strides[0]
    for r in reversed(range(0, n_fft, hop)):  # the last chunk first: sample s gets frame (s - r) / hop, oldest first
        width = min(hop, n_fft - r)  # rows of width <= hop never overlap, so += is safe
        rows = np.lib.stride_tricks.as_strided(out[r:], shape=(n, width), strides=(hop * step, step))
        rows += frames[:, r:r + width]


class OverlapAdd:
    """Streaming overlap-add of windowed frames, normalised by the squared window's sum.

    Parameters
    ----------
    window : np.ndarray [shape=(n_fft,)]
        The synthesis window the frames were multiplied by; each output sample is divided by the sum
        of its squares over the frames that reached the sample (at least :data:`NORM_FLOOR`).
    hop : int
        Samples between frames, ``0 < hop <= n_fft``.

    :meth:`push` returns the ``k * hop`` samples that ``k`` new frames complete (no later frame adds
    to them); :meth:`flush` returns the last ``n_fft - hop`` and starts a new stream. Samples are
    counted from the first frame's first sample (for centred STFT frames, ``n_fft // 2`` before
    the signal's start).
    """

    def __init__(self, window: np.ndarray, hop: int) -> None:
        window = np.asarray(window, dtype=np.float64)
        if window.ndim != 1 or not 0 < hop <= len(window):
            raise ParameterError(f"overlap-add needs a 1-D window and 0 < hop <= its length. Found: window shape "
                                 f"{window.shape}, hop {hop!r}")
        self.n_fft, self.hop = len(window), int(hop)
        self._window_sq = window ** 2
        self._tail = np.zeros(self.n_fft - self.hop)
        self._tail_norm = np.zeros(self.n_fft - self.hop)

    @property
    def tail(self) -> np.ndarray:
        """Sum of the frames pushed so far over the next ``n_fft - hop`` samples (not normalised; read-only)."""
        view = self._tail.view()
        view.flags.writeable = False
        return view

    @property
    def tail_norm(self) -> np.ndarray:
        """Squared-window sum over the same samples as :attr:`tail` (read-only)."""
        view = self._tail_norm.view()
        view.flags.writeable = False
        return view

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add the next ``k`` windowed frames ``(k, n_fft)``; return the ``k * hop`` samples now complete, normalised."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.n_fft:
            raise ParameterError(f"frames must be (k, {self.n_fft}). Found shape {frames.shape}")
        done = len(frames) * self.hop
        acc, norm = np.zeros(done + len(self._tail)), np.zeros(done + len(self._tail))
        acc[:len(self._tail)], norm[:len(self._tail)] = self._tail, self._tail_norm
        add_frames(frames, self.hop, acc)
        add_frames(np.broadcast_to(self._window_sq, frames.shape), self.hop, norm)
        self._tail, self._tail_norm = acc[done:], norm[done:]
        return acc[:done] / np.maximum(norm[:done], NORM_FLOOR)

    def flush(self) -> np.ndarray:
        """The last ``n_fft - hop`` samples, normalised; the next :meth:`push` starts a new stream."""
        out = self._tail / np.maximum(self._tail_norm, NORM_FLOOR)
        self._tail, self._tail_norm = np.zeros_like(self._tail), np.zeros_like(self._tail_norm)
        return out
