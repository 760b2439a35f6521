"""Capture what a PortAudio stream plays on the JACK dummy server, through a real JACK connection."""
from __future__ import annotations

import subprocess
import time

import numpy as np


def _ports() -> list[str]:
    return subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True).stdout.split()


class JackCapture:
    """Records the first ``channels`` output ports of our PortAudio client through an InputStream wired to them.

    ``count`` (frames captured so far) can be read from any thread; :meth:`stop` returns the samples,
    ``(n,)`` for one channel, ``(n, channels)`` for more.
    """

    def __init__(self, seconds: float, rate: int = 48000, *, channels: int = 1) -> None:
        import sounddevice as sd
        self.rate, self.channels = rate, channels
        self._buf = np.zeros((int(seconds * rate), channels), dtype=np.float32)
        self.count = 0
        self._stream = sd.InputStream(samplerate=rate, channels=channels, dtype="float32", callback=self._callback)

    def _callback(self, indata, frames, time_info, status) -> None:
        n = min(frames, len(self._buf) - self.count)
        if n > 0:
            self._buf[self.count:self.count + n] = indata[:n]
            self.count += n

    def start(self) -> None:
        """Start capturing and connect the first ``channels`` PortAudio output ports to our input ports, in
        order (not the system capture)."""
        self._stream.start()
        deadline = time.monotonic() + 5
        while True:
            ports = _ports()
            ins = [p for p in ports if ":in_" in p]
            outs = [p for p in ports if ":out_" in p]
            if len(ins) >= self.channels and len(outs) >= self.channels:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"PortAudio JACK ports did not appear: {ports}")
            time.sleep(0.05)
        for src in [p for p in ports if p.startswith("system:capture")]:
            for port in ins:
                subprocess.run(["jack_disconnect", src, port], capture_output=True)
        for out, port in zip(outs[:self.channels], ins[:self.channels]):
            subprocess.run(["jack_connect", out, port], check=True, capture_output=True)

    def wait_until(self, samples: int, timeout: float) -> None:
        """Block until ``samples`` were captured (or ``timeout`` seconds passed)."""
        deadline = time.monotonic() + timeout
        while self.count < samples and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> np.ndarray:
        """Stop and return the captured samples."""
        self._stream.stop()
        self._stream.close()
        y = self._buf[:self.count].copy()
        return y[:, 0] if self.channels == 1 else y
