"""docs/bench_corpus.py without the shared corpus: one clear line, not a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, corpus: Path) -> subprocess.CompletedProcess:
    """The script with its corpus folder pointed at ``corpus`` (the real one may or may not exist here)."""
    code = (f"import pathlib, runpy, sys; m = runpy.run_path({str(ROOT / 'docs' / 'bench_corpus.py')!r}, "
            f"run_name='bench'); m['main'].__globals__['CORPUS'] = pathlib.Path({str(corpus)!r}); "
            "sys.argv = ['bench_corpus.py', *sys.argv[1:]]; sys.exit(m['main']())")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_without_the_corpus_it_says_where_it_looked_in_one_line(tmp_path):
    done = _run(corpus=tmp_path / "no-corpus")
    assert done.returncode == 1
    assert done.stderr.strip() == f"no corpus at {tmp_path / 'no-corpus'}: give the recordings as FILES " \
                                  "(any format libsndfile reads)"


def test_a_missing_recording_is_one_line(tmp_path):
    done = _run(str(tmp_path / "gone.wav"), corpus=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == f"no such recording: {tmp_path / 'gone.wav'}"


def test_a_skip_out_of_range_is_one_line(tmp_path):
    done = _run("--skip", "-1", corpus=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == "--skip must be 0..3600 seconds. Found: -1"


def test_skip_plays_its_seconds_first_and_scores_only_what_follows(tmp_path):
    import argparse
    import runpy

    import numpy as np
    import soundfile as sf

    bench = runpy.run_path(str(ROOT / "docs" / "bench_corpus.py"), run_name="bench")
    rate = 22050
    style = tmp_path / "noise.wav"
    sf.write(style, 0.1 * np.random.default_rng(0).standard_normal(2 * rate), rate)
    args = argparse.Namespace(seconds=0.5, skip=1.0, render_rate="recording")
    scored, stats = bench["render"]([style], tmp_path / "out.wav", args, 0, rate)
    played, _ = sf.read(tmp_path / "out.wav")
    assert len(played) == round(1.5 * rate) and stats["sample_rate"] == rate
    assert len(scored) == round(0.5 * rate)
    np.testing.assert_allclose(scored, played[rate:], atol=1e-4)
