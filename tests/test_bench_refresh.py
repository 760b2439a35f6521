"""docs/bench_refresh.py's trend swell: the level after each trend refresh, against the median level."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from engine.synthesis import history_refresh

BENCH = runpy.run_path(str(Path(__file__).resolve().parents[1] / "docs" / "bench_refresh.py"), run_name="bench")
SR = BENCH["SAMPLE_RATE"]
BLOCK = 512  # samples a block


def _swelling(refreshes: np.ndarray, blocks: int, rise_db: float, at_seconds: float) -> np.ndarray:
    """Steady noise ``blocks`` blocks long, ``rise_db`` louder for 0.5 s from ``at_seconds`` after the end of each
    block in ``refreshes``."""
    y = np.random.default_rng(0).standard_normal(blocks * BLOCK) * 0.01
    for k in refreshes:
        start = int((k + 1) * BLOCK + at_seconds * SR)
        y[start:start + SR // 2] *= 10 ** (rise_db / 20)
    return y


def test_the_schedule_is_the_engines_own():
    block_seconds = BLOCK / SR
    blocks = BENCH["trend_refresh_blocks"](3, block_seconds, 3000)
    schedule = history_refresh.HistoryRefresh(block_seconds, np.ones((1, 1), np.float32))
    schedule.start(3, np.zeros((1, 1), np.float32))
    assert blocks.tolist() == [i for i in range(3000) if schedule.due()[1]]
    gaps = np.diff(blocks) * block_seconds
    assert len(blocks) > 3 and gaps.min() >= 3.9 and gaps.max() <= 12.1  # 8 s ± 50 %, random


@pytest.mark.parametrize("rise_db, at_seconds", [(12.0, 2.0), (6.0, 0.5)])
def test_a_swell_after_each_refresh_is_found_with_its_size_and_time(rise_db, at_seconds):
    refreshes = np.array([100, 600, 1100, 1500, 2100])
    swell, when = BENCH["trend_swell"](_swelling(refreshes, 2600, rise_db, at_seconds), refreshes, BLOCK)
    assert swell == pytest.approx(rise_db, abs=0.5) and when == pytest.approx(at_seconds, abs=0.25)


def test_a_level_the_refresh_does_not_move_has_no_swell():
    refreshes = np.array([100, 600, 1100, 1500, 2100])
    swell, _ = BENCH["trend_swell"](_swelling(refreshes, 2600, 0.0, 0.0), refreshes, BLOCK)
    assert abs(swell) < 0.5


def test_a_refresh_with_too_little_play_after_it_is_left_out():
    swell, when = BENCH["trend_swell"](_swelling(np.array([10, 100]), 150, 12.0, 0.5), np.array([10, 100]), BLOCK)
    assert np.isnan(swell) and np.isnan(when)
