"""Texture quality on real sounds: offline and streaming synthesis against two baselines.

For each sound (default: every wav in ../shared/corpus), renders ``--seconds`` of

* ``offline``  — whole-file L-BFGS synthesis (``render --offline``),
* ``stream``   — the live block engine at default settings (``render``),
* ``noise``    — the spectral-noise baseline (mean magnitude spectrum, random phase),
* ``paul``     — PaulStretch (0.25 s windows, random phases),

scores each against the sound with ``evaluate``'s metrics, and prints markdown tables: the metrics,
the compute seconds per second of output, and the boundary flux ratio of the stream (mean spectral
flux across block seams over the mean inside blocks). With ``--seeds N`` the stream (``variation``
0..N-1), PaulStretch and the noise are made N times and each metric is the median of the N scores
(the offline synthesis runs once).

Choose ``--seconds`` knowing the baselines: PaulStretch spreads the whole sound over the output, so
at the sound's own length (the corpus files are 6-10 s) it is that sound replayed with new phases,
and longer outputs slow its every swell down; the stream keeps the sound's own pace at any length.

Usage: ``python docs/bench_corpus.py [FILES...] [--seconds 10] [--seeds 1] [--iterations 200] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.audio_io import load_audio  # noqa: E402
from engine.baselines import paulstretch, spectral_noise  # noqa: E402
from engine.commands import live_config  # noqa: E402
from engine.metrics import METRIC_KEYS, evaluate  # noqa: E402
from engine.offline import OfflineSettings, synthesize  # noqa: E402
from engine.params import ParamStore  # noqa: E402
from engine.runtime import BlockStepper  # noqa: E402
from engine.sinks import NullSink  # noqa: E402
from engine.spectral import log_magnitude, stft  # noqa: E402
from engine.stream import Engine  # noqa: E402
from engine.styles import StyleLibrary  # noqa: E402

SR = 22050


def boundary_flux_ratio(audio: np.ndarray, block_frames: int) -> float:
    """Mean log-spectral flux across block seams over the mean inside blocks (first 4 blocks skipped)."""
    s = log_magnitude(stft(audio.astype(np.float64)))
    flux = np.sum(np.diff(s, axis=1) ** 2, axis=0)
    j = np.arange(len(flux))
    keep = (j > 4 * block_frames) & (j < len(flux) - 4)
    seam = (j + 1) % block_frames == 0
    return float(flux[keep & seam].mean() / flux[keep & ~seam].mean())


def stream(style: np.ndarray, seconds: float, stepper: BlockStepper, seed: int = 0) -> tuple[np.ndarray, float]:
    """The live engine's output at default settings (gain 1, ``variation`` = ``seed``) and its wall time."""
    library = StyleLibrary(stepper.config)
    library.add_audio(style, "style")
    params = ParamStore()
    params.set("gain", 1.0)
    params.set("variation", seed)
    chunks: list[np.ndarray] = []
    engine = Engine(library, params, stepper, NullSink(SR), adaptive=False)
    engine.taps.append(chunks.append)
    stats = engine.render(seconds)
    return np.concatenate(chunks), stats.wall_seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=1, help="stream/baseline repeats; metrics are medians")
    ap.add_argument("--iterations", type=int, default=200, help="offline L-BFGS iterations")
    ap.add_argument("--no-offline", action="store_true", help="skip the (slow) offline synthesis")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = args.files or sorted((ROOT.parent / "shared" / "corpus").glob("*.wav"))
    config = live_config()
    stepper = BlockStepper(config)
    rows = []
    for path in files:
        style = load_audio(path, sample_rate=SR)
        cands, row = {}, {"file": path.name}
        if not args.no_offline:
            t0 = time.perf_counter()
            offline = synthesize([style], seconds=args.seconds, settings=OfflineSettings(iterations=args.iterations))
            cands["offline"] = offline.audio
            row.update(offline_s_per_s=(time.perf_counter() - t0) / args.seconds,
                       offline_sc_db=offline.spectral_convergence_db)
        runs = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            streamed, stream_wall = stream(style, args.seconds, stepper, seed)
            seeded = dict(cands, stream=streamed,
                          noise=spectral_noise(style, seconds=args.seconds, sample_rate=SR, rng=rng),
                          paul=paulstretch(style, seconds=args.seconds, sample_rate=SR, rng=rng))
            runs.append(dict(zip(seeded, evaluate(style, list(seeded.values()), sample_rate=SR))))
            if seed == 0:
                row.update(stream_s_per_s=stream_wall / args.seconds,
                           flux_ratio=boundary_flux_ratio(streamed, config.block_frames))
        row["scores"] = {m: {k: float(np.median([r[m][k] for r in runs])) for k in METRIC_KEYS} for m in runs[0]}
        rows.append(row)
        print(f"done {path.name}", file=sys.stderr, flush=True)
    methods = list(rows[0]["scores"]) if rows else []
    for key in METRIC_KEYS:
        print(f"\n{key} (lower is closer to the style)\n")
        print("| file | " + " | ".join(methods) + " |")
        print("|---|" + "---:|" * len(methods))
        for r in rows:
            print(f"| {r['file']} | " + " | ".join(f"{r['scores'][m][key]:.4g}" for m in methods) + " |")
    print("\n| file | offline s/s | stream s/s | offline SC dB | stream boundary flux ratio |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        offline = (f"{r['offline_s_per_s']:.2f} | " if "offline_s_per_s" in r else "- | ")
        sc = f"{r['offline_sc_db']:.1f}" if "offline_sc_db" in r else "-"
        print(f"| {r['file']} | {offline}{r['stream_s_per_s']:.3f} | {sc} | {r['flux_ratio']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
