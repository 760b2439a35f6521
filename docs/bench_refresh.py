"""Benchmark the history refresh: how much the played level moves after each envelope refresh, and swells after each
trend refresh.

Usage: ``python docs/bench_refresh.py [--seconds 40] [--seeds 0,1] [--style FILE] [--json OUT]``.

Every :data:`engine.synthesis.history_refresh.ENVELOPE_REFRESH_SECONDS` of play the step's envelope statistics forget
the engine's own output (``docs/EXPERIMENTS.md`` sections 48 and 51); the step then moves the frames next to be
played more than elsewhere, which a listener hears on a steady sound as a flutter every few seconds. This plays the
live engine (:class:`engine.synthesis.block_synth.BlockSynth`, real ONNX Runtime step, 22.05 kHz, the engine's own
refresh periods, no adaptive quality) for ``--seconds`` per seed on steady band-passed noise (300 Hz - 5 kHz; or on
the first half of ``--style``, mono), cuts the output into 50-ms windows and prints, per seed, the mean absolute
level step between windows (dB) in three parts of each refresh period: the 0.6 s after the refresh (the burst), 3-4 s
after it (the echo, when the frames made in the burst leave the statistics' 3-s window) and the rest. A steady sound
with no flutter has the three equal; the noise itself moves about 0.4 dB a window.

It also prints the swell after each *trend* refresh (every
:data:`engine.synthesis.history_refresh.TREND_REFRESH_SECONDS` or so, at random): the mean 0.25-s level over the 4 s
after each trend refresh but the first, against the median 0.25-s level of the whole play (dB), at its peak and when.
What chance gives, measured as the same 120-s renders against another seed's schedule: 3-8 dB on the celesta, whose
notes stand far over its median, 2-4 dB on speech, 1-2 dB on seashore (``docs/EXPERIMENTS.md`` section 65). 120 s or
more of play give it a dozen refreshes to average.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio  # noqa: E402
from engine.errors import AudioFileError  # noqa: E402
from engine.params import ParamStore  # noqa: E402
from engine.synthesis import history_refresh  # noqa: E402
from engine.synthesis.block_synth import BlockSynth  # noqa: E402
from engine.synthesis.runtime import BlockStepper  # noqa: E402
from engine.synthesis.step_graph import live_config  # noqa: E402
from engine.synthesis.styles import StyleLibrary  # noqa: E402

SAMPLE_RATE = 22050
WINDOW_SECONDS = 0.05
#: Parts of a refresh period, seconds after the refresh: the burst, the echo.
BURST, ECHO = (0.0, 0.6), (3.0, 4.0)
#: The trend refresh's swell: level windows, and how long after each trend refresh they are averaged (seconds; no
#: interval between two trend refreshes is shorter).
SWELL_WINDOW_SECONDS, SWELL_SECONDS = 0.25, 4.0


def steady_noise(seed: int, seconds: float = 6.0) -> np.ndarray:
    """Band-passed white noise (300 Hz - 5 kHz, 4th-order Butterworth), peak 0.3, float32."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(4, [300 / (SAMPLE_RATE / 2), 5000 / (SAMPLE_RATE / 2)], "band", output="sos")
    y = signal.sosfilt(sos, rng.standard_normal(int(seconds * SAMPLE_RATE)))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def levels(audio: np.ndarray, seconds: float) -> np.ndarray:
    """Mean power (dB) of consecutive ``seconds``-long windows of ``audio`` (a trailing partial one dropped)."""
    window = int(seconds * SAMPLE_RATE)
    frames = audio[: len(audio) // window * window].reshape(-1, window)
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def level_steps(audio: np.ndarray) -> np.ndarray:
    """Absolute level steps (dB) between consecutive 50-ms windows of ``audio``, ``(windows - 1,)``."""
    return np.abs(np.diff(levels(audio, WINDOW_SECONDS)))


def trend_refresh_blocks(seed: int, block_seconds: float, blocks: int) -> np.ndarray:
    """Indices of the played blocks (0-based) after which the trend's statistics are refreshed, for variation
    ``seed``: :class:`engine.synthesis.history_refresh.HistoryRefresh`'s own schedule, counted as the engine counts."""
    schedule = history_refresh.HistoryRefresh(block_seconds, np.zeros((1, 1), np.float32))
    schedule.start(seed, np.zeros((1, 1), np.float32))
    return np.array([i for i in range(blocks) if schedule.due()[1]], dtype=int)


def trend_swell(audio: np.ndarray, refreshes: np.ndarray, block_samples: float) -> tuple[float, float]:
    """The swell after a trend refresh: the peak (dB) of the mean 0.25-s level over the :data:`SWELL_SECONDS` after
    each refresh in ``refreshes`` (block indices) but the first, against the median level, and when it comes (s).
    NaN, NaN when no refresh has that much play after it."""
    level = levels(audio, SWELL_WINDOW_SECONDS)
    n = round(SWELL_SECONDS / SWELL_WINDOW_SECONDS)
    starts = [round((k + 1) * block_samples / (SWELL_WINDOW_SECONDS * SAMPLE_RATE)) for k in refreshes[1:]]
    after = [level[i:i + n] for i in starts if i + n <= len(level)]
    if not after:
        return float("nan"), float("nan")
    mean = np.mean(after, axis=0) - np.median(level)
    return float(mean.max()), float(mean.argmax() * SWELL_WINDOW_SECONDS)


def flutter(style: np.ndarray, seed: int, seconds: float) -> dict[str, float]:
    """Mean level step (dB) in the burst, the echo and the rest of each envelope refresh period, and the trend
    refresh's swell (dB, and seconds after the refresh), one seed."""
    config = live_config()
    library = StyleLibrary(config)
    library.add_audio(style, "style")
    synth = BlockSynth(library, BlockStepper(config), adaptive=False)
    synth.prepare(seed)
    params = ParamStore()
    params.set("variation", seed)
    synth.warm_up(params.snapshot())
    blocks = int(seconds / synth.block_seconds)
    audio = np.concatenate([synth.process_block(params.snapshot()).mean(axis=1) for _ in range(blocks)])
    synth.release()
    steps = level_steps(audio)
    period = round(history_refresh.ENVELOPE_REFRESH_SECONDS / synth.block_seconds)  # blocks
    block_samples = len(audio) / blocks
    start = np.arange(len(steps)) * WINDOW_SECONDS * SAMPLE_RATE  # each step's window start, samples
    since = ((start - (period - 1) * block_samples) % (period * block_samples)) / SAMPLE_RATE  # s after a refresh
    burst = (since >= BURST[0]) & (since < BURST[1])
    echo = (since >= ECHO[0]) & (since < ECHO[1])
    swell, when = trend_swell(audio, trend_refresh_blocks(seed, synth.block_seconds, blocks), block_samples)
    return {"burst_db": float(steps[burst].mean()), "echo_db": float(steps[echo].mean()),
            "rest_db": float(steps[~burst & ~echo].mean()), "trend_swell_db": swell, "trend_swell_s": when}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds of play per seed (default 40)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--style", type=Path, help="a sound file whose first half is the style (default: steady noise)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers. Found: {args.seeds}", file=sys.stderr)
        return 2
    if not args.seconds >= 2 * history_refresh.ENVELOPE_REFRESH_SECONDS:
        print(f"error: --seconds must cover two refresh periods ({2 * history_refresh.ENVELOPE_REFRESH_SECONDS:g} s)."
              f" Found: {args.seconds}", file=sys.stderr)
        return 2
    style = None
    if args.style is not None:
        try:
            y = load_audio(args.style, sample_rate=SAMPLE_RATE)
        except AudioFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        style = y[: len(y) // 2].astype(np.float32)
    rows = []
    print(f"envelope refresh every {history_refresh.ENVELOPE_REFRESH_SECONDS:g} s: mean 50-ms level step, dB; "
          f"trend refresh every {history_refresh.TREND_REFRESH_SECONDS:g} s or so: the swell after it, dB over the "
          "median level (when)")
    print("| seed | 0-0.6 s after (burst) | 3-4 s after (echo) | the rest | trend refresh's swell |\n|---|---|---|---|---|")
    for seed in seeds:
        row = {"seed": seed, **flutter(steady_noise(seed) if style is None else style, seed, args.seconds)}
        rows.append(row)
        print(f"| {seed} | {row['burst_db']:.2f} | {row['echo_db']:.2f} | {row['rest_db']:.2f} | "
              f"{row['trend_swell_db']:+.1f} ({row['trend_swell_s']:.2f} s) |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"style": str(args.style or "steady noise"), "seconds": args.seconds,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
