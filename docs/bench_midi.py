"""Benchmark MIDI → parameter store latency through real JACK MIDI ports.

Usage: ``python docs/bench_midi.py [--count 200] [--period 256]``. Uses the JACK server named by
``JACK_DEFAULT_SERVER`` when one runs, else starts a private dummy server (48 kHz, ``--period``
frames, ``jackd --no-realtime -d dummy``) and stops it afterwards. An rtmidi MidiOut sends ``--count``
CC7 messages to the :class:`engine.control.midi.MidiController` virtual port ``"texture in"``; each latency
is the time from ``send_message`` to the store's ``version`` changing (polled every 20 µs with the
GIL released), with a random 0–5 ms pause between messages so they land at random points of the
JACK period. JACK MIDI moves once per period (256 frames = 5.3 ms at 48 kHz), so expect figures
spread over about one period. Prints the median, 10th and 90th percentiles and maximum in ms.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import rtmidi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.control.midi import MidiController  # noqa: E402
from engine.control.midi_map import MidiMap  # noqa: E402
from engine.params import ParamStore  # noqa: E402
from tests.jack_server import JackServer, jack_running  # noqa: E402

RATE = 48000
POLL_S = 20e-6


def start_private_jack(period: int) -> JackServer:
    """Start a dummy JACK server named ``texture-bench-PID`` and point ``JACK_DEFAULT_SERVER`` at it."""
    server = JackServer(f"texture-bench-{os.getpid()}", RATE, period)
    try:
        server.start()
    except (RuntimeError, AssertionError) as exc:
        raise SystemExit(str(exc)) from None
    server.point_clients_here()
    return server


def measure(count: int) -> np.ndarray:
    """Latencies (ms) of ``count`` CCs from a JACK MidiOut to the store."""
    store = ParamStore()
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench sender")
    rng = random.Random(0)
    latencies = []
    with MidiController(store, api="jack", midi_map=MidiMap.default(), save_learned=False) as midi:
        out.open_port(out.get_ports().index(f"texture:{midi.virtual_port}"))
        for i in range(count + 20):  # the first 20 warm up
            time.sleep(rng.uniform(0.0, 0.005))
            before = store.version
            start = time.perf_counter()
            out.send_message([0xB0, 7, i % 128])
            while store.version == before:
                if time.perf_counter() - start > 2.0:
                    raise SystemExit(f"CC {i} did not arrive within 2 s; stats: {midi.stats}")
                time.sleep(POLL_S)
            if i >= 20:
                latencies.append((time.perf_counter() - start) * 1e3)
    out.delete()
    return np.array(latencies)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="CC messages measured (default 200)")
    parser.add_argument("--period", type=int, default=256, help="frames per period of a private JACK server")
    args = parser.parse_args(argv)
    server = None
    if not (os.environ.get("JACK_DEFAULT_SERVER") and jack_running(os.environ["JACK_DEFAULT_SERVER"])):
        server = start_private_jack(args.period)
    try:
        ms = measure(args.count)
    finally:
        if server is not None:
            server.close()
    period = f"{args.period} frames = {args.period / RATE * 1e3:.2f} ms" if server else "of the running server"
    print(f"MIDI → store latency over {len(ms)} CCs (JACK period {period}): median {np.median(ms):.2f} ms, "
          f"p10 {np.percentile(ms, 10):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms, max {ms.max():.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
