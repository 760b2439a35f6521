"""A scrolling spectrogram of the output: one pyqtgraph ImageItem fed from a fixed-size ring array.

The engine's telemetry carries the log-magnitude frames (log1p |STFT|, ``(bins, B)``) of the newest
block; these are exactly the magnitudes the phase stage turns into the output samples. Each new
block shifts the ring array left by ``B`` columns in place and writes the frames at the right, then
``setImage`` shows it with fixed levels (no auto-levelling work per frame). The x axis is seconds
before now, the y axis Hz.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore

from engine.live.stream import Telemetry
from gui import theme

#: Colour levels in log1p magnitude units (the default style spans about 0..3.4; 99 % below 1.6).
LEVELS = (0.0, 2.2)


class SpectrogramView(pg.PlotWidget):
    """Scrolling spectrogram.

    Parameters
    ----------
    sample_rate, hop, n_bins : int
        Engine rate in Hz, hop in samples and frequency bins of the frames.
    seconds : float
        Visible history in seconds.
    max_hz : float or None
        Top of the visible frequency range (default: Nyquist).
    """

    def __init__(self, *, sample_rate: int, hop: int, n_bins: int, seconds: float = 6.0,
                 max_hz: float | None = None, parent=None) -> None:
        super().__init__(parent=parent)
        self.frame_seconds = hop / sample_rate
        self.columns = int(round(seconds / self.frame_seconds))
        self.n_bins = n_bins
        nyquist = sample_rate / 2
        self._ring = np.zeros((self.columns, n_bins), dtype=np.float32)  # (time, frequency), col-major image
        self.frames_pushed = 0
        self._last_index: int | None = None
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.image.setImage(self._ring, levels=LEVELS, autoLevels=False)
        self.image.setRect(QtCore.QRectF(-self.columns * self.frame_seconds, 0.0,
                                         self.columns * self.frame_seconds, nyquist))
        self.addItem(self.image)
        plot = self.getPlotItem()
        theme.cache_axes(plot)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        plot.setLabel("bottom", "time", units="s")
        plot.setLabel("left", "frequency", units="Hz")
        plot.setTitle("Output spectrogram")
        self.setXRange(-self.columns * self.frame_seconds, 0.0, padding=0)
        self.setYRange(0.0, max_hz or nyquist, padding=0)

    def push(self, frames: np.ndarray) -> None:
        """Append log-magnitude frames ``(bins, n)`` at the right edge (the oldest scroll out)."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[0] != self.n_bins:
            return
        n = min(frames.shape[1], self.columns)
        self._ring[:-n] = self._ring[n:]
        self._ring[-n:] = frames[:, -n:].T
        self.frames_pushed += n
        self.image.setImage(self._ring, levels=LEVELS, autoLevels=False)

    def update_from(self, telemetry: Telemetry) -> bool:
        """Push the newest block's frames if the engine made a new block since the last call."""
        last = telemetry.last
        if last is None or last.index == self._last_index:
            return False
        self._last_index = last.index
        self.push(last.frames)
        return True
