"""A log of how live playback went, one JSON line every few seconds, that a user can send.

Each line covers the interval since the one before::

    {"elapsed_s": 60.0, "audio_s": 59.7, "underruns": 0, "new_underruns": 0, "quality_drops": 3,
     "new_quality_drops": 0, "realtime_factor": 4.1, "max_load": 0.41, "steps": 1, "lead_ms": 25.0,
     "output_lost": null, "gui_fps": 27.5}

``realtime_factor`` is audio made over compute spent in the interval, ``max_load`` the largest
compute / audio duration of one block in it (from the telemetry's per-block history), ``gui_fps``
and any other field come from the ``extra`` source (the window adds its frame rate). When the log
stops it writes one more line with ``"summary": true`` and the same fields over the engine's whole
run (since its last start).

The first line comes :data:`FIRST_LINE_SECONDS` after the start, so what the start-up cost (the
first blocks, the device's priming) is told apart from the run: "no underrun after the first second"
is the summary's ``underruns`` equal to the first line's. The writer is a daemon thread of its own that wakes every ``interval_s`` (never the producer: a
slow disk cannot cost a block). Every line is flushed as it is written, so a crash keeps all lines
up to the last interval. A log that cannot be written (no space, no permission) says so once
through ``log`` and stops writing; playback goes on.
"""
from __future__ import annotations

import datetime
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from engine.live.stream import Telemetry

#: Seconds between two lines.
INTERVAL_SECONDS = 10.0
#: The first line comes this many seconds after the start, so start-up shows apart from the run.
FIRST_LINE_SECONDS = 1.0


def default_log_path(kind: str) -> Path:
    """``$XDG_STATE_HOME/neural-texture/logs/<kind>-YYYYmmdd-HHMMSS.jsonl`` (default state folder
    ``~/.local/state``); the folder is made when the log starts."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "neural-texture" / "logs" / time.strftime(f"{kind}-%Y%m%d-%H%M%S.jsonl")


def interval_figures(before: Telemetry | None, now: Telemetry, seconds: float) -> dict:
    """The fields of one line for the interval from ``before`` (None: the engine's start) to ``now``.

    The engine's counts start again when it is started again (the window's Play after a Stop): an
    interval across such a restart is counted from the restart."""
    if before is not None and (now.audio_seconds < before.audio_seconds or now.blocks < before.blocks):
        before = None
    audio = now.audio_seconds - (before.audio_seconds if before else 0.0)
    compute = now.compute_seconds - (before.compute_seconds if before else 0.0)
    blocks = now.blocks - (before.blocks if before else 0)
    loads = now.load_history[-blocks:] if blocks > 0 else now.load_history[:0]
    return {
        "audio_s": round(now.audio_seconds, 3),
        "underruns": now.underruns,
        "new_underruns": now.underruns - (before.underruns if before else 0),
        "quality_drops": now.quality_drops,
        "new_quality_drops": now.quality_drops - (before.quality_drops if before else 0),
        "realtime_factor": round(audio / compute, 3) if compute > 0 else None,
        "max_load": round(float(np.max(loads)), 3) if len(loads) else None,
        "steps": now.steps,
        "lead_ms": round(1000.0 * now.lead_seconds, 1),
        "output_lost": now.output_lost,
        "priority": now.priority,
        "interval_s": round(seconds, 3),
    }


class PerformanceLog:
    """Writes :func:`interval_figures` of ``telemetry()`` to ``path`` every ``interval_s`` seconds.

    Parameters
    ----------
    path : path-like
        The JSON-lines file (appended to; its folder is made).
    telemetry : callable
        Returns the engine's :class:`engine.live.stream.Telemetry` (must not block).
    extra : callable or None
        Returns more fields for each line (e.g. ``{"gui_fps": 27.5}``); called on the log's thread,
        so it must only read plain values.
    interval_s : float
        Seconds between lines (> 0).
    log : callable
        Receives the one line saying the log could not be written.
    """

    def __init__(self, path: str | os.PathLike, telemetry: Callable[[], Telemetry], *,
                 extra: Callable[[], dict] | None = None, interval_s: float = INTERVAL_SECONDS,
                 log: Callable[[str], None] = lambda m: None) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive. Found: {interval_s}")
        self.path = Path(path)
        self._telemetry = telemetry
        self._extra = extra
        self.interval_s = float(interval_s)
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: TextIO | None = None
        self.lines_written = 0

    def start(self) -> None:
        """Open the file and start the writer thread (a file that cannot be opened: one message, no log)."""
        if self._thread is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            self._log(f"performance log not written: {self.path}: {exc.strerror or exc}")
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="texture-performance-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Write the summary line and close the file (waits at most ``timeout`` seconds for the thread)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        start_wall, start = datetime.datetime.now().astimezone(), time.monotonic()
        before, before_time = self._telemetry(), start
        self._write({"started": start_wall.isoformat(timespec="seconds"), "pid": os.getpid()})
        wait = min(FIRST_LINE_SECONDS, self.interval_s)
        while not self._stop.wait(wait):
            wait = self.interval_s
            now, t = self._telemetry(), time.monotonic()
            self._write(self._line(before, now, t - before_time, t - start))
            before, before_time = now, t
        now, t = self._telemetry(), time.monotonic()
        self._write(dict(self._line(None, now, t - start, t - start), summary=True))
        if self._file is not None:
            self._file.close()
            self._file = None

    def _line(self, before: Telemetry | None, now: Telemetry, seconds: float, elapsed: float) -> dict:
        line = {"elapsed_s": round(elapsed, 3), **interval_figures(before, now, seconds)}
        if self._extra is not None:
            try:
                line.update(self._extra())
            except Exception as exc:  # noqa: BLE001 - a field the log cannot read is left out, said once
                line["extra_error"] = f"{type(exc).__name__}: {exc}"
        return line

    def _write(self, line: dict) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()
            self.lines_written += 1
        except OSError as exc:
            self._log(f"performance log stopped: {self.path}: {exc.strerror or exc}")
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
