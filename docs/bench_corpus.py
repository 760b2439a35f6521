"""Texture quality, novelty and ablation on real sounds, against PaulStretch and spectral noise.

Each corpus sound (default: every wav in ../shared/corpus) is cut in two: the **first half is the
style** the engine is given, the **second half is the unseen reference** the output is scored against
(a texture should sound like more of the same source, not like the part it was shown). For each sound
``--seconds`` of output are made by

* ``stream``   — the live block engine at default settings (``render``),
* ``ablation`` — the same render with the optimiser bypassed (``--iterations 0``): the noise
  initialisation alone; the difference to ``stream`` is the network's work,
* ``noise``    — the spectral-noise baseline (mean magnitude spectrum, random phase),
* ``paul``     — PaulStretch (0.25 s windows, random phases) of the style half,
* ``offline``  — with ``--offline``: whole-file L-BFGS synthesis (``render --offline``),

and scored with ``evaluate``'s metrics against the reference, plus novelty against the style: the
copied share (frames in verbatim >= 100 ms runs of the style) and the nearest-style-frame distance
over the reference's (1 = as new as fresh material of the source). Then for pairs of sounds the
50/50 blend's collage index (0 = one hybrid texture, 1 = alternating pieces), for the stream, its
ablation and a plain sum of the two recordings. With ``--seeds N`` each figure is the median of N
seeds. Prints markdown tables; ``--json`` keeps every number.

With ``--figures DIR`` it also draws, per sound, spectrograms of the style, its unseen continuation,
the stream, its ablation and PaulStretch side by side (``DIR/synthesis_<sound>.png``, seed 0).

Usage: ``python docs/bench_corpus.py [FILES...] [--seconds 20] [--seeds 3] [--offline] [--figures DIR] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio  # noqa: E402
from engine.evaluation.baselines import paulstretch, spectral_noise  # noqa: E402
from engine.synthesis.step_graph import live_config  # noqa: E402
from engine.evaluation.metrics import METRIC_KEYS, evaluate  # noqa: E402
from engine.evaluation.novelty import collage_index, copied_share, distance_ratio  # noqa: E402
from engine.synthesis.offline import OfflineSettings, synthesize  # noqa: E402
from engine.params import ParamStore  # noqa: E402
from engine.synthesis.runtime import BlockStepper  # noqa: E402
from engine.live.sinks import NullSink  # noqa: E402
from engine.analysis.spectral import log_magnitude, stft  # noqa: E402
from engine.live.stream import Engine  # noqa: E402
from engine.synthesis.styles import StyleLibrary  # noqa: E402

SR = 22050
#: Pairs blended 50/50 for the collage index: two noisy textures, two tonal sounds, speech with rain.
BLEND_PAIRS = (("rain_ardentryst.wav", "seashore_gm.wav"), ("violin_g4.wav", "celesta_a5.wav"),
               ("speech_en.wav", "rain_ardentryst.wav"))


def boundary_flux_ratio(audio: np.ndarray, block_frames: int) -> float:
    """Mean log-spectral flux across block seams over the mean inside blocks (first 4 blocks skipped)."""
    s = log_magnitude(stft(audio.astype(np.float64)))
    flux = np.sum(np.diff(s, axis=1) ** 2, axis=0)
    j = np.arange(len(flux))
    keep = (j > 4 * block_frames) & (j < len(flux) - 4)
    seam = (j + 1) % block_frames == 0
    return float(flux[keep & seam].mean() / flux[keep & ~seam].mean())


def stream(styles: list[np.ndarray], seconds: float, stepper: BlockStepper, seed: int, *,
           iterations: int | None = None) -> tuple[np.ndarray, float]:
    """The live engine's output (gain 1, ``variation`` = ``seed``, equal blend) and its wall time in seconds."""
    library = StyleLibrary(stepper.config)
    for i, style in enumerate(styles):
        library.add_audio(style, f"style {i}")
    params = ParamStore()
    params.set("gain", 1.0)
    params.set("variation", seed)
    if iterations is not None:
        params.set("iterations", iterations)
    chunks: list[np.ndarray] = []
    engine = Engine(library, params, stepper, NullSink(SR), adaptive=False)
    engine.taps.append(chunks.append)
    stats = engine.render(seconds)
    return np.concatenate(chunks), stats.wall_seconds


def _median(rows: list[dict]) -> dict:
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def score_file(path: Path, args: argparse.Namespace, stepper: BlockStepper) -> dict:
    y = load_audio(path, sample_rate=SR)
    style, reference = y[:len(y) // 2], y[len(y) // 2:]
    row: dict = {"file": path.name}
    runs: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        made, wall = stream([style], args.seconds, stepper, seed)
        cands = {"stream": made, "ablation": stream([style], args.seconds, stepper, seed, iterations=0)[0],
                 "noise": spectral_noise(style, seconds=args.seconds, sample_rate=SR, rng=rng),
                 "paul": paulstretch(style, seconds=args.seconds, sample_rate=SR, rng=rng)}
        if args.offline and seed == 0:
            t0 = time.perf_counter()
            cands["offline"] = synthesize([style], seconds=args.seconds, settings=OfflineSettings()).audio
            row["offline_s_per_s"] = (time.perf_counter() - t0) / args.seconds
        if seed == 0:
            row.update(stream_realtime_factor=args.seconds / wall,
                       flux_ratio=boundary_flux_ratio(made, stepper.config.block_frames))
            if args.figures:
                from experiments import save_figure
                save_figure(args.figures / f"synthesis_{path.stem}.png",
                            [("style (first half of the recording)", style),
                             ("unseen continuation (second half)", reference),
                             ("stream (default settings)", made), ("ablation (--iterations 0)", cands["ablation"]),
                             ("PaulStretch of the style", cands["paul"]), ("spectral noise", cands["noise"])],
                            seconds=min(len(style), len(reference)) / SR)
        for name, scores in zip(cands, evaluate(reference, list(cands.values()), sample_rate=SR)):
            scores["copied"] = copied_share(style, cands[name], sample_rate=SR)
            scores["distance_ratio"] = distance_ratio(style, cands[name], reference, sample_rate=SR)
            runs.setdefault(name, []).append(scores)
    row["scores"] = {name: _median(r) for name, r in runs.items()}
    return row


def score_blend(a: Path, b: Path, args: argparse.Namespace, stepper: BlockStepper) -> dict:
    ya, yb = (load_audio(p, sample_rate=SR) for p in (a, b))
    ya, yb = ya[:len(ya) // 2], yb[:len(yb) // 2]
    n = min(len(ya), len(yb))
    plain_sum = 0.5 * (ya[:n] + yb[:n])
    out = {"pair": f"{a.stem} + {b.stem}", "sum": collage_index(plain_sum, ya, yb, 0.5, sample_rate=SR)}
    for name, iterations in (("stream", None), ("ablation", 0)):
        out[name] = float(np.median([
            collage_index(stream([ya, yb], args.seconds, stepper, seed, iterations=iterations)[0], ya, yb, 0.5,
                          sample_rate=SR) for seed in range(args.seeds)]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seeds", type=int, default=3, help="stream/baseline repeats; figures are medians")
    ap.add_argument("--offline", action="store_true", help="also run the (slow) offline L-BFGS synthesis")
    ap.add_argument("--no-blends", action="store_true", help="skip the blend collage figures")
    ap.add_argument("--figures", type=Path, help="folder for the spectrogram pictures")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    corpus = ROOT.parent / "shared" / "corpus"
    files = args.files or sorted(corpus.glob("*.wav"))
    stepper = BlockStepper(live_config())
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
    rows = []
    for path in files:
        rows.append(score_file(path, args, stepper))
        print(f"done {path.name}", file=sys.stderr, flush=True)
    blends = []
    if not args.no_blends:
        for a, b in BLEND_PAIRS:
            if (corpus / a).exists() and (corpus / b).exists():
                blends.append(score_blend(corpus / a, corpus / b, args, stepper))
    methods = list(rows[0]["scores"]) if rows else []
    print(f"\n{args.seconds:g} s of output from the first half of each sound, scored against the unseen second "
          f"half; medians of {args.seeds} seeds; {cpu}")
    for key in (*METRIC_KEYS, "copied", "distance_ratio"):
        print(f"\n{key}\n")
        print("| file | " + " | ".join(methods) + " |")
        print("|---|" + "---:|" * len(methods))
        for r in rows:
            print(f"| {r['file']} | " + " | ".join(f"{r['scores'][m][key]:.4g}" for m in methods) + " |")
    print("\n| file | stream real-time factor | boundary flux ratio | ablation / stream envelope stats |")
    print("|---|---:|---:|---:|")
    for r in rows:
        sc = r["scores"]
        print(f"| {r['file']} | {r['stream_realtime_factor']:.2f} | {r['flux_ratio']:.2f} | "
              f"{sc['ablation']['envelope_stats'] / sc['stream']['envelope_stats']:.2f} |")
    if blends:
        print("\n50/50 blend collage index (0 hybrid, 1 alternating pieces)\n")
        print("| pair | stream | ablation | plain sum |")
        print("|---|---:|---:|---:|")
        for b in blends:
            print(f"| {b['pair']} | {b['stream']:.2f} | {b['ablation']:.2f} | {b['sum']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "files": rows, "blends": blends}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
