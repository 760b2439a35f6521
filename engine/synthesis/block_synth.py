"""Block-by-block texture synthesis from noise: a rolling window of in-flight frames under a slower one
of in-flight band gains (the trend), both optimised towards the blended style target, committed to
the streaming phase ``B`` frames at a time.

Words: *in-flight* frames are the ``L`` under optimisation (not yet heard); the *phase look-ahead*
is RTISI-LA's (:data:`PHASE_LOOK_AHEAD_FRAMES`); a *step* is one guarded Adam step of the optimiser
(the ``iterations`` parameter and ``--iterations`` are steps per block, names kept for sessions and
MIDI maps); *phase iterations* are the phase's Griffin-Lim iterations a stage
(:data:`PHASE_ITERATIONS`); *L-BFGS iterations* belong to offline synthesis only.

Lifecycle (as a JUCE processor): :meth:`BlockSynth.prepare` allocates and seeds everything,
:meth:`BlockSynth.process_block` turns one parameter snapshot into the next block of samples,
:meth:`BlockSynth.release` drops the state and the phase's worker thread. Memory is constant for
any duration: ``C`` committed context frames, ``L`` in-flight frames and their Adam moments, the band
envelopes of the last ``H`` committed frames, ``Hc + Lc`` trend values and the phase's held frames.

Two rates (:mod:`engine.analysis.trend`). The frames are optimised as *residuals*, the spectrogram with
its slow swells taken out, against statistics of the detrended style; the *trend* is 16 band
envelopes at one value per ``coarse_factor`` frames (93 ms), ``Lc`` of them (3 s) in flight ahead of
the frames, optimised in the same graph call towards the style's coarse envelope statistics. A
committed frame is its residual plus the trend laid out over it (linear between trend values, spread
over each band's bins in proportion to their level in the blended styles,
:func:`engine.analysis.trend.level_spread_map`, so bins the styles never sound in stay silent). Frames are in flight for 0.28 s, too short to plan a 3 s swell; the
trend is in flight for 3 s (measured in ``docs/EXPERIMENTS.md`` section 9).

Nothing is read from the style recordings at the default ``material`` 0: new frames are noise, and the
network makes the texture. Each block:

1. The blend weights and receptive field are smoothed towards the snapshot (one-pole, 70 % of the way
   per block); the styles' targets are blended and cached while the weights hold still, and rebuilt every
   :data:`BLEND_REBUILD_BLOCKS` blocks while they move (at once when a move starts or comes to rest).
2. When the blended per-bin mean ``μ`` and spread ``σ`` of the log-magnitude move, every in-flight frame
   is re-standardised, ``s ← μ' + σ' R((s − μ) / σ)`` (``R`` moves each value from the old per-bin
   distributions to the new ones, keeping its probability), so a timbre move reaches the next committed frames
   at once instead of ``L`` frames later; the structure the optimiser built in them stays. The stereo
   decorrelator's delayed frames are re-levelled from the old mean level to the new one
   (:meth:`engine.synthesis.stereo.StereoUpmix.relevel`), so both channels move at once.
3. The oldest ``B`` in-flight frames (optimised over the last ``L / B`` blocks) are committed: they join
   the context, their band envelopes the history, and with the trend laid over them the phase turns
   them into samples (each bin first mapped from the committed frames' running distribution to the
   blend's levels, :mod:`engine.synthesis.level_map`, so that each bin plays the style's distribution of
   levels and not frames clipped at 0 where the style never is, widened by :data:`PHASE_SPREAD_GAIN`
   since the phase plays a narrower spread than frames that no signal has, the bins' movement within their
   bands more where the blend is a noise (their fast movement: :mod:`engine.synthesis.fine_spread`), and each band's level moved as
   much as the style's, :mod:`engine.synthesis.band_movement`, and at each rate of its movement no more than the
   style's, in half octaves and then in twelfths of an octave, :mod:`engine.synthesis.rate_narrowing`). ``B`` new frames enter the in-flight window: noise with each bin's mean, spread and
   distribution in the blended style, carried from frame to frame with the style's persistence and
   shared across bins by its leading correlations (:mod:`engine.synthesis.frame_noise`). A held partial
   enters held, a noise bin enters as noise, a crackle lifts the bins it lifts in the style (the
   blended detrended target's statistics only); the new frames take the trend's next values; every ``coarse_factor`` frames the oldest in-flight trend value is committed
   and a new one enters as noise ``N(0, 1)`` in the style's coarse band spreads. With ``material`` > 0
   new frames are mixed in the log domain with detrended frames read on from the recordings
   (granular replay, an opt-in effect; segments of 0.25 s when grainy to 4 s when structured); with
   ``freeze`` frames and trend values come from the engine's own recent output, so the texture stops
   taking in anything new.
4. ``iterations`` guarded Adam steps (:mod:`engine.synthesis.step_graph`) move all ``L`` in-flight frames and all
   ``Lc`` in-flight trend values towards the blended target (each frame gets ``iterations · L / B``
   steps before it is heard, each trend value ``iterations · Lc · coarse_factor / B``); the phase
   turns the committed frames into samples in a worker thread meanwhile (ONNX Runtime releases the
   GIL), so the two use both cores; with two channels the stereo upmix (:mod:`engine.synthesis.stereo`)
   follows the phase there, with the blended styles' stereo image and the ``width`` parameter. On their way
   to the phase the committed frames pass the partial floor (:mod:`engine.synthesis.partial_floor`) and the
   spectral balance (:mod:`engine.synthesis.spectral_balance`), which leaves the share of each bin's power
   that a style's clicks hold to the click layer (:mod:`engine.synthesis.click_layer`): its new clicks are
   added to the phase's samples (at ``1 − material`` of their rate and share: frames read from the
   recordings bring their own). ``iterations`` 0 bypasses the optimiser: what plays is the initialisation alone, residual noise
   under a trend of noise (the ablation that shows the network's work).
   Every few seconds of play the statistics forget the engine's own output (:mod:`engine.synthesis.history_refresh`):
   the envelope history is refilled with new noise frames, and the trend's statistics see new trend noise for its
   history, as at the start, so that the step keeps making the texture instead of only continuing it.
5. Adaptive quality lowers the step count while a block's compute nears its audio duration (above 60 %
   of it; the last step only above 90 %, leaving the bare initialisation) and restores it when compute
   is below 30 %.

Before the first block the in-flight frames, context and history are filled by running the same blocks
without output (:meth:`BlockSynth.warm_up`), so the first frames heard are as optimised as the rest.
Everything is seeded from ``variation``: the same seed and the same parameter sequence give the same
samples.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace

import numpy as np

from engine.analysis import trend as tr
from engine.analysis.copula import requantile
from engine.analysis.partials import FloorTarget, blend_floors
from engine.analysis.clicks import bed_gains
from engine.synthesis.click_layer import ClickLayer
from engine.errors import TextureError
from engine.params import MAX_STEPS_PER_BLOCK, ParamSnapshot
from engine.analysis.stereo import StereoImage, blend_images
from engine.synthesis.frame_noise import FrameNoise
from engine.synthesis.history_refresh import HistoryRefresh
from engine.synthesis.level_map import LevelMap
from engine.synthesis.phase import StreamingPhase
from engine.synthesis.partial_floor import PartialFloor
from engine.synthesis.spectral_balance import SpectralBalance
from engine.synthesis.band_movement import BandMovement, style_movement
from engine.synthesis.rate_narrowing import RateNarrowing, fine_parts
from engine.synthesis.fine_spread import FineSpread, fine_gains
from engine.synthesis.stereo import STEREO, StereoUpmix, bins_from_bands, channel_mix, wander_map
from engine.synthesis.runtime import BlockStepper
from engine.synthesis.step_graph import BlockConfig, TrendState, graph_inputs, receptive_field_weights, target_inputs
from engine.synthesis.styles import Style, StyleLibrary
from engine.analysis.targets import StyleTarget, blend

#: (style, spectral, temporal, autocorr, seam, envelope, trend) loss weights of the live graph (the trend
#: has its own Adam, so its weight only scales the reported loss). The envelope's is the weight once the stream has
#: a history of its own; it starts at :data:`START_ENVELOPE_WEIGHT` (:func:`envelope_weight`).
LIVE_LOSS_WEIGHTS = np.array([1.0, 0.1, 0.1, 0.3, 0.3, 2.5, 1.0], dtype=np.float32)
#: The band-envelope statistics' weight over a stream's first :data:`START_SECONDS` of play, easing to
#: ``LIVE_LOSS_WEIGHTS[5]`` over the next :data:`EASE_SECONDS`. While the step's statistics span the start's noise
#: the lighter weight played a steady noise 17 % livelier than its style; once they span the stream's own output it
#: scores closer (``docs/EXPERIMENTS.md`` sections 51-52).
START_ENVELOPE_WEIGHT, START_SECONDS, EASE_SECONDS = 5.0, 6.0, 5.0
SMOOTHING = 0.7
#: While the blend weights move, the blend is rebuilt every this many blocks (at once when the styles change or
#: the weights come to rest): a rebuild costs about as much as the rest of a block (``docs/EXPERIMENTS.md`` section 60).
BLEND_REBUILD_BLOCKS = 2
#: How much wider than the blend's each bin's levels are played on their way to the phase (about each bin's mean
#: level, :meth:`engine.synthesis.level_map.LevelMap.process`). The streaming phase makes a signal near frames that
#: no signal has, and plays a narrower spread of levels than they hold (rain's 1/12-octave channels: 0.213 in the
#: frames, 0.176 in the sound); this gives it back. Frames the partial floor shapes as steady sinusoids', and
#: frames read from the recordings, keep their spread through the phase and are not widened (a violin's frames
#: widened played 6-7 dB peakier than the recording). The optimiser sees the frames as they are.
#: ``docs/EXPERIMENTS.md`` sections 28 and 30: 1.3 against 1.2 and 1.4.
PHASE_SPREAD_GAIN = 1.3
#: Mean length of a read-on material segment at receptive field 0 and 1, in seconds (geometric in between).
SEGMENT_SECONDS = (0.25, 4.0)
#: The phase's settings (RTISI-LA): a look-ahead of 1 frame and 4 phase iterations a stage (``docs/bench_phase.py``).
PHASE_LOOK_AHEAD_FRAMES, PHASE_ITERATIONS = 1, 4
HIGH_LOAD, LOW_LOAD = 0.6, 0.3
#: Load above which the last step goes too (the bare initialisation is heard): only when real time is
#: really at stake, since the GUI's own drawing alone raised one-step blocks to 0.6-0.8 here.
LAST_STEP_LOAD = 0.9
#: Longest wait for one block's phase, in seconds (a block is 23 ms and its phase takes about 2 ms):
#: past it the block fails with a TextureError (the producer then fades out and reports it).
PHASE_TIMEOUT_SECONDS = 10.0
#: Smallest per-bin spread re-standardisation divides by (log1p units).
MIN_SPREAD = 1e-3


def mean_segment_seconds(receptive_field: float) -> float:
    """Mean length of a read-on material segment, ``SEGMENT_SECONDS`` interpolated geometrically."""
    lo, hi = SEGMENT_SECONDS
    return lo * (hi / lo) ** float(receptive_field)


def continuation_probability(receptive_field: float, block_seconds: float) -> float:
    """Chance that a block of ``block_seconds`` reads material on where the last block stopped.

    Segments then last ``block_seconds / (1 − p)`` on average, which is :func:`mean_segment_seconds`.
    """
    return max(0.0, 1.0 - block_seconds / mean_segment_seconds(receptive_field))


def restandardise(frames: np.ndarray, old: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray],
                  upper: np.ndarray, quantiles: tuple[np.ndarray | None, np.ndarray | None] = (None, None)) -> np.ndarray:
    """``frames`` ``(bins, n)`` moved from per-bin mean and spread ``old`` to ``new``, clamped to ``[0, upper]``.

    ``s ← μ' + σ' R((s − μ) / σ)`` with ``σ`` floored at :data:`MIN_SPREAD`; ``R`` moves each standardised
    value from the old distributions to the new ones (:func:`engine.analysis.copula.requantile`) when
    both ``quantiles`` ``(old, new)`` are given, else it is the identity. Returns a new float32 array.
    """
    (mu0, sd0), (mu1, sd1) = old, new
    z = (frames - mu0[:, None]) / np.maximum(sd0, MIN_SPREAD)[:, None]
    if quantiles[0] is not None and quantiles[1] is not None:
        z = requantile(z, *quantiles)
    out = mu1[:, None] + z * sd1[:, None]
    return np.clip(out, 0.0, upper[:, None]).astype(np.float32)


def adapt_cap(cap: int, wanted: int, load: float) -> tuple[int, bool]:
    """Adaptive quality: the next block's step cap from this block's ``load`` (compute / audio duration).

    Above :data:`HIGH_LOAD` one step is removed from what actually ran (``min(cap, wanted)``); the last
    one, leaving the bare initialisation, only above :data:`LAST_STEP_LOAD`. Below :data:`LOW_LOAD` one
    step comes back, up to :data:`MAX_STEPS_PER_BLOCK` (so an overloaded machine alternates 0 and 1 steps).
    Returns the new cap and whether a step was dropped (counted as a quality drop).
    """
    effective = min(cap, wanted)
    if effective > 0 and load > (LAST_STEP_LOAD if effective == 1 else HIGH_LOAD):
        return effective - 1, True
    if load < LOW_LOAD and cap < MAX_STEPS_PER_BLOCK:
        return cap + 1, False
    return cap, False


@dataclass(frozen=True)
class BlockStats:
    """What one block did (telemetry for the GUI and benchmarks)."""

    index: int
    loss: float
    compute_ms: float
    block_ms: float
    steps: int  # optimiser steps this block ran
    step_cap: int  # the most adaptive quality allowed this block
    quality_drops: int
    frames: np.ndarray  # (bins, B) log-magnitude of the committed frames

    @property
    def load(self) -> float:
        """Compute time over audio duration (1.0 = exactly real time)."""
        return self.compute_ms / self.block_ms

    @property
    def realtime_factor(self) -> float:
        """Audio duration over compute time (4 = four times faster than real time)."""
        return self.block_ms / max(self.compute_ms, 1e-6)


def envelope_weight(seconds: float) -> float:
    """The band-envelope statistics' loss weight after ``seconds`` of a stream's play (>= 0):
    :data:`START_ENVELOPE_WEIGHT` up to :data:`START_SECONDS`, then linearly to ``LIVE_LOSS_WEIGHTS[5]`` over
    :data:`EASE_SECONDS`, and that weight after."""
    eased = min(1.0, max(0.0, (seconds - START_SECONDS) / EASE_SECONDS))
    return START_ENVELOPE_WEIGHT + eased * (float(LIVE_LOSS_WEIGHTS[5]) - START_ENVELOPE_WEIGHT)


class BlockSynth:
    """The streaming texture synthesiser (see module doc).

    Parameters
    ----------
    library : StyleLibrary
        Styles; may change between blocks.
    stepper : BlockStepper
        The optimiser backend (ORT or torch), built for ``library.config``.
    phase_look_ahead_frames, phase_iterations : int
        The phase's settings (RTISI-LA's look-ahead in frames, Griffin-Lim iterations a stage).
    adaptive : bool
        Whether optimiser steps drop under load (off for renders of fixed work).
    channels : {1, 2}
        2 (default): two channels from the one texture with the blended styles' stereo image and the
        ``width`` parameter (:mod:`engine.synthesis.stereo`); 1: the mono engine.
    """

    def __init__(self, library: StyleLibrary, stepper: BlockStepper, *, phase_look_ahead_frames: int = PHASE_LOOK_AHEAD_FRAMES,
                 phase_iterations: int = PHASE_ITERATIONS, adaptive: bool = True, channels: int = STEREO) -> None:
        if channels not in (1, STEREO):
            raise TextureError(f"channels must be 1 or 2. Found: {channels}")
        self.channels = channels
        self.library = library
        self.config: BlockConfig = library.config
        self.stepper = stepper
        self.adaptive = adaptive
        self.phase = StreamingPhase(n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                    look_ahead=phase_look_ahead_frames, iterations=phase_iterations)
        self.block_samples = self.config.block_frames * self.config.spectral.hop
        self.block_seconds = self.block_samples / self.config.spectral.sample_rate
        self._emap = self.config.spectral.envelope_map()
        self._spread_map = tr.band_spread_map(self._emap)  # level-weighted for the blend in _blended
        self._fine_map = self.config.spectral.fine_envelope_map()
        self._fine_spread_map = tr.band_spread_map(self._fine_map)  # likewise
        self._fine_sparse = tr.sparse_map(self._fine_map)  # what the blend's fine spread is built from
        self._layout = tr.layout_weights(self.config.coarse_factor)
        self._bin_map = bins_from_bands(self._emap)
        self._balance = SpectralBalance(self._emap, n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                        block_seconds=self.block_seconds)
        self._movement = BandMovement(self._emap, n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                      block_seconds=self.block_seconds)
        self._narrowing, self._fine_narrowing = (
            RateNarrowing(bands, n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                          block_seconds=self.block_seconds,
                          frame_seconds=self.config.spectral.hop / self.config.spectral.sample_rate, parts=parts)
            for bands, parts in ((self._emap, None),
                                 (self._fine_map, fine_parts(self.config.spectral.fine_centres_hz()))))
        self._floor = PartialFloor(block_seconds=self.block_seconds)
        self._refresh = HistoryRefresh(self.block_seconds, self._emap)
        self._level_map = LevelMap(self.config.spectral.hop / self.config.spectral.sample_rate)
        self._fine_spread = FineSpread(self.config.spectral.hop / self.config.spectral.sample_rate)
        self._clicks = ClickLayer(self.config.spectral.sample_rate, channels)
        self._freqs = np.fft.rfftfreq(self.config.spectral.n_fft, 1.0 / self.config.spectral.sample_rate)
        self._upmix = StereoUpmix(n_fft=self.config.spectral.n_fft, hop=self.config.spectral.hop,
                                   sample_rate=self.config.spectral.sample_rate) \
            if channels == STEREO else None
        self._worker: ThreadPoolExecutor | None = None
        self.latest: BlockStats | None = None

    @property
    def latency_samples(self) -> int:
        """Delay from a block's frames being committed to their samples leaving :meth:`process_block`."""
        return self.phase.latency_samples

    def prepare(self, seed: int = 0) -> None:
        """Reset all state and start the phase's worker thread; ``seed`` is the initial ``variation``."""
        bins, n = self.config.spectral.n_bins, self.config.inflight_frames
        self.phase.prepare()
        self._balance.prepare()
        self._channel_power: np.ndarray | None = None
        self._movement.prepare()
        self._style_movement: np.ndarray | None = None
        self._narrowing.prepare()
        self._fine_narrowing.prepare()
        self._rate_movement: np.ndarray | None = None
        self._fine_rate_movement: np.ndarray | None = None
        self._floor.prepare()
        self._floor_target: FloorTarget | None = None
        self._level_map.prepare()
        self._levels: np.ndarray | None = None
        self._fine_gains: np.ndarray | None = None  # (bins, 1) each bin's widening of its movement within its band
        self._fine_spread.prepare()
        self._clicks.prepare(seed)
        self._click_mix: tuple[list, np.ndarray] = ([], np.zeros(0))
        self._bed: np.ndarray | None = None
        if self._upmix is not None:
            self._upmix.seed = int(seed)
            self._upmix.prepare()
        self._image: StereoImage | None = None
        self._context: np.ndarray | None = None
        self._inflight: np.ndarray | None = None
        self._history: np.ndarray | None = None
        self._m = np.zeros((bins, n), np.float32)
        self._v = np.zeros((bins, n), np.float32)
        self._trend: TrendState | None = None
        self._laid = np.zeros((self._emap.shape[0], n), np.float32)  # normalised trend over the in-flight frames
        self._trend_ends = (np.zeros(self._emap.shape[0], np.float32),) * 2  # committed values laid out now
        self._trend_phase = 0
        self._step = 0.0
        self._blocks_played = 0  # since the synthesiser filled its windows (:meth:`_start`)
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._weights: dict[int, float] = {}
        self._rf: float | None = None
        self._cursor: tuple[int, int] | None = None
        self._blend_key: tuple | None = None
        self._blocks_since_blend = 0  # blocks since the blend was last rebuilt
        self._target: StyleTarget | None = None
        self._target_feed: dict[str, np.ndarray] = {}
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._frame_noise = FrameNoise()
        self._refresh.prepare()
        self._upper: np.ndarray | None = None
        self._cap = MAX_STEPS_PER_BLOCK
        self._drops = 0
        self._index = 0
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="texture-phase")

    def release(self) -> None:
        """Drop the per-stream state and stop the phase's worker thread (without waiting: the
        producer waits for each block's phase, so the worker is idle unless that wait timed out,
        and then it ends after its block)."""
        self._context = self._inflight = self._history = self._trend = None
        self._target = None
        self._balance.release()
        self._movement.release()
        self._narrowing.release()
        self._fine_narrowing.release()
        self._floor.release()
        self._level_map.release()
        self._clicks.release()
        if self._upmix is not None:
            self._upmix.release()
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    # --- targets -------------------------------------------------------------------------------------

    def _smoothed_weights(self, styles: tuple[Style, ...], wanted: np.ndarray) -> np.ndarray:
        """The blend weights: one-pole smoothed towards ``wanted`` (normalised)."""
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

    def _blended(self, styles: tuple[Style, ...], weights: np.ndarray, *, resting: bool = True) -> StyleTarget:
        """The blended target; on a change, re-standardises the in-flight frames to its first-order statistics.
        While the weights move (not ``resting``) it is rebuilt every :data:`BLEND_REBUILD_BLOCKS` blocks; the first
        block of a move, a change of styles and the weights' coming to rest rebuild it at once."""
        key = tuple((s.slot_id, round(float(w), 4)) for s, w in zip(styles, weights))
        same_styles = self._blend_key is not None and [k[0] for k in key] == [k[0] for k in self._blend_key]
        self._blocks_since_blend += 1
        if key != self._blend_key and not (same_styles and not resting
                                           and self._blocks_since_blend < BLEND_REBUILD_BLOCKS):
            self._blocks_since_blend = 0
            old_quantiles = None if self._target is None else self._target.quantiles
            self._target = blend([s.target for s in styles], weights)
            self._target_feed = target_inputs(self._target, LIVE_LOSS_WEIGHTS.copy())  # its envelope weight moves
            self._style_movement = style_movement(self._target)
            self._rate_movement = np.average([s.rate_movement for s in styles], axis=0, weights=weights)
            self._fine_rate_movement = np.average([s.fine_rate_movement for s in styles], axis=0, weights=weights)
            self._image = blend_images([s.image for s in styles], weights)
            self._channel_power = np.average([s.channel_power for s in styles], axis=0, weights=weights)
            self._floor_target = blend_floors([s.partials for s in styles], [s.floor_quantiles for s in styles], weights)
            self._levels = np.average([s.levels for s in styles], axis=0, weights=weights)
            self._level_map.retarget(self._levels)
            self._fine_gains = fine_gains(self._levels, PHASE_SPREAD_GAIN)
            self._click_mix = ([s.clicks for s in styles], np.asarray(weights, dtype=np.float64))
            beds = [s.channel_power * bed_gains(s.clicks, self._freqs) for s in styles]
            self._bed = np.average(beds, axis=0, weights=weights) / np.maximum(self._channel_power, 1e-30)
            active = [s.upper for s, w in zip(styles, weights) if w > 0]
            self._upper = np.max(active, axis=0).astype(np.float32)
            moments = (self._target.mean_spectrum.numpy(), self._target.spread.numpy())
            self._spread_map = tr.level_spread_map(self._emap, moments[0])
            self._fine_spread_map = tr.level_spread_map(self._fine_sparse, moments[0], rcond=tr.RANK_DEFICIENT_RCOND)
            if self._moments is not None and self._inflight is not None:
                quantiles = (None if old_quantiles is None else old_quantiles.numpy(),
                             None if self._target.quantiles is None else self._target.quantiles.numpy())
                self._inflight = restandardise(self._inflight, self._moments, moments, self._upper, quantiles)
                if self._upmix is not None:  # the decorrelator's delayed frames move with the timbre too
                    self._upmix.relevel(np.expm1(self._moments[0]), np.expm1(moments[0]))
            self._moments = moments
            purity = float(np.sum(np.square(weights)))
            self._frame_noise.retarget(self._target, purity=purity)
            self._refresh.retarget(self._target, purity=purity)
            self._blend_key = key
        return self._target

    # --- new frames ----------------------------------------------------------------------------------

    def _noise(self, n: int, laid: np.ndarray | None = None) -> np.ndarray:
        """The next ``n`` frames of the blended target's noise ``(bins, n)`` float32 (module doc, step 3),
        spread by the trend laid out over them (``laid``, normalised, ``(bands, n)``; None: not yet known)."""
        return self._frame_noise.process(n, self._rng, self._upper, None if laid is None else self._offsets(laid))

    def _new_frames(self, styles: tuple[Style, ...], weights: np.ndarray, snap: ParamSnapshot,
                    laid: np.ndarray) -> np.ndarray:
        """The ``B`` residual frames that enter the in-flight window this block under the trend ``laid``
        over them (see module doc, step 3)."""
        b = self.config.block_frames
        if bool(snap["freeze"]) and self._context is not None:
            start = int(self._rng.integers(0, self._context.shape[1] - b + 1))
            return self._context[:, start:start + b].copy()
        frames = self._noise(b, laid)
        material = float(snap["material"])
        if material > 0.0:
            style, start = self._read_material(styles, weights, b)
            source = style.detrended(start, start + b, self.config.coarse_factor, self._spread_map)
            frames = (1.0 - material) * frames + material * source
        return frames.astype(np.float32)

    def _read_material(self, styles: tuple[Style, ...], weights: np.ndarray, b: int) -> tuple[Style, int]:
        """The style to read ``b`` frames of material from, and the start frame.

        Reading goes on where the last block stopped with :func:`continuation_probability` (segments
        as long as the receptive field asks, shorter for a style at a low blend weight ``w``), else it
        jumps to a random place in a style drawn by blend weight.
        """
        by_id = {s.slot_id: (s, w) for s, w in zip(styles, weights)}
        if self._cursor is not None:
            slot_id, pos = self._cursor
            style, w = by_id.get(slot_id, (None, 0.0))
            keep = self._rng.random() < continuation_probability(self._rf, self.block_seconds / max(w, 1e-9))
            if style is not None and keep and pos + b <= style.log_mag.shape[1]:
                self._cursor = (slot_id, pos + b)
                return style, pos
        style = styles[int(self._rng.choice(len(styles), p=weights))]
        start = int(self._rng.integers(0, style.log_mag.shape[1] - b + 1))
        self._cursor = (style.slot_id, start + b)
        return style, start

    # --- the trend -----------------------------------------------------------------------------------

    def _trend_noise(self, n: int) -> np.ndarray:
        """``n`` new normalised trend values ``(bands, n)``: ``N(0, 1)``, the style's coarse spread once scaled."""
        return self._rng.standard_normal((self._emap.shape[0], n), dtype=np.float32)

    def _commit_trend(self, freeze: bool) -> None:
        """Commit the oldest in-flight trend value to the history and take in a new one (noise, or with
        ``freeze`` a value of the history)."""
        t = self._trend
        first = t.coarse[:, :1].copy()
        if freeze:
            k = int(self._rng.integers(0, t.history.shape[1]))
            new = t.history[:, k:k + 1].copy()
        else:
            new = self._trend_noise(1)
        t.history = np.concatenate([t.history[:, 1:], first], axis=1)
        self._refresh.committed()
        t.coarse = np.concatenate([t.coarse[:, 1:], new], axis=1)
        t.m = np.concatenate([t.m[:, 1:], np.zeros_like(first)], axis=1)
        t.v = np.concatenate([t.v[:, 1:], t.v[:, -1:]], axis=1)
        self._trend_ends = (self._trend_ends[1], first[:, 0])

    def _lay_out(self, n: int, freeze: bool) -> np.ndarray:
        """The normalised trend over the next ``n`` frames ``(bands, n)``, committing trend values as
        their periods begin (:func:`engine.analysis.trend.layout_weights`)."""
        out = np.empty((self._emap.shape[0], n), np.float32)
        factor = self.config.coarse_factor
        for j in range(n):
            if self._trend_phase == 0:
                self._commit_trend(freeze)
            w = self._layout[self._trend_phase]
            prev, cur = self._trend_ends
            out[:, j] = (1.0 - w) * prev + w * cur
            self._trend_phase = (self._trend_phase + 1) % factor
        return out

    def _offsets(self, laid: np.ndarray) -> np.ndarray:
        """What the laid-out trend ``laid`` (normalised, ``(bands, n)``) adds to its frames, in the blended
        coarse spreads, ``(bins, n)`` log1p units."""
        return self._spread_map @ (self._target.coarse[1].numpy()[:, None] * laid)

    def _heard(self, residual: np.ndarray, laid: np.ndarray, material: float) -> np.ndarray:
        """What the phase is given of committed ``residual`` frames under the trend ``laid`` over them: their sum,
        each bin mapped to the blend's levels (:mod:`engine.synthesis.level_map`) widened by
        :data:`PHASE_SPREAD_GAIN`, the bins' movement within their bands more where the blend is a noise
        (:func:`engine.synthesis.fine_spread.fine_gains`), then each band's envelope widened to the blend's movement
        (:mod:`engine.synthesis.band_movement`) and its rate parts narrowed to the blend's, then those of the
        twelfth-octave bands (:mod:`engine.synthesis.rate_narrowing`), all less the share of the blend's partials and of ``material``
        (frames read from the recordings keep their own style's levels: mapped to a blend's, a collage became a
        hybrid)."""
        partials = 0.0 if self._floor_target is None else self._floor_target.strength
        keep = (1.0 - partials) * (1.0 - material)
        frames = self._with_trend(residual, laid)
        gain = 1.0 + (PHASE_SPREAD_GAIN - 1.0) * keep
        mapped = self._fine_spread.process(self._level_map.process(frames, gain), self._level_map.mean_levels,
                                           (1.0 + (self._fine_gains - 1.0) * keep) / gain, self._emap, self._bin_map)
        if keep < 1.0:
            mapped = frames + keep * (mapped - frames)
        mapped = self._movement.process(mapped, self._style_movement, keep)
        mapped = self._narrowing.process(mapped, self._rate_movement, keep, self._spread_map)
        mapped = self._fine_narrowing.process(mapped, self._fine_rate_movement, keep, self._fine_spread_map)
        return np.clip(mapped, 0.0, self._upper[:, None]).astype(np.float32)

    def _with_trend(self, residual: np.ndarray, laid: np.ndarray) -> np.ndarray:
        """Committed frames: ``residual`` plus the laid-out trend, in ``[0, upper]``."""
        return np.clip(residual + self._offsets(laid), 0.0, self._upper[:, None]).astype(np.float32)

    # --- the block -----------------------------------------------------------------------------------

    def _start(self) -> None:
        """Fill context, in-flight frames, history and the trend with noise of the current target (first block)."""
        cfg = self.config
        self._context = self._noise(cfg.context_frames)
        self._inflight = self._noise(cfg.inflight_frames)
        self._history = self._emap @ self._noise(cfg.history_frames)
        bands = (self._emap.shape[0], cfg.coarse_inflight)
        self._trend = TrendState(self._trend_noise(cfg.coarse_inflight), np.zeros(bands, np.float32),
                                 np.zeros(bands, np.float32), self._trend_noise(cfg.coarse_history))
        self._refresh.start(self._seed, self._history)
        self._blocks_played = 0
        last = self._trend.history[:, -1].copy()
        self._trend_ends = (last, last)

    def _advance(self, styles: tuple[Style, ...], weights: np.ndarray,
                 snap: ParamSnapshot) -> tuple[np.ndarray, np.ndarray]:
        """Commit the oldest ``B`` in-flight frames and take in ``B`` new ones; returns the committed residual
        frames and the normalised trend laid over them (:meth:`_heard` makes what the phase is given of them)."""
        b = self.config.block_frames
        done, laid_done = self._inflight[:, :b].copy(), self._laid[:, :b].copy()
        self._context = np.concatenate([self._context[:, b:], done], axis=1)
        self._history = np.concatenate([self._history[:, b:], self._emap @ done], axis=1)
        laid = self._lay_out(b, bool(snap["freeze"]))
        self._inflight = np.concatenate([self._inflight[:, b:], self._new_frames(styles, weights, snap, laid)], axis=1)
        self._laid = np.concatenate([self._laid[:, b:], laid], axis=1)
        self._m = np.concatenate([self._m[:, b:], np.zeros_like(self._m[:, :b])], axis=1)
        self._v = np.concatenate([self._v[:, b:], np.repeat(self._v[:, -1:], b, axis=1)], axis=1)
        return done, laid_done

    def _optimise(self, target: StyleTarget, snap: ParamSnapshot, calls: int) -> float:
        """``calls`` graph calls on the in-flight frames and trend; returns the last loss (NaN if none)."""
        if calls == 0:
            return float("nan")
        self._target_feed["loss_weights"][5] = envelope_weight(self._blocks_played * self.block_seconds)
        feed = graph_inputs(self._inflight, self._context, self._m, self._v, self._step, self._target_feed,
                            receptive_field_weights(self._rf, self.config.n_layers),
                            float(snap["learning_rate"]), self._upper, self._history,
                            replace(self._trend, history=self._refresh.seen(self._trend.history)))
        loss = float("nan")
        for _ in range(calls):
            out = self.stepper.run(feed)
            for name in ("frames", "adam_m", "adam_v", "step", "coarse", "coarse_m", "coarse_v"):
                feed[name] = out[f"{name}_out"]
            loss = float(out["loss"])
        # copies: the stepper reuses its output buffers
        frames, coarse = feed["frames"].copy(), feed["coarse"].copy()
        if np.all(np.isfinite(frames)) and np.all(np.isfinite(coarse)):  # last-resort guard: no NaN to the phase
            self._inflight, self._m, self._v = frames, feed["adam_m"].copy(), feed["adam_v"].copy()
            self._trend.coarse, self._trend.m, self._trend.v = coarse, feed["coarse_m"].copy(), feed["coarse_v"].copy()
            self._step = float(feed["step"])
        else:
            self._inflight = self._noise(self.config.inflight_frames)
            self._trend.coarse = self._trend_noise(self.config.coarse_inflight)
            for state in (self._m, self._v, self._trend.m, self._trend.v):
                state.fill(0.0)
        return loss

    def _forget(self, optimising: bool) -> None:
        """Count a played block; when :class:`HistoryRefresh` says so, refill the envelope history with new noise
        frames and show the trend's statistics new trend noise for its history. Only while ``optimising`` (the
        optimiser runs and the texture is not frozen): the bypass plays as before."""
        envelope, trend = self._refresh.due()
        if not optimising:
            return
        self._refresh.draw(self.config.block_frames, self._upper)
        if trend:
            self._refresh.forget_trend(self._trend_noise(self.config.coarse_history))
        if envelope:
            self._history = self._refresh.refill()

    def _calls(self, snap: ParamSnapshot) -> int:
        wanted = int(snap["iterations"])
        n_iter = min(wanted, self._cap) if self.adaptive else wanted
        return math.ceil(n_iter / self.config.steps_per_call)

    def _targets(self, styles: tuple[Style, ...], snap: ParamSnapshot) -> tuple[np.ndarray, StyleTarget]:
        mix = snap.blend_weights([s.slot_id for s in styles])
        mix = mix / mix.sum()
        weights = self._smoothed_weights(styles, mix)
        target = self._blended(styles, weights, resting=bool(np.allclose(weights, mix, rtol=0.0, atol=1e-4)))
        rf = float(snap["receptive_field"])
        self._rf = rf if self._rf is None else self._rf + SMOOTHING * (rf - self._rf)
        if self._inflight is None:
            self._start()
        return mix, target

    def warm_up(self, snap: ParamSnapshot) -> None:
        """Run the blocks that fill context, in-flight frames and envelope history, without output.

        ``(C + L + H) / B`` blocks at the snapshot's settings (about 150 at the defaults); does nothing
        without styles or with ``iterations`` 0 (the ablation starts from plain noise, like its frames).
        """
        styles = self.library.slots
        if not styles:
            return
        mix, target = self._targets(styles, snap)
        cfg = self.config
        calls = self._calls(snap)
        if calls == 0:
            return
        for _ in range((cfg.context_frames + cfg.inflight_frames + cfg.history_frames) // cfg.block_frames):
            self._optimise(target, snap, calls)
            self._heard(*self._advance(styles, mix, snap), float(snap["material"]))  # the level map hears them too

    def process_block(self, snap: ParamSnapshot) -> np.ndarray:
        """The next block's final samples (float64, engine rate; about ``block_samples`` of them), ``(n,)``
        or with two channels ``(n, 2)``.

        With no style loaded the block is silence and the stream keeps running.
        """
        t0 = time.perf_counter()
        styles = self.library.slots
        seed = int(snap["variation"])
        if seed != self._seed:
            self._seed = seed
            self._rng = np.random.default_rng(seed)
        if not styles:
            self._inflight = None
            silence = np.zeros((self.config.spectral.n_bins, self.config.block_frames))
            return self._to_samples(silence, np.ones((4, self.config.spectral.n_bins)))  # silence whatever the mix
        mix, target = self._targets(styles, snap)
        committed = self._advance(styles, mix, snap)
        calls = self._calls(snap)
        self._blocks_played += 1
        self._forget(calls > 0 and not bool(snap["freeze"]))
        # The phase runs in the worker while this thread waits in ONNX Runtime, which releases the GIL:
        # the other way round the optimiser's Python parts queued for the GIL behind the phase's
        # (measured: no overlap at all, 8.1 ms a block). The level map, the partial floor and the balance
        # ahead of it ran there too: no faster (6.3 against 6.4 times real time, docs/EXPERIMENTS.md section 30).
        channel_gains = channel_mix(self._image, float(snap["width"]), self._bin_map) if self._upmix else None
        wander = wander_map(self._image, float(snap["width"]), self._bin_map) if self._upmix else None
        material = float(snap["material"])
        magnitudes, heard = self._magnitudes(*committed, material)
        pending = self._worker.submit(self._to_samples, magnitudes, channel_gains, wander)
        loss = self._optimise(target, snap, calls)
        try:
            samples = pending.result(timeout=PHASE_TIMEOUT_SECONDS)
        except FutureTimeout:
            raise TextureError(f"the phase took more than {PHASE_TIMEOUT_SECONDS:g} s for one block") from None
        self._balance.observe(samples)
        self._narrowing.observe(samples, self._balance.applied)
        self._fine_narrowing.observe(samples, self._balance.applied)
        targets, weights = self._click_mix
        clicks = self._clicks.process(len(samples), targets, (1.0 - material) * weights, float(snap["width"]))
        samples = samples + (clicks[:, 0] if samples.ndim == 1 else clicks)
        self._movement.observe(samples, self._balance.applied)
        compute_ms = (time.perf_counter() - t0) * 1000.0
        block_ms = 1000.0 * self.block_seconds
        self._adapt(compute_ms / block_ms, int(snap["iterations"]))
        self.latest = BlockStats(self._index, loss, compute_ms, block_ms, calls * self.config.steps_per_call,
                                 self._cap, self._drops, heard)
        self._index += 1
        return samples

    def _magnitudes(self, residual: np.ndarray, laid: np.ndarray, material: float) -> tuple[np.ndarray, np.ndarray]:
        """The magnitudes ``(bins, B)`` the phase is given of the committed ``residual`` frames under the trend
        ``laid``, and their log-magnitude before the partial floor (:meth:`_heard`): through the partial floor
        and the spectral balance, the click layer's share of each bin's power left to it at ``1 − material``
        (frames read from the recordings bring their own clicks)."""
        heard = self._heard(residual, laid, material)
        magnitudes = self._floor.process(np.expm1(heard.astype(np.float64)), self._floor_target)
        clicked = 1.0 - material
        magnitudes *= self._balance.gains(self._channel_power, 1.0 - clicked * (1.0 - self._bed))[:, None]
        return magnitudes, heard

    def _to_samples(self, magnitudes: np.ndarray, channel_gains: np.ndarray | None,
                    wander: np.ndarray | None) -> np.ndarray:
        """The phase's samples of the committed ``magnitudes`` ``(bins, B)``: mono ``(n,)``, or with the
        stereo upmix ``(n, 2)`` (``channel_gains`` from :func:`engine.synthesis.stereo.channel_mix`, ``wander``
        from :func:`engine.synthesis.stereo.wander_map`)."""
        mono = self.phase.process(magnitudes)
        if self._upmix is None:
            return mono
        return self._upmix.process(self.phase.last_committed, channel_gains, wander)

    def _adapt(self, load: float, wanted: int) -> None:
        if self.adaptive:
            self._cap, dropped = adapt_cap(self._cap, wanted, load)
            self._drops += dropped
