"""A MIDI flood from a real rtmidi JACK client, run as its own process: ``python -m tests.midi_flood
SECONDS RATE``. It waits (up to 30 s) for the app's ``texture in`` port, connects to it and sends
about RATE messages/s for SECONDS: CC1 and CC74, notes, program changes, sysex of up to 300 bytes
and junk status bytes (no gain changes, so what is heard is comparable), in bursts every 5 ms.
It prints the number of messages sent.
"""
from __future__ import annotations

import random
import sys
import time

import rtmidi


#: Kinds of message the app keeps the latest of (its coalescing keys) that the flood can send: CC1 on
#: channel 1, CC74 on each of 16 channels, a note-on, a program change.
COALESCING_KINDS = 1 + 16 + 1 + 1


def _messages(rng: random.Random):
    while True:
        yield [0xB0, 1, rng.randrange(128)]
        yield [0xB0 | rng.randrange(16), 74, rng.randrange(128)]
        yield [0x90, 60 + rng.randrange(4), 1 + rng.randrange(127)]
        yield [0x80, 60, 0]
        yield [0xC0, rng.randrange(128)]
        yield [0xF0, *[rng.randrange(128) for _ in range(rng.randrange(1, 299))], 0xF7]
        yield [rng.choice((0xF4, 0xF5, 0xF9, 0xFD))]


def main(seconds: float, rate: float) -> int:
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flood")
    deadline = time.monotonic() + 30
    while not any("texture in" in p for p in out.get_ports()):
        if time.monotonic() > deadline:
            raise SystemExit("no 'texture in' port appeared")
        time.sleep(0.1)
    out.open_port(next(i for i, p in enumerate(out.get_ports()) if "texture in" in p))
    rng, sent = random.Random(19), 0
    burst = max(1, int(rate * 0.005))
    source = _messages(rng)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(burst):
            out.send_message(next(source))
        sent += burst
        time.sleep(0.005)
    out.close_port()
    print(sent, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), float(sys.argv[2])))
