"""A 2-D morph pad: drag one puck between 2–4 styles placed on the pad; it writes their blend weights.

The styles sit at fixed anchors (2: left and right; 3: a triangle; 4: the corners). The weights are
Shepard's inverse-distance weighting ``w_i ∝ 1 / d_i²`` — exactly one style at its anchor, a smooth
mix in between — scaled so the largest is 1 (the engine normalises the blend itself). With fewer
than 2 or more than 4 styles the pad is disabled and says why.
"""
from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

#: Anchor positions in pad coordinates (x right, y down, both 0..1), by number of styles.
ANCHORS: dict[int, tuple[tuple[float, float], ...]] = {
    2: ((0.08, 0.5), (0.92, 0.5)),
    3: ((0.5, 0.08), (0.08, 0.92), (0.92, 0.92)),
    4: ((0.08, 0.08), (0.92, 0.08), (0.08, 0.92), (0.92, 0.92)),
}
MIN_STYLES, MAX_STYLES = 2, 4
ANCHOR_COLORS = ("#4fc3f7", "#ffb74d", "#aed581", "#f06292")


def pad_weights(x: float, y: float, n: int) -> np.ndarray:
    """Blend weights ``(n,)`` in [0, 1], largest 1, for the puck at ``(x, y)`` (0..1) and ``n`` styles (2..4)."""
    if n not in ANCHORS:
        raise ValueError(f"the morph pad takes 2 to 4 styles. Found: {n}")
    anchors = np.array(ANCHORS[n])
    d2 = ((anchors - np.array([x, y])) ** 2).sum(axis=1)
    if d2.min() < 1e-6:
        w = (d2 == d2.min()).astype(np.float64)
    else:
        w = 1.0 / d2
    return w / w.max()


class MorphPad(QtWidgets.QWidget):
    """The pad widget. ``sigMoved(x, y)`` fires while the puck is dragged; :meth:`set_styles` names the anchors."""

    sigMoved = QtCore.pyqtSignal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(180, 150)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setToolTip("Drag to morph between the styles at the corners")
        self._names: list[str] = []
        self._weights = np.zeros(0)
        self._puck = (0.5, 0.5)

    # ---------------------------------------------------------------- state
    @property
    def count(self) -> int:
        return len(self._names)

    @property
    def usable(self) -> bool:
        """Whether the pad can drive the blend (2–4 styles)."""
        return MIN_STYLES <= self.count <= MAX_STYLES

    @property
    def puck(self) -> tuple[float, float]:
        return self._puck

    def set_styles(self, names: list[str]) -> None:
        """Name the anchors (slot order)."""
        self._names = list(names)
        self.setEnabled(self.usable)
        self.update()

    def show_weights(self, weights: np.ndarray) -> None:
        """Draw each anchor's current blend weight (its ring size)."""
        self._weights = np.asarray(weights, dtype=float)
        self.update()

    def move_puck(self, x: float, y: float) -> None:
        """Put the puck at ``(x, y)`` (0..1) and emit ``sigMoved`` (the same path as a drag)."""
        self._puck = (min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0))
        self.update()
        if self.usable:
            self.sigMoved.emit(*self._puck)

    # ---------------------------------------------------------------- Qt events
    def _area(self) -> QtCore.QRectF:
        return QtCore.QRectF(self.rect()).adjusted(6, 6, -6, -6)

    def _to_pad(self, pos: QtCore.QPointF) -> tuple[float, float]:
        r = self._area()
        return (pos.x() - r.left()) / max(r.width(), 1), (pos.y() - r.top()) / max(r.height(), 1)

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802 - Qt naming
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self.move_puck(*self._to_pad(ev.position()))

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if ev.buttons() & QtCore.Qt.MouseButton.LeftButton:
            self.move_puck(*self._to_pad(ev.position()))

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        r = self._area()
        p.setPen(QtGui.QPen(QtGui.QColor("#3a3f4b"), 1))
        p.setBrush(QtGui.QColor("#1b1e24"))
        p.drawRoundedRect(r, 8, 8)
        grid = QtGui.QPen(QtGui.QColor("#272b33"), 1)
        p.setPen(grid)
        for i in range(1, 4):
            p.drawLine(QtCore.QPointF(r.left() + r.width() * i / 4, r.top()),
                       QtCore.QPointF(r.left() + r.width() * i / 4, r.bottom()))
            p.drawLine(QtCore.QPointF(r.left(), r.top() + r.height() * i / 4),
                       QtCore.QPointF(r.right(), r.top() + r.height() * i / 4))
        if not self.usable:
            p.setPen(QtGui.QColor("#8a909c"))
            text = ("Morph pad: load 2–4 styles" if self.count < MIN_STYLES
                    else f"Morph pad takes 2–4 styles ({self.count} loaded)")
            p.drawText(r, QtCore.Qt.AlignmentFlag.AlignCenter, text)
            return
        font = p.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        p.setFont(font)
        for i, (ax, ay) in enumerate(ANCHORS[self.count]):
            c = QtGui.QColor(ANCHOR_COLORS[i])
            centre = QtCore.QPointF(r.left() + ax * r.width(), r.top() + ay * r.height())
            w = float(self._weights[i]) if i < len(self._weights) else 0.0
            p.setPen(QtGui.QPen(c, 1.5))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawEllipse(centre, 5 + 10 * w, 5 + 10 * w)
            p.setBrush(c)
            p.drawEllipse(centre, 3, 3)
            name = self._names[i]
            name = name if len(name) <= 18 else name[:17] + "…"
            fm = QtGui.QFontMetrics(p.font())
            tw = fm.horizontalAdvance(name)
            tx = min(max(centre.x() - tw / 2, r.left() + 2), r.right() - tw - 2)
            ty = centre.y() + (22 if ay < 0.5 else -14)
            p.setPen(c)
            p.drawText(QtCore.QPointF(tx, ty), name)
        puck = QtCore.QPointF(r.left() + self._puck[0] * r.width(), r.top() + self._puck[1] * r.height())
        p.setPen(QtGui.QPen(QtGui.QColor("#ffffff"), 2))
        p.setBrush(QtGui.QColor(255, 255, 255, 60))
        p.drawEllipse(puck, 9, 9)

