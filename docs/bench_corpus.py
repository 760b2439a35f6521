"""Texture fidelity, novelty and ablation on the whole corpus, against PaulStretch and spectral noise.

Each corpus recording (default: every wav in ../shared/corpus, 22.05 kHz, and every flac in
../shared/corpus/fullband, 44.1 kHz, mostly stereo) is cut in two: the **first half is the style** the
engine is given, the **second half is the unseen reference** every output is scored against (a texture
should sound like more of the same source, not like the part it was shown). For each recording
``--seconds`` of output are made by

* ``stream``  — the live block engine at default settings (``main.py render``, a subprocess, as a
  user runs it), at ``--render-rate`` (default: the recording's own rate, which gives the full band
  today through ``--sample-rate``; ``engine`` leaves the rate to the engine's default),
* ``bypass``  — the same render with the optimiser bypassed (``--iterations 0``): the noise
  initialisation alone; the difference to ``stream`` is the network's work,
* ``paul``    — PaulStretch (0.25 s windows) of the style half (stereo: one set of random phases),
* ``noise``   — spectral noise of the style half (its mean magnitude spectrum, random phases),
* ``offline`` — with ``--offline``: whole-file L-BFGS synthesis (``render --offline``),

and scored with ``evaluate``'s metrics (:func:`engine.evaluation.metrics.evaluate`) against the
reference at the recording's rate and channels, with the style half itself as a further candidate:
the learned-embedding distance (aisfx) and envelope statistics **scaled** so that 0 is the style half
and 1 the spectral noise, the median frame flatness, the top-octave level error (44.1 kHz recordings),
the L/R coherence (its mean over third-octave bands; renders are mono today, so 1.00), and novelty
against the style: the copied share (frames in verbatim >= 100 ms runs of the style). With ``--seeds
N`` each figure is the median of N seeds. Then, unless ``--no-blends``, for pairs of 22.05 kHz sounds
the 50/50 blend's collage index (0 = one hybrid texture, 1 = alternating pieces). Prints markdown
tables; ``--json`` keeps every number.

With ``--figures DIR`` it also draws, per sound, spectrograms of the style, its unseen continuation,
the stream, its bypass and PaulStretch (``DIR/synthesis_<sound>.png``, seed 0, shown at 22.05 kHz).

With ``--skip S`` the stream and its bypass play ``S`` seconds more and those first seconds are dropped
before scoring: the figures of a texture that has been playing, not of its start (the learned ear prefers the
first seconds, ``docs/EXPERIMENTS.md`` sections 46-47).

Usage: ``python docs/bench_corpus.py [FILES...] [--seconds 20] [--skip 0] [--seeds 1] [--render-rate recording|engine|HZ]
[--offline] [--no-blends] [--figures DIR] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio, save_audio  # noqa: E402
from engine.analysis.spectral import log_magnitude, stft  # noqa: E402
from engine.evaluation.audio import mono_mix  # noqa: E402
from engine.evaluation.baselines import paulstretch, spectral_noise  # noqa: E402
from engine.evaluation.embedding import unavailable_reason  # noqa: E402
from engine.evaluation.metrics import describe, evaluate, scale_rows  # noqa: E402
from engine.evaluation.novelty import collage_index, copied_share  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
#: Pairs blended 50/50 for the collage index: two noisy textures, two tonal sounds, speech with rain.
BLEND_PAIRS = (("rain_ardentryst.wav", "seashore_gm.wav"), ("violin_g4.wav", "celesta_a5.wav"),
               ("speech_en.wav", "rain_ardentryst.wav"))


def boundary_flux_ratio(audio: np.ndarray, *, block_frames: int, hop: int) -> float:
    """Mean log-spectral flux across block seams over the mean inside blocks (first 4 blocks skipped)."""
    s = log_magnitude(stft(mono_mix(audio, role="render"), n_fft=4 * hop, hop=hop))
    flux = np.sum(np.diff(s, axis=1) ** 2, axis=0)
    j = np.arange(len(flux))
    keep = (j > 4 * block_frames) & (j < len(flux) - 4)
    seam = (j + 1) % block_frames == 0
    return float(flux[keep & seam].mean() / flux[keep & ~seam].mean())


def render(styles: list[Path], out: Path, args: argparse.Namespace, seed: int, rate: int, *,
           extra: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """``main.py render`` of ``styles`` (equal blend) into ``out``; the audio read back at ``rate`` Hz
    with its own channels, its first ``args.skip`` seconds dropped (a streaming render plays them more), and the
    render's ``--stats``."""
    stats = out.with_suffix(".json")
    skip = 0.0 if "--offline" in extra else args.skip
    cmd = [sys.executable, str(ROOT / "main.py"), "render", *(a for s in styles for a in ("--style", str(s))),
           "--seconds", f"{args.seconds + skip:g}", "--seed", str(seed), "--out", str(out), "--stats", str(stats),
           *extra]
    if args.render_rate != "engine":
        cmd += ["--sample-rate", str(rate if args.render_rate == "recording" else int(args.render_rate))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"render failed ({' '.join(cmd[2:])}): {done.stderr.strip().splitlines()[-1:]}")
    return load_audio(out, sample_rate=rate, channels=None)[int(round(skip * rate)):], json.loads(stats.read_text())


def _median(rows: list[dict]) -> dict:
    return {k: (None if any(r[k] is None for r in rows) else float(np.median([r[k] for r in rows])))
            for k in rows[0]}


def score_file(path: Path, args: argparse.Namespace, work: Path) -> dict:
    """Every figure of one recording (medians over the seeds)."""
    rate = sf.info(str(path)).samplerate
    y = load_audio(path, sample_rate=rate, channels=None)
    style, reference = y[:len(y) // 2], y[len(y) // 2:]
    style_path = save_audio(work / f"{path.stem}.style.wav", style, sample_rate=rate)
    channels = 1 if y.ndim == 1 else y.shape[1]
    row: dict = {"file": path.name, "rate": rate, "channels": channels, "reference": describe(reference, sample_rate=rate)}
    runs: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        made, stats = render([style_path], work / f"{path.stem}.stream.wav", args, seed, rate)
        bypass = render([style_path], work / f"{path.stem}.bypass.wav", args, seed, rate, extra=("--iterations", "0"))[0]
        cands = {"stream": made, "bypass": bypass,
                 "paul": paulstretch(style, seconds=args.seconds, sample_rate=rate, rng=rng),
                 "noise": spectral_noise(style, seconds=args.seconds, sample_rate=rate, rng=rng)}
        if args.offline and seed == 0:
            cands["offline"] = render([style_path], work / f"{path.stem}.offline.wav", args, seed, rate,
                                      extra=("--offline",))[0]
        if seed == 0:
            row.update(stream_realtime_factor=stats["realtime_factor"], render_rate=stats["sample_rate"],
                       flux_ratio=boundary_flux_ratio(made, block_frames=stats["block_frames"], hop=stats["hop"]))
            if args.figures:
                from experiments import save_figure
                panels = [("style (first half of the recording)", style), ("unseen continuation (second half)", reference),
                          ("stream (default settings)", made), ("bypass (--iterations 0)", bypass),
                          ("PaulStretch of the style", cands["paul"]), ("spectral noise", cands["noise"])]
                save_figure(args.figures / f"synthesis_{path.stem}.png",
                            [(title, mono_mix(a, role=title)) for title, a in panels],
                            seconds=min(len(style), len(reference)) / rate, sample_rate=rate)
        *rows, floor = evaluate(reference, [*cands.values(), style], sample_rate=rate)
        rows = scale_rows(rows, floor=floor, ceiling=rows[list(cands).index("noise")])
        for name, scores in zip(cands, rows):
            scores["copied"] = copied_share(style, cands[name], sample_rate=rate)
            runs.setdefault(name, []).append(scores)
        runs.setdefault("style", []).append(floor)
    row["scores"] = {name: _median(r) for name, r in runs.items()}
    return row


def channel_collage(audio: np.ndarray, ya: np.ndarray, yb: np.ndarray, rate: int) -> float:
    """Mean over the channels of ``audio`` ``(n,)`` or ``(n, channels)`` of each one's collage index
    against the styles ``ya`` and ``yb`` (weight 0.5)."""
    channels = audio.reshape(len(audio), -1)
    return float(np.mean([collage_index(channels[:, c], ya, yb, 0.5, sample_rate=rate)
                          for c in range(channels.shape[1])]))


def score_blend(a: Path, b: Path, args: argparse.Namespace, work: Path) -> dict:
    """Collage index of the 50/50 blend of two recordings' first halves: stream, bypass, plain sum.

    A stereo render is judged channel by channel (what each ear hears), and the channels' indices averaged.
    Not on the mean of its channels: a mono style's two channels are decorrelated by delayed copies, and
    their sum comb-filters each frame, which moved the index either way (speech + rain 0.56 on the sum
    against 0.31 per channel, violin + celesta 0.19 against 0.48; docs/EXPERIMENTS.md section 18)."""
    rate = sf.info(str(a)).samplerate
    ya, yb = (load_audio(p, sample_rate=rate) for p in (a, b))
    ya, yb = ya[:len(ya) // 2], yb[:len(yb) // 2]
    paths = [save_audio(work / f"{p.stem}.blendstyle.wav", y, sample_rate=rate) for p, y in ((a, ya), (b, yb))]
    n = min(len(ya), len(yb))
    out = {"pair": f"{a.stem} + {b.stem}", "sum": collage_index(0.5 * (ya[:n] + yb[:n]), ya, yb, 0.5, sample_rate=rate)}
    for name, extra in (("stream", ()), ("bypass", ("--iterations", "0"))):
        out[name] = float(np.median([
            channel_collage(render(paths, work / "blend.wav", args, seed, rate, extra=extra)[0], ya, yb, rate)
            for seed in range(args.seeds)]))
    return out


def _fmt(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


#: The tables printed: (title, key, methods, format, with the recording's own value).
TABLES = (
    ("learned-embedding distance, scaled (0 = the style half, 1 = its spectral noise); raw: style / noise",
     "embedding_mmd_scaled", ("stream", "bypass", "paul"), ".2f", None),
    ("envelope statistics (whole band), scaled (0 = the style half, 1 = its spectral noise)",
     "envelope_stats_scaled", ("stream", "bypass", "paul"), ".2f", None),
    ("envelope statistics (whole band), raw distance to the unseen half", "envelope_stats",
     ("stream", "bypass", "paul", "noise", "style"), ".3f", None),
    ("median frame flatness, dB (n_fft 4096, 100 Hz - 5 kHz)", "flatness_db",
     ("stream", "bypass", "paul", "noise", "style"), ".1f", "flatness_db"),
    ("top-octave level error, dB (third octaves at 12.7 and 16 kHz, candidate - unseen half)", "top_octave_db",
     ("stream", "bypass", "paul", "noise", "style"), "+.1f", None),
    ("mean L/R coherence over third-octave bands 100 Hz - 16 kHz", "coherence",
     ("stream", "bypass", "paul", "noise", "style"), ".2f", "coherence"),
    ("L/R coherence error (mean per band |candidate - unseen half|)", "coherence_error",
     ("stream", "bypass", "paul", "noise", "style"), ".2f", None),
    ("level, dB (each channel's mean power, candidate - unseen half)", "level_db",
     ("stream", "bypass", "paul", "noise", "style"), "+.1f", None),
    ("level of the mono mix, dB (what the learned embedding reads; candidate - unseen half)", "mono_level_db",
     ("stream", "bypass", "paul", "noise", "style"), "+.1f", None),
    ("copied share (frames in verbatim >= 100 ms runs of the style)", "copied", ("stream", "bypass", "paul"), ".3f", None),
)


def print_tables(rows: list[dict]) -> None:
    for title, key, methods, fmt, own in TABLES:
        methods = [m for m in methods if all(m in r["scores"] for r in rows)]
        extra = ["recording"] if own else []
        raw = key == "embedding_mmd_scaled"
        print(f"\n{title}\n")
        print("| file | " + " | ".join([*extra, *methods, *(["raw style / noise"] if raw else [])]) + " |")
        print("|---|" + "---:|" * (len(extra) + len(methods) + raw))
        for r in rows:
            sc = r["scores"]
            cells = [_fmt(r["reference"][own], fmt)] if own else []
            cells += [_fmt(sc[m][key], fmt) for m in methods]
            if raw:
                cells.append(f"{_fmt(sc['style']['embedding_mmd'], '.3f')} / {_fmt(sc['noise']['embedding_mmd'], '.3f')}")
            print(f"| {r['file']} | " + " | ".join(cells) + " |")
        values = {m: [r["scores"][m][key] for r in rows if r["scores"][m][key] is not None] for m in methods}
        if key.endswith("_scaled") and all(values.values()):
            cells = [f"**{np.median(values[m]):.2f}**" for m in methods] + ([""] if raw else [])
            print("| **median** | " + " | ".join(cells) + " |")
    print("\n| file | render rate | stream real-time factor | boundary flux ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['file']} | {r['render_rate']} | {r['stream_realtime_factor']:.2f} | {r['flux_ratio']:.2f} |")


def default_files() -> list[Path]:
    """The corpus' recordings, or a clear exit when ../shared/corpus is not there."""
    if not CORPUS.is_dir():
        raise SystemExit(f"no corpus at {CORPUS}: give the recordings as FILES (any format libsndfile reads)")
    return sorted(CORPUS.glob("*.wav")) + sorted((CORPUS / "fullband").glob("*.flac"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--skip", type=float, default=0.0,
                    help="seconds of the stream and its bypass played first and not scored (default 0: the start)")
    ap.add_argument("--seeds", type=int, default=1, help="stream/baseline repeats; figures are medians")
    ap.add_argument("--render-rate", default="recording",
                    help="'recording' (its own rate: the full band), 'engine' (the engine's default) or Hz")
    ap.add_argument("--offline", action="store_true", help="also run the (slow) offline L-BFGS synthesis")
    ap.add_argument("--no-blends", action="store_true", help="skip the blend collage figures")
    ap.add_argument("--figures", type=Path, help="folder for the spectrogram pictures")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not 0.0 <= args.skip <= 3600.0:
        raise SystemExit(f"--skip must be 0..3600 seconds. Found: {args.skip:g}")
    if args.render_rate not in ("recording", "engine") and not args.render_rate.isdigit():
        raise SystemExit(f"--render-rate must be 'recording', 'engine' or a rate in Hz. Found: {args.render_rate}")
    files = args.files or default_files()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"no such recording: {', '.join(missing)}")
    if unavailable_reason():
        print(unavailable_reason(), file=sys.stderr)
    cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
    rows, blends = [], []

    def keep() -> None:  # after every recording, so a long run that is stopped keeps what it measured
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu, "args": {k: str(v) for k, v in vars(args).items()},
                                             "files": rows, "blends": blends}, indent=2))
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        for path in files:
            rows.append(score_file(path, args, Path(tmp)))
            keep()
            print(f"done {path.name}", file=sys.stderr, flush=True)
        if not args.no_blends:
            blends = [score_blend(CORPUS / a, CORPUS / b, args, Path(tmp)) for a, b in BLEND_PAIRS
                      if (CORPUS / a).exists() and (CORPUS / b).exists()]
    played = f" after {args.skip:g} s played" if args.skip else ""
    print(f"\n{args.seconds:g} s of output{played} from the first half of each recording, scored against the unseen second "
          f"half at the recording's rate and channels; render rate: {args.render_rate}; medians of {args.seeds} "
          f"seed(s); {cpu}")
    if rows:
        print_tables(rows)
    if blends:
        print("\n50/50 blend collage index (0 hybrid, 1 alternating pieces)\n")
        print("| pair | stream | bypass | plain sum |")
        print("|---|---:|---:|---:|")
        for b in blends:
            print(f"| {b['pair']} | {b['stream']:.2f} | {b['bypass']:.2f} | {b['sum']:.2f} |")
    keep()
    return 0


if __name__ == "__main__":
    sys.exit(main())
