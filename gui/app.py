"""The application: QApplication, the instrument, the window; ``python main.py`` lands in :func:`run_gui`.

Start-up order: styles (each bad ``--style`` file is one message; the default style plays when none
loads), the block optimiser (ONNX graph from the cache, exported on first use), the output (a null
sink and a banner when there is no usable device), MIDI (optional: a message when it is
unavailable), then the window shows and the engine starts.
"""
from __future__ import annotations

import gc
import signal
import sys
from typing import Any

from PyQt6 import QtCore, QtWidgets

from engine.errors import TextureError
from engine.log import log
from engine.params import ParamStore, parse_blend
from engine.live.performance_log import PerformanceLog, default_log_path
from engine.synthesis.step_graph import check_live_network, full_band_rate, live_config
from engine.synthesis.stereo import STEREO
from engine.synthesis.styles import load_library
from gui.devices import open_sink
from gui.instrument import Instrument, one_line
from gui.main_window import MainWindow
from gui.settings import open_settings
from gui.theme import apply_dark_theme

APP_NAME = "Neural Texture"


def build_instrument(styles: list[str] | None = None, blend: str | None = None, device: str | None = None, *,
                     stepper: Any = None, sink: Any = None, network: str = "random1d", params: ParamStore | None = None,
                     sample_rate: int | None = None, backend: str = "ort",
                     lead_ms: float | None = None, channels: int = STEREO) -> tuple[Instrument, list[str]]:
    """The instrument for the command line's arguments, and the start-up messages for the window.

    ``stepper`` and ``sink`` may be given (tests share one optimiser and use a null sink);
    ``params``, ``sample_rate``, ``backend``, ``lead_ms`` and ``channels`` carry ``play``'s options. The engine runs
    at ``sample_rate``, else at the rate of the given ``stepper``'s configuration, else full band at the
    output's rate (:func:`engine.synthesis.step_graph.full_band_rate`: the sink is opened first).

    Raises
    ------
    TextureError
        Only when the block optimiser cannot be built (nothing could play), or ``network`` cannot run live.
    """
    messages: list[str] = []
    check_live_network(network)  # before the device is opened (its rate sets the engine's)
    banner = None
    key: object = device
    lead = None if lead_ms is None else lead_ms / 1000.0
    if sink is None:
        sink, banner, reason = open_sink(device, lead_seconds=lead)
        if banner is not None:
            key = "silent"
            messages.append(f"audio output: {reason}")
    if sample_rate is None and stepper is not None:
        config = stepper.config
    else:
        config = live_config(sample_rate or full_band_rate(sink.rate, network=network), network=network)
    params = params if params is not None else ParamStore()
    try:
        weights = parse_blend(blend, len(styles or []))
    except TextureError as exc:
        messages.append(f"{one_line(exc)} (blend ignored)")
        weights = None
    errors: list[TextureError] = []
    library = load_library(config, styles or [], weights, params, on_error=errors.append)
    messages.extend(one_line(exc) for exc in errors)
    if styles and len(errors) == len(styles):
        messages.append("no style could be loaded; playing the default style")
    if stepper is None:
        from engine.synthesis.runtime import BlockStepper
        stepper = BlockStepper(config, backend=backend, log=log)
    return Instrument(library, params, stepper, sink, banner=banner, output_key=key, lead_seconds=lead,
                      channels=channels), messages


def start_midi(instrument: Instrument, port: str | None) -> str | None:
    """Open MIDI input for the instrument (attached as ``instrument.midi``); a message when it cannot."""
    try:
        from engine.control.midi import open_midi
        instrument.midi = open_midi(instrument.params, instrument.library.ids, port, log=instrument.sigMessage.emit,
                                    on_program=instrument.sigProgram.emit)
    except (ImportError, TextureError) as exc:  # no MIDI here: the instrument plays on without it
        return f"MIDI off: {one_line(exc)}"
    return None


def run_gui(styles: list[str] | None = None, blend: str | None = None, device: str | None = None,
            midi_port: str | None = None, network: str = "random1d", *, seconds: float | None = None,
            performance_log: str | None = None, **options: Any) -> int:
    """Open the window and play; returns the exit status when the window closes.

    ``seconds`` closes the window after that long (``play --seconds``); ``performance_log`` is the
    file of :mod:`engine.live.performance_log` (default: a new one in the user's state folder, named
    in the message line); ``options`` go to :func:`build_instrument`. Ctrl-C and SIGTERM close the
    window like its Quit action.
    """
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("neural-texture")
    apply_dark_theme(app)
    try:
        instrument, messages = build_instrument(styles, blend, device, network=network, **options)
    except TextureError as exc:
        log(f"error: {one_line(exc)}")
        return 1
    midi_message = start_midi(instrument, midi_port)
    if midi_message:
        messages.append(midi_message)
    window = MainWindow(instrument, open_settings(), startup_messages=messages)
    window.show()
    instrument.start()
    perf = PerformanceLog(performance_log or default_log_path("window"), instrument.telemetry,
                          extra=window.performance_fields, log=instrument.sigMessage.emit)
    perf.start()
    window.show_message(f"performance log: {perf.path}")
    if seconds is not None:
        QtCore.QTimer.singleShot(int(seconds * 1000), window.close)
    # Ctrl-C in the terminal (and SIGTERM) closes the window like the Quit action (the poll timer
    # lets Python run the handler while Qt's loop is in C++).
    previous = {sig: signal.signal(sig, lambda *_: window.close()) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return app.exec()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        window.close()
        perf.stop()
        # Drop the engine before the interpreter exits, so its native objects are freed in order.
        window.deleteLater()
        del window, instrument
        gc.collect()
