"""Command line of the neural texture instrument: parses, then hands over to engine/ or gui/.

Run ``python main.py --help`` (or ``python main.py COMMAND --help``) for the commands. Any failure
prints one line on stderr and exits with a non-zero status (:data:`EXIT_STATUSES`: 2 for a malformed
command line, 1 for a bad value or file, 3 for an internal error, 4 when ``play`` lost more than a
second of audio, 130 when interrupted); set ``TEXTURE_DEBUG=1`` to see the
traceback of an internal error. Every value is checked (:mod:`engine.cli.options`) before any work, and
the window is opened only when there is a display (:mod:`gui.display`).

Signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop every command the same way, whatever disposition
the process inherited (a shell script that starts it in the background hands it SIGINT ignored):
:func:`main` installs its handlers with ``signal.signal`` first thing and puts the old ones back on
return.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from models import NETWORKS  # a plain tuple: imports neither torch nor the networks

_START = time.monotonic()


def _add_style_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--style", action="append", required=required, metavar="FILE",
                   help="style sound (any format libsndfile reads); repeat for several")
    p.add_argument("--blend", metavar="W1,W2,..", help="blend weights, one per --style (default: equal)")


def _add_network_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", choices=NETWORKS, default="random1d",
                   help="feature network (default random1d); live (play, streaming render, gui, bench) runs "
                        "random1d or trained1d, random2d and trained2d need render --offline or transfer")


def _add_live_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--receptive-field", type=float, default=None, metavar="X",
                   help="0 = short/grainy .. 1 = long/structured (default 0.5)")
    from engine.params import MAX_STEPS_PER_BLOCK
    p.add_argument("--iterations", type=int, default=None,
                   help=f"optimiser steps per block, 0..{MAX_STEPS_PER_BLOCK} (live; 0 bypasses the optimiser: "
                        "the ablation), or L-BFGS iterations, 1..5000 (offline)")
    p.add_argument("--material", type=float, default=None, metavar="X",
                   help="0 = synthesise from noise (default); up to 1 = start frames from pieces of the "
                        "recordings (granular replay)")
    p.add_argument("--seed", type=int, default=0, help="variation seed, 0..2147483647 (default 0)")
    p.add_argument("--channels", type=int, choices=(1, 2), default=2,
                   help="2 (default): stereo, the styles' own image (a mono style's decorrelated, see --width); "
                        "1: the mono engine")
    p.add_argument("--width", type=float, default=None, metavar="X",
                   help="stereo width 0..1: 0 = mono, 1 = the styles' own image, independent channels for a mono "
                        "style (default 1)")
    p.add_argument("--backend", choices=("ort", "torch"), default="ort", help="block optimiser backend (default ort)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="engine sample rate, 8000..48000 Hz (default: full band at the output's rate, the "
                        "device's for play, the highest of the styles' for render, 44100..48000; 22050 with "
                        "--network trained1d)")


def _add_performance_log_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--performance-log", metavar="FILE.jsonl", default=None,
                   help="where live playback logs underruns, quality drops and real-time factor every 10 s "
                        "(default: ~/.local/state/neural-texture/logs/, named by date)")


#: The exit statuses, as ``--help`` lists them.
EXIT_STATUSES = """exit status: 0 done; 1 a bad value or file (one line on stderr); 2 a malformed command line;
3 an internal error; 4 play lost more than 1 s of audio (to a missing audio device or to underruns;
its closing line says how much was heard and lost); 130 stopped by Ctrl-C, SIGTERM or SIGHUP
(a streaming render then leaves NAME.interrupted.wav)."""


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``error: ...`` on stderr, exit status 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (README's "Command line" synopsis; tests/test_docs.py holds them together)."""
    parser = _Parser(prog="python main.py", description="Live neural audio texture instrument.",
                     epilog=EXIT_STATUSES)
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("gui", help="open the window and play (the default when no command is given)")
    _add_style_args(p, required=False)
    p.add_argument("--device", help="audio output device (index or name)")
    p.add_argument("--midi", help="MIDI input port (index or name) besides the virtual 'texture in' port")
    _add_performance_log_arg(p)
    _add_network_arg(p)

    p = sub.add_parser("play", help="play an endless texture", epilog=EXIT_STATUSES)
    _add_style_args(p, required=False)
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds, up to a week (default: until Ctrl-C)")
    p.add_argument("--device", help="audio output device (index or name)")
    p.add_argument("--no-gui", action="store_true", help="play from the terminal, no window")
    p.add_argument("--midi", help="MIDI input port (index or name) besides the virtual 'texture in' port")
    p.add_argument("--gain", type=float, default=None, help="output gain, linear 0..1 (default 0.7)")
    p.add_argument("--lead-ms", type=float, default=None, metavar="MS",
                   help="audio queued ahead of each new block, 1..1000 ms (default 50): more is safer on a "
                        "busy machine, less answers the controls sooner; grows by 10 ms after an underrun")
    _add_performance_log_arg(p)
    _add_network_arg(p)
    _add_live_args(p)

    p = sub.add_parser("render", help="render a texture to a file, faster than real time")
    _add_style_args(p, required=True)
    p.add_argument("--seconds", type=float, required=True,
                   help="duration of the output in seconds: up to 6 h, or 120 s with --offline")
    p.add_argument("--out", required=True, help="output file (.wav or .flac)")
    p.add_argument("--offline", action="store_true", help="whole-file L-BFGS synthesis instead of the streaming engine")
    p.add_argument("--stats", metavar="FILE.json", help="write run statistics as JSON")
    _add_network_arg(p)
    p.add_argument("--frequency-axis", choices=("linear", "cqt"), default=None,
                   help="linear bins or pseudo-CQT for the network (default: cqt streaming with random1d, "
                        "else linear)")
    p.add_argument("--gain", type=float, default=None, help="output gain, linear 0..1 (default 1: the styles' level)")
    _add_live_args(p)

    p = sub.add_parser("transfer", help="offline style transfer: content of one sound, style of another")
    p.add_argument("--content", required=True, help="content sound")
    p.add_argument("--style", required=True, help="style sound")
    p.add_argument("--out", required=True, help="output file (.wav or .flac)")
    p.add_argument("--weights", metavar="A,B,G,D", help="content, style, spectral and temporal envelope weights (default 1,1,0.5,0.1)")
    p.add_argument("--iterations", type=int, default=200, help="L-BFGS iterations, 1..5000 (default 200)")
    p.add_argument("--seed", type=int, default=0)
    _add_network_arg(p)
    p.add_argument("--frequency-axis", choices=("linear", "cqt"), default="linear")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="engine sample rate, 8000..48000 Hz (default: full band at the higher of the two sounds' "
                        "rates, 44100..48000; 22050 with --network trained1d)")

    p = sub.add_parser("evaluate", help="texture-quality metrics of candidates against a reference")
    p.add_argument("reference")
    p.add_argument("candidates", nargs="+")
    p.add_argument("--style", metavar="FILE",
                   help="the sound the candidates were made from: adds scaled distances (0 = the style, 1 = "
                        "spectral noise of it) and novelty (copied share of verbatim >= 100 ms runs of it, and "
                        "nearest-frame distance relative to the reference's)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="analysis rate, 8000..48000 Hz (default: the reference's own rate)")

    p = sub.add_parser("bench", help="block optimiser speed, ONNX Runtime vs torch, and streaming figures")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--blocks", type=int, default=30, help="blocks per measurement (default 30)")
    _add_network_arg(p)

    sub.add_parser("devices", help="list audio outputs, MIDI inputs and ONNX Runtime providers")

    p = sub.add_parser("export-onnx", help="write the block-step graph and its manifest")
    p.add_argument("--out", required=True, metavar="DIR")
    _add_network_arg(p)

    p = sub.add_parser("midi-learn", help="map the next MIDI CC you move to a parameter")
    p.add_argument("param", help="parameter name (morph, receptive_field, gain, iterations, ...)")
    p.add_argument("--midi", help="MIDI input port (index or name); the virtual 'texture in' port is always open")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a CC (default 30)")
    return parser


def start_midi(params, library, port: str | None):
    """Open MIDI input for ``play``: the virtual 'texture in' port plus ``port``; returns the function
    that stops it and returns the MIDI part of play's closing line (None without MIDI).

    Without ``--midi`` a machine with no working MIDI API only gets a note on stderr.
    """
    from engine.log import log
    from engine.errors import TextureError
    from engine.control.midi import open_midi
    try:
        controller = open_midi(params, library.ids, port, log=log)
    except TextureError as exc:
        if port is not None:
            raise
        log(f"MIDI unavailable: {exc}")
        return lambda: None

    def stop() -> str:
        controller.stop()
        return controller.report()
    return stop


def midi_command(args: argparse.Namespace) -> int:
    """``devices`` (MIDI part) and ``midi-learn``."""
    from engine.control import midi
    if args.command == "midi-learn":
        from engine.params import ParamStore
        ParamStore.spec(args.param)
        midi.cli_learn(None, args.param, timeout=args.timeout, port=args.midi)
        return 0
    print("MIDI inputs (index: name, for --midi):")
    apis = midi.list_midi_ports()
    if not apis:
        print("   none: no MIDI system answers here (ALSA needs /dev/snd, JACK a running server)")
    for api, ports in apis.items():
        listed = ", ".join(f"{i}: {p}" for i, p in enumerate(ports)) if ports else "(no ports)"
        print(f"   {api}: {listed}")
    return 0


#: The signals that stop a command (each like Ctrl-C); see the module doc.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    """Handler of :data:`STOP_SIGNALS`: stop the way Ctrl-C does (renders and play clean up and say
    what they left)."""
    raise KeyboardInterrupt


def _open_window(args: argparse.Namespace) -> int:
    from gui.app import run_gui
    live = {}
    if args.command == "play":  # every play option reaches the window's engine too
        from engine.cli.commands import build_params
        live = dict(params=build_params(args), sample_rate=args.sample_rate, backend=args.backend,
                    lead_ms=args.lead_ms, seconds=args.seconds, channels=args.channels)
    return run_gui(styles=args.style or [], blend=args.blend, device=args.device, midi_port=args.midi,
                   network=args.network, performance_log=args.performance_log, **live)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}  # before anything else
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _main(argv: list[str]) -> int:
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]
    args = build_parser().parse_args(argv)
    from engine.errors import TextureError
    windowed = args.command == "gui" or (args.command == "play" and not args.no_gui)
    try:
        from engine.cli.options import check_args
        check_args(args)  # every value, before any work
        if windowed:
            from gui.display import display_problem
            problem = display_problem()
            if problem:
                raise TextureError(problem)
        from engine.cli import commands
        commands.START_TIME = _START
        if windowed:
            return _open_window(args)
        status = commands.run(args, midi_starter=start_midi) if args.command != "midi-learn" else 0
        if args.command in ("devices", "midi-learn") and status == 0:
            status = midi_command(args)
        return status
    except TextureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if os.environ.get("TEXTURE_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (set TEXTURE_DEBUG=1 for details)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
