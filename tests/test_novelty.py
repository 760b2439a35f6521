"""Novelty measures: the copied share sees replay and not synthesis, the distance ratio is 1 for fresh
material of the source, and the collage index tells alternating pieces from a hybrid; ``evaluate --style``."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.evaluation.baselines import spectral_noise
from engine.errors import ParameterError
from engine.evaluation.novelty import COPY_RUN_FRAMES, collage_index, copied_mask, copied_share, distance_ratio
from tests.signals import SR, crackle

ROOT = Path(__file__).resolve().parents[1]


def test_copied_mask_counts_runs_of_nine_advancing_frames_only():
    nearest = np.array([5, 6, 7, 8, 9, 10, 11, 12, 13,   # 9 advancing: copied
                        40, 41, 42, 43, 44, 45, 46, 47,  # 8 advancing: not
                        3, 3, 3, 3, 3, 3, 3, 3, 3, 3])   # a held frame does not advance
    mask = copied_mask(nearest, run=COPY_RUN_FRAMES)
    assert mask[:9].all() and not mask[9:].any()


def _shuffled_pieces(y: np.ndarray, seconds: float, piece: float, rng: np.random.Generator) -> np.ndarray:
    n = int(piece * SR)
    pieces = [y[i:i + n] for i in range(0, len(y) - n + 1, n)]
    return np.concatenate([pieces[i] for i in rng.integers(0, len(pieces), int(seconds / piece))])


def test_replay_is_copied_and_statistics_are_not():
    style, fresh = crackle(6.0), crackle(6.0, seed=1)
    rng = np.random.default_rng(0)
    replay = _shuffled_pieces(style, 10.0, 1.0, rng)
    noise = spectral_noise(style, seconds=10.0, sample_rate=SR, rng=rng)
    assert copied_share(style, replay, sample_rate=SR) > 0.8
    assert copied_share(style, fresh, sample_rate=SR) < 0.02
    assert copied_share(style, noise, sample_rate=SR) < 0.02
    assert distance_ratio(style, replay, fresh, sample_rate=SR) < 0.5  # memorised (pieces off the hop grid: not 0)
    assert distance_ratio(style, crackle(6.0, seed=2), fresh, sample_rate=SR) == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ParameterError, match="reference is the style"):
        distance_ratio(style, replay, style, sample_rate=SR)


def test_collage_index_tells_alternation_from_a_hybrid():
    a, b = crackle(6.0), 0.3 * np.sin(2 * np.pi * 880.0 * np.arange(6 * SR) / SR).astype(np.float32)
    half = SR // 2
    alternation = np.concatenate([(a if i % 2 == 0 else b)[i * half:(i + 1) * half] for i in range(12)])
    hybrid = (0.5 * a + 0.5 * b).astype(np.float32)
    assert collage_index(alternation, a, b, 0.5, sample_rate=SR) > 0.6
    assert collage_index(hybrid, a, b, 0.5, sample_rate=SR) < 0.4
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(ParameterError):
            collage_index(hybrid, a, b, bad, sample_rate=SR)
    with pytest.raises(ParameterError, match="same mean spectrum"):
        collage_index(hybrid, a, a, 0.5, sample_rate=SR)


def test_cli_evaluate_with_style_reports_novelty(tmp_path):
    style, fresh = crackle(6.0), crackle(6.0, seed=1)
    replay = _shuffled_pieces(style, 6.0, 1.0, np.random.default_rng(1))
    for name, y in (("style.wav", style), ("fresh.wav", fresh), ("replay.wav", replay)):
        sf.write(tmp_path / name, y, SR)
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "evaluate", str(tmp_path / "fresh.wav"),
                          str(tmp_path / "replay.wav"), "--style", str(tmp_path / "style.wav")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    line = next(s for s in out.stdout.splitlines() if s.startswith("replay.wav  copied"))
    assert float(line.split()[2]) > 0.8
