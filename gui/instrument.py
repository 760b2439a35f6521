"""The GUI's one handle on the running instrument: engine, styles, parameters, output, MIDI, recorder.

Nothing here ever makes the GUI thread wait on the engine:

* engine lifecycle (start, stop with its fade, switching the output device) runs on one
  *lifecycle* worker thread, in order;
* loading and analysing style files (0.2–1 s each) and the styles of a session run on one *loader*
  worker thread;
* the producer thread reaches the GUI only through taps that enqueue (recorder, scope) and through
  :meth:`engine.live.stream.Engine.telemetry`, which the window polls;
* every message for the user (a bad file, a lost device, a finished recording) is one line emitted
  on ``sigMessage`` — from whatever thread — and Qt queues it to the window.

The GUI writes only :class:`engine.params.ParamStore` (and adds/removes styles in the thread-safe
:class:`engine.synthesis.styles.StyleLibrary`).
"""
from __future__ import annotations

import concurrent.futures
import os
import threading
from pathlib import Path
from typing import Any

from PyQt6 import QtCore

from engine.errors import TextureError
from engine.params import BLEND_MODES, ParamStore
from engine.live.sinks import NullSink, Sink
from engine.live.stream import Engine, Telemetry
from engine.synthesis.stereo import STEREO
from engine.synthesis.styles import StyleLibrary
from gui.devices import NO_DEVICE_BANNER, NULL_RATE, SILENT, open_sink, sink_label
from gui.recorder import Recorder, recover_recordings
from gui.scope import OutputScope
from gui.session import Session, StyleEntry, read_session, write_session


#: Longest the window's close holds the GUI thread for the instrument, in seconds.
CLOSE_WAIT_SECONDS = 2.0
#: Longest the closing thread waits for each of: the recording's file, an output switch, the engine.
FINISH_TIMEOUT_SECONDS = 5.0


def one_line(exc: BaseException, what: str = "") -> str:
    """A user-facing line for ``exc``: the project's own message, or ``TYPE: message`` for others."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TextureError):
        return text
    return f"{what}{type(exc).__name__}: {text}" if text else f"{what}{type(exc).__name__}"


class Instrument(QtCore.QObject):
    """Engine + library + params + sink (+ optional MIDI controller), driven from the GUI.

    Parameters
    ----------
    library, params, stepper, sink
        As for :class:`engine.live.stream.Engine`.
    banner : str or None
        Shown above everything while set (e.g. no audio device).
    midi : object or None
        A MIDI controller (:class:`engine.control.midi.MidiController` or anything with ``learn(param)``,
        ``cancel_learn()``, ``learning``, ``midi_map`` and ``set_map(map)``); None when MIDI is off.
    lead_seconds : float or None
        The sound devices' lead (``play --lead-ms``), None for the default.
    """

    sigMessage = QtCore.pyqtSignal(str)
    sigStylesChanged = QtCore.pyqtSignal()
    sigBanner = QtCore.pyqtSignal(str)
    sigRecording = QtCore.pyqtSignal(bool)
    #: A MIDI program change (0..127); the controller's ``on_program`` emits it from the MIDI thread.
    sigProgram = QtCore.pyqtSignal(int)

    def __init__(self, library: StyleLibrary, params: ParamStore, stepper: Any, sink: Sink, *,
                 banner: str | None = None, midi: Any = None, output_key: object = None,
                 lead_seconds: float | None = None, channels: int = STEREO) -> None:
        super().__init__()
        self.lead_seconds = lead_seconds
        self.library = library
        self.params = params
        self.midi = midi
        self.banner = banner or ""
        self.output_key = output_key
        self.engine = Engine(library, params, stepper, sink, channels=channels, log=self.sigMessage.emit)
        self.scope = OutputScope(rate=sink.rate)
        self.engine.taps = [self.scope.tap]
        self.recorder: Recorder | None = None
        self._midi_map_dict: dict | None = None  # kept for sessions when no controller runs
        self._lifecycle = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="texture-lifecycle")
        self._last_lifecycle: concurrent.futures.Future | None = None
        self._loader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="texture-loader")
        self.sigBanner.connect(self._remember_banner)

    def _remember_banner(self, text: str) -> None:
        self.banner = text

    # ---------------------------------------------------------------- engine
    def telemetry(self) -> Telemetry:
        """The engine's snapshot (never blocks)."""
        return self.engine.telemetry()

    @property
    def running(self) -> bool:
        return self.engine.running

    @property
    def busy(self) -> bool:
        """Whether a start / stop / output switch is still under way (the lifecycle runs them in order)."""
        return self._last_lifecycle is not None and not self._last_lifecycle.done()

    def _submit(self, fn, *args) -> concurrent.futures.Future:
        self._last_lifecycle = self._lifecycle.submit(self._guard, fn, *args)
        return self._last_lifecycle

    def start(self) -> concurrent.futures.Future:
        """Start playing (on the lifecycle thread)."""
        return self._submit(self._start)

    def stop(self) -> concurrent.futures.Future:
        """Fade out and stop (on the lifecycle thread)."""
        return self._submit(self.engine.stop)

    def _start(self) -> None:
        try:
            self.engine.start()
        except TextureError as exc:  # the device went away: play on silently
            self.sigMessage.emit(one_line(exc))
            self.engine.stop()
            self.engine.sink = NullSink(NULL_RATE, realtime=True)
            self.output_key = SILENT
            self.sigBanner.emit(NO_DEVICE_BANNER)
            self.engine.start()

    def set_output(self, key: object) -> concurrent.futures.Future:
        """Switch the output device (chooser key, see :mod:`gui.devices`) on the lifecycle thread."""
        return self._submit(self._set_output, key)

    def _set_output(self, key: object) -> None:
        sink, banner, reason = open_sink(key, lead_seconds=self.lead_seconds)
        if reason:
            self.sigMessage.emit(f"audio output: {reason}")
        rec = self.recorder
        if rec is not None and rec.recording and sink.rate != rec.rate:
            self._stop_recording()
            self.sigMessage.emit(f"recording stopped: the new output runs at {sink.rate} Hz")
        was_running = self.engine.running
        self.engine.stop()  # with its fade; then swap and restart (plus the fallback)
        self.engine.sink = sink
        self.output_key = key
        if was_running:
            self._start()
        if self.engine.sink is sink:
            self.sigBanner.emit(banner or "")
            self.sigMessage.emit(f"output: {sink_label(sink)}")

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a worker must never die silently; one line to the user
            self.sigMessage.emit(one_line(exc, "internal error: "))

    # ---------------------------------------------------------------- styles
    def add_files(self, paths: list[str | os.PathLike]) -> list[concurrent.futures.Future]:
        """Load each file as a new style on the loader thread; a bad file gives one message line."""
        return [self._loader.submit(self._add_file, Path(p)) for p in paths]

    def _add_file(self, path: Path) -> None:
        try:
            style = self.library.add_file(path)
        except TextureError as exc:
            self.sigMessage.emit(one_line(exc))
            return
        except Exception as exc:  # noqa: BLE001
            self.sigMessage.emit(one_line(exc, f"{path}: cannot load: "))
            return
        self.sigStylesChanged.emit()
        self.sigMessage.emit(f"added style {style.name}")

    def remove_style(self, slot_id: int) -> None:
        """Remove a style slot and forget its blend weight."""
        self.library.remove(slot_id)
        self.params.forget_slot(slot_id)
        self.sigStylesChanged.emit()

    # ---------------------------------------------------------------- recording
    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.recording

    def start_recording(self, path: str | os.PathLike) -> bool:
        """Record the output to ``path`` (.wav / .flac); False (and a message) when it cannot."""
        if self.recording:
            return True
        try:
            rec = Recorder(path, self.engine.sink.rate, channels=self.engine.channels, on_finished=self.sigMessage.emit)
            rec.start()
        except (TextureError, OSError, ValueError) as exc:
            self.sigMessage.emit(one_line(exc))
            return False
        self.recorder = rec
        self.engine.taps = self.engine.taps + [rec.tap]
        self.sigRecording.emit(True)
        self.sigMessage.emit(f"recording to {rec.path}")
        return True

    def recover_recordings(self, folder: str | os.PathLike) -> concurrent.futures.Future:
        """Encode the FLAC takes a crash left in ``folder`` (loader thread); one message per take."""
        def recover() -> None:
            for line in recover_recordings(folder):
                self.sigMessage.emit(line)
        return self._loader.submit(self._guard, recover)

    def stop_recording(self) -> None:
        """Stop recording; the file is finished on the recorder's thread (a message says when)."""
        self._stop_recording()

    def _stop_recording(self) -> None:
        rec = self.recorder
        if rec is None or not rec.recording:
            return
        self.engine.taps = [t for t in self.engine.taps if t != rec.tap]
        rec.stop()
        self.sigRecording.emit(False)

    # ---------------------------------------------------------------- MIDI map
    def midi_map_dict(self) -> dict | None:
        """The MIDI map as JSON-able data (from the controller when one runs)."""
        midi_map = getattr(self.midi, "midi_map", None)
        if midi_map is not None and hasattr(midi_map, "to_dict"):
            return midi_map.to_dict()
        return self._midi_map_dict

    def _apply_midi_map(self, data: dict | None) -> None:
        self._midi_map_dict = data
        if data is None or self.midi is None:
            return
        try:
            from engine.control.midi_map import MidiMap
            self.midi.set_map(MidiMap.from_dict(data))
        except Exception as exc:  # noqa: BLE001 - a bad map in a session: say so, keep the current map
            self.sigMessage.emit(f"session MIDI map not used: {one_line(exc)}")

    # ---------------------------------------------------------------- sessions
    def capture_session(self) -> Session:
        """The current styles, parameters and MIDI map."""
        styles = tuple(StyleEntry(s.path, self.params.blend_weight(s.slot_id), name=s.name)
                       for s in self.library.slots)
        d = self.params.to_dict()
        return Session(styles, d["values"], d["blend_mode"], self.midi_map_dict())

    def save_session(self, path: str | os.PathLike) -> bool:
        """Write the session atomically; False (and a message) when it cannot."""
        try:
            p = write_session(path, self.capture_session())
        except TextureError as exc:
            self.sigMessage.emit(one_line(exc))
            return False
        self.sigMessage.emit(f"saved session {p}")
        return True

    def load_session(self, path: str | os.PathLike) -> concurrent.futures.Future | None:
        """Apply a session: parameters and MIDI map now, its styles on the loader thread.

        The old styles play until the new ones are loaded, then they are removed. A style that
        cannot be loaded (missing file, ...) gives a message and the others load; if none loads, the
        old styles stay. Returns the loader future (None when the file itself is unusable).
        """
        try:
            session = read_session(path)
        except TextureError as exc:
            self.sigMessage.emit(one_line(exc))
            return None
        for problem in self.params.load_dict({"values": session.params}):
            self.sigMessage.emit(f"session: {problem}")
        self._apply_midi_map(session.midi_map)
        return self._loader.submit(self._guard, self._load_session_styles, session, Path(path))

    def _load_session_styles(self, session: Session, path: Path) -> None:
        old = self.library.ids()
        loaded = failed = 0
        for entry, file in session.resolved_paths(path.parent):
            try:
                style = self.library.add_default() if file is None else self.library.add_file(file)
            except TextureError as exc:
                failed += 1
                self.sigMessage.emit(f"session: {one_line(exc)}")
                continue
            self.params.set_blend(style.slot_id, min(max(entry.weight, 0.0), 1.0))
            loaded += 1
            self.sigStylesChanged.emit()
        if loaded or not session.styles:
            for slot_id in old:
                self.library.remove(slot_id)
                self.params.forget_slot(slot_id)
        if session.blend_mode in BLEND_MODES:
            self.params.set_blend_mode(session.blend_mode)
        self.sigStylesChanged.emit()
        note = f", {failed} style(s) missing" if failed else ""
        kept = " (kept the previous styles)" if failed and not loaded else ""
        self.sigMessage.emit(f"loaded session {path.name}: {loaded} style(s){note}{kept}")

    # ---------------------------------------------------------------- shutdown
    def shutdown(self, wait_s: float = CLOSE_WAIT_SECONDS) -> bool:
        """Finish a recording, stop MIDI and the engine (called once, when the window closes); True
        when all of that ended within ``wait_s`` seconds.

        The caller (the GUI thread) waits at most ``wait_s``: queued style loads and output switches
        are cancelled, and the rest runs on a closing thread, which the interpreter waits for at
        exit (each of its waits is bounded by :data:`FINISH_TIMEOUT_SECONDS`). A style analysis
        under way (up to about 30 s for 20 minutes of sound) is not waited for here; it ends in its
        own thread.
        """
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._lifecycle.shutdown(wait=False, cancel_futures=True)
        rec = self.recorder
        self._stop_recording()  # here: it tells the window the recording stopped
        closer = threading.Thread(target=self._finish, args=(rec,), name="texture-close")
        closer.start()
        closer.join(wait_s)
        return not closer.is_alive()

    def _finish(self, rec: Recorder | None) -> None:
        """The closing thread: the recording's file, MIDI, the output switch under way, the engine."""
        if rec is not None:
            rec.wait(FINISH_TIMEOUT_SECONDS)
        if self.midi is not None:
            try:
                self.midi.stop()  # bounded: it joins each of its threads for at most 2 s
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        if self._last_lifecycle is not None:
            concurrent.futures.wait([self._last_lifecycle], timeout=FINISH_TIMEOUT_SECONDS)
        self.engine.stop(timeout=FINISH_TIMEOUT_SECONDS)
