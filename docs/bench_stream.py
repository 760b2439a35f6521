"""Live-path figures on a JACK dummy server: start to first sound, control latency, memory growth.

* ``first_sound_s`` — ``python main.py play --no-gui`` launched as a process, until its first
  non-empty audio callback (median of ``--runs`` launches).
* ``style_latency_ms`` / ``gain_latency_ms`` — a blend switch between a low and a high noise style,
  and a gain drop 1 → 0.1, each written to the parameter store mid-stream; time until the captured
  JACK output crosses half-way (10 ms frames; median of ``--runs`` changes).
* ``midi_cc7_to_audible_ms`` — CC7 (gain in the default MIDI map) sent from an rtmidi port into the
  app's virtual MIDI port, until the captured output is half-way down (5 ms frames).
* ``memory_growth_mb`` — resident memory after ``--hours`` of audio rendered at full speed to a null
  sink, minus the resident memory after the first minute.

Starts its own JACK dummy server when ``JACK_DEFAULT_SERVER`` names none.
Usage: ``python docs/bench_stream.py [--runs 5] [--hours 1.0] [--skip-memory] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.jack_server import JackServer  # noqa: E402 - the one JACK starter of tests and benchmarks


def ensure_jack() -> JackServer | None:
    """Point JACK clients at ``$JACK_DEFAULT_SERVER`` (default ``texture-bench``) and start a dummy
    server of that name unless one answers; returns the server started here (``close()`` it)."""
    server = JackServer(os.environ.get("JACK_DEFAULT_SERVER", "texture-bench"))
    server.point_clients_here()
    if server.running():
        return None
    server.start()
    return server


def first_sound(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "2"],
                              capture_output=True, text=True, timeout=120)
        m = re.search(r"first sound ([0-9.]+) s", proc.stderr)
        if m:
            times.append(float(m.group(1)))
    return times


def _noise(band: tuple[float, float], sr: int, seed: int) -> np.ndarray:
    sos = signal.butter(6, [band[0] / (sr / 2), band[1] / (sr / 2)], "band", output="sos")
    y = signal.sosfilt(sos, np.random.default_rng(seed).standard_normal(4 * sr))
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def control_latencies(runs: int) -> tuple[list[float], list[float], float]:
    from engine.synthesis.step_graph import full_band_rate, live_config
    from engine.params import ParamStore
    from engine.synthesis.runtime import BlockStepper
    from engine.live.device_sink import SoundDeviceSink
    from engine.live.stream import Engine
    from engine.synthesis.styles import StyleLibrary
    from tests.jack_capture import JackCapture
    sink = SoundDeviceSink(None)
    config = live_config(full_band_rate(sink.rate))  # the engine at the device's rate, as play runs it
    library = StyleLibrary(config)
    rate = config.spectral.sample_rate
    low = library.add_audio(_noise((100, 800), rate, 0), "low")
    high = library.add_audio(_noise((4000, 9000), rate, 1), "high")
    params = ParamStore()
    params.set("gain", 1.0)
    engine = Engine(library, params, BlockStepper(config), sink)
    capture = JackCapture(8.0 * runs + 4, rate=sink.rate)
    frame = sink.rate // 100
    style_ms, gain_ms, marks = [], [], []
    engine.start()
    capture.start()
    capture.wait_until(sink.rate, timeout=10)
    for i in range(runs):
        for slot, w in ((low, 1.0), (high, 0.0)):
            params.set_blend(slot.slot_id, w)
        params.set("gain", 1.0)
        capture.wait_until(capture.count + 2 * sink.rate, timeout=10)
        marks.append(("style", capture.count))
        for slot, w in ((low, 0.0), (high, 1.0)):
            params.set_blend(slot.slot_id, w)
        capture.wait_until(capture.count + 2 * sink.rate, timeout=10)
        marks.append(("gain", capture.count))
        params.set("gain", 0.1)
        capture.wait_until(capture.count + 2 * sink.rate, timeout=10)
    stated = engine.control_latency_seconds
    engine.stop()
    y = capture.stop()
    n = len(y) // frame
    spec = np.abs(np.fft.rfft(y[:n * frame].reshape(n, frame), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / sink.rate)
    share = spec[:, freqs > 2500].sum(axis=1) / (spec.sum(axis=1) + 1e-12)
    rms = np.sqrt(np.mean(y[:n * frame].reshape(n, frame) ** 2, axis=1))
    for kind, at in marks:
        k = at // frame
        if kind == "style":
            hit = np.nonzero(share[k:k + 200] > 0.5)[0]
            target = style_ms
        else:
            level = 0.5 * (rms[k - 50:k].mean() + 0.1 * rms[k - 50:k].mean())
            hit = np.nonzero(rms[k:k + 200] < level)[0]
            target = gain_ms
        if len(hit):
            target.append(hit[0] * 1000.0 * frame / sink.rate)
    return style_ms, gain_ms, stated * 1000.0


def midi_to_audible(runs: int) -> list[float]:
    """CC7 (gain, default map) sent from an rtmidi port into the app's virtual port while the engine
    plays on JACK: milliseconds from the send until the captured level is half-way down."""
    import rtmidi
    from engine.synthesis.step_graph import full_band_rate, live_config
    from engine.control.midi import MidiController
    from engine.control.midi_map import MidiMap
    from engine.params import ParamStore
    from engine.synthesis.runtime import BlockStepper
    from engine.live.device_sink import SoundDeviceSink
    from engine.live.stream import Engine
    from engine.synthesis.styles import StyleLibrary
    from tests.jack_capture import JackCapture
    sink = SoundDeviceSink(None)
    config = live_config(full_band_rate(sink.rate))
    library = StyleLibrary(config)
    library.add_default()
    params = ParamStore()
    params.set("gain", 1.0)
    controller = MidiController(params, api="jack", midi_map=MidiMap.default(), save_learned=False, log=lambda m: None)
    controller.start()
    sender = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench keys")
    sender.open_port(sender.get_ports().index("texture:texture in"))
    engine = Engine(library, params, BlockStepper(config), sink)
    capture = JackCapture(4.0 * runs + 3, rate=sink.rate)
    engine.start()
    capture.start()
    capture.wait_until(sink.rate, timeout=10)
    marks = []
    for _ in range(runs):
        sender.send_message([0xB0, 7, 127])
        capture.wait_until(capture.count + 2 * sink.rate, timeout=10)
        marks.append(capture.count)
        sender.send_message([0xB0, 7, 13])  # gain 13/127 = 0.10
        capture.wait_until(capture.count + 2 * sink.rate, timeout=10)
    engine.stop()
    controller.stop()
    sender.delete()
    y = capture.stop()
    frame = sink.rate // 200  # 5 ms frames
    n = len(y) // frame
    rms = np.sqrt(np.mean(y[:n * frame].reshape(n, frame) ** 2, axis=1))
    out = []
    for at in marks:
        k = at // frame
        before = rms[k - 100:k].mean()
        hit = np.nonzero(rms[k:k + 200] < 0.55 * before)[0]
        if len(hit):
            out.append(hit[0] * 1000.0 * frame / sink.rate)
    return out


def memory_growth(hours: float) -> tuple[float, float]:
    from engine.synthesis.step_graph import full_band_rate, live_config
    from engine.params import ParamStore
    from engine.synthesis.runtime import BlockStepper
    from engine.live.sinks import NullSink
    from engine.live.stream import Engine
    from engine.synthesis.styles import StyleLibrary

    def rss_mb() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    config = live_config(full_band_rate(None))
    library = StyleLibrary(config)
    library.add_default()
    sink = NullSink(config.spectral.sample_rate)
    engine = Engine(library, ParamStore(), BlockStepper(config), sink, adaptive=False)
    marks = {}

    def progress(done: int) -> None:
        if "start" not in marks and done >= 60 * sink.rate:
            marks["start"] = rss_mb()

    t0 = time.perf_counter()
    engine.render(hours * 3600.0, progress=progress)
    return rss_mb() - marks["start"], time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    jack = ensure_jack()
    try:
        figures: dict = {}
        firsts = first_sound(args.runs)
        figures["first_sound_s"] = {"median": float(np.median(firsts)), "all": firsts}
        style_ms, gain_ms, stated = control_latencies(args.runs)
        figures["style_latency_ms"] = {"median": float(np.median(style_ms)), "all": style_ms, "stated_bound": stated}
        figures["gain_latency_ms"] = {"median": float(np.median(gain_ms)), "all": gain_ms}
        midi_ms = midi_to_audible(args.runs)
        figures["midi_cc7_to_audible_ms"] = {"median": float(np.median(midi_ms)), "all": midi_ms}
        if not args.skip_memory:
            growth, wall = memory_growth(args.hours)
            figures["memory_growth_mb"] = growth
            figures["memory_run"] = {"audio_hours": args.hours, "wall_seconds": wall}
    finally:
        if "sounddevice" in sys.modules:
            sys.modules["sounddevice"]._terminate()  # before JACK goes, or PortAudio aborts at exit
        if jack is not None:
            jack.close()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
