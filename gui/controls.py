"""The sound controls: morph, receptive field, quality (iterations), gain, stereo width, step size, replay (material),
variation, freeze, each with a MIDI-learn button.

A control writes :class:`engine.params.ParamStore` and nothing else; :meth:`ControlsPanel.sync`
(called by the window when the store's ``version`` moved, e.g. by MIDI or a session) shows the
store's values without writing back. MIDI learn talks to an optional controller object with
``learn(param)``, ``cancel_learn()``, ``learning`` and ``midi_map`` (:class:`engine.control.midi.MidiController`);
the window polls :meth:`ControlsPanel.poll_learn` to light the armed button and report the mapping.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

from PyQt6 import QtCore, QtWidgets

from engine.errors import ParameterError
from engine.params import PARAM_SPECS

SLIDER_STEPS = 1000


@dataclass(frozen=True)
class Scale:
    """How a parameter maps onto a slider position and how its value reads."""

    label: str
    fmt: Callable[[float], str]
    log: bool = False
    tip: str = ""
    ends: tuple[str, str] | None = None


def _gain_text(v: float) -> str:
    return f"{20 * math.log10(v):+.1f} dB" if v > 0 else "−∞ dB"


SCALES: dict[str, Scale] = {
    "morph": Scale("Morph", lambda v: f"{v:.2f}", tip="walks the styles in slot order (0 = first, 1 = last)"),
    "receptive_field": Scale("Receptive field", lambda v: f"{v:.2f}",
                             tip="0 = short, grainy (58 ms) … 1 = long, structured (383 ms)",
                             ends=("grainy", "structured")),
    "iterations": Scale("Quality", lambda v: f"{int(v)} it",
                        tip="optimiser steps per block on all in-flight frames (lowered under load); "
                            "0 bypasses the network: shaped noise only"),
    "gain": Scale("Gain", _gain_text, tip="output gain"),
    "width": Scale("Width", lambda v: f"{100 * v:.0f} %",
                   tip="stereo width: 0 = mono, 1 = the styles' own stereo image (a mono style's: independent "
                       "channels)", ends=("mono", "wide")),
    "learning_rate": Scale("Step size", lambda v: f"{v:.3f}", log=True, tip="optimiser step size per iteration"),
    "material": Scale("Replay", lambda v: f"{100 * v:.0f} %",
                      tip="0 = the network synthesises from noise; higher values start new frames from pieces "
                          "of the recordings (granular replay, an effect)", ends=("synthesis", "replay")),
}


class ParamSlider(QtWidgets.QSlider):
    """A horizontal slider bound to one parameter's range (linear, log or integer steps)."""

    def __init__(self, name: str, scale: Scale, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(QtCore.Qt.Orientation.Horizontal, parent)
        self.name = name
        self.spec = PARAM_SPECS[name]
        self.scale = scale
        if self.spec.kind == "int":
            self.setRange(int(self.spec.minimum), int(self.spec.maximum))
        else:
            self.setRange(0, SLIDER_STEPS)

    def to_position(self, value: float) -> int:
        s = self.spec
        if s.kind == "int":
            return int(round(value))
        if self.scale.log:
            x = math.log(value / s.minimum) / math.log(s.maximum / s.minimum)
        else:
            x = (value - s.minimum) / (s.maximum - s.minimum)
        return int(round(min(max(x, 0.0), 1.0) * SLIDER_STEPS))

    def to_value(self, position: int) -> float:
        s = self.spec
        if s.kind == "int":
            return float(position)
        x = position / SLIDER_STEPS
        if self.scale.log:
            return float(s.minimum * (s.maximum / s.minimum) ** x)
        return float(s.minimum + x * (s.maximum - s.minimum))


class ControlsPanel(QtWidgets.QGroupBox):
    """All live parameter controls (see module doc)."""

    sigMessage = QtCore.pyqtSignal(str)

    def __init__(self, params, midi=None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Sound", parent)
        self.params = params
        self.midi = midi
        self.sliders: dict[str, ParamSlider] = {}
        self.values: dict[str, QtWidgets.QLabel] = {}
        self.learn_buttons: dict[str, QtWidgets.QPushButton] = {}
        self._armed: str | None = None
        grid = QtWidgets.QGridLayout(self)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(5)
        row = 0
        for name, scale in SCALES.items():
            label = QtWidgets.QLabel(scale.label)
            label.setToolTip(scale.tip)
            slider = ParamSlider(name, scale)
            slider.setToolTip(scale.tip)
            value = QtWidgets.QLabel()
            value.setObjectName("value")
            value.setMinimumWidth(58)
            value.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            slider.valueChanged.connect(lambda pos, s=slider: self._slider_moved(s, pos))
            grid.addWidget(label, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            grid.addWidget(self._learn_button(name), row, 3)
            self.sliders[name], self.values[name] = slider, value
            row += 1
            if scale.ends:
                ends = QtWidgets.QHBoxLayout()
                ends.setContentsMargins(0, 0, 0, 0)
                for text, align in zip(scale.ends, (QtCore.Qt.AlignmentFlag.AlignLeft, QtCore.Qt.AlignmentFlag.AlignRight)):
                    lab = QtWidgets.QLabel(text)
                    lab.setObjectName("hint")
                    lab.setAlignment(align)
                    ends.addWidget(lab)
                grid.addLayout(ends, row, 1)
                grid.setRowMinimumHeight(row, 10)
                row += 1
        self.variation = QtWidgets.QSpinBox()
        self.variation.setRange(int(PARAM_SPECS["variation"].minimum), int(PARAM_SPECS["variation"].maximum))
        self.variation.setToolTip("seed of the texture's random choices")
        self.variation.valueChanged.connect(lambda v: self._write("variation", v))
        self.dice = QtWidgets.QPushButton("New")
        self.dice.setToolTip("a new random variation")
        self.dice.clicked.connect(lambda: self.variation.setValue(random.randrange(0, 1_000_000)))
        self.freeze = QtWidgets.QPushButton("Freeze")
        self.freeze.setCheckable(True)
        self.freeze.setToolTip(PARAM_SPECS["freeze"].doc)
        self.freeze.toggled.connect(lambda on: self._write("freeze", 1.0 if on else 0.0))
        grid.addWidget(QtWidgets.QLabel("Variation"), row, 0)
        var_row = QtWidgets.QHBoxLayout()
        var_row.addWidget(self.variation, 1)
        var_row.addWidget(self.dice)
        grid.addLayout(var_row, row, 1, 1, 2)
        grid.addWidget(self._learn_button("variation"), row, 3)
        row += 1
        grid.addWidget(self.freeze, row, 1, 1, 2)
        grid.addWidget(self._learn_button("freeze"), row, 3)
        grid.setColumnStretch(1, 1)
        self.sync()

    def _learn_button(self, name: str) -> QtWidgets.QPushButton:
        b = QtWidgets.QPushButton("MIDI")
        b.setObjectName("learn")
        b.setCheckable(True)
        b.clicked.connect(lambda checked, n=name: self.learn(n, checked))
        self.learn_buttons[name] = b
        self._enable_learn(name, b)
        return b

    def _enable_learn(self, name: str, b: QtWidgets.QPushButton) -> None:
        b.setEnabled(self.midi is not None)
        b.setToolTip(f"MIDI learn: click, then move a knob to control {name}" if self.midi is not None
                     else "MIDI is off")

    def set_midi(self, midi) -> None:
        """Use ``midi`` (a controller, or None for no MIDI) for the learn buttons."""
        self.midi = midi
        self._armed = None
        for name, b in self.learn_buttons.items():
            b.setChecked(False)
            self._enable_learn(name, b)

    # ---------------------------------------------------------------- writes
    def _write(self, name: str, value: float) -> None:
        try:
            self.params.set(name, value)
        except ParameterError as exc:
            self.sigMessage.emit(str(exc))

    def _slider_moved(self, slider: ParamSlider, pos: int) -> None:
        value = slider.to_value(pos)
        self.values[slider.name].setText(slider.scale.fmt(value))
        self._write(slider.name, value)

    # ---------------------------------------------------------------- reads
    def sync(self) -> None:
        """Show the store's values (no writes back)."""
        for name, slider in self.sliders.items():
            value = self.params.get(name)
            if not slider.isSliderDown():
                pos = slider.to_position(value)
                if pos != slider.value():
                    slider.blockSignals(True)
                    slider.setValue(pos)
                    slider.blockSignals(False)
            self.values[name].setText(slider.scale.fmt(value))
        for widget, value in ((self.variation, int(self.params.get("variation"))),
                              (self.freeze, bool(self.params.get("freeze")))):
            widget.blockSignals(True)
            if isinstance(widget, QtWidgets.QSpinBox):
                if not widget.hasFocus():
                    widget.setValue(value)
            else:
                widget.setChecked(value)
            widget.blockSignals(False)

    # ---------------------------------------------------------------- MIDI learn
    def learn(self, name: str, arm: bool = True) -> None:
        """Arm (or cancel) MIDI learn for ``name``."""
        if self.midi is None:
            self.learn_buttons[name].setChecked(False)
            self.sigMessage.emit("MIDI is off: no MIDI input is open")
            return
        try:
            if arm:
                self.midi.learn(name)
                self._armed = name
                self.sigMessage.emit(f"MIDI learn: move a control to assign it to {name}")
            else:
                self.midi.cancel_learn()
                self._armed = None
        except Exception as exc:  # noqa: BLE001 - a MIDI problem must not reach the GUI loop
            self._armed = None
            self.sigMessage.emit(f"MIDI learn failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        self.poll_learn()

    def poll_learn(self) -> None:
        """Light the armed button; when learn completed, say what was mapped."""
        if self.midi is None:
            return
        state = getattr(self.midi, "learning", None)
        for name, button in self.learn_buttons.items():
            if button.isChecked() != (state == name):
                button.setChecked(state == name)
        if self._armed is not None and state != self._armed:
            name, self._armed = self._armed, None
            if state is None:
                mappings = self.midi.midi_map.for_param(name) if hasattr(self.midi, "midi_map") else ()
                text = "; ".join(m.describe() for m in mappings) if mappings else name
                self.sigMessage.emit(f"MIDI learned: {text}")
