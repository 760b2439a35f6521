"""The producer: parameter snapshot → block synthesis → output chain → sink, and the telemetry of it.

:class:`Engine` runs the loop either in its own thread against a real-time sink (:meth:`start` /
:meth:`stop`, live playback) or in the caller's thread as fast as it can (:meth:`render`, files).
Both run the very same per-block code. The GUI and MIDI never call into the loop: they write the
:class:`engine.params.ParamStore` and read :meth:`Engine.telemetry`, which returns an immutable
snapshot without waiting on anything.

An exception inside the producer thread does not kill the process: it is kept in
``telemetry().error``, logged once, and the output fades to silence.

A lost sound device (:class:`engine.errors.DeviceLost`: unplugged, its server died or restarted) is
not an error: the producer logs one line, shows it in ``telemetry().output_lost``, waits in
:meth:`engine.live.sinks.Sink.reopen` until the same device is back, logs one more line and plays on
with a fresh fade-in (synthesis picks up where it was). :meth:`Engine.stop` works the same while it
waits: every wait on the audio side is bounded, so a stop returns within about two seconds.
"""
from __future__ import annotations

import gc
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.synthesis.block_synth import PHASE_LOOK_AHEAD_FRAMES, PHASE_ITERATIONS, BlockStats, BlockSynth
from engine.errors import DeviceLost
from engine.live.limiter import lookahead_samples
from engine.live.output_chain import OutputChain
from engine.live.priority import raise_thread_priority
from engine.params import ParamStore
from engine.synthesis.runtime import BlockStepper
from engine.live.sinks import Sink
from engine.synthesis.stereo import STEREO
from engine.synthesis.styles import StyleLibrary

#: Seconds of per-block loss and load history kept for the GUI's curves.
HISTORY_SECONDS = 60.0
#: The interpreter's thread switch interval while live (Python's default is 5 ms), in seconds.
SWITCH_INTERVAL_SECONDS = 0.001


@dataclass(frozen=True)
class Telemetry:
    """A snapshot of the engine's state for displays (all fields plain values)."""

    running: bool
    blocks: int
    provider: str
    engine_rate: int
    device_rate: int
    underruns: int
    quality_drops: int
    steps: int  # optimiser steps of the last block
    last: BlockStats | None
    loss_history: np.ndarray
    load_history: np.ndarray
    peak: tuple[float, ...]  # per output channel, linear, as heard (after the gain)
    rms: tuple[float, ...]
    error: str | None
    #: Why the sound device is gone while the engine waits for it to return (None: it plays).
    output_lost: str | None = None
    #: Seconds of audio made and seconds of compute spent on them since the start (the run's
    #: real-time factor is their ratio).
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    #: The sink's lead in seconds now (it grows after underruns), 0 for sinks without one.
    lead_seconds: float = 0.0
    #: The producer thread's scheduling (:func:`engine.live.priority.raise_thread_priority`), "" before it runs.
    priority: str = ""


@dataclass(frozen=True)
class RenderStats:
    """What a render did; ``to_dict`` gives the ``--stats`` JSON."""

    seconds: float
    wall_seconds: float
    blocks: int
    block_frames: int
    hop: int
    sample_rate: int
    channels: int
    iterations_per_block: float
    provider: str
    underruns: int
    mean_loss: float
    #: True when ``stop`` cut the render short (it still ends in a fade-out).
    interrupted: bool = False

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio per second of compute."""
        return self.seconds / max(self.wall_seconds, 1e-9)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["realtime_factor"] = self.realtime_factor
        return d


def _mean_finite(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none: a render with the optimiser bypassed has no loss)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


class Engine:
    """Block engine bound to a style library, a parameter store, an optimiser and a sink.

    Parameters
    ----------
    library, params, stepper, sink
        See :class:`engine.synthesis.block_synth.BlockSynth` and :mod:`engine.live.sinks`.
    adaptive : bool
        Adaptive quality (drop optimiser steps under load); on for live playback, off for renders.
    channels : {1, 2}
        Output channels (:class:`engine.synthesis.block_synth.BlockSynth`): 2, the stereo engine, by default.
    log : callable
        One-line messages for the user.

    Attributes
    ----------
    taps : list of callable
        Each is called in the producer thread with every output block (float32, device rate, ``(n,)``
        mono or ``(n, 2)`` stereo);
        it must return quickly (hand the data to another thread, e.g. a recorder's queue). With a
        sink that applies the gain itself (a sound device) taps get the signal before that gain.
    """

    def __init__(self, library: StyleLibrary, params: ParamStore, stepper: BlockStepper, sink: Sink, *,
                 adaptive: bool = True, phase_look_ahead_frames: int = PHASE_LOOK_AHEAD_FRAMES, phase_iterations: int = PHASE_ITERATIONS,
                 channels: int = STEREO, log: Callable[[str], None] = lambda m: None) -> None:
        self.library = library
        self.params = params
        self.stepper = stepper
        self.sink = sink
        self.log = log
        self.synth = BlockSynth(library, stepper, phase_look_ahead_frames=phase_look_ahead_frames, phase_iterations=phase_iterations,
                                adaptive=adaptive, channels=channels)
        self.taps: list[Callable[[np.ndarray], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._priority = ""
        cfg = library.config
        block_seconds = cfg.block_frames * cfg.spectral.hop / cfg.spectral.sample_rate
        # (loss, load) of the newest blocks: a ring the producer writes in place, one row a block.
        self._history = np.zeros((int(np.ceil(HISTORY_SECONDS / block_seconds)), 2))
        self._history_count = 0
        self._audio_seconds = self._compute_seconds = 0.0
        self._last: BlockStats | None = None
        self._peak = self._rms = (0.0,) * self.channels
        self._error: str | None = None
        self._output_lost: str | None = None
        self._lost_total, self._lost_since = 0.0, None
        self._prepared = False

    @property
    def channels(self) -> int:
        """Output channels: 2 (stereo) or 1."""
        return self.synth.channels

    @property
    def engine_rate(self) -> int:
        """Synthesis sample rate in Hz."""
        return self.library.config.spectral.sample_rate

    @property
    def control_latency_seconds(self) -> float:
        """Delay from a parameter write to its effect at the listener that is rarely exceeded, in seconds.

        A write waits for the next block to start (at most one block, since blocks are computed just
        in time, see :meth:`engine.live.sinks.Sink.wait_for_room`); that block moves the smoothed weights
        70 % of the way and re-standardises the in-flight frames to the new blend's mean and spread,
        including the frames it commits, and re-levels the stereo decorrelator's delayed frames, so the
        timbre moves with the frames heard next (one more block when 70 % is not yet enough); the network's finer statistics follow while they are in flight. The
        first new frame's centre is heard after the sink's queue (lead + device) plus the streaming
        phase's latency and one hop, and the output limiter's look-ahead (2 ms). Gain is the exception: a sound device
        applies it itself, after only the device's latency.
        """
        cfg = self.library.config
        rate = cfg.spectral.sample_rate
        block = cfg.block_frames * cfg.spectral.hop / rate
        phase = (self.synth.latency_samples + cfg.spectral.hop) / rate
        limiter = lookahead_samples(self.sink.rate) / self.sink.rate
        return 2 * block + phase + limiter + self.sink.queue_seconds

    @property
    def output_lost_seconds(self) -> float:
        """Time spent without a sound device since the last start (from the loss being seen to the
        device playing again, or to the stop), in seconds; it grows while the device is gone."""
        since = self._lost_since
        return self._lost_total + (time.monotonic() - since if since is not None else 0.0)

    @property
    def running(self) -> bool:
        """Whether the producer thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _prepare(self) -> None:
        self.synth.prepare(int(self.params.get("variation")))
        self.synth.warm_up(self.params.snapshot())
        self.chain = OutputChain(self.engine_rate, self.sink.rate)
        self.chain.prepare()
        if self.sink.applies_gain:
            self.sink.gain_source = self.params.reader("gain")
        self.sink.prepare()
        self._history_count = 0
        self._audio_seconds = self._compute_seconds = 0.0
        self._last = None  # telemetry of a new run never shows the previous run's blocks
        self._peak = self._rms = (0.0,) * self.channels
        self._error = None
        self._output_lost = None
        self._lost_total, self._lost_since = 0.0, None
        self._prepared = True

    def _one_block(self) -> np.ndarray:
        snap = self.params.snapshot()
        x = self.synth.process_block(snap)
        y = self.chain.process(x, 1.0 if self.sink.applies_gain else float(snap["gain"]))
        stats = self.synth.latest
        if stats is not None and stats is not self._last:
            self._last = stats
            self._history[self._history_count % len(self._history)] = stats.loss, stats.load
            self._history_count += 1
            self._audio_seconds += stats.block_ms / 1000.0
            self._compute_seconds += stats.compute_ms / 1000.0
        if len(y):
            post = float(snap["gain"]) if self.sink.applies_gain else 1.0  # the meters show what is heard
            columns = y.reshape(len(y), -1)
            self._peak = tuple(float(post * v) for v in np.max(np.abs(columns), axis=0))
            self._rms = tuple(float(post * v) for v in np.sqrt(np.mean(columns.astype(np.float64) ** 2, axis=0)))
        for tap in self.taps:
            tap(y)
        return y

    def _loop(self) -> None:
        self._priority = raise_thread_priority()
        self.log(f"producer thread: {self._priority}")
        try:
            while not self._stop.is_set():
                try:
                    self._play_until_stopped()
                except DeviceLost as exc:
                    if not self._recover(exc):
                        return
            self._fade_out()
        except Exception as exc:  # noqa: BLE001 - the audio must survive anything the producer hits
            self._error = f"{type(exc).__name__}: {exc}"
            self.log(f"engine stopped after an internal error: {self._error}")

    def _play_until_stopped(self) -> None:
        while True:
            self.sink.wait_for_room(self._stop)  # before the snapshot: a block is computed just in time
            if self._stop.is_set():
                return
            self.sink.write(self._one_block(), self._stop)

    def _recover(self, lost: DeviceLost) -> bool:
        """Report the loss, wait for the device (or a stop); True once it plays again."""
        self.log(f"audio output lost ({lost}); it plays again when the device is back")  # before the flag:
        self._lost_since = time.monotonic()  # a window that sees the flag has the line queued already
        self._output_lost = str(lost)
        back = self.sink.reopen(self._stop)
        self._lost_total += time.monotonic() - self._lost_since
        self._lost_since = None
        if not back:
            return False
        self._output_lost = None
        if self.sink.rate != self.chain.device_rate:
            self.chain = OutputChain(self.engine_rate, self.sink.rate)
        self.chain.prepare()  # fade in again after the gap
        self.log(f"audio output back: {getattr(self.sink, 'name', 'output')} at {self.sink.rate} Hz")
        return True

    def _fade_out(self) -> None:
        """Play the 50 ms fade-out (every wait is bounded: a device lost meanwhile just ends it)."""
        self.chain.start_fade_out()
        try:
            while not self.chain.faded_out:
                self.sink.wait_for_room(None)
                self.sink.write(self._one_block(), None)
        except DeviceLost:
            pass

    def start(self) -> None:
        """Prepare synthesis, output chain and sink, and start the producer thread (non-blocking).

        Before the producer starts, the garbage collector is run once and every object alive is
        frozen out of its reach (``gc.freeze``): a full collection walks every object of the process
        (torch, ONNX, Qt: about 90 ms on the 2-core AMD EPYC, a block is 23 ms) and otherwise comes
        every half minute or so, mid-stream, holding the interpreter; after the freeze it walks only
        what was made since (docs/EXPERIMENTS.md, "The window's drawing"). The interpreter's switch
        interval is set to :data:`SWITCH_INTERVAL_SECONDS`, so the producer gets the interpreter back
        within 1 ms, not 5, from a window thread running Python after each native call (ONNX Runtime,
        FFTs): the 99th percentile of block compute fell from 21 to 17 ms with the window open.

        Preparing includes the seconds of warm-up; if it fails or is interrupted (Ctrl-C), the sink and
        the synthesiser are released before the exception propagates, so nothing stays open.
        """
        if self.running:
            return
        try:
            self._prepare()
        except BaseException:  # a Ctrl-C in the seconds of warm-up, or a failure: nothing stays open
            self.sink.release(complete=False)
            self.synth.release()
            raise
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="texture-producer", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> bool:
        """Fade out, stop the producer and release the sink and the synthesiser; True when done.

        Waits at most ``timeout`` seconds for the producer thread. If it is still running then (a
        sink or a graph call that hangs), nothing it uses is released under it: the sink and the
        synthesiser stay as they are, :attr:`running` stays True, one line is logged and False is
        returned; a later :meth:`stop` waits again and releases them once the thread has ended.
        """
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.log(f"the producer did not stop within {timeout:g} s; its output stays open until it does")
                return False
            self._thread = None
        if self._prepared:
            self.sink.release()
            self.synth.release()
            self._prepared = False
        return True

    def render(self, seconds: float, *, progress: Callable[[int], None] | None = None,
               stop: threading.Event | None = None) -> RenderStats:
        """Run the same loop in this thread, as fast as it can, for ``seconds`` of output.

        The last 50 ms fade out so the file ends without a click. ``progress`` gets the number of
        output samples written so far after each block. When ``stop`` is set the render fades out
        over the next 50 ms, releases the sink with ``complete=False`` and returns stats with
        ``interrupted`` True; an exception discards the sink's output (:meth:`Sink.discard`).
        """
        self._prepare()
        total = int(round(seconds * self.sink.rate))
        written = blocks = 0
        steps = 0
        losses = []
        interrupted = False
        t0 = time.perf_counter()
        try:
            while written < total and not self.chain.faded_out:
                if stop is not None and stop.is_set() and not interrupted:
                    interrupted = True
                    self.chain.start_fade_out()
                if total - written <= self.chain.fade_samples:
                    self.chain.start_fade_out()
                y = self._one_block()[: total - written]
                self.sink.write(y)
                written += len(y)
                blocks += 1
                steps += self.synth.latest.steps if self.synth.latest else 0
                if self.synth.latest is not None:
                    losses.append(self.synth.latest.loss)
                if progress:
                    progress(written)
        except BaseException:
            self.sink.discard()
            raise
        else:
            self.sink.release(complete=not interrupted)
        finally:
            self.synth.release()
            self._prepared = False
        cfg = self.library.config
        return RenderStats(seconds=written / self.sink.rate, wall_seconds=time.perf_counter() - t0, blocks=blocks,
                           block_frames=cfg.block_frames, hop=cfg.spectral.hop, sample_rate=self.sink.rate,
                           channels=self.synth.channels,
                           iterations_per_block=steps / max(blocks, 1), provider=self.stepper.provider,
                           underruns=self.sink.underruns, mean_loss=_mean_finite(losses), interrupted=interrupted)

    def telemetry(self) -> Telemetry:
        """Immutable snapshot of the engine's state (never blocks; copies at most a minute of history)."""
        count, size = self._history_count, len(self._history)
        hist = (np.roll(self._history, -(count % size), axis=0) if count >= size else self._history[:count]).copy()
        last = self._last
        return Telemetry(
            running=self.running, blocks=last.index + 1 if last else 0, provider=self.stepper.provider,
            engine_rate=self.engine_rate, device_rate=self.sink.rate, underruns=self.sink.underruns,
            quality_drops=last.quality_drops if last else 0, steps=last.steps if last else 0,
            last=last, loss_history=hist[:, 0], load_history=hist[:, 1], peak=self._peak, rms=self._rms,
            error=self._error, output_lost=self._output_lost, audio_seconds=self._audio_seconds,
            compute_seconds=self._compute_seconds, lead_seconds=float(getattr(self.sink, "lead_seconds", 0.0)),
            priority=self._priority)
