"""What does the learned ear hear? Oracle edits of a recording's own spectrogram, scored on its unseen half.

Each recording is cut in two, as in ``docs/bench_corpus.py``: the first half is the style, the second
the reference. The style's own STFT magnitudes (the engine's n_fft and hop at 44.1 kHz, the channels'
mean) are edited in one way each, turned back into sound by the engine's streaming phase (RTISI-LA at
the live settings) and scored with ``evaluate`` against the reference, scaled as the benchmark scales
(0 = the style half, 1 = spectral noise of it):

* ``exact`` — the magnitudes untouched: what the phase alone costs.
* ``fine noise`` — each frame keeps its levels in the live network's input channels (the
  12-per-octave pseudo-CQT, ``SpectralConfig.feature_map``), but within a channel the bins are
  Gaussian noise with each bin's own mean and spread (log1p), corrected so the channel levels stay
  exact: the fine structure the live network cannot see, replaced.
* ``blocks shuffled`` — whole 93 ms blocks of frames (8 frames) in random order: structure
  longer than a block lost, everything within it kept.
* ``channels shuffled`` — each frame keeps its fine structure but takes its channel levels from a
  random other frame: the spectral shape over time lost.
* ``marginals`` — every bin of every frame drawn from that bin's own values at a random time: each
  bin's distribution kept, every dependence across bins and frames lost.

Usage: ``python docs/oracles.py FILES... [--seed 0]``; prints a markdown table of the scaled
embedding distance and the envelope statistics (raw). Needs aisfx for the embedding.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio  # noqa: E402
from engine.analysis.spectral import SpectralConfig, stft  # noqa: E402
from engine.synthesis.step_graph import live_config  # noqa: E402
from engine.evaluation.audio import mono_mix  # noqa: E402
from engine.evaluation.baselines import spectral_noise  # noqa: E402
from engine.evaluation.metrics import evaluate, scale_rows  # noqa: E402
from engine.synthesis.block_synth import PHASE_ITERATIONS, PHASE_LOOK_AHEAD_FRAMES  # noqa: E402
from engine.synthesis.phase import StreamingPhase  # noqa: E402

RATE = 44100
#: Frames per shuffled block (93 ms at 44.1 kHz, hop 512).
BLOCK_FRAMES = 8


def resynthesise(magnitude: np.ndarray, config: SpectralConfig) -> np.ndarray:
    """The engine's streaming phase over ``magnitude`` ``(bins, frames)``, two frames a block."""
    phase = StreamingPhase(n_fft=config.n_fft, hop=config.hop, look_ahead=PHASE_LOOK_AHEAD_FRAMES,
                           iterations=PHASE_ITERATIONS)
    phase.prepare()
    return np.concatenate([phase.process(magnitude[:, i:i + 2]) for i in range(0, magnitude.shape[1] - 1, 2)])


def edits(s: np.ndarray, fmap: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The oracle spectrograms (log1p magnitudes) of the style's ``s`` ``(bins, frames)``."""
    bins, frames = s.shape
    back = np.linalg.pinv(fmap)  # channel levels -> bins, least squares

    def with_levels(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
        return np.clip(x + back @ (levels - fmap @ x), 0.0, None)

    noise = s.mean(axis=1, keepdims=True) + s.std(axis=1, keepdims=True) * rng.standard_normal(s.shape)
    starts = rng.permutation(np.arange(0, frames - BLOCK_FRAMES, BLOCK_FRAMES))
    order = np.concatenate([np.arange(k, k + BLOCK_FRAMES) for k in starts])
    return {
        "exact": s,
        "fine noise": with_levels(np.clip(noise, 0.0, None), fmap @ s),
        "blocks shuffled": s[:, order],
        "channels shuffled": with_levels(s, fmap @ s[:, rng.integers(0, frames, frames)]),
        "marginals": np.take_along_axis(s, rng.integers(0, frames, s.shape), axis=1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = live_config(RATE).spectral
    fmap = config.feature_map()
    names = list(edits(np.ones((config.n_bins, 4 * BLOCK_FRAMES)), fmap, np.random.default_rng(0)))
    print("| recording | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for path in args.files:
        rng = np.random.default_rng(args.seed)
        y = mono_mix(load_audio(path, sample_rate=RATE, channels=None), role=str(path))
        style, reference = y[:len(y) // 2], y[len(y) // 2:]
        s = np.log1p(np.abs(stft(style, n_fft=config.n_fft, hop=config.hop)))
        made = [resynthesise(np.expm1(x), config) for x in edits(s, fmap, rng).values()]
        n = min(len(reference), *(len(m) for m in made))
        noise = spectral_noise(style, seconds=len(style) / RATE, sample_rate=RATE, rng=rng)
        *rows, ceiling, floor = evaluate(reference, [m[:n] for m in made] + [noise, style], sample_rate=RATE)
        rows = scale_rows(rows, floor=floor, ceiling=ceiling)
        cells = [f"{r['embedding_mmd_scaled']:.2f} / {r['envelope_stats']:.3f}" for r in rows]
        print(f"| {path.stem} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
