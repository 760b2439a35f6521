"""The window as a user runs it (or `play --no-gui`), for N minutes: does the sound ever break up?

    .venv/bin/python docs/bench_window.py [--minutes 10] [--json OUT.json] [--screenshot docs/screenshot.png]
    .venv/bin/python docs/bench_window.py --no-gui [--minutes 10]     # the same for `play --no-gui`

Starts a JACK dummy server (unless ``JACK_DEFAULT_SERVER`` names one that runs) and an Xvfb screen,
then ``python main.py`` exactly as README's first command runs it (the window, the built-in default
style, playing), with a fresh home folder so no saved settings apply. The output is recorded from
the JACK server in one-minute pieces (``jack_rec``; a piece is analysed and deleted as soon as it is
complete, so an hour needs no disk), and the program's own performance log
(:mod:`engine.live.performance_log`, one line every 10 s) gives its underruns, engine load,
real-time factor and the window's frame rate.

Per minute it prints: the share of silent 10-ms windows in the recording (RMS below -80 dBFS; the
first minute's lead-in before the first sound is not counted), new underruns, quality drops, the
largest block load, the real-time factor, the window's mean frame rate and the machine's load average
at the minute's end (``machine_load``: about 1 when nothing else runs; more says other work shared
the cores, and on this project's virtual machines even idle-class work then delays the producer,
docs/EXPERIMENTS.md section 10) and the time the virtual machine's host took from it (``steal_ms``, the
``steal`` column of ``/proc/stat`` summed over the cores: time the VM wanted to run and was not
allowed to; ``max_steal_ms_per_s`` is the most in any one second). Ctrl+C ends the run early with the figures of the minutes complete. ``--screenshot`` grabs
the window at the end of the run (the README picture; it records the digest of gui/*.py like
``docs/screenshot.py``). ``--no-gui`` runs ``python main.py play --no-gui`` instead, with no screen
(no frame rate then). Name the processor (``lscpu``) beside any figure you quote.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from bench_stream import ensure_jack  # noqa: E402 - docs/ scripts share the JACK starter
from screenshot import gui_sources_digest  # noqa: E402

#: A 10-ms window quieter than this RMS counts as silent (-80 dBFS; the texture plays near -30 dBFS).
SILENT_RMS = 1e-4
SCREEN = (1440, 900)


def silent_share(y: np.ndarray, rate: int, skip_lead_in: bool) -> float:
    """Share of silent 10-ms windows in ``y`` (from its first sound on when ``skip_lead_in``)."""
    w = int(0.01 * rate)
    n = len(y) // w
    rms = np.sqrt(np.mean(y[: n * w].reshape(n, w).astype(np.float64) ** 2, axis=1))
    if skip_lead_in:
        sounding = np.flatnonzero(rms >= SILENT_RMS)
        rms = rms[sounding[0]:] if len(sounding) else rms
    return float(np.mean(rms < SILENT_RMS)) if len(rms) else 1.0


def _start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        raise SystemExit("bench_window: Xvfb did not start (apt-get install xvfb)")
    return proc, f":{number}"


def _steal_ms() -> float:
    """Host steal time of this (virtual) machine since boot, all cores together, in milliseconds (0 if unknown)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return 1000.0 * int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class StealMonitor:
    """Samples :func:`_steal_ms` once a second on a daemon thread; :meth:`take` gives the minute's figures."""

    def __init__(self) -> None:
        self._total = self._max = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steal-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = _steal_ms()
        while not self._stop.wait(1.0):
            now = _steal_ms()
            self._total += now - last
            self._max = max(self._max, now - last)
            last = now

    def take(self) -> dict:
        """Steal since the last call: total and the most in one second, in milliseconds; resets both."""
        figures = {"steal_ms": round(self._total), "max_steal_ms_per_s": round(self._max)}
        self._total = self._max = 0.0
        return figures

    def stop(self) -> None:
        self._stop.set()


def _player_port(timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split()
        outs = [p for p in ports if p.startswith("PortAudio") and ":out_" in p]
        if outs:
            return outs[0]
        time.sleep(0.2)
    raise SystemExit(f"bench_window: the player's audio did not appear on JACK within {timeout:.0f} s")


def _log_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            pass  # a line being written
    return lines


def _minute_figures(lines: list[dict], start: float, end: float) -> dict:
    """Sum / max / mean of the performance-log lines whose interval ends in [start, end) seconds."""
    inside = [ln for ln in lines if "elapsed_s" in ln and not ln.get("summary") and start <= ln["elapsed_s"] < end]
    def values(key: str) -> list[float]:
        return [ln[key] for ln in inside if ln.get(key) is not None]
    return {
        "new_underruns": int(sum(values("new_underruns"))),
        "new_quality_drops": int(sum(values("new_quality_drops"))),
        "max_load": max(values("max_load"), default=None),
        "min_realtime_factor": min(values("realtime_factor"), default=None),
        "gui_fps": round(float(np.mean(values("gui_fps"))), 1) if values("gui_fps") else None,
        "lead_ms": max(values("lead_ms"), default=None),
    }


def _screenshot(display: str, out: Path) -> None:
    """Grab the screen of ``display`` (the window sits at its top left, nothing else is on it)."""
    code = f"""
import sys
import numpy as np
from PyQt6 import QtGui, QtWidgets
app = QtWidgets.QApplication(['grab'])
image = app.primaryScreen().grabWindow(0).toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
a = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8).reshape(image.height(), -1, 4)
used = np.argwhere(a[:, :image.width(), :3].max(axis=2) > 0)
(top, left), (bottom, right) = used.min(axis=0), used.max(axis=0)
picture = image.copy(int(left), int(top), int(right - left + 1), int(bottom - top + 1))
picture.setText('gui-sources', {gui_sources_digest()!r})
picture.setText('Software', 'docs/bench_window.py')
sys.exit(0 if picture.save({str(out)!r}, 'PNG') else 1)
"""
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb"),
                   check=True, timeout=60)


def run(minutes: float, screenshot: Path | None, windowed: bool = True) -> dict:
    jack = ensure_jack()
    xvfb, display = _start_xvfb() if windowed else (None, "")
    tmp = Path(tempfile.mkdtemp(prefix="bench-window-"))
    log_path = tmp / "performance.jsonl"
    env = dict(os.environ, HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_STATE_HOME=str(tmp / "state"))
    if windowed:
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
    env.pop("XDG_CACHE_HOME", None)
    env["TEXTURE_CACHE_DIR"] = os.environ.get("TEXTURE_CACHE_DIR") or str(Path.home() / ".cache" / "neural-texture")
    command = [] if windowed else ["play", "--no-gui"]
    app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *command, "--performance-log", str(log_path)],
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / "app.log", "w"))
    rows = []
    t0 = time.monotonic()
    steal = StealMonitor()
    try:
        port = _player_port(120)
        t0 = time.monotonic()
        steal.take()
        n_pieces = max(1, int(np.ceil(minutes)))
        for i in range(n_pieces):
            seconds = min(60.0, 60.0 * minutes - 60.0 * i)
            piece = tmp / f"minute{i}.wav"
            subprocess.run(["jack_rec", "-f", str(piece), "-d", f"{seconds:g}", "-b", "16", port],
                           capture_output=True, timeout=seconds + 30, check=True)
            y, rate = sf.read(piece, dtype="float32")
            piece.unlink()
            y = y[:, 0] if y.ndim > 1 else y
            figures = _minute_figures(_log_lines(log_path), 60.0 * i, 60.0 * (i + 1))
            row = {"minute": i + 1, "silent_10ms_share": round(silent_share(y, rate, skip_lead_in=i == 0), 5),
                   **figures, "machine_load": round(os.getloadavg()[0], 2), **steal.take()}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if app.poll() is not None:
                raise SystemExit(f"bench_window: the player exited with status {app.returncode} "
                                 f"(see {tmp / 'app.log'})")
        if screenshot is not None and windowed:
            _screenshot(display, screenshot)
    except KeyboardInterrupt:  # Ctrl+C: the minutes measured so far still count
        print(f"bench_window: interrupted after {len(rows)} complete minute(s)", file=sys.stderr)
    finally:
        wall = time.monotonic() - t0
        steal.stop()
        app.terminate()
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            app.kill()
        if xvfb is not None:
            xvfb.terminate()
        if jack is not None:
            jack.close()
    summary = next((ln for ln in reversed(_log_lines(log_path)) if ln.get("summary")), None)
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if ln.startswith("Model name")), platform.processor())
    return {"processor": cpu, "cores": os.cpu_count(), "player": "window" if windowed else "play --no-gui",
            "minutes": minutes, "wall_seconds": round(wall, 1),
            "per_minute": rows, "run_summary": summary, "performance_log": str(log_path)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the window plays (default 10)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--screenshot", type=Path, help="grab the window at the end into this PNG")
    parser.add_argument("--no-gui", action="store_true", help="run `play --no-gui` instead of the window")
    args = parser.parse_args(argv)
    result = run(args.minutes, args.screenshot, windowed=not args.no_gui)
    rows = result["per_minute"]
    if not rows:
        print("bench_window: no complete minute was measured", file=sys.stderr)
        return 1
    after_first = rows[1:] or rows
    print(f"{result['player']}, {result['processor']}, {result['cores']} cores: {len(rows)} minute(s); silent 10-ms windows after the "
          f"first minute: max {max(r['silent_10ms_share'] for r in after_first):.4%}; underruns in all: "
          f"{sum(r['new_underruns'] for r in rows)} (after the first minute: "
          f"{sum(r['new_underruns'] for r in rows[1:])})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
