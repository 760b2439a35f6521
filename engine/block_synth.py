"""Block-by-block texture synthesis: initialise B new frames, optimise them, hand them to the phase.

Lifecycle (as a JUCE processor): :meth:`BlockSynth.prepare` allocates and seeds everything,
:meth:`BlockSynth.process_block` turns one parameter snapshot into the next block of samples,
:meth:`BlockSynth.release` drops the session. Memory is constant for any duration: the state is
``C`` context frames, the Adam buffers of ``B`` frames and the phase's look-ahead.

Each block:

1. The optimiser's blend weights and receptive field are smoothed towards the snapshot (one-pole, 70 %
   of the way per block), the styles' targets are blended and cached while the weights hold still.
   The new frames' material (step 2) follows the snapshot's weights at once: the smoothing that
   keeps a move from clicking is the crossfade and the overlap of the phase's windows, and waiting
   for the smoothed weights made a style change heard a block or two later.
2. New frames are initialised with a statistics-consistent guess: B frames of one style (picked by
   blend weight), read on from where the previous block's segment ended with a probability set by
   the receptive field (:func:`continuation_probability`: segments of 0.25 s when grainy up to 4 s
   when structured), else from a new place. New places come from a shuffle bag: the style cut into
   cells one mean segment long, each drawn once per round at a random frame inside it, so every
   part of the style is heard about equally often within a few rounds (fully random places left
   the statistics of a minute of seashore up to 4x further from the style, by chance); of the
   next ``JUMP_CANDIDATES`` cells the jump takes the place whose preceding frame is nearest the
   last committed frame, so it continues the way the style itself moves on (a swell is not cut
   off in the middle), and the other cells go to the back of the bag. Best of a few,
   not best of all: the single best match over the whole style drifts into its quiet parts (24 dB
   below it on the corpus's violin). Where the jump is still more than ``SEAM_TOLERANCE`` times the
   style's mean flux (a note change, say), the first ``CROSSFADE`` frames are crossfaded in the log
   domain from the last committed frame; smaller seams are left to the optimiser's seam term
   (crossfading every seam smooths rain drops away). With ``freeze`` the segments come from the engine's own recent
   output instead, so the texture stops taking in new material.
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
CROSSFADE = 1
#: Mean length of a read-on segment at receptive field 0 and 1, in seconds (geometric in between).
SEGMENT_SECONDS = (0.25, 4.0)
#: Places a jump chooses among (by how well they continue the last committed frame).
JUMP_CANDIDATES = 8
#: RTISI-LA settings: 1 frame of look-ahead with 16 iterations a stage is within 0.4 dB of offline
#: FGLA-32 on the corpus's noisy sounds and 6-8 dB better on tonal ones (``docs/bench_phase.py``),
#: and 23 ms sooner than 3 frames with 5 iterations, for 60 % more phase work.
LOOK_AHEAD, PHASE_ITERATIONS = 1, 16
#: A seam whose flux exceeds this many times the style's mean flux gets the crossfade.
SEAM_TOLERANCE = 4.0
HIGH_LOAD, LOW_LOAD = 0.6, 0.3


def mean_segment_seconds(receptive_field: float) -> float:
    """Mean length of a read-on segment, ``SEGMENT_SECONDS`` interpolated geometrically by the receptive field."""
    lo, hi = SEGMENT_SECONDS
    return lo * (hi / lo) ** float(receptive_field)


def continuation_probability(receptive_field: float, block_seconds: float) -> float:
    """Chance that a block of ``block_seconds`` continues reading its style where the last block stopped.

    Segments then last ``block_seconds / (1 − p)`` on average, which is
    :func:`mean_segment_seconds` (0.25 s grainy, 1 s at 0.5, 4 s structured, whatever the block
    size), so slow swells survive.
    """
    return max(0.0, 1.0 - block_seconds / mean_segment_seconds(receptive_field))


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

    def __init__(self, library: StyleLibrary, stepper: BlockStepper, *, look_ahead: int = LOOK_AHEAD,
                 phase_iterations: int = PHASE_ITERATIONS, adaptive: bool = True) -> None:
        self.library = library
        self.config: BlockConfig = library.config
        self.stepper = stepper
        self.adaptive = adaptive
        self.phase = StreamingPhase(n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                    look_ahead=look_ahead, iterations=phase_iterations)
        self.block_samples = self.config.block_frames * self.config.spectral.hop
        self.block_seconds = self.block_samples / self.config.spectral.sample_rate
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
        self._bags: dict[int, list[tuple[int, int]]] = {}
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

    def _smoothed_weights(self, styles: tuple[Style, ...], wanted: np.ndarray) -> np.ndarray:
        """The optimiser's blend weights: one-pole smoothed towards ``wanted`` (normalised)."""
        ids = [s.slot_id for s in styles]
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

        Reading continues where the last block's segment ended with :func:`continuation_probability`
        for segments as long as the receptive field asks times that style's blend weight ``w`` (half
        as long at ``w`` = 0.5, and a style being blended out stops being read on at once: a blend
        change was heard up to 0.9 s late without the factor), otherwise it jumps (see the module
        doc) into a style drawn by blend weight.
        """
        b = self.config.block_frames
        by_id = {s.slot_id: (s, w) for s, w in zip(styles, weights)}
        if self._cursor is not None:
            slot_id, pos = self._cursor
            style, w = by_id.get(slot_id, (None, 0.0))
            keep = self._rng.random() < continuation_probability(self._rf, self.block_seconds / max(w, 1e-9))
            if style is not None and keep and pos + b <= style.log_mag.shape[1]:
                self._cursor = (slot_id, pos + b)
                return pos, style.log_mag
        style = styles[int(self._rng.choice(len(styles), p=weights))]
        n = style.log_mag.shape[1] - b  # last valid start
        bag = self._bags.get(style.slot_id)
        if not bag:
            cell = max(b, int(mean_segment_seconds(self._rf) / self.block_seconds) * b)
            bag = [(first, min(first + cell, n + 1)) for first in range(1, n + 1, cell)]
            self._rng.shuffle(bag)
        candidates, rest = bag[:JUMP_CANDIDATES], bag[JUMP_CANDIDATES:]
        starts = np.array([int(self._rng.integers(lo, hi)) for lo, hi in candidates])
        pick = 0
        if self._context is not None:
            before = style.log_mag[:, starts - 1]
            pick = int(np.argmin(np.mean((before - self._context[:, -1:]) ** 2, axis=0)))
        start = int(starts[pick])
        candidates.pop(pick)
        self._bags[style.slot_id] = rest + candidates  # the others wait for their turn at the back
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
        mix = snap.blend_weights([s.slot_id for s in styles])
        mix = mix / mix.sum()
        weights = self._smoothed_weights(styles, mix)
        target = self._blended(styles, weights)
        rf = float(snap["receptive_field"])
        self._rf = rf if self._rf is None else self._rf + SMOOTHING * (rf - self._rf)
        if self._context is None:
            self._context = self._initial_context(styles, weights)
        frames = self._initial_frames(styles, mix, bool(snap["freeze"]), float(target.flux))
        wanted = int(snap["iterations"])
        n_iter = min(wanted, self._cap) if self.adaptive else wanted
        calls = max(1, math.ceil(n_iter / self.config.steps_per_call))
        self._m.fill(0.0)
        self._v.fill(0.0)
        feed = graph_inputs(frames, self._context, self._m, self._v, 0.0, target, LIVE_LOSS_WEIGHTS,
                            receptive_field_weights(self._rf, self.config.n_layers),
                            float(snap["learning_rate"]), self._upper)
        loss = float("nan")
        for _ in range(calls):
            out = self.stepper.run(feed)
            feed["frames"], feed["adam_m"], feed["adam_v"], feed["step"] = (
                out["frames_out"], out["adam_m_out"], out["adam_v_out"], out["step_out"])
            loss = float(out["loss"])
        frames = feed["frames"].copy()  # the stepper reuses its output buffers
        if not np.all(np.isfinite(frames)):  # last-resort guard: never let NaN reach the phase
            frames = self._initial_frames(styles, mix, False, float(target.flux))
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
        effective = min(self._cap, wanted)
        if load > HIGH_LOAD and effective > 1:  # a drop is counted only when it removes a step
            self._cap = effective - 1
            self._drops += 1
        elif load < LOW_LOAD and self._cap < 32:
            self._cap += 1
