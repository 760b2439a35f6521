"""``main.py evaluate`` through the real CLI on real files: scaled distances with ``--style``, the
reference's own rate and channels, a missing aisfx in one line, bad input in one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import main
from engine.evaluation.embedding import unavailable_reason
from tests.signals import bursts_and_drone

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


def _stereo(seed: int, seconds: float = 5.0) -> np.ndarray:
    """The bursts texture in the middle plus a little independent noise on each side, ``(n, 2)``."""
    mid = bursts_and_drone(seconds, seed=seed, sample_rate=SR)
    side = 0.02 * np.random.default_rng(seed).standard_normal((len(mid), 2))
    return (mid[:, None] + side).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluate")
    sounds = {"style": _stereo(1), "reference": _stereo(2), "same": _stereo(3),
              "mono_same": bursts_and_drone(5.0, seed=4, sample_rate=22050),
              "white": (0.1 * np.random.default_rng(5).standard_normal((5 * SR, 2))).astype(np.float32)}
    paths = {}
    for name, y in sounds.items():
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], y, 22050 if name == "mono_same" else SR)
    return paths


def _row(out: str, name: str) -> list[str]:
    """The cells of the table row of ``name`` (the first line that starts with it)."""
    line = next(ln for ln in out.splitlines() if ln.startswith(name))
    return line[len(name):].split()


def test_evaluate_with_a_style_prints_scaled_distances_beside_the_raw(files, tmp_path, capsys):
    report = tmp_path / "e.json"
    status = main.main(["evaluate", "--style", str(files["style"]), str(files["reference"]), str(files["same"]),
                        str(files["mono_same"]), str(files["white"]), "--json", str(report)])
    out = capsys.readouterr().out
    assert status == 0
    assert "reference.wav: 5.0 s, 44100 Hz, 2 channels" in out  # the reference's own rate and channels
    assert "scaled: 0 = the style style.wav, 1 = spectral noise of it" in out
    aisfx = unavailable_reason() is None
    scaled_columns = [0, 1, 3] if aisfx else [1, 3]  # embedding, Gram, envelope statistics
    style, noise = _row(out, "(the style)"), _row(out, "(spectral noise of the style)")
    assert all(style[i].startswith("0.00/") for i in scaled_columns), style
    assert all(noise[i].startswith("1.00/") for i in scaled_columns), noise
    rows = {Path(r["file"]).stem: r for r in json.loads(report.read_text())["candidates"]}
    assert rows["same"]["envelope_stats_scaled"] < 0.5 < rows["white"]["envelope_stats_scaled"]
    assert rows["same"]["coherence"] < 0.5 and rows["mono_same"]["coherence"] == 1.0
    assert rows["mono_same"]["top_octave_db"] < -30  # a 22.05 kHz file has no top octave
    if aisfx:
        assert rows["same"]["embedding_mmd_scaled"] < 0.5 < rows["white"]["embedding_mmd_scaled"], rows
        assert _row(out, "same.wav")[0].split("/")[0] == f"{rows['same']['embedding_mmd_scaled']:.2f}"
    assert "copied" in rows["same"] and "distance_ratio" in rows["same"]


def test_evaluate_without_aisfx_says_so_in_one_line_and_runs_the_other_metrics(files):
    code = ("import sys; sys.modules['aisfx'] = None; import main; "  # aisfx cannot be found
            f"sys.exit(main.main(['evaluate', {str(files['reference'])!r}, {str(files['same'])!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [ln for ln in done.stderr.splitlines() if ln.strip()] == [
        "aisfx is not installed (pip install --no-deps aisfx; .ci/setup does it): no embedding distance"]
    row = _row(done.stdout, "same.wav")
    assert row[0] == "n/a" and float(row[3]) < 0.5  # no embedding; envelope statistics still measured


@pytest.mark.parametrize("problem, word", [("short", "too short"), ("text", "not a readable sound file")])
def test_evaluate_with_a_bad_candidate_is_one_line(files, tmp_path, capsys, problem, word):
    bad = tmp_path / "bad.wav"
    if problem == "short":
        sf.write(bad, np.full((SR, 2), 0.1, np.float32), SR)
    else:
        bad.write_text("not audio")
    status = main.main(["evaluate", str(files["reference"]), str(bad)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert status != 0 and len(err) == 1 and err[0].startswith("error: ") and word in err[0], err
