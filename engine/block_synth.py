"""Block-by-block texture synthesis: initialise B new frames, optimise them, hand them to the phase.

Lifecycle (as a JUCE processor): :meth:`BlockSynth.prepare` allocates and seeds everything,
:meth:`BlockSynth.process_block` turns one parameter snapshot into the next block of samples,
:meth:`BlockSynth.release` drops the session. Memory is constant for any duration: the state is
``C`` context frames, the Adam buffers of ``B`` frames and the phase's look-ahead.

Each block:

1. The blend weights and receptive field are smoothed towards the snapshot (one-pole, 70 % of the way per
   block), the styles' targets are blended and cached while the weights hold still.
2. New frames are initialised with a statistics-consistent guess: B frames of one style (picked by
   blend weight), read on from where the previous block's segment ended with a probability that
   grows with the receptive field (:func:`continuation_probability`), else from a random place. Where the jump from the last committed frame is more than
   ``SEAM_TOLERANCE`` times the style's mean flux (a note change, say), the first ``CROSSFADE``
   frames are crossfaded in the log domain from the last committed frame; smaller seams are left to
   the optimiser's seam term. (Choosing the segment whose start best matches the last frame was
   tried and dropped: it drifts into the quiet parts of a style, 24 dB below it on the corpus's
   violin; crossfading every seam smooths rain drops away.) With ``freeze`` the segments come from
   the engine's own recent output instead, so the texture stops taking in new material.
3. ``iterations`` guarded Adam steps (:mod:`engine.step_graph`) pull the window's statistics to the
   blended target; adaptive quality lowers the step count while a block's compute nears its audio
   duration (above 60 % of it) and restores it when compute is below 30 %.
4. The frames become context; their magnitudes go through the streaming phase (RTISI-LA).

Everything is seeded from ``variation``: the same seed and the same parameter sequence give the same
samples.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from engine.params import ParamSnapshot
from engine.phase import StreamingPhase
from engine.runtime import BlockStepper
from engine.step_graph import BlockConfig, graph_inputs, receptive_field_weights
from engine.styles import Style, StyleLibrary
from engine.targets import StyleTarget, blend

#: (style, spectral, temporal, autocorr, seam) loss weights of the live graph.
LIVE_LOSS_WEIGHTS = np.array([1.0, 1.0, 0.1, 0.3, 0.3], dtype=np.float32)
SMOOTHING = 0.7
#: New frames fade in from the last committed frame over this many frames (log-magnitude crossfade).
CROSSFADE = 2
#: Continuation probability at receptive field 0 and 1 (mean segment of 2 and 10 blocks).
CONTINUE_MIN, CONTINUE_MAX = 0.5, 0.9
#: A seam whose flux exceeds this many times the style's mean flux gets the crossfade.
SEAM_TOLERANCE = 4.0
HIGH_LOAD, LOW_LOAD = 0.6, 0.3


def continuation_probability(receptive_field: float) -> float:
    """Chance that a block continues reading its style where the last block stopped.

    ``CONTINUE_MIN + (CONTINUE_MAX − CONTINUE_MIN) · receptive_field``: grainy settings jump every
    block or two, structured ones keep segments of many blocks, so slow swells survive.
    """
    return CONTINUE_MIN + (CONTINUE_MAX - CONTINUE_MIN) * float(receptive_field)


@dataclass(frozen=True)
class BlockStats:
    """What one block did (telemetry for the GUI and benchmarks)."""

    index: int
    loss: float
    compute_ms: float
    block_ms: float
    iterations: int
    iteration_cap: int
    quality_drops: int
    frames: np.ndarray  # (bins, B) log-magnitude of the new frames

    @property
    def load(self) -> float:
        """Compute time over audio duration (1.0 = exactly real time)."""
        return self.compute_ms / self.block_ms

    @property
    def realtime_factor(self) -> float:
        """Audio duration over compute time (4 = four times faster than real time)."""
        return self.block_ms / max(self.compute_ms, 1e-6)


class BlockSynth:
    """The streaming texture synthesiser (see module doc).

    Parameters
    ----------
    library : StyleLibrary
        Styles; may change between blocks.
    stepper : BlockStepper
        The optimiser backend (ORT or torch), built for ``library.config``.
    look_ahead, phase_iterations : int
        RTISI-LA settings.
    adaptive : bool
        Whether iterations drop under load (off for offline-equivalent renders of fixed work).
    """

    def __init__(self, library: StyleLibrary, stepper: BlockStepper, *, look_ahead: int = 3,
                 phase_iterations: int = 5, adaptive: bool = True) -> None:
        self.library = library
        self.config: BlockConfig = library.config
        self.stepper = stepper
        self.adaptive = adaptive
        self.phase = StreamingPhase(n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                    look_ahead=look_ahead, iterations=phase_iterations)
        self.block_samples = self.config.block_frames * self.config.spectral.hop
        self.latest: BlockStats | None = None

    @property
    def latency_samples(self) -> int:
        """Delay from a block's frames being committed to their samples leaving :meth:`process_block`."""
        return self.phase.latency_samples

    def prepare(self, seed: int = 0) -> None:
        """Reset all state; ``seed`` is the initial ``variation``."""
        bins, b = self.config.spectral.n_bins, self.config.block_frames
        self.phase.prepare()
        self._context: np.ndarray | None = None
        self._m = np.zeros((bins, b), np.float32)
        self._v = np.zeros((bins, b), np.float32)
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._weights: dict[int, float] = {}
        self._rf: float | None = None
        self._cursor: tuple[int, int] | None = None
        self._blend_key: tuple | None = None
        self._target: StyleTarget | None = None
        self._upper: np.ndarray | None = None
        self._cap = 32
        self._drops = 0
        self._index = 0

    def release(self) -> None:
        """Drop the per-stream state."""
        self._context = None
        self._target = None

    def _smoothed_weights(self, styles: tuple[Style, ...], snap: ParamSnapshot) -> np.ndarray:
        ids = [s.slot_id for s in styles]
        wanted = snap.blend_weights(ids)
        wanted = wanted / wanted.sum()
        if self._weights:
            cur = np.array([self._weights.get(i, 0.0) for i in ids])
            cur += SMOOTHING * (wanted - cur)
        else:
            cur = wanted
        cur = np.where(cur < 1e-3, 0.0, cur)
        if cur.sum() <= 0:
            cur = wanted
        cur = cur / cur.sum()
        self._weights = dict(zip(ids, cur))
        return cur

    def _blended(self, styles: tuple[Style, ...], weights: np.ndarray) -> StyleTarget:
        key = tuple((s.slot_id, round(float(w), 4)) for s, w in zip(styles, weights))
        if key != self._blend_key:
            self._target = blend([s.target for s in styles], weights)
            active = [s.upper for s, w in zip(styles, weights) if w > 0]
            self._upper = np.max(active, axis=0).astype(np.float32)
            self._blend_key = key
        return self._target

    def _initial_frames(self, styles: tuple[Style, ...], weights: np.ndarray, freeze: bool,
                        flux: float) -> np.ndarray:
        b = self.config.block_frames
        if freeze and self._context is not None and self._context.shape[1] > b + 1:
            self._cursor = None
            source = self._context
            start = int(self._rng.integers(0, source.shape[1] - b + 1))
        else:
            start, source = self._next_segment(styles, weights)
        frames = np.array(source[:, start:start + b], dtype=np.float32)
        if self._context is not None:
            last = self._context[:, -1:]
            if float(np.mean((frames[:, :1] - last) ** 2)) > SEAM_TOLERANCE * flux:
                n = min(CROSSFADE, b)
                fade = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[None, :]
                frames[:, :n] = (1.0 - fade) * last + fade * frames[:, :n]
        return frames

    def _next_segment(self, styles: tuple[Style, ...], weights: np.ndarray) -> tuple[int, np.ndarray]:
        """Start frame and log-magnitude of the style to read the next B frames from.

        Reading continues where the last block's segment ended with probability
        :func:`continuation_probability` of the receptive field times that style's current blend
        weight (so a style being blended out stops being read on at once: a blend change was heard
        up to 0.9 s late without the factor), otherwise it jumps to a random place of a style drawn
        by blend weight.
        """
        b = self.config.block_frames
        by_id = {s.slot_id: (s, w) for s, w in zip(styles, weights)}
        if self._cursor is not None:
            slot_id, pos = self._cursor
            style, w = by_id.get(slot_id, (None, 0.0))
            keep = self._rng.random() < continuation_probability(self._rf) * w
            if style is not None and keep and pos + b <= style.log_mag.shape[1]:
                self._cursor = (slot_id, pos + b)
                return pos, style.log_mag
        style = styles[int(self._rng.choice(len(styles), p=weights))]
        start = int(self._rng.integers(0, style.log_mag.shape[1] - b + 1))
        self._cursor = (style.slot_id, start + b)
        return start, style.log_mag

    def _initial_context(self, styles: tuple[Style, ...], weights: np.ndarray) -> np.ndarray:
        c = self.config.context_frames
        style = styles[int(np.argmax(weights))].log_mag
        start = int(self._rng.integers(0, style.shape[1] - c + 1))
        return np.ascontiguousarray(style[:, start:start + c], dtype=np.float32)

    def process_block(self, snap: ParamSnapshot) -> np.ndarray:
        """The next block's final samples (float64, engine rate; about ``block_samples`` of them).

        With no style loaded the block is silence and the stream keeps running.
        """
        t0 = time.perf_counter()
        styles = self.library.slots
        seed = int(snap["variation"])
        if seed != self._seed:
            self._seed = seed
            self._rng = np.random.default_rng(seed)
        if not styles:
            self._context = None
            return self.phase.process(np.zeros((self.config.spectral.n_bins, self.config.block_frames)))
        weights = self._smoothed_weights(styles, snap)
        target = self._blended(styles, weights)
        rf = float(snap["receptive_field"])
        self._rf = rf if self._rf is None else self._rf + SMOOTHING * (rf - self._rf)
        if self._context is None:
            self._context = self._initial_context(styles, weights)
        frames = self._initial_frames(styles, weights, bool(snap["freeze"]), float(target.flux))
        wanted = int(snap["iterations"])
        n_iter = min(wanted, self._cap) if self.adaptive else wanted
        calls = max(1, math.ceil(n_iter / self.config.steps_per_call))
        self._m.fill(0.0)
        self._v.fill(0.0)
        feed = graph_inputs(frames, self._context, self._m, self._v, 0.0, target, LIVE_LOSS_WEIGHTS,
                            receptive_field_weights(self._rf, len(self.config.banks)),
                            float(snap["learning_rate"]), self._upper)
        loss = float("nan")
        for _ in range(calls):
            out = self.stepper.run(feed)
            feed["frames"], feed["adam_m"], feed["adam_v"], feed["step"] = (
                out["frames_out"], out["adam_m_out"], out["adam_v_out"], out["step_out"])
            loss = float(out["loss"])
        frames = feed["frames"].copy()  # the stepper reuses its output buffers
        if not np.all(np.isfinite(frames)):  # last-resort guard: never let NaN reach the phase
            frames = self._initial_frames(styles, weights, False, float(target.flux))
        self._context = np.concatenate([self._context, frames], axis=1)[:, -self.config.context_frames:]
        samples = self.phase.process(np.expm1(frames.astype(np.float64)))
        compute_ms = (time.perf_counter() - t0) * 1000.0
        block_ms = 1000.0 * self.block_samples / self.config.spectral.sample_rate
        self._adapt(compute_ms / block_ms, wanted)
        self.latest = BlockStats(self._index, loss, compute_ms, block_ms, calls * self.config.steps_per_call,
                                 self._cap, self._drops, frames)
        self._index += 1
        return samples

    def _adapt(self, load: float, wanted: int) -> None:
        if not self.adaptive:
            return
        if load > HIGH_LOAD and self._cap > 1:
            self._cap = max(1, min(self._cap, wanted) - 1)
            self._drops += 1
        elif load < LOW_LOAD and self._cap < 32:
            self._cap += 1
