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
