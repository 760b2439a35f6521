"""Meters: output level and waveform, engine figures (real-time factor, load, underruns), and the
loss / load curves of the last minute. Every widget here only displays what it is handed on the
window's timer; none reads the engine itself.

Drawing costs the same whatever is handed over: every curve is decimated to at most
:data:`MAX_CURVE_POINTS` points that keep its peaks (:func:`gui.decimate.min_max_envelope`) and drawn
without antialiasing or fills (measured offscreen on the 2-core AMD EPYC: a minute of history, 2,580
points, antialiased and filled cost 250 ms a paint; 50 ms of samples at 48 kHz antialiased 235 ms;
see docs/EXPERIMENTS.md, "The window's drawing").
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from engine.live.stream import Telemetry
from gui import theme
from gui.decimate import min_max_envelope

DB_FLOOR = -60.0
HISTORY_SECONDS = 60
#: Most points any curve here draws, whatever the length of its data.
MAX_CURVE_POINTS = 256


def _bounded_curve(plot: pg.PlotItem, colour: str, width: float = 1.2) -> pg.PlotDataItem:
    """A curve for dense data: no antialiasing, no fill, no finite check (callers pass finite data)."""
    return plot.plot(pen=pg.mkPen(colour, width=width), antialias=False, skipFiniteCheck=True)


def to_db(x: float) -> float:
    """Linear amplitude → dBFS, floored at :data:`DB_FLOOR`."""
    return max(DB_FLOOR, 20.0 * math.log10(x)) if x > 0 else DB_FLOOR


class LevelMeter(QtWidgets.QWidget):
    """A horizontal peak / RMS meter in dBFS with a decaying peak hold, one bar per channel (top: left)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(22)
        self.setMaximumHeight(26)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.peak_db = self.rms_db = self.hold_db = (DB_FLOOR,)

    def set_levels(self, peak: Sequence[float], rms: Sequence[float]) -> None:
        """New linear peak and RMS (0..1) per channel."""
        self.peak_db, self.rms_db = tuple(to_db(v) for v in peak), tuple(to_db(v) for v in rms)
        held = self.hold_db if len(self.hold_db) == len(self.peak_db) else (DB_FLOOR,) * len(self.peak_db)
        self.hold_db = tuple(max(p, h - 0.6) for p, h in zip(self.peak_db, held))
        self.update()

    def _x(self, db: float, width: float) -> float:
        return width * (db - DB_FLOOR) / -DB_FLOOR

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt naming
        p = QtGui.QPainter(self)
        r = QtCore.QRectF(self.rect()).adjusted(0, 2, -1, -2)
        p.fillRect(r, QtGui.QColor("#101216"))
        grad = QtGui.QLinearGradient(r.left(), 0, r.right(), 0)
        grad.setColorAt(0.0, QtGui.QColor("#2e7d32"))
        grad.setColorAt(0.75, QtGui.QColor("#c0ca33"))
        grad.setColorAt(0.92, QtGui.QColor("#ff8f00"))
        grad.setColorAt(1.0, QtGui.QColor("#d32f2f"))
        w = r.width()
        rows = len(self.peak_db)
        h = r.height() / rows
        for i, (peak, rms, hold) in enumerate(zip(self.peak_db, self.rms_db, self.hold_db)):
            top = r.top() + i * h
            p.fillRect(QtCore.QRectF(r.left(), top, self._x(peak, w), h - 1), QtGui.QBrush(grad))
            p.fillRect(QtCore.QRectF(r.left(), top + h * 0.35, self._x(rms, w), h * 0.3), QtGui.QColor(255, 255, 255, 110))
            p.setPen(QtGui.QPen(QtGui.QColor("#ffffff"), 2))
            hx = r.left() + self._x(hold, w)
            p.drawLine(QtCore.QPointF(hx, top), QtCore.QPointF(hx, top + h - 1))
        p.setPen(QtGui.QColor(theme.MUTED))
        for db in (-48, -36, -24, -12, -6, 0):
            x = r.left() + self._x(db, w)
            p.drawLine(QtCore.QPointF(x, r.bottom() - 4), QtCore.QPointF(x, r.bottom()))
        p.setPen(QtGui.QColor(theme.TEXT))
        p.drawText(r.adjusted(4, 0, -4, 0), QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignRight,
                   f"peak {max(self.peak_db):5.1f} dBFS")


class WaveformView(pg.PlotWidget):
    """The newest output samples as lines, one per channel (an oscilloscope of the last ~50 ms)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        plot = self.getPlotItem()
        theme.cache_axes(plot)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.hideAxis("bottom")
        plot.showGrid(x=False, y=True, alpha=0.15)
        self.setMouseEnabled(x=False, y=False)
        self.setYRange(-1.0, 1.0, padding=0.02)
        self.curves = [_bounded_curve(plot, colour) for colour in (theme.ACCENT, theme.WARN)]
        self.setMinimumHeight(70)

    def set_samples(self, y: np.ndarray) -> None:
        """Show ``y`` ``(n,)`` or ``(n, channels)`` (float, -1..1; non-finite samples are drawn as 0): the
        first two channels, together at most :data:`MAX_CURVE_POINTS` points (the drawing costs what one
        curve did). No samples yet (right after a start, before the first block) clears the curves."""
        y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        columns = y.reshape(len(y), -1).T[:len(self.curves)] if len(y) else ()
        x = np.arange(len(y), dtype=np.float64)
        for i, curve in enumerate(self.curves):
            if i < len(columns):
                curve.setData(*min_max_envelope(x, columns[i], MAX_CURVE_POINTS // len(columns)))
            else:
                curve.setData([], [])

    @property
    def points_drawn(self) -> int:
        """Points of the curves as they are drawn now."""
        return sum(0 if c.yData is None else len(c.yData) for c in self.curves)


class StatsPanel(QtWidgets.QWidget):
    """Engine figures as labelled values; :meth:`update_from` takes a telemetry snapshot."""

    FIELDS = (("rtf", "Real-time factor"), ("load", "Engine load"), ("underruns", "Underruns"),
              ("iterations", "Iterations / block"), ("drops", "Quality drops"), ("loss", "Loss"),
              ("provider", "Provider"), ("rate", "Rates"))

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for i, (key, label) in enumerate(self.FIELDS):
            name = QtWidgets.QLabel(label)
            name.setObjectName("dim")
            value = QtWidgets.QLabel("–")
            value.setObjectName("meterValue" if key in ("rtf", "load", "underruns") else "value")
            value.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(name, i, 0)
            grid.addWidget(value, i, 1)
            self.values[key] = value

    def _set(self, key: str, text: str, colour: str | None = None) -> None:
        """Show ``text`` in ``colour``; an unchanged value costs nothing (a style sheet change re-polishes)."""
        label = self.values[key]
        if label.text() != text:
            label.setText(text)
        sheet = f"color: {colour};" if colour else ""
        if label.styleSheet() != sheet:
            label.setStyleSheet(sheet)

    def update_from(self, t: Telemetry) -> None:
        last = t.last
        if last is not None:
            rtf, load = last.realtime_factor, last.load
            self._set("rtf", f"×{rtf:.1f}", theme.GOOD if rtf >= 2 else theme.WARN if rtf >= 1.2 else theme.BAD)
            self._set("load", f"{100 * load:.0f} %", theme.GOOD if load < 0.5 else theme.WARN if load < 0.8 else theme.BAD)
            self._set("iterations", f"{t.steps}  (cap {last.step_cap})")
            self._set("loss", f"{last.loss:.4g}" if math.isfinite(last.loss) else "–")  # no step ran: no loss
        self._set("underruns", str(t.underruns), theme.BAD if t.underruns else theme.GOOD)
        self._set("drops", str(t.quality_drops))
        self._set("provider", t.provider.replace("ExecutionProvider", ""))
        self._set("rate", f"{t.engine_rate} → {t.device_rate} Hz")


class HistoryPlot(pg.GraphicsLayoutWidget):
    """Loss and engine load over the last minute (x: seconds before now)."""

    def __init__(self, block_seconds: float, parent=None) -> None:
        super().__init__(parent=parent)
        self.block_seconds = block_seconds
        self.loss_plot = self.addPlot(row=0, col=0)
        self.load_plot = self.addPlot(row=1, col=0)
        for plot, title in ((self.loss_plot, "loss (last minute)"), (self.load_plot, "engine load")):
            theme.cache_axes(plot)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setTitle(title, size="9pt")
        for plot in (self.loss_plot, self.load_plot):
            plot.setXRange(-HISTORY_SECONDS, 0, padding=0)
            plot.disableAutoRange(axis="x")
        self.load_plot.setXLink(self.loss_plot)
        self.load_plot.setYRange(0, 1.0, padding=0.05)
        self.load_plot.addItem(pg.InfiniteLine(1.0, angle=0, pen=pg.mkPen(theme.BAD, style=QtCore.Qt.PenStyle.DashLine)))
        self.loss_curve = _bounded_curve(self.loss_plot, theme.WARN, 1.5)
        self.load_curve = _bounded_curve(self.load_plot, theme.GOOD, 1.5)
        self.setMinimumHeight(170)

    @property
    def points_drawn(self) -> int:
        """Points of both curves as they are drawn now."""
        return sum(0 if c.yData is None else len(c.yData) for c in (self.loss_curve, self.load_curve))

    def update_from(self, t: Telemetry) -> None:
        n = len(t.loss_history)
        if n == 0:
            return
        x = (np.arange(n) - (n - 1)) * self.block_seconds
        finite = np.isfinite(t.loss_history)
        if finite.any():
            # Linear scale up to 1.25 x the 98th percentile: rare spikes (a style change) are drawn
            # flat-topped instead of squashing the rest of the minute.
            top = 1.25 * float(np.percentile(t.loss_history[finite], 98)) or 1.0
            self.loss_curve.setData(*min_max_envelope(x[finite], np.minimum(t.loss_history[finite], top),
                                                      MAX_CURVE_POINTS))
            self.loss_plot.setYRange(0.0, top, padding=0.02)
        load = np.nan_to_num(np.clip(t.load_history, 0, 2), nan=0.0)
        self.load_curve.setData(*min_max_envelope(x, load, MAX_CURVE_POINTS))
