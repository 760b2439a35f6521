"""Audio outputs for the device chooser, and the sink for a choice (null sink when there is none).

The chooser's keys are ``None`` (the system default), a PortAudio device index, or
:data:`SILENT` (no output: a real-time paced :class:`engine.sinks.NullSink`, so everything else keeps
working without a sound card).
"""
from __future__ import annotations

from engine.errors import TextureError
from engine.sinks import DEFAULT_LEAD_SECONDS, NullSink, Sink, SoundDeviceSink

SILENT = "silent"
NO_DEVICE_BANNER = "No audio output device — running silently"
NULL_RATE = 48000


def list_outputs() -> list[tuple[str, object]]:
    """``(label, key)`` for each PortAudio output device, the default first, "No output" last.

    Never raises: without PortAudio (or with no devices) only "No output (silent)" is listed.
    """
    items: list[tuple[str, object]] = []
    try:
        import sounddevice as sd
        apis = sd.query_hostapis()
        outputs = [d for d in sd.query_devices() if d["max_output_channels"] > 0]
        if outputs:
            items.append(("System default output", None))
        for d in outputs:
            items.append((f"{d['name']} ({apis[d['hostapi']]['name']})", int(d["index"])))
    except Exception:  # noqa: BLE001 - no PortAudio library, a broken host API: no devices
        pass
    items.append(("No output (silent)", SILENT))
    return items


def open_sink(key: object, *, lead_seconds: float | None = None) -> tuple[Sink, str | None, str | None]:
    """The sink for a chooser key (or a ``--device`` name), the banner to show and why.

    ``lead_seconds`` is a sound device's lead (None: :data:`engine.sinks.DEFAULT_LEAD_SECONDS`).

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
