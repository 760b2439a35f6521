"""The window's drawing costs the same whatever the length of the history it shows (issue 21): every
curve is decimated to a bounded number of points that keep its extremes. Counted in points drawn,
never in time (tests run on a loaded 2-core machine)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.live.stream import HISTORY_SECONDS, Telemetry
from engine.synthesis.block_synth import BlockStats
from gui.decimate import min_max_envelope

BLOCK_SECONDS = 2 * 256 / 22050


@pytest.mark.parametrize("n", [1, 7, 256, 257, 2580, 155_000])
def test_the_envelope_is_bounded_ordered_and_keeps_every_extreme(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.cumsum(rng.random(n) + 0.01)
    y = rng.standard_normal(n)
    ex, ey = min_max_envelope(x, y, 256)
    assert len(ex) == len(ey) <= 256
    assert ey.max() == y.max() and ey.min() == y.min()
    assert np.all(np.diff(ex) >= 0)  # drawn left to right
    assert set(ey) <= set(y) and set(ex) <= set(x)  # points of the curve, none made up
    if n <= 256:
        assert np.array_equal(ey, y) and np.array_equal(ex, x)


def test_the_envelope_refuses_fewer_than_two_points() -> None:
    with pytest.raises(ValueError, match="max_points"):
        min_max_envelope(np.arange(10.0), np.arange(10.0), 1)


def _telemetry(blocks: int) -> Telemetry:
    """Telemetry of an engine that ran ``blocks`` blocks (history: the newest minute of them)."""
    rng = np.random.default_rng(blocks)
    kept = min(blocks, int(np.ceil(HISTORY_SECONDS / BLOCK_SECONDS)))
    last = BlockStats(blocks - 1, 1.0, 6.0, 1000 * BLOCK_SECONDS, 12, 12, 0, rng.random((513, 2)))
    return Telemetry(True, blocks, "CPUExecutionProvider", 22050, 48000, 0, 0, 1, last, rng.random(kept),
                     rng.random(kept), 0.5, 0.1, None)


def test_history_and_scope_draw_the_same_points_for_a_second_a_minute_and_an_hour(qtbot) -> None:
    from gui.meters import MAX_CURVE_POINTS, HistoryPlot, WaveformView
    history, scope = HistoryPlot(BLOCK_SECONDS), WaveformView()
    qtbot.addWidget(history)
    qtbot.addWidget(scope)
    drawn = {}
    for seconds in (1, 60, 3600):
        history.update_from(_telemetry(int(seconds / BLOCK_SECONDS)))
        scope.set_samples(np.random.default_rng(seconds).standard_normal(int(0.05 * 48000 * min(seconds, 4))))
        history.grab()
        scope.grab()
        drawn[seconds] = (history.points_drawn, scope.points_drawn)
    assert drawn[1][0] == 2 * len(_telemetry(int(1 / BLOCK_SECONDS)).loss_history)  # short curves as they are
    assert drawn[60] == drawn[3600]
    assert max(max(d) for d in drawn.values()) <= 2 * MAX_CURVE_POINTS


@pytest.mark.parametrize("empty", [np.zeros(0, np.float32), np.zeros((0, 2), np.float32)])
def test_the_scope_before_the_first_block_draws_nothing(qtbot, empty: np.ndarray) -> None:
    """Right after a start the scope holds no samples yet: the view clears, it does not raise
    (CI once showed 'display error: ValueError: cannot reshape array of size 0')."""
    from gui.meters import WaveformView
    scope = WaveformView()
    qtbot.addWidget(scope)
    scope.set_samples(np.ones((480, 2)))
    assert scope.points_drawn > 0
    scope.set_samples(empty)
    scope.grab()
    assert scope.points_drawn == 0


def test_a_block_without_an_optimiser_step_shows_no_loss_rather_than_nan(qtbot) -> None:
    from gui.meters import StatsPanel
    panel = StatsPanel()
    qtbot.addWidget(panel)
    panel.update_from(_telemetry(10))
    assert panel.values["loss"].text() == "1"
    idle = _telemetry(11)
    panel.update_from(dataclasses.replace(idle, steps=0, last=dataclasses.replace(idle.last, loss=float("nan"), steps=0)))
    assert panel.values["loss"].text() == "–"


def test_a_window_with_an_hour_of_history_draws_bounded_curves(qtbot, qapp) -> None:
    """The whole window, fed by a real engine whose history is filled to an hour, draws no more
    points than with a few seconds of it."""
    from engine.live.sinks import NullSink
    from gui.app import build_instrument
    from gui.main_window import MainWindow
    from gui.meters import MAX_CURVE_POINTS
    inst, _ = build_instrument(None, sink=NullSink(48000, realtime=True))
    window = MainWindow(inst, None)
    qtbot.addWidget(window)
    window.show()
    inst.start()
    try:
        qtbot.waitUntil(lambda: inst.telemetry().blocks > 20, timeout=20000)
        engine = inst.engine
        engine._history[:] = np.random.default_rng(0).random(engine._history.shape)
        engine._history_count = int(3600 / BLOCK_SECONDS)  # as after an hour of playing
        ticks = window._ticks
        qtbot.waitUntil(lambda: window._ticks >= ticks + 8, timeout=10000)
        assert len(inst.telemetry().load_history) == len(engine._history)
        assert 0 < window.history.points_drawn <= 2 * MAX_CURVE_POINTS
        assert 0 < window.waveform.points_drawn <= MAX_CURVE_POINTS
    finally:
        window.close()
    assert not inst.running


def test_the_window_polls_less_often_when_its_thread_is_busy(qtbot, qapp) -> None:
    """The window keeps its own thread under GUI_CPU_SHARE of a core: after an update that cost it
    40 ms of CPU it waits at least 40 / share - 40 ms before the next one (and never longer than
    MAX_POLL_MS); an idle update waits the normal POLL_MS."""
    import time

    from engine.live.sinks import NullSink
    from gui.app import build_instrument
    from gui.main_window import GUI_CPU_SHARE, MAX_POLL_MS, POLL_MS, MainWindow
    inst, _ = build_instrument(None, sink=NullSink(48000, realtime=True))
    window = MainWindow(inst, None)
    qtbot.addWidget(window)
    try:
        window._next_poll_ms()
        assert window._next_poll_ms() == POLL_MS  # nothing spent since
        start = time.thread_time()
        while time.thread_time() - start < 0.04:  # 40 ms of this thread's CPU, as a heavy paint would
            pass
        assert window._next_poll_ms() >= min(MAX_POLL_MS, int(40 / GUI_CPU_SHARE - 40) - 1)
        assert window.performance_fields()["gui_poll_ms"] == window.poll_ms <= MAX_POLL_MS
    finally:
        window.close()
