"""What the engine plays from a library: a render to the null sink, its samples taken from the taps."""
from __future__ import annotations

import numpy as np

from engine.live.sinks import NullSink
from engine.live.stream import Engine
from engine.params import ParamStore
from engine.synthesis.runtime import BlockStepper
from engine.synthesis.styles import StyleLibrary


def played(library: StyleLibrary, params: ParamStore, stepper: BlockStepper, seconds: float) -> tuple[np.ndarray, object, Engine]:
    """``seconds`` of the mono engine at fixed work (no adaptive quality): the samples the taps saw
    ``(n,)``, the render's stats and the engine (for its telemetry)."""
    engine = Engine(library, params, stepper, NullSink(library.config.spectral.sample_rate), adaptive=False, channels=1)
    out: list[np.ndarray] = []
    engine.taps.append(out.append)
    stats = engine.render(seconds)
    return np.concatenate(out), stats, engine
