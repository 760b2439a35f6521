"""``python main.py bench``: speed figures of the live path, measured in one run so ratios are fair.

Figures (medians over ``blocks`` blocks, default settings, the embedded default style):

* ``ort_ms_per_block`` / ``torch_ms_per_block`` — the block optimiser alone (the default iterations
  per block on all ``inflight_frames``), ONNX Runtime vs the torch autograd reference, on identical
  inputs; ``ort_speedup``; ``ort_ms_per_frame_step`` — what one Adam step costs per frame it moves
  (ORT ms per step / in-flight frames), the figure to compare with an engine that steps fewer frames;
  ``steps_per_frame`` — the steps each frame gets before it is heard (iterations · L / B).
* ``block_seconds`` — audio duration of one block; ``realtime_factor`` = block_seconds / ORT seconds
  per block (the optimiser's headroom).
* ``stream_realtime_factor`` — the whole streaming engine (optimiser + phase + stereo upmix + output
  chain) at the configuration's rate and ``channels`` (full band stereo at the defaults) rendering
  ``STREAM_SECONDS`` of audio to a null sink, audio seconds per compute second;
  ``mono_22050_stream_realtime_factor`` — the same for the mono engine at 22050 Hz (what the engine was
  before full band and stereo), measured in the same run so the two compare.
* ``morph_stream_realtime_factor`` — the full band engine again while the morph sweeps between two slots of
  the default style (set every block, 0 → 1 → 0 every :data:`MORPH_SWEEP_SECONDS`), so every block rebuilds the
  blend: what a performer moving a morph fader leaves of the headroom.
* ``network``, ``phase_ms_per_block``, ``provider``, ``iterations_per_block``, ``block_frames``, ``hop``,
  ``sample_rate``, ``channels``, ``cpu`` (the processor's model name: speed figures mean nothing without it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.synthesis.block_synth import PHASE_LOOK_AHEAD_FRAMES, PHASE_ITERATIONS
from engine.params import PARAM_SPECS, ParamStore
from engine.synthesis.phase import StreamingPhase
from engine.synthesis.runtime import BlockStepper
from engine.live.sinks import NullSink
from engine.analysis.spectral import DEFAULT_SAMPLE_RATE
from engine.synthesis.step_graph import BlockConfig, example_inputs, live_config
from engine.synthesis.stereo import STEREO
from engine.live.stream import Engine
from engine.synthesis.styles import StyleLibrary


#: Audio rendered for ``stream_realtime_factor`` (long enough to average out the machine's noise).
STREAM_SECONDS = 20.0
#: Period of the morph's sweep for ``morph_stream_realtime_factor``, seconds.
MORPH_SWEEP_SECONDS = 4.0


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo (``"unknown"`` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def stream_realtime_factor(config: BlockConfig, stepper: BlockStepper, channels: int, *, morph: bool = False) -> float:
    """The whole streaming engine's real-time factor rendering :data:`STREAM_SECONDS` of the default
    style to a null sink at ``config``'s rate (fixed work: no adaptive quality); with ``morph``, two slots
    of it and the morph swept between them every block (:data:`MORPH_SWEEP_SECONDS`)."""
    library = StyleLibrary(config)
    for _ in range(2 if morph else 1):
        library.add_default()
    params = ParamStore()
    engine = Engine(library, params, stepper, NullSink(config.spectral.sample_rate), adaptive=False,
                    channels=channels)

    def sweep(written: int) -> None:
        seconds = written / config.spectral.sample_rate
        params.set("morph", 0.5 - 0.5 * np.cos(2 * np.pi * seconds / MORPH_SWEEP_SECONDS))

    return engine.render(STREAM_SECONDS, progress=sweep if morph else None).realtime_factor


def run_bench(config: BlockConfig, *, channels: int = STEREO, blocks: int = 30,
              log: Callable[[str], None] = lambda m: None) -> dict:
    """Measure and return the figures of the module doc."""
    iterations = int(PARAM_SPECS["iterations"].default)
    calls = int(np.ceil(iterations / config.steps_per_call))
    feed = example_inputs(config)
    ort_stepper = BlockStepper(config, backend="ort", log=log)
    torch_stepper = BlockStepper(config, backend="torch", threads=ort_stepper.threads)

    def block_of(stepper: BlockStepper) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                stepper.run(feed)
        return run

    log(f"timing {blocks} blocks of {iterations} steps on ORT and torch")
    ort_ms = _median_ms(block_of(ort_stepper), blocks)
    torch_ms = _median_ms(block_of(torch_stepper), blocks)
    phase = StreamingPhase(n_fft=config.spectral.n_fft, hop=config.spectral.hop, look_ahead=PHASE_LOOK_AHEAD_FRAMES,
                           iterations=PHASE_ITERATIONS)
    phase.prepare()
    mags = np.expm1(feed["frames"][:, :config.block_frames].astype(np.float64))
    phase_ms = _median_ms(lambda: phase.process(mags), blocks)
    block_seconds = config.block_frames * config.spectral.hop / config.spectral.sample_rate

    log(f"rendering through the whole streaming engine ({config.spectral.sample_rate} Hz, {channels} channels)")
    stream = stream_realtime_factor(config, ort_stepper, channels)
    log("again while the morph sweeps between two styles")
    morph = stream_realtime_factor(config, ort_stepper, channels, morph=True)
    mono = live_config(DEFAULT_SAMPLE_RATE, network=config.network)
    log(f"rendering through the mono engine at {DEFAULT_SAMPLE_RATE} Hz")
    mono_stream = stream_realtime_factor(mono, BlockStepper(mono, backend="ort", log=log), 1)
    return {
        "cpu": cpu_model(),
        "network": config.network,
        "provider": ort_stepper.provider,
        "threads": ort_stepper.threads,
        "iterations_per_block": iterations,
        "block_frames": config.block_frames,
        "context_frames": config.context_frames,
        "inflight_frames": config.inflight_frames,
        "steps_per_frame": iterations * config.inflight_frames / config.block_frames,
        "ort_ms_per_frame_step": ort_ms / max(iterations, 1) / config.inflight_frames,
        "hop": config.spectral.hop,
        "sample_rate": config.spectral.sample_rate,
        "block_seconds": block_seconds,
        "ort_ms_per_block": ort_ms,
        "torch_ms_per_block": torch_ms,
        "ort_speedup": torch_ms / ort_ms,
        "realtime_factor": block_seconds * 1000.0 / ort_ms,
        "phase_ms_per_block": phase_ms,
        "channels": channels,
        "stream_realtime_factor": stream,
        "morph_stream_realtime_factor": morph,
        f"mono_{DEFAULT_SAMPLE_RATE}_stream_realtime_factor": mono_stream,
    }
