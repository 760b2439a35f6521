"""The sound-device child process: opens one PortAudio output, plays the shared ring, reports.

Started by :class:`engine.live.device_process.DeviceProcess` as ``python -m engine.live.device_child REQUEST``
(see that module for why, the shared layout and the line protocol). ``python -m engine.live.device_child
list`` prints the output devices a fresh PortAudio sees, as one JSON line.

Real-time contract of the callback (:func:`_make_callback`): it copies at most one buffer from the
ring into ``outdata``, scales it by the shared gain (ramped across the buffer when it moved, in
preallocated arrays), fills the rest with zeros and counts underruns, xruns and callbacks in the
shared header. No allocation of buffers, no lock, no I/O, no exception escapes; it shares this
process's GIL only with two idle threads (the stdin reader, the watchdog).

The process always ends with ``os._exit``: a PortAudio whose JACK server died must never reach
``Pa_Terminate`` (it asserts and aborts) or ``Pa_StopStream`` without a bound.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import numpy as np

from engine.live.device_process import (RETRY_SECONDS, RING_CHANNELS, STALL_SECONDS, STOP_TIMEOUT_SECONDS, SharedBlock,
                                        no_output_message)
from engine.live.priority import raise_thread_priority


def _say(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _outputs(sd) -> list[dict]:
    apis = sd.query_hostapis()
    default = sd.default.device[1]
    return [{"index": int(d["index"]), "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": int(d["max_output_channels"]), "rate": float(d["default_samplerate"]),
             "default": int(d["index"]) == default}
            for d in sd.query_devices() if d["max_output_channels"] > 0]


def _find(sd, device: str | int | None, hostapi: str | None) -> dict:
    """The output device for a request (exact name + host API when ``hostapi`` is given)."""
    if hostapi is not None:
        for d in _outputs(sd):
            if d["name"] == device and d["hostapi"] == hostapi:
                return d
        raise LookupError(f"audio output device {device!r} ({hostapi}) is not there")
    if not _outputs(sd):
        raise LookupError(no_output_message())
    try:
        if device is None:
            info = sd.query_devices(kind="output")
        else:
            key = int(device) if isinstance(device, str) and device.isdigit() else device
            info = sd.query_devices(key, kind="output")
    except (ValueError, sd.PortAudioError) as exc:
        what = "no default audio output device" if device is None else f"audio output device {device!r} not found"
        raise LookupError(f"{what} ({str(exc).splitlines()[0]}); see `python main.py devices`") from None
    if info["max_output_channels"] < 1:
        raise LookupError(f"audio device {info['name']!r} has no output channels")
    return next(d for d in _outputs(sd) if d["index"] == int(info["index"]))


def _make_callback(block: SharedBlock, ring_holder: list, scratch: np.ndarray, gains: np.ndarray,
                   steps: np.ndarray):
    """The PortAudio callback: ring (two channels) → ``outdata`` × gain (its two channels, or their mean on
    a one-channel device); counts underruns, xruns, callbacks."""
    state = block.state
    last_gain = [None]

    def callback(outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        state.callbacks += 1
        if status.output_underflow:
            state.xruns += 1
        ring = ring_holder[0]
        buf = scratch[:frames]
        if not state.primed and ring.available < state.prime_samples:
            n = 0  # start only with a cushion queued: the first blocks are the slowest (warm-up)
        else:
            n = ring.read_into(buf)
        if n < frames:
            buf[n:] = 0.0
            if state.primed and not state.draining:
                state.underruns += 1
                state.underrun_samples += frames - n
        elif not state.primed:
            state.primed = 1
            state.first_audio_time = time.monotonic()
        g = state.gain
        g0 = g if last_gain[0] is None else last_gain[0]
        last_gain[0] = g
        if g0 == g:
            buf *= g
        else:  # a gain move: ramp across this buffer (preallocated arrays), so it never clicks
            ramp = gains[:frames]
            np.multiply(steps[:frames], (g - g0) / frames, out=ramp)
            ramp += g0
            buf *= ramp[:, None]
        if outdata.shape[1] == RING_CHANNELS:
            outdata[:] = buf
        else:
            np.add(buf[:, 0], buf[:, 1], out=outdata[:, 0])
            outdata *= 0.5
    return callback


def _watch(stream, block: SharedBlock, started: threading.Event, stopping: threading.Event) -> None:
    """Report ``lost`` and exit when PortAudio stops the stream or the callback stalls.

    Runs from the ``start`` command on, so a ``stream.start()`` that never returns (a server that
    died while the stream was idle) is a stall like any other."""
    state = block.state
    seen, since = state.callbacks, time.monotonic()
    while not stopping.is_set():
        time.sleep(0.02)
        if stopping.is_set():
            return
        now = time.monotonic()
        if state.callbacks != seen:
            seen, since = state.callbacks, now
        reason = None
        if started.is_set() and not stream.active:
            reason = "the audio server stopped the stream (it went away or restarted)"
        elif now - since > STALL_SECONDS:
            reason = f"the device has asked for no audio for {STALL_SECONDS:g} s"
        if reason is not None:
            _say("lost", message=reason)
            os._exit(3)


def _open_device(request: dict):
    """Import PortAudio and find the device; in ``wait`` mode retry with a fresh scan until it appears."""
    try:
        import sounddevice as sd
    except OSError as exc:  # no PortAudio library at all
        _say("error", message=f"PortAudio is not available ({exc}); apt-get install libportaudio2")
        os._exit(2)
    while True:
        try:
            return sd, _find(sd, request["device"], request["hostapi"])
        except LookupError as exc:
            if not request["wait"]:
                _say("error", message=str(exc))
                os._exit(2)
        time.sleep(RETRY_SECONDS)
        if os.getppid() != request["parent"]:  # the app is gone: nobody waits for this device any more
            os._exit(0)
        sd._terminate()  # safe: a JACK host API that failed to connect has no client to tear down
        sd._initialize()


def _play(request: dict) -> None:
    priority = raise_thread_priority()  # before PortAudio: its audio thread inherits this thread's class
    block = SharedBlock(request["max_samples"], fd=request["fd"])
    sd, dev = _open_device(request)
    frames = max(8192, int(0.5 * dev["rate"]))
    scratch = np.zeros((frames, RING_CHANNELS), dtype=np.float32)
    ring_holder: list = [None]
    callback = _make_callback(block, ring_holder, scratch, np.zeros(frames, dtype=np.float32),
                              np.arange(frames, dtype=np.float32))
    channels = min(2, dev["channels"])
    try:
        stream = sd.OutputStream(device=dev["index"], samplerate=dev["rate"], channels=channels, dtype="float32",
                                 latency=request["latency"], callback=callback)
    except sd.PortAudioError as exc:
        _say("error", message=f"cannot open audio device {dev['name']!r}: {exc}")
        os._exit(2)
    _say("opened", **{**dev, "channels": channels, "latency": float(stream.latency), "priority": priority})
    started, stopping = threading.Event(), threading.Event()
    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            from engine.live.ringbuffer import RingBuffer
            ring_holder[0] = RingBuffer(int(block.state.capacity), buffer=block.samples, counters=block.state,
                                        channels=RING_CHANNELS)
            threading.Thread(target=_watch, args=(stream, block, started, stopping), daemon=True).start()
            try:
                stream.start()
            except sd.PortAudioError as exc:
                _say("lost", message=f"the stream could not start: {str(exc).splitlines()[0]}")
                os._exit(3)
            started.set()
        elif command == "stop":
            break
    stopping.set()
    stopper = threading.Thread(target=stream.stop, daemon=True)  # bounded: a dead server makes it wait
    stopper.start()
    stopper.join(STOP_TIMEOUT_SECONDS / 2)
    os._exit(0)


def main(argv: list[str]) -> None:
    """Entry point: ``list`` or a JSON request (see :class:`engine.live.device_process.DeviceProcess`)."""
    request = {"mode": "list"} if argv[:1] == ["list"] else json.loads(argv[0])
    if request["mode"] == "list":
        try:
            import sounddevice as sd
        except OSError as exc:
            _say("error", message=f"PortAudio is not available ({exc}); apt-get install libportaudio2")
            os._exit(2)
        _say("devices", devices=_outputs(sd))
        os._exit(0)
    _play(request)


if __name__ == "__main__":
    main(sys.argv[1:])
