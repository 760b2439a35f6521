"""Peak-preserving decimation of a curve to a fixed number of points, so drawing it costs the same
whatever its length (a minute of per-block history, 50 ms of samples at 192 kHz).

Pure functions; the widgets in :mod:`gui.meters` call them on the GUI thread before ``setData``.
"""
from __future__ import annotations

import numpy as np


def min_max_envelope(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of the curve ``(x, y)`` that keep every peak and trough.

    The samples are cut into ``max_points // 2`` runs of equal length (the last one padded with the
    curve's last point); each run gives its minimum and its maximum at their own ``x``, in the order
    they occur, so the line passes through every extreme of the curve. A curve of
    at most ``max_points`` points is returned as it is (copies of the inputs). NaN in ``y`` propagates
    into its run (callers drop non-finite values first).

    Parameters
    ----------
    x, y : 1-D arrays of equal length
        The curve (``x`` increasing).
    max_points : int
        Upper bound on the points returned, at least 2 (ValueError otherwise).

    Returns
    -------
    x, y : float64 arrays of at most ``max_points`` points.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2. Found: {max_points}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= max_points:
        return x.copy(), y.copy()
    runs = max_points // 2
    length = -(-n // runs)  # ceil: runs of equal length, the last padded with the curve's last point
    pad = runs * length - n
    ys = np.concatenate([y, np.full(pad, y[-1])]).reshape(runs, length)
    xs = np.concatenate([x, np.full(pad, x[-1])]).reshape(runs, length)
    rows = np.arange(runs)
    i_lo, i_hi = ys.argmin(axis=1), ys.argmax(axis=1)
    first, second = np.minimum(i_lo, i_hi), np.maximum(i_lo, i_hi)  # each run's two extremes in time order
    out_x, out_y = np.empty(2 * runs), np.empty(2 * runs)
    out_x[0::2], out_y[0::2] = xs[rows, first], ys[rows, first]
    out_x[1::2], out_y[1::2] = xs[rows, second], ys[rows, second]
    return out_x, out_y
