"""Audio outputs for the device chooser, and the sink for a choice (null sink when there is none).

The chooser's keys are ``None`` (the system default), a PortAudio device index, or
:data:`SILENT` (no output: a real-time paced :class:`engine.live.sinks.NullSink`, so everything else keeps
working without a sound card).

The list comes from a fresh PortAudio in a child process (:func:`engine.live.device_process.list_outputs`,
about 0.3 s, kept for :data:`LIST_CACHE_SECONDS`): this process never loads PortAudio, so a JACK
server that dies cannot take it down (see :mod:`engine.live.device_process`), and a restarted server is
listed again.
"""
from __future__ import annotations

import time

from engine.live.device_process import list_outputs as _device_list
from engine.errors import TextureError
from engine.live.sinks import DEFAULT_LEAD_SECONDS, NullSink, Sink
from engine.live.device_sink import SoundDeviceSink

SILENT = "silent"
NO_DEVICE_BANNER = "No audio output device — running silently"
LOST_BANNER = "Audio output lost — it plays again as soon as the device is back"
NULL_RATE = 48000
#: How long a device list is reused (windows made in a row, a chooser filled twice), in seconds.
LIST_CACHE_SECONDS = 2.0
_cache: tuple[float, list[dict]] = (-1e9, [])


def list_outputs() -> list[tuple[str, object]]:
    """``(label, key)`` for each PortAudio output device, the default first, "No output" last.

    Never raises: without PortAudio (or with no devices) only "No output (silent)" is listed.
    """
    global _cache
    items: list[tuple[str, object]] = []
    try:
        if time.monotonic() - _cache[0] > LIST_CACHE_SECONDS:
            _cache = (time.monotonic(), _device_list())
        outputs = _cache[1]
    except Exception:  # noqa: BLE001 - no PortAudio library, a broken host API: no devices
        outputs = []
    if outputs:
        items.append(("System default output", None))
    for d in outputs:
        items.append((f"{d['name']} ({d['hostapi']})", int(d["index"])))
    items.append(("No output (silent)", SILENT))
    return items


def open_sink(key: object, *, lead_seconds: float | None = None) -> tuple[Sink, str | None, str | None]:
    """The sink for a chooser key (or a ``--device`` name), the banner to show and why.

    ``lead_seconds`` is a sound device's lead (None: :data:`engine.live.sinks.DEFAULT_LEAD_SECONDS`).

    Returns ``(sink, banner, reason)``: banner and reason are None when a device plays. A device
    that cannot be opened gives a real-time null sink, :data:`NO_DEVICE_BANNER` and the one-line
    reason; the engine runs on.
    """
    if key == SILENT:
        return NullSink(NULL_RATE, realtime=True), "Output off — running silently", None
    try:
        lead = DEFAULT_LEAD_SECONDS if lead_seconds is None else lead_seconds
        return SoundDeviceSink(key, lead_seconds=lead), None, None
    except TextureError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - PortAudio missing entirely (OSError on import)
        reason = f"{type(exc).__name__}: {exc}"
    return NullSink(NULL_RATE, realtime=True), NO_DEVICE_BANNER, (reason.splitlines() or [""])[0]


def sink_label(sink: Sink) -> str:
    """A short description of a sink for the status line."""
    name = getattr(sink, "name", None)
    return f"{name} @ {sink.rate} Hz" if name else f"silent @ {sink.rate} Hz"
