"""The MIDI mapping model: which control change or pitch bend drives which live parameter, and how.

A :class:`Mapping` turns one 7-bit CC value (0..127) or one 14-bit pitch-bend value (0..16383) into a
control position ``x`` in [0, 1], bends it with a curve and scales it onto ``[lo, hi]`` (``lo > hi``
inverts the control)::

    linear:  s = x
    exp:     s = (exp(K x) - 1) / (exp(K) - 1)        slow start: fine control near lo
    log:     s = ln(1 + (exp(K) - 1) x) / K           fast start: fine control near hi (inverse of exp)
    value  = lo + (hi - lo) * s                         with K = CURVE_K = 4

so every curve maps x = 0 to ``lo`` and x = 1 to ``hi`` exactly. The value is then validated by the
parameter's spec (ints are rounded, ``freeze`` is on from 0.5).

A :class:`MidiMap` is an immutable set of mappings plus the note settings (note ``note_base`` selects
the first style slot, the next notes the next slots; ``note_velocity`` makes the selected slot's
weight velocity / 127 instead of 1). It is JSON-able (:meth:`MidiMap.to_dict`, :meth:`MidiMap.from_dict`)
for sessions and for the user config file (:func:`user_map_path`, :func:`load_user_map`,
:func:`save_user_map`). Immutability lets the MIDI callback thread read the current map without a
lock while MIDI learn or a session load swaps in a new one.

The default map (also in README): CC1 (mod wheel) → morph, CC74 → receptive_field, CC7 → gain, all
linear over the full range, any channel.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from engine.errors import ParameterError
from engine.params import ParamStore

KINDS = ("cc", "pitchbend")
CURVES = ("linear", "exp", "log")
CURVE_K = 4.0
MAP_FORMAT_VERSION = 1
CONFIG_FILE_NAME = "midi_map.json"

_EXP_K = math.expm1(CURVE_K)  # exp(K) - 1


@dataclass(frozen=True)
class Mapping:
    """One MIDI source → one live parameter.

    Parameters
    ----------
    kind : ``"cc"`` or ``"pitchbend"``.
    number : CC number 0..127 (must be 0 for ``"pitchbend"``).
    channel : MIDI channel 1..16 as printed on controllers, or None for any channel (omni).
    param : name of a live parameter (see :data:`engine.params.PARAM_SPECS`).
    lo, hi : parameter values at control position 0 and 1, inside the parameter's range.
    curve : ``"linear"``, ``"exp"`` or ``"log"`` (formulas in the module doc).

    Raises
    ------
    ParameterError
        Any field out of range or of the wrong type; the message names the field and quotes the value.
    """

    kind: str
    number: int
    channel: int | None
    param: str
    lo: float
    hi: float
    curve: str = "linear"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"MIDI mapping kind must be one of {KINDS}. Found: {self.kind!r}")
        if not _is_int(self.number) or not 0 <= self.number <= 127:
            raise ParameterError(f"MIDI CC number must be an integer 0..127. Found: {self.number!r}")
        if self.kind == "pitchbend" and self.number != 0:
            raise ParameterError(f"a pitch-bend mapping has number 0. Found: {self.number!r}")
        if self.channel is not None and (not _is_int(self.channel) or not 1 <= self.channel <= 16):
            raise ParameterError(f"MIDI channel must be 1..16 or null (any). Found: {self.channel!r}")
        spec = ParamStore.spec(self.param)
        for end in ("lo", "hi"):
            v = getattr(self, end)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ParameterError(f"MIDI mapping {end} for {self.param} must be a finite number. Found: {v!r}")
            if not spec.minimum <= v <= spec.maximum:
                raise ParameterError(f"MIDI mapping {end} for {self.param} must be in "
                                     f"[{spec.minimum:g}, {spec.maximum:g}]. Found: {v:g}")
        if self.curve not in CURVES:
            raise ParameterError(f"MIDI mapping curve must be one of {CURVES}. Found: {self.curve!r}")

    @classmethod
    def full_range(cls, kind: str, number: int, channel: int | None, param: str, *, lo: float | None = None,
                   hi: float | None = None, curve: str = "linear") -> "Mapping":
        """A mapping whose ``lo``/``hi`` default to the parameter's whole range."""
        spec = ParamStore.spec(param)
        return cls(kind, number, channel, param, spec.minimum if lo is None else lo,
                   spec.maximum if hi is None else hi, curve)

    def value(self, x: float) -> float:
        """Parameter value for control position ``x`` in [0, 1] (clipped), before the spec's rounding."""
        x = min(max(x, 0.0), 1.0)
        if self.curve == "exp":
            s = math.expm1(CURVE_K * x) / _EXP_K
        elif self.curve == "log":
            s = math.log1p(_EXP_K * x) / CURVE_K
        else:
            s = x
        return min(max(self.lo + (self.hi - self.lo) * s, min(self.lo, self.hi)), max(self.lo, self.hi))

    def matches(self, channel: int) -> bool:
        """True when a message on ``channel`` (1..16) drives this mapping."""
        return self.channel is None or self.channel == channel

    def describe(self) -> str:
        """One line for logs and the GUI, e.g. ``CC20 (any channel) → iterations [1, 32] linear``."""
        src = "pitch bend" if self.kind == "pitchbend" else f"CC{self.number}"
        ch = "any channel" if self.channel is None else f"channel {self.channel}"
        return f"{src} ({ch}) → {self.param} [{self.lo:g}, {self.hi:g}] {self.curve}"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class MidiMap:
    """An immutable set of :class:`Mapping` plus note settings (see module doc).

    ``note_base`` (0..127, default 60 = middle C) selects the first style slot; note ``note_base + i``
    selects slot ``i`` in slot order, wrapping around the number of loaded slots so every key selects
    one. ``note_velocity``: the selected slot's weight is velocity / 127 (else 1).
    """

    mappings: tuple[Mapping, ...] = ()
    note_base: int = 60
    note_velocity: bool = False
    _routes: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _is_int(self.note_base) or not 0 <= self.note_base <= 127:
            raise ParameterError(f"MIDI note_base must be an integer 0..127. Found: {self.note_base!r}")
        if not isinstance(self.note_velocity, bool):
            raise ParameterError(f"MIDI note_velocity must be true or false. Found: {self.note_velocity!r}")
        routes: dict[tuple[str, int], tuple[Mapping, ...]] = {}
        for m in self.mappings:
            if not isinstance(m, Mapping):
                raise ParameterError(f"MidiMap holds Mapping objects. Found: {m!r}")
            routes[(m.kind, m.number)] = routes.get((m.kind, m.number), ()) + (m,)
        object.__setattr__(self, "mappings", tuple(self.mappings))
        object.__setattr__(self, "_routes", routes)

    @classmethod
    def default(cls) -> "MidiMap":
        """CC1 (mod wheel) → morph, CC74 → receptive_field, CC7 → gain; linear, full range, any channel."""
        return cls(tuple(Mapping.full_range("cc", n, None, p)
                         for n, p in ((1, "morph"), (74, "receptive_field"), (7, "gain"))))

    def routes(self, kind: str, number: int) -> tuple[Mapping, ...]:
        """The mappings driven by this source (any channel); empty when none."""
        return self._routes.get((kind, number), ())

    def for_param(self, param: str) -> tuple[Mapping, ...]:
        """The mappings that drive ``param`` (for the GUI's learn buttons)."""
        return tuple(m for m in self.mappings if m.param == param)

    def assign(self, mapping: Mapping) -> "MidiMap":
        """A new map where ``mapping`` replaces every mapping of the same parameter and of the same
        source (kind, number, channel), so a learned control drives exactly one parameter and a
        parameter has exactly one control."""
        keep = tuple(m for m in self.mappings if m.param != mapping.param
                     and (m.kind, m.number, m.channel) != (mapping.kind, mapping.number, mapping.channel))
        return MidiMap(keep + (mapping,), self.note_base, self.note_velocity)

    def to_dict(self) -> dict:
        """JSON-able form: ``{"version": 1, "mappings": [{kind, number, channel, param, lo, hi, curve}, ...],
        "note_base": int, "note_velocity": bool}``."""
        return {"version": MAP_FORMAT_VERSION, "mappings": [asdict(m) for m in self.mappings],
                "note_base": self.note_base, "note_velocity": self.note_velocity}

    @classmethod
    def from_dict(cls, data: object) -> "MidiMap":
        """Inverse of :meth:`to_dict`. Missing note settings take their defaults.

        Raises
        ------
        ParameterError
            Not a dict, an unknown version or key, or an invalid mapping (the message gives its index).
        """
        if not isinstance(data, dict):
            raise ParameterError(f"a MIDI map must be a JSON object. Found: {type(data).__name__}")
        unknown = set(data) - {"version", "mappings", "note_base", "note_velocity"}
        if unknown:
            raise ParameterError(f"unknown MIDI map keys: {', '.join(sorted(map(str, unknown)))}")
        if data.get("version", MAP_FORMAT_VERSION) != MAP_FORMAT_VERSION:
            raise ParameterError(f"MIDI map version must be {MAP_FORMAT_VERSION}. Found: {data['version']!r}")
        entries = data.get("mappings", [])
        if not isinstance(entries, list):
            raise ParameterError(f"MIDI map 'mappings' must be a list. Found: {type(entries).__name__}")
        fields = {"kind", "number", "channel", "param", "lo", "hi", "curve"}
        mappings = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not {"kind", "number", "param"} <= set(entry) \
                    or not set(entry) <= fields:
                raise ParameterError(f"MIDI mapping {i} must be an object with kind, number, param and "
                                     f"optionally channel, lo, hi, curve. Found: {entry!r}")
            try:
                mappings.append(Mapping.full_range(entry["kind"], entry["number"], entry.get("channel"),
                                                   entry["param"], lo=entry.get("lo"), hi=entry.get("hi"),
                                                   curve=entry.get("curve", "linear")))
            except ParameterError as exc:
                raise ParameterError(f"MIDI mapping {i}: {exc}") from None
        return cls(tuple(mappings), data.get("note_base", 60), data.get("note_velocity", False))


def user_map_path() -> Path:
    """Where the user's MIDI map lives: ``$TEXTURE_CONFIG_DIR/midi_map.json``, else
    ``$XDG_CONFIG_HOME/neural-texture/midi_map.json``, else ``~/.config/neural-texture/midi_map.json``."""
    if os.environ.get("TEXTURE_CONFIG_DIR"):
        return Path(os.environ["TEXTURE_CONFIG_DIR"]) / CONFIG_FILE_NAME
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "neural-texture" / CONFIG_FILE_NAME


def load_user_map(path: Path | None = None, *, log: Callable[[str], None] = print) -> MidiMap:
    """The user's MIDI map, or the default map when the file does not exist.

    A file that cannot be read or parsed, or holds an invalid map, never raises: ``log`` gets one
    line naming the file and the problem, and the default map is returned (the file is left alone
    until the next MIDI learn overwrites it).
    """
    path = user_map_path() if path is None else path
    if not path.exists():
        return MidiMap.default()
    try:
        return MidiMap.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ParameterError) as exc:
        log(f"warning: MIDI map {path} is unusable ({exc}); using the default map")
        return MidiMap.default()


def save_user_map(midi_map: MidiMap, path: Path | None = None) -> Path:
    """Write ``midi_map`` atomically (temporary file in the same folder, then ``os.replace``).

    Returns the path written. Raises OSError when the folder cannot be created or written.
    """
    path = user_map_path() if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".midi_map.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(midi_map.to_dict(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["CURVES", "CURVE_K", "KINDS", "Mapping", "MidiMap", "load_user_map", "save_user_map",
           "user_map_path"]
