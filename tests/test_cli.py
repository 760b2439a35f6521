"""The CLI contract of DESIGN.md through the real main.py: render stats, export, devices, play on JACK."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

import main
from engine.step_graph import BlockConfig
from tests.signals import SR, bursts_and_drone

ROOT = Path(__file__).resolve().parents[1]


def test_streaming_render_writes_the_file_and_the_stats(tmp_path, capsys):
    style = tmp_path / "style.wav"
    sf.write(style, bursts_and_drone(3.0), SR)
    out, stats = tmp_path / "out.flac", tmp_path / "stats.json"
    assert main.main(["render", "--style", str(style), "--style", str(style), "--blend", "0.3,0.7",
                      "--seconds", "2", "--receptive-field", "0.9", "--seed", "5", "--out", str(out),
                      "--stats", str(stats)]) == 0
    data = json.loads(stats.read_text())
    for key in ("realtime_factor", "blocks", "block_frames", "hop", "sample_rate", "iterations_per_block",
                "provider", "seconds", "underruns"):
        assert key in data, key
    assert data["seconds"] == 2.0 and data["underruns"] == 0 and data["sample_rate"] == SR
    assert data["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert sf.info(out).frames == 2 * SR
    assert "real time" in capsys.readouterr().err


def test_torch_backend_renders_too(tmp_path):
    out = tmp_path / "t.wav"
    assert main.main(["render", "--seconds", "1", "--backend", "torch", "--style", str(_style(tmp_path)),
                      "--out", str(out)]) == 0
    assert sf.info(out).frames == SR


def _style(tmp_path: Path) -> Path:
    path = tmp_path / "s.wav"
    sf.write(path, bursts_and_drone(3.0), SR)
    return path


def test_export_onnx_writes_graph_and_manifest(tmp_path):
    assert main.main(["export-onnx", "--out", str(tmp_path / "g")]) == 0
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert (tmp_path / "g" / "block_step.onnx").stat().st_size > 1000
    assert manifest["config"]["block_frames"] == BlockConfig().block_frames and "code_version" in manifest


def test_devices_and_play_on_the_jack_server(jack_server, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    listed = subprocess.run([sys.executable, str(ROOT / "main.py"), "devices"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert listed.returncode == 0
    assert "JACK" in listed.stdout and "texture" not in listed.stderr
    played = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "2",
                             "--style", str(_style(tmp_path))], capture_output=True, text=True, env=env, timeout=120)
    assert played.returncode == 0, played.stderr
    assert "underruns 0" in played.stderr and "first sound" in played.stderr
    assert "Traceback" not in played.stderr


@pytest.mark.parametrize("lead", ["0", "nan", "5000"])
def test_play_with_a_bad_lead_is_one_line(jack_server, lead):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "1",
                           "--lead-ms", lead], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "lead" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_play_with_a_missing_midi_port_is_one_line(jack_server, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "1",
                           "--midi", "99"], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and "MIDI" in lines[0], proc.stderr
