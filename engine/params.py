"""The one parameter store: the GUI and MIDI write it, the engine reads one snapshot per block.

Writers (GUI thread, MIDI callback thread, CLI) call :meth:`ParamStore.set` or
:meth:`set_blend`; each write is validated, takes a short lock (never held by the audio callback:
the producer thread alone reads) and bumps :attr:`ParamStore.version`, so a GUI can poll for changes
made by MIDI. The engine calls :meth:`snapshot` once per block and smooths towards it.

Blend: each style slot (by its stable id) has a weight in [0, 1]. ``blend_mode`` is ``"weights"``
(the per-slot weights) or ``"morph"`` (the 0..1 ``morph`` walks the loaded styles in slot order,
crossfading neighbours). Writing a slot weight selects ``"weights"``; writing ``morph`` selects
``"morph"``.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from engine.errors import ParameterError


#: Most optimiser steps per block (the ``iterations`` parameter's and ``--iterations``' live maximum, and
#: what adaptive quality restores at most).
MAX_STEPS_PER_BLOCK = 32


@dataclass(frozen=True)
class ParamSpec:
    """Range, default and unit of one live parameter."""

    name: str
    minimum: float
    maximum: float
    default: float
    kind: str = "float"  # "float", "int" or "bool"
    unit: str = ""
    doc: str = ""

    def coerce(self, value: object) -> float:
        """Validate ``value`` and return it as the parameter's type.

        Raises
        ------
        ParameterError
            Not a number, NaN/Inf, or outside [minimum, maximum].
        """
        try:
            v = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ParameterError(f"{self.name} must be a number. Found: {value!r}") from None
        if not math.isfinite(v):
            raise ParameterError(f"{self.name} must be finite. Found: {value!r}")
        if not self.minimum <= v <= self.maximum:
            raise ParameterError(f"{self.name} must be in [{self.minimum:g}, {self.maximum:g}]{self.unit}. Found: {v:g}")
        if self.kind == "int":
            return float(round(v))
        if self.kind == "bool":
            return float(v >= 0.5)
        return v


PARAM_SPECS: dict[str, ParamSpec] = {s.name: s for s in (
    ParamSpec("morph", 0.0, 1.0, 0.0, doc="walks the loaded styles in slot order (0 = first, 1 = last)"),
    ParamSpec("receptive_field", 0.0, 1.0, 0.5,
              doc="0 = short banks (grainy, 58 ms), 1 = long banks (structured, 383 ms)"),
    ParamSpec("iterations", 0, MAX_STEPS_PER_BLOCK, 1, kind="int",
              doc="optimiser steps per block on all in-flight frames (0 bypasses the optimiser: the noise "
                  "initialisation alone); adaptive quality may lower it"),
    ParamSpec("gain", 0.0, 1.0, 0.7, unit=" (linear)", doc="output gain, linear 0..1 (0 dB at 1)"),
    ParamSpec("variation", 0, 2 ** 31 - 1, 0, kind="int", doc="seed of the frame initialisation"),
    ParamSpec("freeze", 0, 1, 0, kind="bool", doc="new frames start from the texture's own recent output, not noise"),
    ParamSpec("learning_rate", 0.001, 1.0, 0.3, doc="Adam step size on log(s + 0.1) per step (relative change)"),
    ParamSpec("width", 0.0, 1.0, 1.0,
              doc="stereo width: 0 = mono (identical channels), 1 = the styles' own stereo image (a mono "
                  "style's: independent channels)"),
    ParamSpec("material", 0.0, 1.0, 0.0,
              doc="0 synthesises from noise; higher values start new frames from pieces of the recordings "
                  "(granular replay mixed into the noise)"),
)}

BLEND_MODES = ("weights", "morph")


@dataclass(frozen=True)
class ParamSnapshot:
    """An immutable copy of the store, taken once per block."""

    values: Mapping[str, float]
    blend: Mapping[int, float]
    blend_mode: str
    version: int

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def blend_weights(self, slot_ids: list[int]) -> np.ndarray:
        """Blend weights ``(len(slot_ids),)`` for these slots (in slot order), before normalisation.

        In ``"morph"`` mode the weights are a linear crossfade between the two slots next to
        ``morph * (n - 1)``; in ``"weights"`` mode they are the per-slot weights (default 1).
        A blend whose weights are all zero falls back to equal weights.
        """
        n = len(slot_ids)
        if n == 0:
            return np.zeros(0)
        if self.blend_mode == "morph":
            pos = self.values["morph"] * (n - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, n - 1)
            w = np.zeros(n)
            w[lo] += 1.0 - (pos - lo)
            w[hi] += pos - lo
            return w
        w = np.array([self.blend.get(i, 1.0) for i in slot_ids], dtype=np.float64)
        return w if w.sum() > 0 else np.ones(n)


@dataclass
class ParamStore:
    """Thread-safe store of the live parameters (see module doc)."""

    _values: dict[str, float] = field(default_factory=lambda: {n: s.default for n, s in PARAM_SPECS.items()})
    _blend: dict[int, float] = field(default_factory=dict)
    _mode: str = "weights"
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def spec(name: str) -> ParamSpec:
        """The spec of parameter ``name``; ParameterError for an unknown name."""
        try:
            return PARAM_SPECS[name]
        except KeyError:
            raise ParameterError(f"unknown parameter {name!r}; known: {', '.join(PARAM_SPECS)}") from None

    def set(self, name: str, value: object) -> float:
        """Set ``name`` to ``value`` (validated, see :meth:`ParamSpec.coerce`); returns the stored value."""
        v = self.spec(name).coerce(value)
        with self._lock:
            self._values[name] = v
            if name == "morph":
                self._mode = "morph"
            self.version += 1
        return v

    def get(self, name: str) -> float:
        """Current value of ``name``."""
        self.spec(name)
        return self._values[name]

    def reader(self, name: str):
        """A function returning the current value of ``name`` without the lock (one dict read: safe
        in an audio callback; the value may be one write old)."""
        self.spec(name)
        values = self._values
        return lambda: values[name]

    def set_blend(self, slot_id: int, weight: float) -> float:
        """Set the blend weight of style slot ``slot_id`` (0..1) and select ``"weights"`` mode."""
        w = ParamSpec("blend weight", 0.0, 1.0, 1.0).coerce(weight)
        with self._lock:
            self._blend[int(slot_id)] = w
            self._mode = "weights"
            self.version += 1
        return w

    def blend_weight(self, slot_id: int) -> float:
        """Blend weight of slot ``slot_id`` (1 when never set)."""
        return self._blend.get(int(slot_id), 1.0)

    def set_blend_mode(self, mode: str) -> None:
        """Choose ``"weights"`` or ``"morph"``."""
        if mode not in BLEND_MODES:
            raise ParameterError(f"blend mode must be one of {BLEND_MODES}. Found: {mode!r}")
        with self._lock:
            self._mode = mode
            self.version += 1

    def forget_slot(self, slot_id: int) -> None:
        """Drop the weight of a removed slot."""
        with self._lock:
            self._blend.pop(int(slot_id), None)
            self.version += 1

    def snapshot(self) -> ParamSnapshot:
        """An immutable copy of everything (the engine takes one per block)."""
        with self._lock:
            return ParamSnapshot(MappingProxyType(dict(self._values)), MappingProxyType(dict(self._blend)),
                                 self._mode, self.version)

    def to_dict(self) -> dict:
        """Values, blend weights (by slot id) and mode, JSON-able (sessions)."""
        snap = self.snapshot()
        return {"values": dict(snap.values), "blend": {str(k): v for k, v in snap.blend.items()},
                "blend_mode": snap.blend_mode}

    def load_dict(self, data: dict) -> list[str]:
        """Restore from :meth:`to_dict` output; returns one message per entry that was skipped."""
        problems = []
        for name, value in dict(data.get("values", {})).items():
            try:
                self.set(name, value)
            except ParameterError as exc:
                problems.append(str(exc))
        for slot, value in dict(data.get("blend", {})).items():
            try:
                self.set_blend(int(slot), value)
            except (ParameterError, ValueError) as exc:
                problems.append(f"blend weight of slot {slot!r}: {exc}")
        if data.get("blend_mode") in BLEND_MODES:
            self.set_blend_mode(data["blend_mode"])
        return problems


def parse_blend(text: str | None, n: int) -> list[float] | None:
    """``"0.7,0.3"`` → ``[0.7, 0.3]``; ParameterError unless there are ``n`` finite weights in [0, 1]."""
    if text is None:
        return None
    try:
        weights = [float(v) for v in text.split(",")]
    except ValueError:
        raise ParameterError(f"--blend must be comma-separated numbers. Found: {text!r}") from None
    if len(weights) != n:
        raise ParameterError(f"--blend needs {n} weights, one per --style. Found {len(weights)}: {text!r}")
    if not all(0.0 <= w <= 1.0 for w in weights) or sum(weights) <= 0:
        raise ParameterError(f"--blend weights must be in [0, 1] and not all 0. Found: {text!r}")
    return weights
