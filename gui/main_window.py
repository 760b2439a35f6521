"""The main window: transport, styles, morph pad, controls, spectrogram, meters, message line.

The window polls :meth:`gui.instrument.Instrument.telemetry` with a single-shot ``QTimer`` that is
re-armed after each update (the pyqtgraph example pattern: an overloaded desktop never piles up
timer events), about 28 times a second. User actions write the parameter store (or ask the
instrument to do something on its worker threads); nothing here waits on the engine.

The window shares the interpreter and the CPU with the producer, so it keeps its own share bounded:
after each update it measures the CPU time its thread spent since the last one (the update and the
painting it caused, ``time.thread_time``) and waits long enough that this stays below
:data:`GUI_CPU_SHARE` of one core. On a busy machine the frame rate drops; the audio does not.

Keyboard: Space play/stop, Ctrl+R record, Ctrl+Shift+O add style, Ctrl+O / Ctrl+S open / save
session, Ctrl+Q quit. A MIDI program change n loads the (n+1)-th session of the current session's
folder (:func:`gui.session.session_for_program`). The geometry and splitter layout are kept in :mod:`gui.settings`.
"""
from __future__ import annotations

import time
from pathlib import Path

from PyQt6 import QtCore, QtGui, QtWidgets

from engine.errors import ParameterError
from gui import theme
from gui.controls import ControlsPanel
from gui.devices import LOST_BANNER, list_outputs
from gui.instrument import Instrument
from gui.meters import HistoryPlot, LevelMeter, StatsPanel, WaveformView
from gui.morph_pad import MAX_STYLES, MorphPad, pad_weights
from gui.session import SESSION_SUFFIX, session_for_program
from gui.spectrogram_view import SpectrogramView
from gui.style_slots import AcceptsFileDrops, StyleSlotsPanel

POLL_MS = 35
#: Most of one core the window's thread may use (updates and painting); it polls less often above it.
GUI_CPU_SHARE = 0.2
#: Longest wait between two updates, in ms (the frame rate never drops below 4 per second).
MAX_POLL_MS = 250
MAX_MESSAGES = 200
WAVEFORM_SECONDS = 0.05
SESSION_FILTER = f"Sessions (*{SESSION_SUFFIX} *.json);;All files (*)"
RECORD_FILTER = "WAV, 24-bit (*.wav);;FLAC, 24-bit (*.flac)"


def _record_icon() -> QtGui.QIcon:
    pm = QtGui.QPixmap(16, 16)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(theme.BAD))
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.drawEllipse(QtCore.QRectF(2, 2, 12, 12))
    p.end()
    return QtGui.QIcon(pm)


class MainWindow(AcceptsFileDrops, QtWidgets.QMainWindow):
    """The instrument's window (see module doc).

    Attributes
    ----------
    messages : list of str
        Every line shown in the message area, newest last (also the tooltip of the message area).
    """

    def __init__(self, instrument: Instrument, settings: QtCore.QSettings | None = None, *,
                 startup_messages: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.instrument = instrument
        self.settings = settings
        self.messages: list[str] = []
        self.session_path: Path | None = None
        self._seen_version = -1
        self._shown_error: str | None = None
        self._shown_lost: str | None = None
        self._display_error: str | None = None
        self._fps = 0.0
        self._last_tick = time.perf_counter()
        self._last_cpu = time.thread_time()
        self.poll_ms = POLL_MS
        self._ticks = 0
        self._closed = False
        cfg = instrument.library.config
        self.setWindowTitle("Neural Texture")
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central(cfg)
        self._build_statusbar()
        instrument.sigMessage.connect(self.show_message)
        instrument.sigBanner.connect(self.set_banner)
        instrument.sigStylesChanged.connect(self._styles_changed)
        instrument.sigRecording.connect(self._recording_changed)
        instrument.sigProgram.connect(self.program_change)
        self.controls.sigMessage.connect(self.show_message)
        self.set_banner(instrument.banner)
        self._styles_changed()
        self._restore_state()
        for line in startup_messages:
            self.show_message(line)
        instrument.recover_recordings(self._record_folder())  # FLAC takes a crash left as WAV
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)
        self._timer.start(POLL_MS)

    # ================================================================= construction
    def _action(self, text: str, slot, shortcut: str | None = None, *, checkable: bool = False,
                icon: QtGui.QIcon | None = None, tip: str = "") -> QtGui.QAction:
        a = QtGui.QAction(text, self)
        if icon is not None:
            a.setIcon(icon)
        if shortcut:
            a.setShortcut(QtGui.QKeySequence(shortcut))
            a.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        a.setToolTip(f"{tip or text} ({shortcut})" if shortcut else (tip or text))
        (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        icon = self.style().standardIcon
        self.play_action = self._action("Play", self._play_toggled, "Space", checkable=True,
                                        icon=icon(sp.SP_MediaPlay), tip="Start / stop the sound")
        self.record_action = self._action("Record", self._record_toggled, "Ctrl+R", checkable=True,
                                          icon=_record_icon(), tip="Record the output to a file")
        self.record_to_action = self._action("Record to…", self.record_to)
        self.add_style_action = self._action("Add style…", lambda: self.slots.open_dialog(), "Ctrl+Shift+O",
                                             icon=icon(sp.SP_FileIcon))
        self.open_action = self._action("Open session…", self.open_session_dialog, "Ctrl+O",
                                        icon=icon(sp.SP_DialogOpenButton))
        self.save_action = self._action("Save session", self.save_session_dialog, "Ctrl+S",
                                        icon=icon(sp.SP_DialogSaveButton))
        self.save_as_action = self._action("Save session as…", lambda: self.save_session_dialog(ask=True),
                                           "Ctrl+Shift+S")
        self.quit_action = self._action("Quit", self.close, "Ctrl+Q")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for a in (self.add_style_action, None, self.open_action, self.save_action, self.save_as_action, None,
                  self.quit_action):
            m.addSeparator() if a is None else m.addAction(a)
        m = bar.addMenu("&Transport")
        for a in (self.play_action, self.record_action, self.record_to_action):
            m.addAction(a)

    def _build_toolbar(self) -> None:
        tb = QtWidgets.QToolBar("Transport")
        tb.setObjectName("transport")
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.play_action)
        tb.addAction(self.record_action)
        self.record_time = QtWidgets.QLabel("")
        self.record_time.setObjectName("value")
        self.record_time.setMinimumWidth(60)
        tb.addWidget(self.record_time)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Output "))
        self.output = QtWidgets.QComboBox()
        self.output.setMinimumContentsLength(22)
        self.output.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.output.setToolTip("Audio output device")
        self._fill_outputs()
        self.output.activated.connect(self._output_chosen)
        tb.addWidget(self.output)
        tb.addSeparator()
        tb.addAction(self.add_style_action)
        tb.addAction(self.open_action)
        tb.addAction(self.save_action)
        self.addToolBar(tb)

    def _fill_outputs(self) -> None:
        self.output.blockSignals(True)
        self.output.clear()
        current = 0
        for i, (label, key) in enumerate(list_outputs()):
            self.output.addItem(label, key)
            if key == self.instrument.output_key:
                current = i
        self.output.setCurrentIndex(current)
        self.output.blockSignals(False)

    def _build_central(self, cfg) -> None:
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 2)
        self.banner = QtWidgets.QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        outer.addWidget(self.banner)
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        outer.addWidget(self.splitter, 1)

        left = QtWidgets.QWidget()
        ll = QtWidgets.QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.slots = StyleSlotsPanel(self.instrument, self.settings)
        ll.addWidget(self.slots, 3)
        pad_box = QtWidgets.QGroupBox("Morph pad")
        pl = QtWidgets.QVBoxLayout(pad_box)
        self.pad = MorphPad()
        self.pad.sigMoved.connect(self._pad_moved)
        pl.addWidget(self.pad)
        ll.addWidget(pad_box, 2)
        self.splitter.addWidget(left)

        centre = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(centre)
        cl.setContentsMargins(0, 0, 0, 0)
        self.spectrogram = SpectrogramView(sample_rate=cfg.spectral.sample_rate, hop=cfg.spectral.hop,
                                           n_bins=cfg.spectral.n_bins)
        cl.addWidget(self.spectrogram, 4)
        out_box = QtWidgets.QGroupBox("Output")
        ol = QtWidgets.QVBoxLayout(out_box)
        self.waveform = WaveformView()
        self.level = LevelMeter()
        ol.addWidget(self.waveform)
        ol.addWidget(self.level)
        cl.addWidget(out_box, 1)
        self.splitter.addWidget(centre)

        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.controls = ControlsPanel(self.instrument.params, self.instrument.midi)
        rl.addWidget(self.controls)
        meters = QtWidgets.QGroupBox("Engine")
        ml = QtWidgets.QVBoxLayout(meters)
        self.stats = StatsPanel()
        block_s = cfg.block_frames * cfg.spectral.hop / cfg.spectral.sample_rate
        self.history = HistoryPlot(block_s)
        ml.addWidget(self.stats)
        ml.addWidget(self.history, 1)
        rl.addWidget(meters, 1)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 3)
        self.splitter.setSizes([300, 640, 360])
        self.setCentralWidget(central)

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.message_area = QtWidgets.QLabel("")
        self.message_area.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        sb.addWidget(self.message_area, 1)
        self.state_label = QtWidgets.QLabel("")
        self.state_label.setObjectName("dim")
        sb.addPermanentWidget(self.state_label)

    # ================================================================= messages and banner
    def show_message(self, text: str) -> None:
        """Show one line in the message area (the first line of ``text``; never a traceback)."""
        line = (str(text).strip().splitlines() or [""])[0]
        if not line:
            return
        self.messages.append(line)
        del self.messages[:-MAX_MESSAGES]
        self.message_area.setText(line)
        self.message_area.setToolTip("\n".join(self.messages[-12:]))

    def set_banner(self, text: str) -> None:
        """Show ``text`` in the banner above everything; an empty text hides it."""
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        index = self.output.findData(self.instrument.output_key)  # a failed device falls back to silent
        if index >= 0 and index != self.output.currentIndex():
            self.output.blockSignals(True)
            self.output.setCurrentIndex(index)
            self.output.blockSignals(False)

    def set_midi(self, controller) -> None:
        """Attach a MIDI controller (or None) to the instrument and the learn buttons."""
        self.instrument.midi = controller
        self.controls.set_midi(controller)

    # ================================================================= transport
    def _play_toggled(self, _checked: bool) -> None:
        """Play/Stop (button or Space) flips what the engine is doing, whatever the button showed: the
        button follows the engine on a timer, and a press in between did nothing (seen in a test)."""
        on = not self.instrument.running
        (self.instrument.start if on else self.instrument.stop)()
        self.play_action.blockSignals(True)
        self.play_action.setChecked(on)
        self.play_action.blockSignals(False)
        self._show_play_state(on)

    def _show_play_state(self, on: bool) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        self.play_action.setText("Stop" if on else "Play")
        self.play_action.setIcon(self.style().standardIcon(sp.SP_MediaStop if on else sp.SP_MediaPlay))

    def _output_chosen(self, index: int) -> None:
        key = self.output.itemData(index)
        self.instrument.set_output(key)

    # ================================================================= recording
    def _record_folder(self) -> Path:
        default = Path.home() / "Music" if (Path.home() / "Music").is_dir() else Path.home()
        value = self.settings.value("record_dir", str(default)) if self.settings is not None else str(default)
        return Path(str(value))

    def _record_toggled(self, on: bool) -> None:
        if on and not self.instrument.recording:
            suffix = str(self.settings.value("record_format", ".wav")) if self.settings is not None else ".wav"
            name = time.strftime("texture-%Y%m%d-%H%M%S") + (suffix if suffix in (".wav", ".flac") else ".wav")
            self.start_recording(self._record_folder() / name)
        elif not on and self.instrument.recording:
            self.instrument.stop_recording()

    def start_recording(self, path: str | Path) -> bool:
        """Record the output to ``path`` (.wav or .flac)."""
        ok = self.instrument.start_recording(path)
        if not ok:
            self._recording_changed(False)
        return ok

    def record_to(self) -> None:
        """Ask for a file, then record to it."""
        start = str(self._record_folder() / time.strftime("texture-%Y%m%d-%H%M%S.wav"))
        path, chosen = QtWidgets.QFileDialog.getSaveFileName(self, "Record to", start, RECORD_FILTER)
        if not path:
            return
        if Path(path).suffix.lower() not in (".wav", ".flac"):
            path += ".flac" if "FLAC" in chosen else ".wav"
        if self.settings is not None:
            self.settings.setValue("record_dir", str(Path(path).parent))
            self.settings.setValue("record_format", Path(path).suffix.lower())
        self.instrument.stop_recording()
        self.start_recording(path)

    def _recording_changed(self, on: bool) -> None:
        self.record_action.blockSignals(True)
        self.record_action.setChecked(on)
        self.record_action.blockSignals(False)
        if not on:
            self.record_time.setText("")

    # ================================================================= sessions
    def open_session_dialog(self) -> None:
        folder = str(self.settings.value("session_dir", "")) if self.settings is not None else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open session", folder, SESSION_FILTER)
        if path:
            self.load_session(path)

    def save_session_dialog(self, ask: bool = False) -> None:
        path = self.session_path
        if ask or path is None:
            folder = str(self.settings.value("session_dir", "")) if self.settings is not None else ""
            chosen, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save session", str(Path(folder) / f"untitled{SESSION_SUFFIX}"),
                                                              SESSION_FILTER)
            if not chosen:
                return
            path = Path(chosen if chosen.endswith(".json") else chosen + SESSION_SUFFIX)
        self.save_session(path)

    def save_session(self, path: str | Path) -> bool:
        """Save the session to ``path`` (atomic); remembers it for Ctrl+S."""
        ok = self.instrument.save_session(path)
        if ok:
            self._session_file(Path(path))
        return ok

    def load_session(self, path: str | Path):
        """Load a session; returns the loader future (None when the file is unusable)."""
        future = self.instrument.load_session(path)
        if future is not None:
            self._session_file(Path(path))
        return future

    def program_change(self, program: int) -> None:
        """MIDI program change: load the matching session of the current session folder."""
        folder = self.session_path.parent if self.session_path is not None else (
            Path(str(self.settings.value("session_dir"))) if self.settings is not None
            and self.settings.value("session_dir") else None)
        if folder is None:
            self.show_message(f"program change {program}: open or save a session first (its folder holds the programs)")
            return
        path = session_for_program(folder, program)
        if path is None:
            self.show_message(f"program change {program}: no session number {program + 1} in {folder}")
            return
        self.load_session(path)

    def _session_file(self, path: Path) -> None:
        self.session_path = path
        self.setWindowTitle(f"Neural Texture — {path.name}")
        if self.settings is not None:
            self.settings.setValue("session_dir", str(path.parent))

    # ================================================================= styles and morph pad
    def _styles_changed(self) -> None:
        slots = self.instrument.library.slots
        self.pad.set_styles([s.name for s in slots])
        self._seen_version = -1

    def _pad_moved(self, x: float, y: float) -> None:
        slots = self.instrument.library.slots
        if not 2 <= len(slots) <= MAX_STYLES:
            return
        try:
            for style, w in zip(slots, pad_weights(x, y, len(slots))):
                self.instrument.params.set_blend(style.slot_id, float(w))
        except ParameterError as exc:
            self.show_message(str(exc))

    # ================================================================= drag and drop on the whole window
    def add_paths(self, paths: list[str]) -> list:
        """Files dropped anywhere on the window become styles, as on the style panel."""
        return self.slots.add_paths(paths)

    # ================================================================= the poll
    def _tick(self) -> None:
        try:
            self._update_from_engine()
        except Exception as exc:  # noqa: BLE001 - a display glitch must not stop the poll
            line = f"display error: {type(exc).__name__}: {exc}"
            if line != self._display_error:  # once, not 28 times a second
                self._display_error = line
                self.show_message(line)
        finally:
            if not self._closed:
                self._timer.start(self._next_poll_ms())

    def _next_poll_ms(self) -> int:
        """The wait before the next update that keeps this thread under GUI_CPU_SHARE of a core."""
        cpu = time.thread_time()
        spent_ms = 1000.0 * (cpu - self._last_cpu)  # this update and the painting since the last one
        self._last_cpu = cpu
        self.poll_ms = int(min(MAX_POLL_MS, max(POLL_MS, spent_ms / GUI_CPU_SHARE - spent_ms)))
        return self.poll_ms

    def _update_from_engine(self) -> None:
        now = time.perf_counter()
        dt = max(now - self._last_tick, 1e-6)
        self._last_tick = now
        self._fps = 1.0 / dt if self._fps == 0 else 0.9 * self._fps + 0.1 / dt
        self._ticks += 1
        inst = self.instrument
        t = inst.telemetry()
        self.spectrogram.update_from(t)
        if t.running:
            self.waveform.set_samples(inst.scope.latest(int(WAVEFORM_SECONDS * t.device_rate)))
            self.level.set_levels(t.peak, t.rms)
        else:
            self.level.set_levels((0.0,) * len(t.peak), (0.0,) * len(t.rms))
        self.stats.update_from(t)
        if self._ticks % 4 == 0:
            self.history.update_from(t)
        if self.play_action.isChecked() != t.running and not inst.busy:
            self.play_action.blockSignals(True)
            self.play_action.setChecked(t.running)
            self.play_action.blockSignals(False)
            self._show_play_state(t.running)
        version = inst.params.version
        if version != self._seen_version:
            self._seen_version = version
            self.controls.sync()
            self.slots.sync()
            slots = inst.library.slots
            self.pad.show_weights(inst.params.snapshot().blend_weights([s.slot_id for s in slots]))
        self.controls.poll_learn()
        rec = inst.recorder
        if rec is not None and rec.recording:
            self.record_time.setText(f"● {rec.seconds:5.1f} s")
        if t.error and t.error != self._shown_error:
            self._shown_error = t.error
            self.show_message(f"engine stopped after an internal error: {t.error}")
        if t.output_lost != self._shown_lost:  # the engine's own message line says what and when
            self._shown_lost = t.output_lost
            self.set_banner(LOST_BANNER if t.output_lost else self.instrument.banner)
        state = "playing" if t.running else "stopped"
        midi = inst.midi
        midi_text = f"MIDI {getattr(midi, 'api_name', None) or 'on'}" if midi is not None else "MIDI off"
        self.state_label.setText(f"{state} · {midi_text} · GUI {self._fps:4.1f} fps")

    def performance_fields(self) -> dict:
        """The window's figures for the performance log (plain values; any thread may call it)."""
        return {"gui_fps": round(self._fps, 1), "gui_poll_ms": self.poll_ms}

    # ================================================================= window state
    def _restore_state(self) -> None:
        s = self.settings
        if s is None:
            self.resize(1360, 820)
            return
        geometry = s.value("geometry")
        if isinstance(geometry, QtCore.QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 820)
        state = s.value("window_state")
        if isinstance(state, QtCore.QByteArray) and not state.isEmpty():
            self.restoreState(state)
        splitter = s.value("splitter")
        if isinstance(splitter, QtCore.QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    def save_state(self) -> None:
        """Remember geometry and layout (QSettings)."""
        s = self.settings
        if s is None:
            return
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("splitter", self.splitter.saveState())
        s.sync()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt naming
        if not self._closed:
            self._closed = True
            self._timer.stop()
            self.save_state()
            self.instrument.shutdown()
        super().closeEvent(ev)
