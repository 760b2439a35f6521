"""The command line README describes, through the real main.py: render stats, export, devices, play on JACK."""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import main
from engine.synthesis.step_graph import BlockConfig
from engine.control.midi import APPLY_INTERVAL_SECONDS
from tests import midi_flood
from tests.signals import SR, bursts_and_drone
from tests.test_priority import granted_in_a_thread

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
    # full band: a 22050 Hz style renders at 44.1 kHz (its empty top band is its timbre), in stereo
    assert data["seconds"] == 2.0 and data["underruns"] == 0 and data["sample_rate"] == 44100
    assert data["channels"] == 2
    assert data["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert sf.info(out).frames == 2 * 44100 and sf.info(out).channels == 2
    assert "real time" in capsys.readouterr().err


def test_render_writes_the_styles_rate_and_two_channels(tmp_path):
    rng = np.random.default_rng(0)
    style = tmp_path / "wide48k.wav"
    sf.write(style, (0.1 * rng.standard_normal((3 * 48000, 2))).astype(np.float32), 48000)
    out = tmp_path / "out.wav"
    assert main.main(["render", "--style", str(style), "--seconds", "1", "--out", str(out)]) == 0
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 48000)
    audio, _ = sf.read(out)
    assert not np.allclose(audio[:, 0], audio[:, 1])  # a wide style gives channels that differ
    mono = tmp_path / "mono.wav"
    assert main.main(["render", "--style", str(style), "--seconds", "1", "--out", str(mono), "--channels", "1",
                      "--sample-rate", "22050"]) == 0
    assert (sf.info(mono).samplerate, sf.info(mono).channels) == (22050, 1)


def test_torch_backend_renders_too(tmp_path):
    out = tmp_path / "t.wav"
    assert main.main(["render", "--seconds", "1", "--backend", "torch", "--style", str(_style(tmp_path)),
                      "--out", str(out), "--sample-rate", str(SR)]) == 0
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


# ------------------------------------------------------------------ values checked before any work
def _bad_value_cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, a word the one error line must hold). A file stands where a folder should be for the
    unwritable outputs: that fails for root too, where a read-only folder would not."""
    blocker = tmp / "a-file"
    blocker.write_text("not a folder")
    missing = str(tmp / "no-such-style.wav")  # never opened: the value is refused first
    render = ["render", "--style", missing, "--out", str(tmp / "o.wav")]
    offline = [*render, "--offline", "--seconds", "5"]
    transfer = ["transfer", "--content", missing, "--style", missing]
    return [
        ([*render, "--seconds", "1e9"], "--seconds"),
        ([*render, "--seconds", "nan"], "--seconds"),
        (["render", "--style", missing, "--out", str(tmp / "o.wav"), "--offline", "--seconds", "1e9"], "--seconds"),
        ([*offline, "--iterations", "100000"], "--iterations"),
        ([*offline, "--gain", "10"], "--gain"),
        ([*offline, "--receptive-field", "2"], "--receptive-field"),
        ([*offline[:4], str(tmp / "o.mp3"), *offline[5:]], ".mp3"),
        ([*offline[:4], str(blocker / "o.wav"), *offline[5:]], "not a folder"),
        ([*offline, "--stats", str(blocker / "s.json")], "--stats"),
        ([*render, "--seconds", "5", "--stats", str(tmp / "s.txt")], ".txt"),
        ([*render, "--seconds", "5", "--iterations", "33"], "--iterations"),
        ([*render, "--seconds", "5", "--sample-rate", "96000"], "--sample-rate"),
        ([*render, "--seconds", "5", "--seed", "-1"], "--seed"),
        ([*transfer, "--out", str(tmp / "t.mp3")], ".mp3"),
        ([*transfer, "--out", str(blocker / "t.wav")], "not a folder"),
        ([*transfer, "--out", str(tmp / "t.wav"), "--iterations", "0"], "--iterations"),
        ([*transfer, "--out", str(tmp / "t.wav"), "--weights", "1,2,3"], "--weights"),
        (["play", "--no-gui", "--style", missing, "--seconds", "0"], "--seconds"),
        (["play", "--no-gui", "--style", missing, "--gain", "1.5"], "--gain"),
        (["play", "--no-gui", "--style", missing, "--lead-ms", "5000"], "--lead-ms"),
        (["play", "--no-gui", "--style", missing, "--blend", "0.5,0.5"], "--blend"),
        (["bench", "--blocks", "0"], "--blocks"),
        (["midi-learn", "gain", "--timeout", "0"], "--timeout"),
        (["evaluate", missing, missing, "--json", str(tmp / "e.txt")], ".txt"),
        (["export-onnx", "--out", str(blocker)], "not a folder"),
        ([*render, "--seconds", "abc"], "invalid float"),
    ]


def test_every_bad_value_is_one_line_before_any_work(tmp_path, capsys):
    for argv, word in _bad_value_cases(tmp_path):
        try:
            status = main.main(argv)
        except SystemExit as exc:  # argparse's own errors exit from inside parse_args
            status = exc.code
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert status not in (0, None), argv
        assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], (argv, err)
        assert "no-such-style" not in lines[0], (argv, lines)  # refused before the style was opened
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing written, nothing left


def test_offline_gain_is_applied(tmp_path):
    style = _style(tmp_path)
    loud, quiet = tmp_path / "loud.wav", tmp_path / "quiet.wav"
    base = ["render", "--offline", "--seconds", "1", "--iterations", "10", "--style", str(style)]
    assert main.main([*base, "--out", str(loud)]) == 0
    assert main.main([*base, "--out", str(quiet), "--gain", "0.25"]) == 0
    a, b = sf.read(loud, dtype="float32")[0], sf.read(quiet, dtype="float32")[0]
    assert np.abs(a).max() > 0.1 and np.allclose(b, 0.25 * a, atol=1e-6)


def test_a_streaming_render_plays_each_channel_at_its_styles_level_unless_told(tmp_path):
    """``render`` without ``--gain`` plays at 0 dB (RENDER_GAIN): each channel of the texture of a mono
    noise at the noise's own power, at width 1 as at width 0; ``--gain 0.5`` 6 dB under it."""
    rng = np.random.default_rng(5)
    style = tmp_path / "noise.wav"
    noise = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    sf.write(style, noise, SR)
    base = ["render", "--style", str(style), "--seconds", "4", "--sample-rate", str(SR), "--seed", "1"]
    levels = {}
    for name, extra in (("default", []), ("narrow", ["--width", "0"]), ("half", ["--gain", "0.5"])):
        out = tmp_path / f"{name}.wav"
        assert main.main([*base, *extra, "--out", str(out)]) == 0
        y = sf.read(out, dtype="float32")[0]
        levels[name] = 10 * np.log10(np.mean(y[SR:] ** 2, axis=0) / np.mean(noise ** 2))  # after the balance's first second
    print({k: np.round(v, 2) for k, v in levels.items()})
    assert np.all(np.abs(levels["default"]) < 1.5) and np.all(np.abs(levels["narrow"]) < 1.5), levels
    assert np.all(np.abs(levels["half"] - levels["default"] + 6.02) < 0.5), levels


# ------------------------------------------------------------------ no display
def test_the_window_without_a_display_is_one_line_and_names_the_headless_ways():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    for argv in ([], ["play", "--seconds", "1"]):
        proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *argv], capture_output=True, text=True,
                              env=env, timeout=120)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "no display" in lines[0] and "play --no-gui" in lines[0] and "xvfb-run" in lines[0]


def test_an_unreachable_display_is_told_apart_from_a_missing_one():
    from gui.display import display_problem
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None  # needs no window server
    assert display_problem({}, "darwin") is None  # other systems have their own window servers
    gone = display_problem({"DISPLAY": ":4711"}, "linux")  # nothing listens on X display 4711
    assert gone is not None and gone.startswith("cannot reach the display (DISPLAY=:4711")
    assert "no display" in display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux")


# ------------------------------------------------------------------ interrupted renders
def _signal_once_written(path: Path, sig: int, min_bytes: int) -> threading.Thread:
    """Send ``sig`` to this process once ``path`` holds ``min_bytes`` (the render is under way)."""
    def run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size >= min_bytes:
                os.kill(os.getpid(), sig)
                return
            time.sleep(0.02)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_interrupted_render_leaves_one_named_faded_file(tmp_path, capsys, sig):
    """A real signal to this process (main.main runs in the main thread, as in the CLI) mid-render."""
    out = tmp_path / "long.wav"
    watcher = _signal_once_written(tmp_path / "long.wav.partial", sig, min_bytes=SR * 4 // 2)  # 0.5 s written
    status = main.main(["render", "--seconds", "30", "--style", str(_style(tmp_path)), "--out", str(out),
                        "--sample-rate", str(SR), "--channels", "1"])
    watcher.join(5)
    err = capsys.readouterr().err
    assert status == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.interrupted.wav", "s.wav"]  # no final, no partial
    y, rate = sf.read(tmp_path / "long.interrupted.wav", dtype="float32")
    assert rate == SR and 0.5 <= len(y) / SR < 30
    assert np.abs(y).max() > 0.05 and np.abs(y[-SR // 1000:]).max() < 0.05 * np.abs(y).max()  # faded to silence
    said = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert len(said) == 1 and "long.interrupted.wav" in said[0] and "not written" in said[0], err


def test_an_interrupted_offline_render_writes_nothing(tmp_path, capsys, monkeypatch):
    import engine.synthesis.offline
    started = threading.Event()
    real = engine.synthesis.offline.synthesize

    def observed(*args, **kwargs):  # the real synthesis; only tells the test that it began
        started.set()
        return real(*args, **kwargs)
    monkeypatch.setattr(engine.synthesis.offline, "synthesize", observed)
    sender = threading.Thread(target=lambda: started.wait(120) and os.kill(os.getpid(), signal.SIGTERM), daemon=True)
    sender.start()
    out = tmp_path / "off.wav"
    status = main.main(["render", "--offline", "--seconds", "2", "--iterations", "5000", "--style",
                        str(_style(tmp_path)), "--out", str(out)])
    sender.join(5)
    assert status == 130 and sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]
    said = [ln for ln in capsys.readouterr().err.splitlines() if "interrupted" in ln]
    assert len(said) == 1 and "nothing written" in said[0]


# ------------------------------------------------------------------ the audio server dies under play
class _Lines:
    """The stderr lines of a running process, collected by a thread; ``wait_for`` blocks until one appears."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._thread.start()

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [ln for ln in self.lines if text in ln]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} in {self.lines}")

    def all(self, timeout: float = 10.0) -> str:
        """Every line, once the process has closed its stderr (waits at most ``timeout`` seconds)."""
        self._thread.join(timeout)
        return "".join(self.lines)

    def count(self, text: str) -> int:
        return sum(text in ln for ln in self.lines)


def _player(server, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, _Lines]:
    """``play --no-gui`` as a new user starts it; a fatal signal in it prints every thread's stack to
    its stderr (``PYTHONFAULTHANDLER``), which a failing test shows."""
    env = dict(server.env, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--style",
                             str(_style(tmp_path)), *extra], env=env, stderr=subprocess.PIPE, text=True)
    return proc, _Lines(proc.stderr)


LIBJACK_NOISE = ("Cannot read socket", "CheckRes error", "JackSocketClientChannel", "Server is not running")


@pytest.mark.slow
def test_play_reports_a_killed_jack_server_plays_again_when_it_returns_and_stops_on_ctrl_c(private_jack, tmp_path):
    proc, err = _player(private_jack, tmp_path)
    try:
        err.wait_for("playing ")
        private_jack.record_sounding(tmp_path / "before.wav")
        private_jack.kill()
        err.wait_for("audio output lost")
        private_jack.start()
        err.wait_for("audio output back: system at 48000 Hz")
        after = private_jack.record_sounding(tmp_path / "after.wav")
        proc.send_signal(signal.SIGINT)
        status = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 130 and np.abs(after).max() <= 1.0
    assert err.count("audio output lost") == 1 and err.count("audio output back") == 1, err.lines
    assert not any(noise in ln for ln in err.lines for noise in LIBJACK_NOISE), err.lines
    assert "Traceback" not in "".join(err.lines)


@pytest.mark.slow
def test_play_ends_after_its_seconds_while_the_server_is_gone(private_jack, tmp_path):
    proc, err = _player(private_jack, tmp_path, "--seconds", "6")
    try:
        err.wait_for("playing ")
        private_jack.record_sounding(tmp_path / "before.wav")
        private_jack.kill()
        status = proc.wait(60)  # a guard against a hang, not a timing claim
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 4, err.lines  # more than a second of audio lost: the documented status
    assert err.count("audio output lost") == 1 and err.count("audio output back") == 0
    summary = err.wait_for("played ")
    heard = float(re.search(r"heard ([0-9.]+) s", summary).group(1))
    missing = float(re.search(r"([0-9.]+) s without an audio device", summary).group(1))
    # heard may read 0.0: once in a full run (not alone, 3 tries) the kill landed before the device's
    # reads were counted, though the port had sounded; the lost seconds are what this test is about.
    assert 0 <= heard < 6 and missing > 1 and heard + missing <= 6.5, summary


def test_play_logs_its_performance_and_has_no_underrun_after_its_first_second(jack_server, tmp_path):
    """play --no-gui writes the performance log a user can send: a line after the first second, one
    per interval, a summary; on the JACK dummy server nothing underruns after the first second."""
    log = tmp_path / "perf.jsonl"
    played = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "5",
                             "--performance-log", str(log)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert played.returncode == 0, played.stderr
    assert f"performance log: {log}" in played.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert "started" in lines[0]
    first, summary = lines[1], lines[-1]
    assert 0.9 < first["elapsed_s"] < 3.0 and summary["summary"] is True
    assert 4.0 < summary["audio_s"] <= 5.5 and summary["realtime_factor"] > 1.0
    assert {"underruns", "quality_drops", "max_load", "lead_ms", "steps"} <= set(summary)
    assert summary["underruns"] == first["underruns"], "underruns after the first second"
    assert summary["priority"] == granted_in_a_thread()["said"], "the producer reports what it was granted"


# ------------------------------------------------------------------ an output that is an input
def test_an_output_that_resolves_to_an_input_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    style = _style(tmp_path)
    before = style.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.wav").symlink_to(style)
    monkeypatch.chdir(tmp_path / "sub")
    render = ["render", "--seconds", "1", "--style", "../s.wav"]
    cases = [([*render, "--out", str(style)], "--out"),                         # the same path
             ([*render, "--out", str(tmp_path / "link.wav")], "--out"),          # through a symlink
             ([*render, "--out", "../sub/../s.wav", "--offline"], "--out"),     # relative, through ..
             ([*render, "--out", "o.wav", "--stats", "../s.wav"], "--stats"),
             (["transfer", "--content", str(style), "--style", "../link.wav", "--out", "../s.wav"], "--out"),
             (["evaluate", "../s.wav", "../link.wav", "--json", "../link.wav"], "--json")]
    for argv, option in cases:
        assert main.main(argv) == 1, argv
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: {option} ") and "would overwrite the input" in lines[0]
    assert style.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["link.wav", "s.wav", "sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_an_output_whose_interrupted_name_is_an_input_is_refused(tmp_path, capsys):
    style = tmp_path / "take.interrupted.wav"
    sf.write(style, bursts_and_drone(1.0), SR)
    assert main.main(["render", "--seconds", "1", "--style", str(style), "--out", str(tmp_path / "take.wav")]) == 1
    assert "would overwrite the input --style" in capsys.readouterr().err


# ------------------------------------------------------------------ SIGINT inherited as ignored
def _ignoring_sigint() -> None:
    """preexec_fn: the child starts with SIGINT ignored, as a background job of a shell script does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _started_ignoring_sigint(argv: list[str], env: dict) -> tuple[subprocess.Popen, "_Lines"]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *argv],
                            env=dict(env, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1"),
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ignoring_sigint)
    return proc, _Lines(proc.stderr)


def _interrupt_after(proc: subprocess.Popen, err: "_Lines", ready: str) -> int:
    """SIGINT once ``ready`` was printed; the exit status (60 s guard against a hang, not a timing claim).

    A child still running after it is aborted (SIGABRT): faulthandler prints every thread's stack,
    and the failure shows it."""
    try:
        err.wait_for(ready, timeout=120)
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(30)
            time.sleep(1)  # the reader thread takes the last lines
            raise AssertionError("no exit 60 s after SIGINT; its stderr:\n" + "".join(err.lines)) from None
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_offline_render_started_with_sigint_ignored_stops_on_sigint(tmp_path):
    proc, err = _started_ignoring_sigint(["render", "--offline", "--seconds", "2", "--iterations", "5000",
                                          "--style", str(_style(tmp_path)), "--out", str(tmp_path / "o.wav")],
                                         dict(os.environ))
    assert _interrupt_after(proc, err, "rendering ") == 130, err.lines
    err.wait_for("interrupted: nothing written")
    assert not (tmp_path / "o.wav").exists()


def test_play_started_with_sigint_ignored_stops_on_sigint(jack_server, tmp_path):
    proc, err = _started_ignoring_sigint(["play", "--no-gui", "--style", str(_style(tmp_path))], dict(os.environ))
    assert _interrupt_after(proc, err, "playing ") == 130, err.lines
    assert "heard " in err.wait_for("played ") and "Traceback" not in "".join(err.lines)


# ------------------------------------------------------------------ no audio server at all
def test_no_audio_server_at_all_is_one_line_that_says_what_to_start(tmp_path):
    """JACK pointed at a server that does not exist; this machine has no sound card (no ALSA output)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), JACK_DEFAULT_SERVER="texture-no-such-server",
               JACK_NO_START_SERVER="1")
    listed = subprocess.run([sys.executable, str(ROOT / "main.py"), "devices"], capture_output=True, text=True,
                            env=env, timeout=120)
    if "Audio outputs:\n   none:" not in listed.stdout:
        pytest.skip(f"this machine has an audio output besides JACK: {listed.stdout}")
    assert listed.returncode == 0 and "no audio output" in listed.stdout and "jackd -d dummy" in listed.stdout
    played = subprocess.run([sys.executable, str(ROOT / "main.py"), "play", "--no-gui", "--seconds", "1",
                             "--style", str(_style(tmp_path))], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in played.stderr.splitlines() if ln.strip()]
    assert played.returncode == 1 and len(lines) == 1, played.stderr
    assert lines[0].startswith("error: no audio output: PortAudio found no output device")
    for named in ("'texture-no-such-server'", "ALSA", "PipeWire", "jackd -d dummy", "render"):
        assert named in lines[0], named


# ------------------------------------------------------------------ a MIDI flood under play
def _silent_windows(y: np.ndarray, rate: int = 48000) -> int:
    """10 ms windows of a recording of the texture that are silent (a dropout; the texture never is)."""
    n = len(y) // (rate // 100)
    frames = y[: n * (rate // 100)].reshape(n, -1)
    return int(np.sum(np.sqrt(np.mean(frames ** 2, axis=1)) < 1e-4))


@pytest.mark.slow
def test_a_midi_flood_is_coalesced_and_counted_and_the_sound_holds(private_jack, tmp_path):
    """A real rtmidi JACK client floods `texture in` while the output is recorded from the server;
    the same run's unflooded seconds are the reference. Bounds are structural and generous (a loaded
    2-core machine): the messages are coalesced and counted, and the flood adds few dropouts."""
    proc, err = _player(private_jack, tmp_path)
    try:
        err.wait_for("playing ")
        private_jack.record_sounding(tmp_path / "start.wav")
        quiet = private_jack.record(tmp_path / "quiet.wav", 3.0)
        flood_start = time.monotonic()
        flood = subprocess.Popen([sys.executable, "-m", "tests.midi_flood", "5", "8000"], cwd=str(ROOT),
                                 env=dict(private_jack.env, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the flood is under way
        flooded = private_jack.record(tmp_path / "flooded.wav", 3.0)
        sent = int(flood.communicate(timeout=60)[0])
        flood_seconds = time.monotonic() - flood_start  # an upper bound on how long messages arrived
        died_under_flood = proc.poll()  # None: still playing when the flood ended
        proc.send_signal(signal.SIGINT)
        status = proc.wait(60)
    finally:
        for p in (proc, locals().get("flood")):
            if p is not None and p.poll() is None:
                p.kill()
    assert died_under_flood is None and status == 130, (died_under_flood, status, err.all())
    summary = err.wait_for("played ")
    received, applied, coalesced, ignored = map(int, re.search(
        r"MIDI (\d+) messages: (\d+) applied, (\d+) coalesced .*?, (\d+) ignored", summary).groups())
    assert received > sent / 2  # sysex (2 of 7 kinds) is dropped by rtmidi before it is counted
    assert coalesced > 0 and applied + coalesced + ignored <= received
    # Structural, whatever the message rate the machine reaches: the applier drains at most once per
    # APPLY_INTERVAL_SECONDS and applies at most one message of each kind per drain.
    drains = flood_seconds / APPLY_INTERVAL_SECONDS + 2
    assert applied <= drains * midi_flood.COALESCING_KINDS < received, summary
    underruns = int(re.search(r"in underruns (\d+)", summary).group(1))
    before, during = _silent_windows(quiet), _silent_windows(flooded)
    print(f"silent 10 ms windows: {before} unflooded, {during} flooded; {summary.strip()}")
    assert during <= before + 10 and underruns <= 25, (before, during, summary)


# ------------------------------------------------------------------ a disk that fills
def test_a_streaming_render_into_a_full_disk_keeps_what_fitted_and_names_the_cause(tmp_path, small_fs, capsys):
    out = small_fs / "long.wav"
    status = main.main(["render", "--seconds", "60", "--style", str(_style(tmp_path)), "--out", str(out),
                        "--sample-rate", str(SR), "--channels", "1"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert status == 1 and len(lines) == 1 and "Traceback" not in err, err
    said = re.fullmatch(r"error: (\S+): no space left on device: [0-9.]+ MB free, about ([0-9.]+) MB needed; "
                        r"kept the ([0-9.]+) s that fitted as (\S+)", lines[0])
    assert said, lines[0]
    assert said.group(1) == str(out) and float(said.group(2)) == pytest.approx(60 * SR * 4 / 1e6, abs=0.2)
    assert said.group(4) == str(small_fs / "long.interrupted.wav")
    assert sorted(p.name for p in small_fs.iterdir()) == ["long.interrupted.wav"]  # no final, no .partial
    y, rate = sf.read(small_fs / "long.interrupted.wav", dtype="float32")
    assert rate == SR and len(y) / SR == pytest.approx(float(said.group(3)), abs=0.05) and len(y) / SR > 5
    assert np.abs(y[SR:]).max() > 0.05  # real audio, not an empty shell


def test_an_offline_render_checks_the_space_before_computing(tmp_path, small_fs, capsys):
    out = small_fs / "off.wav"
    status = main.main(["render", "--offline", "--seconds", "60", "--style", str(tmp_path / "missing.wav"),
                        "--out", str(out)])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert status == 1 and len(lines) == 1, lines
    assert re.fullmatch(rf"error: {re.escape(str(out))}: no space left on device: 1\.0 MB free in "
                        rf"{re.escape(str(small_fs))}, about 21\.2 MB needed; free some space or write elsewhere",
                        lines[0]), lines[0]  # before the (missing) style was even opened: 60 s, 44.1 kHz, 2 channels
    assert list(small_fs.iterdir()) == []


def test_an_offline_result_whose_write_fails_is_written_to_the_temporary_folder(tmp_path, small_fs, capsys,
                                                                               monkeypatch):
    import engine.synthesis.offline
    real = engine.synthesis.offline.synthesize

    def then_the_disk_fills(*args, **kwargs):  # the real synthesis; meanwhile another program fills the disk
        result = real(*args, **kwargs)
        with open(small_fs / "hog", "wb") as hog:
            with contextlib.suppress(OSError):
                hog.write(b"\0" * (2 << 20))
        return result
    monkeypatch.setattr(engine.synthesis.offline, "synthesize", then_the_disk_fills)
    out = small_fs / "off.wav"
    status = main.main(["render", "--offline", "--seconds", "1", "--iterations", "10", "--style",
                        str(_style(tmp_path)), "--out", str(out)])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert status == 1 and len(lines) == 1, lines
    said = re.fullmatch(r"error: \S+: no space left on device: .*; the result was written to (\S+) instead", lines[0])
    assert said, lines[0]
    rescued = Path(said.group(1))
    try:
        assert rescued.name == "off.wav" and sf.info(rescued).frames == 44100  # full band from a 22.05 kHz style
    finally:
        rescued.unlink()
        rescued.parent.rmdir()
    assert sorted(p.name for p in small_fs.iterdir()) == ["hog"]
