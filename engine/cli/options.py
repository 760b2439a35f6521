"""Checks of the command line's values, made before any work: numeric ranges, output paths, blend.

``main.py`` calls :func:`check_args` right after parsing, before it imports torch, loads a style or
starts an optimisation, so a bad value costs a fraction of a second and gives one line
(:class:`engine.errors.ParameterError`), never a failure at the end of a 20-second run. This module
imports nothing heavy (no numpy, no torch) for that reason.

The ranges (:data:`RANGES`) and why each bound is where it is:

* ``--seconds``: ``play`` up to a week; a streaming ``render`` up to 6 h (a 32-bit float WAV at
  48 kHz reaches the 4 GiB RIFF limit after 6.2 h; a 6 h file at 22050 Hz is 1.9 GB); an offline
  render up to :data:`OFFLINE_MAX_SECONDS` (L-BFGS keeps 40 copies of the whole spectrogram, about
  9 MB of memory per second of output at 22050 Hz and twice that at full band, and computes 8-26 s per
  second of output on a 2-core CPU at 22050 Hz, about twice that at full band).
* ``--iterations``: live steps per block 0..32 (0 bypasses the optimiser); offline L-BFGS 1..5000.
* ``--gain`` 0..1 linear, ``--receptive-field`` and ``--width`` 0..1, ``--lead-ms`` 1..1000 ms, ``--seed``
  0..2³¹−1, ``--sample-rate`` 8000..48000 Hz (the STFT is about 46 ms at any rate, 512 samples at
  8 kHz; above 48 kHz the STFT doubles again and a block costs more than real time allows on a
  2-core CPU; without it the engine runs full band at the output's rate), ``--blocks`` 1..10000,
  ``--timeout`` up to an hour, ``--weights`` four values in [0, 1e12].

Outputs (``--out``, ``--stats``, ``--json``, ``--performance-log``): the suffix must be one this program writes and the
folder (or the nearest existing folder above it, since missing folders are created) must accept a
new file, tested by creating and deleting a temporary one there. No file a command writes (``--out``,
its ``NAME.partial`` and ``NAME.interrupted.wav``, ``--stats``, ``--json``) may be one of its inputs
(``--style``, ``--content``, ``evaluate``'s files): compared after resolving links, ``..`` and
relative paths (:func:`check_not_input`), so a typo never overwrites a recording.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.errors import ParameterError
from engine.params import MAX_STEPS_PER_BLOCK, parse_blend

#: The longest offline render / style transfer, in seconds of output (see the module doc).
OFFLINE_MAX_SECONDS = 120.0
#: Suffixes of the audio files ``render`` and ``transfer`` write (engine.analysis.audio_io.WRITE_FORMATS).
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class Range:
    """A closed range ``[lo, hi]`` (``lo`` excluded when ``open_lo``) for one option, with its unit."""

    option: str
    lo: float
    hi: float
    open_lo: bool = False
    unit: str = ""
    why: str = ""
    applies: Callable[[argparse.Namespace], bool] = lambda args: True

    def check(self, value: float | None) -> None:
        """Raise ParameterError (one line quoting the value) unless ``value`` is None or in range."""
        if value is None:
            return
        ok = math.isfinite(value) and (self.lo < value if self.open_lo else self.lo <= value) and value <= self.hi
        if not ok:
            low = f"> {_num(self.lo)}" if self.open_lo else f">= {_num(self.lo)}"
            why = f" ({self.why})" if self.why else ""
            raise ParameterError(f"{self.option} must be {low} and <= {_num(self.hi)}{self.unit}{why}. Found: {_num(value)}")


def _num(v: float) -> str:
    """A bound or value as the user would type it: ``2147483647``, ``0.5``, ``1e+09``."""
    return str(int(v)) if math.isfinite(v) and float(v).is_integer() and abs(v) < 1e12 else f"{v:g}"


def _offline(args: argparse.Namespace) -> bool:
    return args.command == "transfer" or bool(getattr(args, "offline", False))


def _streaming(args: argparse.Namespace) -> bool:
    return not _offline(args)


_SEED = Range("--seed", 0, 2 ** 31 - 1)
_RATE = Range("--sample-rate", 8000, 48000, unit=" Hz")
_LIVE = (Range("--receptive-field", 0, 1), Range("--material", 0, 1), Range("--width", 0, 1), Range("--gain", 0, 1, unit=" (linear)"), _SEED, _RATE)

#: Per command: the ranges of its numeric options (``dest`` names are the option names without ``--``).
RANGES: dict[str, tuple[Range, ...]] = {
    "play": (Range("--seconds", 0, 7 * 86400, open_lo=True, unit=" s"),
             Range("--iterations", 0, MAX_STEPS_PER_BLOCK, unit=" steps per block"),
             Range("--lead-ms", 1, 1000, unit=" ms"), *_LIVE),
    "render": (Range("--seconds", 0, 6 * 3600, open_lo=True, unit=" s", applies=_streaming,
                     why="a 6 h float WAV at 48 kHz is near the 4 GiB WAV limit"),
               Range("--seconds", 0, OFFLINE_MAX_SECONDS, open_lo=True, unit=" s with --offline", applies=_offline,
                     why="the offline optimiser holds the whole spectrogram 40 times, about 18 MB per second at full band; "
                         "render longer textures without --offline"),
               Range("--iterations", 0, MAX_STEPS_PER_BLOCK, unit=" steps per block", applies=_streaming),
               Range("--iterations", 1, 5000, unit=" L-BFGS iterations with --offline", applies=_offline),
               *_LIVE),
    "transfer": (Range("--iterations", 1, 5000, unit=" L-BFGS iterations"), _SEED, _RATE),
    "evaluate": (_RATE,),
    "bench": (Range("--blocks", 1, 10000),),
    "midi-learn": (Range("--timeout", 0, 3600, open_lo=True, unit=" s"),),
}

#: Per command: (option, suffixes it may have or None for a folder) of the files it writes.
OUTPUTS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "render": (("--out", AUDIO_SUFFIXES), ("--stats", (".json",))),
    "transfer": (("--out", AUDIO_SUFFIXES),),
    "evaluate": (("--json", (".json",)),),
    "bench": (("--json", (".json",)),),
    "export-onnx": (("--out", None),),
    "play": (("--performance-log", (".jsonl",)),),
    "gui": (("--performance-log", (".jsonl",)),),
}


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def parse_weights(text: str | None) -> list[float] | None:
    """``--weights a,b,g,d``: the content, style, spectral and temporal-envelope loss weights, four
    finite numbers in [0, 1e12]; ParameterError otherwise (the one parser of ``--weights``)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) and 0 <= v <= 1e12 for v in values):
        raise ParameterError(f"--weights must be four numbers a,b,g,d in [0, 1e12]. Found: {text!r}")
    return values


def check_output(option: str, path: str, suffixes: tuple[str, ...] | None) -> None:
    """Raise ParameterError unless ``path`` has one of ``suffixes`` (None: a folder) and can be written.

    A missing folder is fine when the nearest existing folder above it accepts new entries (the
    writers create the rest); the test creates and deletes a temporary file there.
    """
    p = Path(path)
    if suffixes is not None:
        if p.suffix.lower() not in suffixes:
            raise ParameterError(f"{option} {path}: cannot write '{p.suffix}' files; use {' or '.join(suffixes)}")
        if p.is_dir():
            raise ParameterError(f"{option} {path}: is a folder, not a file name")
        folder = p.parent
    else:
        if p.exists() and not p.is_dir():
            raise ParameterError(f"{option} {path}: is a file, not a folder")
        folder = p
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ParameterError(f"{option} {path}: cannot write there: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".texture-write-test-", dir=existing)
    except OSError as exc:
        raise ParameterError(f"{option} {path}: cannot write in {existing}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


#: Per command: (name shown, ``dest``) of the arguments that name input files.
INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "render": (("--style", "style"),),
    "transfer": (("--content", "content"), ("--style", "style")),
    "evaluate": (("REFERENCE", "reference"), ("CANDIDATE", "candidates"), ("--style", "style")),
}


def _inputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name shown, path) of every input file named on the command line."""
    found = []
    for name, dest in INPUTS.get(args.command, ()):
        value = getattr(args, dest, None)
        found += [(name, path) for path in (value if isinstance(value, list) else [value]) if path is not None]
    return found


def _written(option: str, path: str) -> list[str]:
    """Every file an output option writes: the file itself, and for audio its ``.partial`` and
    ``.interrupted`` names (engine.analysis.audio_io.partial_path, engine.live.sinks.FileSink)."""
    p = Path(path)
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        return [path]
    return [path, str(p.with_name(p.name + ".partial")), str(p.with_name(f"{p.stem}.interrupted{p.suffix}"))]


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: ``os.path.samefile`` when both exist (links, hard links,
    ``..``), else the same fully resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_not_input(option: str, path: str, inputs: list[tuple[str, str]]) -> None:
    """Raise ParameterError when ``path`` (or a file it implies, see :func:`_written`) is one of ``inputs``."""
    for written in _written(option, path):
        for name, source in inputs:
            if _same_file(written, source):
                raise ParameterError(f"{option} {path}: would overwrite the input {name} {source}; "
                                     "write to another name")


def check_args(args: argparse.Namespace) -> None:
    """Check every numeric option, the blend and the output paths of a parsed command line.

    Raises
    ------
    ParameterError
        The first bad value, as one line that names the option, the allowed range and the value.
    """
    for r in RANGES.get(args.command, ()):
        if r.applies(args):
            r.check(getattr(args, _dest(r.option), None))
    styles = getattr(args, "style", None)
    if isinstance(styles, list) or styles is None:
        parse_blend(getattr(args, "blend", None), len(styles or []))
    if args.command == "transfer":
        parse_weights(args.weights)
    inputs = _inputs(args)
    for option, suffixes in OUTPUTS.get(args.command, ()):
        value = getattr(args, _dest(option), None)
        if value is not None:
            check_not_input(option, value, inputs)
            check_output(option, value, suffixes)
