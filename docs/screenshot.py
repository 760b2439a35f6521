"""Make docs/screenshot.png: the main window after a few seconds of playing, under Xvfb.

    .venv/bin/python docs/screenshot.py [--out docs/screenshot.png] [--seconds 6]

Without a ``DISPLAY`` the script re-runs itself under ``xvfb-run`` (a 1600x1000 virtual screen) and
shows the window through Qt's xcb platform, exactly as on a desktop; the picture is grabbed from the
X screen. Where Xvfb or xcb is unavailable it falls back to Qt's offscreen platform and
``QWidget.grab()`` (say so on stderr). The window plays the default style plus two styles generated
here (bells, noise bursts over a drone) on a real-time null sink (the screenshot machine has no sound
card; the no-device banner is left out of the picture), with settings in a temporary folder so a
user's saved window state never shows.

The PNG carries a ``gui-sources`` text entry: the SHA-256 of the gui/ sources it was made from.
``tests/test_gui.py`` fails when gui/ changed and the picture was not regenerated.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZE = (1440, 860)


def gui_sources_digest(root: Path = ROOT) -> str:
    """SHA-256 over gui/*.py (names and contents, sorted): what the screenshot depends on."""
    h = hashlib.sha256()
    for path in sorted((root / "gui").glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _make_styles(folder: Path) -> list[str]:
    import numpy as np
    import soundfile as sf
    from scipy import signal
    sr = 22050
    rng = np.random.default_rng(3)
    t = np.arange(6 * sr) / sr
    bells = np.zeros_like(t)
    for start in np.arange(0, 6, 0.375):
        f = rng.choice([523.25, 659.25, 783.99, 1046.5])
        n = t >= start
        env = np.exp(-(t[n] - start) * 4.0)
        bells[n] += env * (np.sin(2 * np.pi * f * (t[n] - start)) + 0.4 * np.sin(2 * np.pi * 2.76 * f * (t[n] - start)))
    sos = signal.butter(4, [1500 / (sr / 2), 4000 / (sr / 2)], "band", output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(len(t)))
    env = np.zeros_like(t)
    for start in rng.integers(0, len(t) - 2000, size=30):
        env[start:start + 2000] += np.exp(-np.arange(2000) / 300.0)
    bursts = noise * env + 0.3 * np.sin(2 * np.pi * 110 * t) + 0.15 * np.sin(2 * np.pi * 220.5 * t)
    paths = []
    for name, y in (("bells.wav", bells), ("bursts and drone.wav", bursts)):
        p = folder / name
        sf.write(p, (0.5 * y / np.abs(y).max()).astype("float32"), sr)
        paths.append(str(p))
    return paths


def shoot(out: Path, seconds: float) -> int:
    """Open the window, play ``seconds``, save the picture (in this process's display)."""
    from PyQt6 import QtCore, QtWidgets

    from engine.live.sinks import NullSink
    from gui.app import APP_NAME, build_instrument
    from gui.main_window import MainWindow
    from gui.settings import open_settings
    from gui.theme import apply_dark_theme

    app = QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    apply_dark_theme(app)
    platform = app.platformName()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TEXTURE_CONFIG_DIR"] = str(Path(tmp) / "config")
        instrument, messages = build_instrument(None, sink=NullSink(48000, realtime=True))
        for path in _make_styles(Path(tmp)):
            instrument.library.add_file(path)
        window = MainWindow(instrument, open_settings(), startup_messages=messages)
        window.resize(*SIZE)
        window.move(40, 40)
        window.show()
        instrument.start()
        params = instrument.params
        params.set("receptive_field", 0.62)
        window.pad.move_puck(0.34, 0.45)
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 30)
            time.sleep(0.01)
        window.show_message("playing: " + " · ".join(s.name for s in instrument.library.slots))
        app.processEvents()
        if platform == "xcb":
            picture = window.screen().grabWindow(0, window.x(), window.y(), window.frameGeometry().width(),
                                                 window.frameGeometry().height()).toImage()
            if picture.isNull() or picture.size().width() < 100:
                picture = window.grab().toImage()
        else:
            picture = window.grab().toImage()
        picture.setText("gui-sources", gui_sources_digest())
        picture.setText("Software", "docs/screenshot.py")
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = picture.save(str(out), "PNG")
        t = instrument.telemetry()
        window.close()
    if not ok:
        print(f"error: cannot write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({picture.width()}x{picture.height()}, Qt platform {platform}, "
          f"{t.blocks} blocks played, x{t.last.realtime_factor if t.last else 0:.1f} real time)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of playing before the picture")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner or os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        if os.environ.get("DISPLAY") and "QT_QPA_PLATFORM" not in os.environ:
            os.environ["QT_QPA_PLATFORM"] = "xcb"
        return shoot(args.out, args.seconds)
    if shutil.which("xvfb-run"):
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0] + 160}x{SIZE[1] + 140}x24",
               sys.executable, str(Path(__file__).resolve()), "--inner", "--out", str(args.out),
               "--seconds", str(args.seconds)]
        rc = subprocess.run(cmd, env=dict(os.environ, QT_QPA_PLATFORM="xcb")).returncode
        if rc == 0:
            return 0
        print("screenshot: xcb under Xvfb failed; falling back to offscreen rendering", file=sys.stderr)
    else:
        print("screenshot: xvfb-run not found; using offscreen rendering", file=sys.stderr)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return shoot(args.out, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
