"""Qt windows and widgets of the instrument: they read engine telemetry and write the parameter store.

app             QApplication, start-up (styles, optimiser, output, MIDI) and ``run_gui``
instrument      the GUI's one handle on the engine; lifecycle and file loading on worker threads
main_window     the window: transport, layout, the telemetry poll, shortcuts, window state
style_slots     style rows (name, spectrum picture, blend slider, remove), file dialog, drag-and-drop
morph_pad       2-D pad blending 2-4 styles
controls        parameter sliders, variation, freeze, MIDI-learn buttons
spectrogram_view  scrolling spectrogram (pyqtgraph ImageItem on a ring array)
meters          level meter, waveform, engine figures, loss / load history
scope           newest output samples for the waveform (engine tap)
recorder        crash-safe recording (engine tap → queue → writer thread)
session         session files (JSON, atomic write, versioned)
devices         output device list, sinks, the no-device fallback
settings        QSettings location (honours TEXTURE_CONFIG_DIR)
theme           dark palette, style sheet, pyqtgraph colours
"""
