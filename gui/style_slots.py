"""Style slots: one row per loaded style (name, small spectrum picture, blend slider, remove), plus
adding styles by file dialog or drag-and-drop.

Both ways of adding end in :meth:`StyleSlotsPanel.add_paths`, which hands the files to
:meth:`gui.instrument.Instrument.add_files` (loaded on a worker thread; a bad file gives one message
line and the sound keeps playing). A slider writes :meth:`engine.params.ParamStore.set_blend`;
:meth:`StyleSlotsPanel.sync` moves the sliders to the store's values (MIDI, morph pad, sessions)
without writing back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from engine.errors import ParameterError
from engine.synthesis.styles import Style
from gui import theme
from gui.morph_pad import ANCHOR_COLORS

#: File-dialog filter: the formats libsndfile reads.
SOUND_FILTER = "Sound files (*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aif *.aiff *.au *.caf *.w64);;All files (*)"
PICTURE_SIZE = (96, 30)


def spectrum_pixmap(spectrum_db: np.ndarray, sample_rate: int, size: tuple[int, int] = PICTURE_SIZE,
                    colour: str = theme.ACCENT, dpr: float = 1.0) -> QtGui.QPixmap:
    """A small picture of a style's mean spectrum: dB (top 60 dB) over a log-frequency axis 40 Hz..Nyquist."""
    w, h = size
    pm = QtGui.QPixmap(int(w * dpr), int(h * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(QtGui.QColor("#101216"))
    spec = np.asarray(spectrum_db, dtype=np.float64)
    if spec.size < 2 or not np.all(np.isfinite(spec)):
        return pm
    freqs = np.linspace(0, sample_rate / 2, spec.size)
    xs = np.geomspace(40.0, sample_rate / 2, w)
    level = np.interp(xs, freqs, spec)
    top = level.max()
    ys = np.clip((top - level) / 60.0, 0, 1) * (h - 2) + 1
    path = QtGui.QPainterPath(QtCore.QPointF(0, h))
    for x, y in enumerate(ys):
        path.lineTo(QtCore.QPointF(x, y))
    path.lineTo(QtCore.QPointF(w - 1, h))
    path.closeSubpath()
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    c = QtGui.QColor(colour)
    fill = QtGui.QColor(c)
    fill.setAlpha(90)
    p.fillPath(path, fill)
    p.setPen(QtGui.QPen(c, 1.2))
    p.drawPolyline(QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in enumerate(ys)]))
    p.end()
    return pm


class AcceptsFileDrops:
    """Mixin (before the Qt class in the bases) for a widget that takes sound files dropped on it.

    Accepts drags that carry URLs and hands the local file paths of a drop to ``self.add_paths``;
    other URLs are ignored. The widget must call ``setAcceptDrops(True)``.
    """

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802 - Qt naming
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev: QtGui.QDragMoveEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.add_paths(paths)


class SlotRow(QtWidgets.QFrame):
    """One style: colour dot, name, spectrum picture, blend slider with value, remove button."""

    sigBlend = QtCore.pyqtSignal(int, float)
    sigRemove = QtCore.pyqtSignal(int)

    def __init__(self, style: Style, index: int, sample_rate: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("slot")
        self.slot_id = style.slot_id
        colour = ANCHOR_COLORS[index] if index < len(ANCHOR_COLORS) else theme.MUTED
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(6, 4, 4, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.name = QtWidgets.QLabel()
        self.name.setText(f"<span style='color:{colour}'>●</span> {style.name}")
        self.name.setToolTip(style.path or "embedded default style")
        self.name.setMinimumWidth(60)
        self.name.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.picture = QtWidgets.QLabel()
        dpr = self.devicePixelRatioF() if hasattr(self, "devicePixelRatioF") else 1.0
        self.picture.setPixmap(spectrum_pixmap(style.spectrum_db, sample_rate, colour=colour, dpr=dpr))
        self.picture.setToolTip("mean spectrum (log frequency, top 60 dB)")
        self.remove = QtWidgets.QToolButton()
        self.remove.setText("✕")
        self.remove.setToolTip(f"Remove {style.name}")
        self.remove.clicked.connect(lambda: self.sigRemove.emit(self.slot_id))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setToolTip("blend weight")
        self.value = QtWidgets.QLabel("1.00")
        self.value.setObjectName("value")
        self.value.setMinimumWidth(32)
        self.slider.valueChanged.connect(self._moved)
        grid.addWidget(self.name, 0, 0, 1, 2)
        grid.addWidget(self.remove, 0, 2)
        grid.addWidget(self.picture, 1, 0, 2, 1)
        grid.addWidget(self.slider, 1, 1, 1, 2)
        grid.addWidget(self.value, 2, 1, 1, 2, QtCore.Qt.AlignmentFlag.AlignRight)
        grid.setColumnStretch(1, 1)

    def _moved(self, v: int) -> None:
        self.value.setText(f"{v / 100:.2f}")
        self.sigBlend.emit(self.slot_id, v / 100.0)

    def show_weight(self, w: float) -> None:
        """Move the slider to ``w`` without emitting ``sigBlend``."""
        v = int(round(100 * w))
        if v != self.slider.value():
            self.slider.blockSignals(True)
            self.slider.setValue(v)
            self.slider.blockSignals(False)
        self.value.setText(f"{w:.2f}")


class StyleSlotsPanel(AcceptsFileDrops, QtWidgets.QGroupBox):
    """The list of style slots with Add… and a drop zone (see module doc)."""

    def __init__(self, instrument, settings: QtCore.QSettings | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Styles", parent)
        self.instrument = instrument
        self.settings = settings
        self.setAcceptDrops(True)
        self.rows: dict[int, SlotRow] = {}
        outer = QtWidgets.QVBoxLayout(self)
        outer.setSpacing(4)
        self.mode = QtWidgets.QLabel()
        self.mode.setObjectName("dim")
        outer.addWidget(self.mode)
        self._list = QtWidgets.QVBoxLayout()
        self._list.setSpacing(4)
        holder = QtWidgets.QWidget()
        holder.setLayout(self._list)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(holder)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll, 1)
        self._list.addStretch(1)
        hint = QtWidgets.QFrame()
        hint.setObjectName("dropHint")
        hl = QtWidgets.QHBoxLayout(hint)
        hl.setContentsMargins(6, 4, 6, 4)
        self.add_button = QtWidgets.QPushButton("Add style…")
        self.add_button.setToolTip("Load a sound file as a new style (Ctrl+Shift+O)")
        self.add_button.clicked.connect(self.open_dialog)
        drop = QtWidgets.QLabel("or drop sound files here")
        drop.setObjectName("dim")
        hl.addWidget(self.add_button)
        hl.addWidget(drop, 1)
        outer.addWidget(hint)
        instrument.sigStylesChanged.connect(self.rebuild)
        self.rebuild()

    # ---------------------------------------------------------------- adding
    def open_dialog(self) -> None:
        """Ask for sound files and add them."""
        folder = str(self.settings.value("last_style_dir", "")) if self.settings is not None else ""
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "Add style sounds", folder, SOUND_FILTER)
        if paths and self.settings is not None:
            self.settings.setValue("last_style_dir", str(Path(paths[0]).parent))
        self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> list:
        """Load files as new styles (the path both the dialog and drag-and-drop take)."""
        return self.instrument.add_files([p for p in paths if p])

    # ---------------------------------------------------------------- rows
    def rebuild(self) -> None:
        """Make the rows match the library's slots (kept rows keep their widgets)."""
        slots = self.instrument.library.slots
        rate = self.instrument.library.config.spectral.sample_rate
        ids = [s.slot_id for s in slots]
        for slot_id in list(self.rows):
            if slot_id not in ids:
                row = self.rows.pop(slot_id)
                self._list.removeWidget(row)
                row.deleteLater()
        for index, style in enumerate(slots):
            row = self.rows.get(style.slot_id)
            if row is None or row.property("index") != index:
                if row is not None:
                    self._list.removeWidget(row)
                    row.deleteLater()
                row = SlotRow(style, index, rate)
                row.setProperty("index", index)
                row.sigBlend.connect(self._set_blend)
                row.sigRemove.connect(self.instrument.remove_style)
                self.rows[style.slot_id] = row
            self._list.removeWidget(row)
            self._list.insertWidget(index, row)
        self.sync()

    def _set_blend(self, slot_id: int, w: float) -> None:
        try:
            self.instrument.params.set_blend(slot_id, w)
        except ParameterError as exc:
            self.instrument.sigMessage.emit(str(exc))

    def sync(self) -> None:
        """Show the store's blend weights and mode (no writes)."""
        params = self.instrument.params
        for slot_id, row in self.rows.items():
            row.show_weight(params.blend_weight(slot_id))
        mode = params.snapshot().blend_mode
        n = len(self.rows)
        self.mode.setText("Blend: per-style weights" if mode == "weights"
                          else f"Blend: morph slider walks the {n} style(s)")


