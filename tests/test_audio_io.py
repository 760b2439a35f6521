"""Loading real files written by soundfile, and every bad input through the real CLI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import main
from engine.analysis.audio_io import load_audio, save_audio
from engine.errors import AudioFileError, ParameterError
from tests.signals import bursts_and_drone

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("fmt,subtype,suffix", [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_24", ".flac"),
                                                ("OGG", "VORBIS", ".ogg"), ("MP3", "MPEG_LAYER_III", ".mp3")])
def test_loads_common_formats_as_mono_at_the_engine_rate(tmp_path, fmt, subtype, suffix):
    t = np.arange(44100) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / f"x{suffix}"
    sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
    y = load_audio(path, sample_rate=22050)
    assert y.ndim == 1 and y.dtype == np.float32
    assert abs(len(y) - 22050) < 2000  # mp3/ogg add codec padding
    assert 0.15 < np.max(np.abs(y)) < 0.25  # mixed to mono by averaging


def test_odd_rate_and_many_channels_resample(tmp_path):
    path = tmp_path / "odd.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, size=(11025, 5)), 11025)
    assert len(load_audio(path, sample_rate=22050)) == 22050


def test_stereo_loads_each_side_resampled_and_a_mono_file_on_both(tmp_path):
    t = np.arange(44100) / 44100
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 880 * t)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 44100)
    sf.write(tmp_path / "mono.wav", left, 44100)
    sf.write(tmp_path / "five.wav", np.stack([left, right, left, left, left], axis=1), 44100)
    y = load_audio(tmp_path / "st.wav", sample_rate=48000, channels=2)
    assert y.shape == (48000, 2) and y.dtype == np.float32
    assert np.max(np.abs(y[:, 0])) > 0.28 and np.max(np.abs(y[:, 1])) < 0.12  # sides kept apart
    assert load_audio(tmp_path / "st.wav", sample_rate=44100, channels=None).shape == (44100, 2)
    m = load_audio(tmp_path / "mono.wav", sample_rate=44100, channels=2)
    assert m.shape == (44100, 2) and np.array_equal(m[:, 0], m[:, 1])
    assert load_audio(tmp_path / "mono.wav", sample_rate=44100, channels=None).shape == (44100,)
    five = load_audio(tmp_path / "five.wav", sample_rate=44100, channels=None)
    assert five.shape == (44100, 2) and np.allclose(five[:, 1], right, atol=1e-4)  # the first two
    with pytest.raises(ParameterError, match="channels must be"):
        load_audio(tmp_path / "st.wav", sample_rate=44100, channels=3)


def test_stereo_saves_and_round_trips(tmp_path):
    y = np.stack([bursts_and_drone(1.0), -0.5 * bursts_and_drone(1.0)], axis=1)
    back, rate = sf.read(save_audio(tmp_path / "st.flac", y, sample_rate=44100), dtype="float32")
    assert rate == 44100 and back.shape == y.shape and np.max(np.abs(back - y)) < 1e-4


def test_save_is_atomic_and_round_trips(tmp_path):
    y = bursts_and_drone(1.0)
    out = save_audio(tmp_path / "sub" / "o.flac", y, sample_rate=22050)
    back, rate = sf.read(out, dtype="float32")
    assert rate == 22050 and np.max(np.abs(back - y)) < 1e-4
    assert not list(out.parent.glob(".*partial"))
    with pytest.raises(AudioFileError, match="cannot write '.xyz'"):
        save_audio(tmp_path / "o.xyz", y, sample_rate=22050)


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050), 22050)
    nan = tmp_path / "nan.wav"
    bad = bursts_and_drone(1.0)
    bad[100] = np.nan
    sf.write(nan, bad, 22050, subtype="FLOAT")
    short = tmp_path / "short.wav"
    sf.write(short, bursts_and_drone(0.05), 22050)
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 50)
    return {
        "missing": (tmp_path / "nope.wav", "no such file"),
        "directory": (folder, "is a directory"),
        "empty": (empty, "empty"),
        "corrupt": (corrupt, "not a readable sound file"),
        "not audio": (text, "not a readable sound file"),
        "silent": (silent, "silent"),
        "nan": (nan, "NaN"),
        "short": (short, "too short"),
    }


def test_every_bad_input_gives_its_own_line_and_exit_status(tmp_path):
    cases = _bad_inputs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name, (path, expected) in cases.items():
        proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "render", "--style", str(path), "--seconds", "1",
                               "--out", str(tmp_path / "out.wav")], capture_output=True, text=True, env=env, timeout=120)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1, (name, proc.stderr)
        assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], (name, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "out.wav").exists()


def test_unreadable_file_is_reported(tmp_path, monkeypatch, capsys):
    """Permission denied. Tests run as root in CI, and root reads any file, so this one fault is caused by
    a mock: os.access answers 'not readable' for this path. Everything else is real."""
    path = tmp_path / "locked.wav"
    sf.write(path, bursts_and_drone(1.0), 22050)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
    status = main.main(["render", "--style", str(path), "--seconds", "1", "--out", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err
    assert status == 1 and "permission denied" in err and str(path) in err


def test_bad_parameters_are_one_line_errors(tmp_path, capsys):
    style = tmp_path / "s.wav"
    sf.write(style, bursts_and_drone(2.0), 22050)
    for argv, expected in (
        (["render", "--style", str(style), "--seconds", "-3", "--out", str(tmp_path / "o.wav")], "--seconds"),
        (["render", "--style", str(style), "--seconds", "1", "--blend", "0.5,0.5", "--out", str(tmp_path / "o.wav")], "--blend"),
        (["render", "--style", str(style), "--seconds", "1", "--receptive-field", "nan", "--out", str(tmp_path / "o.wav")], "--receptive-field"),
        (["render", "--style", str(style), "--seconds", "1", "--out", str(tmp_path / "o.mp4")], "cannot write '.mp4'"),
    ):
        assert main.main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
