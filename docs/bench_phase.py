"""Benchmark phase reconstruction on real sounds: offline FGLA-32 vs streaming RTISI-LA.

Usage: ``python docs/bench_phase.py [files...]`` (default: every wav in ``/work/shared/corpus``,
i.e. ``../shared/corpus`` next to the repository). Each file is loaded at 22050 Hz, cut to 10 s,
and its linear STFT magnitude (n_fft 1024, hop 256) is inverted twice: by
:func:`engine.synthesis.phase.fast_griffin_lim` (32 iterations, momentum 0.99) and by
:class:`engine.synthesis.phase.StreamingPhase` with the live engine's settings (``PHASE_LOOK_AHEAD_FRAMES`` and
``PHASE_ITERATIONS`` of :mod:`engine.synthesis.block_synth`) fed one frame at a time. Prints a markdown table of spectral convergence (dB, lower is better), the difference
(streaming minus FGLA; negative means streaming is better) and the streaming cost in ms per frame.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio  # noqa: E402
from engine.synthesis.block_synth import PHASE_LOOK_AHEAD_FRAMES, PHASE_ITERATIONS  # noqa: E402
from engine.errors import AudioFileError  # noqa: E402
from engine.synthesis.phase import StreamingPhase, fast_griffin_lim  # noqa: E402
from engine.analysis.spectral import spectral_convergence_db, stft  # noqa: E402

SAMPLE_RATE = 22050
MAX_SECONDS = 10.0


def bench_file(path: Path) -> tuple[float, float, float]:
    """SC of FGLA-32 (dB), SC of RTISI-LA (dB) and streaming ms per frame for one file."""
    y = load_audio(path, sample_rate=SAMPLE_RATE)[:int(MAX_SECONDS * SAMPLE_RATE)].astype(np.float64)
    mag = np.abs(stft(y))
    sc_fgla = spectral_convergence_db(fast_griffin_lim(mag, n_iter=32), mag)
    phase = StreamingPhase(look_ahead=PHASE_LOOK_AHEAD_FRAMES, iterations=PHASE_ITERATIONS)
    phase.prepare()
    start = time.perf_counter()
    chunks = [phase.process(mag[:, i:i + 1]) for i in range(mag.shape[1])]
    chunks.append(phase.flush())
    ms_per_frame = (time.perf_counter() - start) * 1e3 / mag.shape[1]
    phase.release()
    return sc_fgla, spectral_convergence_db(np.concatenate(chunks), mag), ms_per_frame


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT.parent / "shared" / "corpus").glob("*.wav"))
    if not paths:
        print("no wav files given and none found in ../shared/corpus", file=sys.stderr)
        return 1
    print("| file | FGLA-32 SC (dB) | RTISI-LA SC (dB) | difference (dB) | streaming ms/frame |")
    print("|---|---:|---:|---:|---:|")
    failed = 0
    for path in paths:
        try:
            fgla, rtisi, ms = bench_file(path)
        except AudioFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"| {path.name} | {fgla:.2f} | {rtisi:.2f} | {rtisi - fgla:+.2f} | {ms:.3f} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
