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
* ``gaussian levels`` — each frame keeps its fine structure, but the channel levels over time are a new
  stationary Gaussian process with the style's own cross-spectral density between channels (Welch, segments of
  :data:`CSD_SEGMENT_FRAMES`, averaged in :data:`CSD_BANDS` log-spaced bands of modulation frequency): the
  levels' second-order statistics kept, at every modulation rate and between every two channels; their
  skewness, their events and their order lost.
* ``gaussian, lag-0 coherence`` — the same, but every modulation rate shares one coherence between channels
  (the levels' correlation matrix; each channel keeps its own modulation spectrum).

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
#: Welch segment (frames; 1.5 s at 44.1 kHz, hop 512) and log-spaced modulation bands of the Gaussian levels.
CSD_SEGMENT_FRAMES = 128
CSD_BANDS = 16


def gaussian_levels(levels: np.ndarray, rng: np.random.Generator, *, separable: bool = False) -> np.ndarray:
    """A stationary Gaussian process ``(channels, frames)`` with the cross-spectral density of ``levels``.

    The density is estimated by Welch (Hann segments of :data:`CSD_SEGMENT_FRAMES`, half overlap) and
    averaged within :data:`CSD_BANDS` log-spaced bands of modulation frequency; each band's matrix is
    factored (``A A^H``) and coloured complex white noise at the output's frequencies is transformed back.
    ``separable``: each band's matrix becomes ``D^1/2 R D^1/2``, one correlation ``R`` at every rate.
    Needs at least one segment of ``levels``.
    """
    seg = min(CSD_SEGMENT_FRAMES, levels.shape[1] // 2 * 2)
    mean = levels.mean(axis=1, keepdims=True)
    z, win = levels - mean, np.hanning(seg)
    spectra = np.stack([np.fft.rfft(z[:, a:a + seg] * win, axis=1) for a in range(0, z.shape[1] - seg + 1, seg // 2)])
    edges = np.unique(np.round(np.geomspace(1, spectra.shape[2], CSD_BANDS + 1)).astype(int))
    corr_factor = np.linalg.cholesky(np.corrcoef(z) + 1e-6 * np.eye(len(z))) if separable else None
    n = levels.shape[1]
    position = np.arange(n // 2 + 1) / n * seg  # each output frequency on the segments' axis
    out = np.zeros((len(z), n // 2 + 1), complex)
    for lo, hi in zip(edges[:-1], edges[1:]):
        x = spectra[:, :, lo:hi].transpose(1, 0, 2).reshape(len(z), -1)
        density = x @ x.conj().T / x.shape[1] / np.sum(win ** 2)
        if separable:
            factor = np.sqrt(np.maximum(np.real(np.diag(density)), 0.0))[:, None] * corr_factor
        else:
            w, v = np.linalg.eigh(density)
            factor = v * np.sqrt(np.maximum(w, 0.0))
        at = np.flatnonzero((position >= lo - 0.5 if lo > 1 else position > 0) & (position < hi - 0.5))
        white = (rng.standard_normal((factor.shape[1], len(at))) + 1j * rng.standard_normal((factor.shape[1], len(at))))
        out[:, at] = factor @ white / np.sqrt(2.0)
    return np.fft.irfft(out, n=n, axis=1) * np.sqrt(n) + mean


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
        "gaussian levels": with_levels(s, gaussian_levels(fmap @ s, rng)),
        "gaussian, lag-0 coherence": with_levels(s, gaussian_levels(fmap @ s, rng, separable=True)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = live_config(RATE).spectral
    fmap = config.feature_map()
    names = list(edits(np.random.default_rng(0).random((config.n_bins, 2 * CSD_SEGMENT_FRAMES)), fmap,
                       np.random.default_rng(0)))
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
