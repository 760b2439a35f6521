"""The bodies of the CLI commands (``main.py`` parses and dispatches here).

Nothing here imports gui/ or the MIDI module (house rule: only main.py and gui/ do); ``play`` gets
MIDI through the ``midi_starter`` that main.py hands in, and main.py opens the GUI itself.

Each command returns an exit status; user errors raise :class:`engine.errors.TextureError`, which
``main.py`` prints as one line. ``main.py`` has checked every value with
:func:`engine.cli.options.check_args` before it calls in here. Long work shows a progress bar on stderr
(tqdm, hidden when stderr is not a terminal).

Interruptions (Ctrl-C, SIGTERM and SIGHUP alike; main.py installs the handlers whatever the process
inherited): ``play`` stops like at the end of ``--seconds`` (exit status 130). A streaming
``render`` that gets one fades out over the next 50 ms of output and publishes what it
made as ``NAME.interrupted.wav`` (``.flac``), never under the name asked for, and says so in one line
(exit status 130); a second signal stops at once and leaves nothing. An offline render or a transfer
has no audio before it ends: interrupted, it writes nothing and says so.

Write failures keep what was made. A streaming render whose disk fills (or turns read-only)
publishes what fitted as ``NAME.interrupted.wav`` and names the cause in its one error line
(:class:`engine.live.sinks.FileSink`). An offline render and a transfer check the room their file
needs before they compute (:func:`engine.analysis.audio_io.check_space`); if the write still
fails, the result is written to the temporary folder instead (:func:`_save_or_rescue`), or the
error line says that the computed seconds are lost.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from engine.analysis.audio_io import check_space, file_rate, load_audio, save_audio
from engine.errors import AudioFileError, TextureError
from engine.cli.options import OFFLINE_MAX_SECONDS, parse_weights
from engine.log import log
from engine.params import PARAM_SPECS, ParamStore, parse_blend
from engine.analysis.spectral import SpectralConfig
from engine.synthesis.step_graph import BlockConfig, check_live_network, full_band_rate, live_config
from engine.synthesis.styles import StyleLibrary, load_library


#: When this module was imported (the process's start, for "first sound" figures), time.monotonic().
START_TIME = time.monotonic()
#: Output gain of ``render`` without ``--gain`` (linear; 0 dB): a rendered file plays each channel at its
#: styles' level, as a sound designer compares it with them; live playback keeps the store's default
#: (0.7, headroom for moves). The limiter still bounds every sample (docs/EXPERIMENTS.md section 32).
RENDER_GAIN = 1.0

#: Attaches MIDI input to a store and library for ``--midi PORT``; returns the function that detaches
#: it and returns a one-line MIDI report for play's closing line (or None).
MidiStarter = Callable[[ParamStore, StyleLibrary, "str | None"], Callable[[], "str | None"]]


def _bar(total: int, desc: str, unit: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True)


def build_params(args: argparse.Namespace) -> ParamStore:
    """A parameter store with the CLI's live settings applied (validated)."""
    params = ParamStore()
    for name, attr in (("receptive_field", "receptive_field"), ("iterations", "iterations"), ("gain", "gain"),
                       ("variation", "seed"), ("material", "material"), ("width", "width")):
        value = getattr(args, attr, None)
        if value is not None:
            params.set(name, value)
    return params


def _stepper(config: BlockConfig, backend: str):
    from engine.synthesis.runtime import BlockStepper
    return BlockStepper(config, backend=backend, log=log)


def _write_json(path: str | None, data: dict) -> None:
    if path:
        try:
            Path(path).write_text(json.dumps(data, indent=2, default=float))
        except OSError as exc:
            raise TextureError(f"{path}: cannot write: {exc.strerror or exc}") from None


def cmd_play(args: argparse.Namespace, midi_starter: MidiStarter | None = None) -> int:
    """Play from the terminal until Ctrl-C or ``--seconds``; ``midi_starter`` (from main.py) attaches MIDI input."""
    from engine.live.performance_log import PerformanceLog, default_log_path
    from engine.live.device_sink import SoundDeviceSink
    from engine.live.sinks import DEFAULT_LEAD_SECONDS
    from engine.live.stream import Engine
    params = build_params(args)
    check_live_network(args.network)  # before the device is opened (its rate sets the engine's)
    lead = DEFAULT_LEAD_SECONDS if args.lead_ms is None else args.lead_ms / 1000.0
    sink = SoundDeviceSink(args.device, lead_seconds=lead, wait=False)  # it opens while the styles load
    output = f"{sink.name} at {sink.rate} Hz"  # waits for the device: no device fails here, before any other work
    config = live_config(args.sample_rate or full_band_rate(sink.rate, network=args.network), network=args.network)
    library = load_library(config, args.style or [], parse_blend(args.blend, len(args.style or [])), params)
    engine = Engine(library, params, _stepper(config, args.backend), sink, channels=args.channels, log=log)
    stop_midi = midi_starter(params, library, args.midi) if midi_starter else None
    interrupted = False
    perf = PerformanceLog(args.performance_log or default_log_path("play"), engine.telemetry, log=log)
    try:
        engine.start()  # the warm-up: a Ctrl-C during it stops here, with nothing left open
        perf.start()
        log(f"playing {', '.join(s.name for s in library.slots)} on {output}; Ctrl-C stops")
        _play_for(engine, args.seconds)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        engine.stop()
        perf.stop()
        midi_report = stop_midi() if stop_midi is not None else None
    lost = _play_summary(engine, sink, lead, midi_report)
    log(f"performance log: {perf.path}")
    if lost > LOST_AUDIO_LIMIT_SECONDS:
        return LOST_AUDIO_STATUS
    return 130 if interrupted else 0


#: ``play`` exits with :data:`LOST_AUDIO_STATUS` when more than this much audio was lost, in seconds.
LOST_AUDIO_LIMIT_SECONDS = 1.0
#: Exit status of a ``play`` that lost more than :data:`LOST_AUDIO_LIMIT_SECONDS` of audio (to a
#: missing device or to underruns), even when it was interrupted.
LOST_AUDIO_STATUS = 4


def _play_for(engine, seconds: float | None) -> None:
    """Wait while the engine plays, ``seconds`` or for ever; show its state on a terminal.

    Raises TextureError when the producer stopped on an internal error, KeyboardInterrupt on a signal."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic())))
        t = engine.telemetry()
        if t.error:
            raise TextureError(t.error)
        if sys.stderr.isatty() and t.last is not None:
            print(f"\rblock {t.blocks}  x{t.last.realtime_factor:.1f} real time  {t.steps} it  "
                  f"underruns {t.underruns}  peak {max(t.peak):.2f}   ", end="", file=sys.stderr, flush=True)


def _play_summary(engine, sink, lead: float, midi_report: str | None) -> float:
    """Log ``play``'s closing line (heard and lost seconds, blocks, underruns, lead, MIDI); the seconds lost."""
    t = engine.telemetry()
    missing, underrun = engine.output_lost_seconds, sink.underrun_seconds
    first = f", first sound {sink.first_audio_time - START_TIME:.2f} s after start" if sink.first_audio_time else ""
    grew = f", lead grown to {sink.lead_seconds * 1000:.0f} ms" if sink.lead_seconds > lead else ""
    midi = f"; {midi_report}" if midi_report else ""
    log(f"\nplayed {t.blocks} blocks: heard {sink.heard_seconds:.1f} s, lost {missing + underrun:.1f} s "
        f"({missing:.1f} s without an audio device, {underrun:.1f} s in underruns {t.underruns}){grew}{first}{midi}")
    return missing + underrun


@contextlib.contextmanager
def _signals_set(stop: threading.Event):
    """While inside: SIGINT, SIGTERM and SIGHUP set ``stop``; a second one raises KeyboardInterrupt (stop now)."""
    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def render_rate(styles: list[str], network: str) -> int:
    """A streaming render's engine rate without ``--sample-rate``: full band at the highest of the
    styles' rates (:func:`engine.synthesis.step_graph.full_band_rate`; unreadable files are left to
    the style loader, which names the reason)."""
    rates = [r for r in (file_rate(p) for p in styles) if r is not None]
    return full_band_rate(max(rates, default=None), network=network)


def cmd_render(args: argparse.Namespace) -> int:
    """Render to ``--out``: streaming (interruptible, see the module doc) or offline."""
    if args.offline:
        try:
            return _render_offline(args)
        except KeyboardInterrupt:
            log(f"interrupted: nothing written (an offline render has no audio before it ends); {args.out} untouched")
            return 130
    from engine.live.sinks import FileSink
    from engine.live.stream import Engine
    params = build_params(args)
    if args.gain is None:
        params.set("gain", RENDER_GAIN)
    config = live_config(args.sample_rate or render_rate(args.style or [], args.network), network=args.network,
                         frequency_axis=args.frequency_axis)
    library = load_library(config, args.style or [], parse_blend(args.blend, len(args.style or [])), params)
    sink = FileSink(args.out, config.spectral.sample_rate,
                    expected_samples=int(round(args.seconds * config.spectral.sample_rate)), channels=args.channels)
    engine = Engine(library, params, _stepper(config, args.backend), sink, adaptive=False, channels=args.channels,
                    log=log)
    total = int(round(args.seconds * sink.rate))
    stop = threading.Event()
    with _bar(total, "render", "sample") as bar, _signals_set(stop):
        stats = engine.render(args.seconds, progress=lambda n: bar.update(n - bar.n), stop=stop)
    if stats.interrupted:
        log(f"interrupted after {stats.seconds:.2f} s of {args.seconds:g} s: wrote {sink.written_path} "
            f"(faded out); {args.out} not written")
        _write_json(args.stats, {**stats.to_dict(), "network": config.network})
        return 130
    log(f"wrote {args.out}: {stats.seconds:.2f} s in {stats.wall_seconds:.2f} s "
        f"({stats.realtime_factor:.1f}x real time, {stats.blocks} blocks, network {config.network}, "
        f"provider {stats.provider})")
    _write_json(args.stats, {**stats.to_dict(), "network": config.network})
    return 0


def _offline_settings(args: argparse.Namespace, sounds: list[str], **extra) -> "OfflineSettings":
    """Settings of an offline render or transfer of ``sounds`` (the files it reads): full band at the highest
    of their rates, as a streaming render (:func:`render_rate`), unless ``--sample-rate`` says otherwise."""
    from engine.synthesis.offline import OfflineSettings
    rate = args.sample_rate or render_rate(sounds, args.network)
    kwargs = dict(network=args.network, seed=args.seed,
                  spectral=SpectralConfig(sample_rate=rate, frequency_axis=args.frequency_axis or "linear"))
    if getattr(args, "iterations", None) is not None:
        kwargs["lbfgs_iterations"] = args.iterations
    if getattr(args, "receptive_field", None) is not None:
        kwargs["receptive_field"] = args.receptive_field
    kwargs.update(extra)
    return OfflineSettings(**kwargs)


def _run_offline(settings, run) -> "OfflineResult":
    """``run(progress, phase_progress)`` with progress bars; a stop signal ends it at the next report
    (one loss evaluation or one Griffin-Lim iteration) as KeyboardInterrupt, a second one at once.

    The first signal only sets a flag: a KeyboardInterrupt raised from the handler could land anywhere
    inside torch or numpy, the flag is read in plain code."""
    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise KeyboardInterrupt

    with _bar(settings.lbfgs_iterations, "optimise", "it") as bar, _signals_set(stop):
        def progress(done: int, loss: float) -> None:
            check()
            bar.update(done - bar.n)
            bar.set_postfix(loss=f"{loss:.3g}")

        def phase_progress(i: int) -> None:
            check()
            phase_bar.update(i - phase_bar.n)
        with _bar(settings.griffin_lim_iterations, "phase", "it") as phase_bar:
            return run(progress, phase_progress)


def _render_offline(args: argparse.Namespace) -> int:
    from engine.synthesis.offline import synthesize
    settings = _offline_settings(args, args.style)
    parse_blend(args.blend, len(args.style))
    need = int(settings.spectral.sample_rate * 0.5)
    check_space(args.out, int(round(args.seconds * settings.spectral.sample_rate)), args.channels)  # before any compute
    styles = [load_audio(p, sample_rate=settings.spectral.sample_rate, min_samples=need, channels=None)
              for p in args.style]
    log(f"rendering {args.seconds:g} s offline ({settings.lbfgs_iterations} L-BFGS iterations); Ctrl-C stops")
    t0 = time.perf_counter()
    result = _run_offline(settings, lambda prog, phase: synthesize(
        styles, seconds=args.seconds, blend_weights=parse_blend(args.blend, len(styles)), settings=settings,
        channels=args.channels, width=PARAM_SPECS["width"].default if args.width is None else args.width,
        progress=prog, phase_progress=phase))
    wall = time.perf_counter() - t0
    gain = RENDER_GAIN if args.gain is None else args.gain  # the offline result peaks at 0.99 at most
    _save_or_rescue(args.out, result.audio * np.float32(gain), settings.spectral.sample_rate)
    log(f"wrote {args.out}: {args.seconds:.2f} s in {wall:.1f} s ({wall / args.seconds:.2f} s of compute per "
        f"second of output); final loss {result.final_loss:.4g}; spectral convergence "
        f"{result.spectral_convergence_db:.1f} dB")
    _write_json(args.stats, {"realtime_factor": args.seconds / wall, "blocks": 1, "seconds": args.seconds,
                             "iterations_per_block": settings.lbfgs_iterations, "provider": "torch", "network": settings.network,
                             "sample_rate": settings.spectral.sample_rate, "underruns": 0,
                             "final_loss": result.final_loss, "loss_terms": result.loss_terms,
                             "spectral_convergence_db": result.spectral_convergence_db, "wall_seconds": wall})
    return 0


def _save_or_rescue(out: str, audio: np.ndarray, rate: int) -> None:
    """Write an offline result to ``out``; if that fails (the disk filled during the compute), to
    a new folder in the temporary folder under the same name, so minutes of compute are not thrown away.

    Raises
    ------
    TextureError
        Always after a failure: the cause, and where the result is, or that its seconds are lost.
    """
    try:
        save_audio(out, audio, sample_rate=rate)
        return
    except AudioFileError as exc:
        failed = exc
    folder = None
    try:
        folder = Path(tempfile.mkdtemp(prefix="texture-rescued-"))
        rescue = save_audio(folder / Path(out).name, audio, sample_rate=rate)
    except (OSError, AudioFileError):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise TextureError(f"{failed}; the {len(audio) / rate:.2f} s computed are lost (the temporary folder "
                           f"{tempfile.gettempdir()} did not take them either)") from None
    raise TextureError(f"{failed}; the result was written to {rescue} instead")


def cmd_transfer(args: argparse.Namespace) -> int:
    from engine.synthesis.offline import TRANSFER_WEIGHTS, transfer
    given = parse_weights(args.weights)  # content, style, spectral, temporal; the others stay the transfer's
    weights = TRANSFER_WEIGHTS if given is None else dataclasses.replace(
        TRANSFER_WEIGHTS, **dict(zip(("content", "style", "spectral", "temporal"), given)))
    settings = _offline_settings(args, [args.content, args.style], weights=weights, receptive_field=0.5)
    need = int(settings.spectral.sample_rate * 0.5)
    # transfer makes as much audio as the content: the offline limit applies to it (engine.cli.options)
    content = load_audio(args.content, sample_rate=settings.spectral.sample_rate, min_samples=need,
                         max_seconds=OFFLINE_MAX_SECONDS, channels=None)
    check_space(args.out, len(content), content.ndim)  # the transfer is as long as its content, with its channels
    style = load_audio(args.style, sample_rate=settings.spectral.sample_rate, min_samples=need, channels=None)
    t0 = time.perf_counter()
    try:
        result = _run_offline(settings, lambda prog, phase: transfer(content, style, settings=settings, progress=prog,
                                                                     phase_progress=phase))
    except KeyboardInterrupt:
        log(f"interrupted: nothing written (a transfer has no audio before it ends); {args.out} untouched")
        return 130
    _save_or_rescue(args.out, result.audio, settings.spectral.sample_rate)
    terms = ", ".join(f"{k} {v:.3g}" for k, v in result.loss_terms.items())
    log(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s; loss terms: {terms}; "
        f"spectral convergence {result.spectral_convergence_db:.1f} dB")
    return 0


#: Seed of the spectral noise that sets ``evaluate --style``'s scale (1 = that noise): fixed, so the
#: same files always give the same scaled figures.
NOISE_SEED = 0


def _rate_of(path: str) -> int:
    """The file's own rate in Hz, clamped to what ``evaluate --sample-rate`` accepts (8000..48000);
    22050 when the header cannot be read (loading the file then names the problem in one line)."""
    import soundfile as sf
    from engine.analysis.spectral import DEFAULT_SAMPLE_RATE
    from engine.cli.options import RANGES
    try:
        rate = sf.info(path).samplerate
    except (RuntimeError, OSError, TypeError):
        return DEFAULT_SAMPLE_RATE
    (allowed,) = RANGES["evaluate"]
    return int(min(max(rate, allowed.lo), allowed.hi))


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics of each candidate against the reference, at the reference's own rate and channels
    unless ``--sample-rate``; with ``--style``, the scaled distances (0 = the style itself, 1 =
    spectral noise of it) beside the raw ones, and novelty against the style."""
    from engine.evaluation import embedding
    from engine.evaluation.baselines import spectral_noise
    from engine.evaluation.metrics import (EMBEDDING_KEY, METRIC_KEYS, describe, evaluate, format_table, min_samples,
                                           scale_rows, weak_scales)
    rate = args.sample_rate or _rate_of(args.reference)
    missing = embedding.unavailable_reason()
    if missing:
        log(missing)
    keys = METRIC_KEYS if missing else (EMBEDDING_KEY, *METRIC_KEYS)
    need = max(min_samples(k, sample_rate=rate) for k in keys)
    ref = load_audio(args.reference, sample_rate=rate, min_samples=need, channels=None)
    cands = [load_audio(p, sample_rate=rate, min_samples=need, channels=None) for p in args.candidates]
    names = [Path(p).name for p in args.candidates]
    own = describe(ref, sample_rate=rate)
    channels = 1 if ref.ndim == 1 else ref.shape[1]
    print(f"reference {Path(args.reference).name}: {len(ref) / rate:.1f} s, {rate} Hz, {channels} channel"
          f"{'s' if channels > 1 else ''}; frame flatness {own['flatness_db']:.1f} dB, "
          f"L/R coherence {own['coherence']:.2f}")
    if not args.style:
        rows = evaluate(ref, cands, sample_rate=rate)
        print(format_table(rows, names))
    else:
        from engine.evaluation.novelty import copied_share, distance_ratio
        style = load_audio(args.style, sample_rate=rate, min_samples=need, channels=None)
        noise = spectral_noise(style, seconds=len(ref) / rate, sample_rate=rate, rng=np.random.default_rng(NOISE_SEED))
        *rows, floor, ceiling = evaluate(ref, [*cands, style, noise], sample_rate=rate)
        rows = scale_rows([*rows, floor, ceiling], floor=floor, ceiling=ceiling)
        print(f"scaled: 0 = the style {Path(args.style).name}, 1 = spectral noise of it (raw beside)")
        print(format_table(rows, [*names, "(the style)", "(spectral noise of the style)"]))
        for key in weak_scales(floor, ceiling):
            print(f"{key}: spectral noise is only {ceiling[key] - floor[key]:.3g} further than the style "
                  f"({floor[key]:.3g}): its scaled figures are mostly noise, read the raw ones")
        rows = rows[:len(cands)]
        print(f"\nnovelty against {Path(args.style).name} (copied: share in verbatim runs of it; distance: "
              f"nearest-frame distance over the reference's, 1 = as new as fresh material)")
        for name, row, cand in zip(names, rows, cands):
            row["copied"] = copied_share(style, cand, sample_rate=rate)
            row["distance_ratio"] = distance_ratio(style, cand, ref, sample_rate=rate)
            print(f"{name}  copied {row['copied']:.3f}  distance {row['distance_ratio']:.3f}")
    _write_json(args.json, {"reference": args.reference, "sample_rate": rate,
                            **{f"reference_{k}": v for k, v in own.items()},
                            "candidates": [dict(file=p, **r) for p, r in zip(args.candidates, rows)]})
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.cli.bench import run_bench
    figures = run_bench(live_config(full_band_rate(None, network=args.network), network=args.network),
                        blocks=args.blocks, log=log)
    print(json.dumps(figures, indent=2))
    _write_json(args.json, figures)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """Audio outputs as the engine sees them (a fresh PortAudio in the device process) and ORT providers."""
    import onnxruntime as ort
    from engine.live.device_process import list_outputs, no_output_message
    print("Audio outputs:")
    outputs = list_outputs()
    for d in outputs:
        mark = "*" if d["default"] else " "
        print(f" {mark}{d['index']:3d}  {d['name']}  ({d['hostapi']}, {d['channels']} ch, {d['rate']:.0f} Hz)")
    if not outputs:
        print(f"   none: {no_output_message()} (the window runs on a null sink)")
    print(f"ONNX Runtime {ort.__version__} providers available: {', '.join(ort.get_available_providers())}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.synthesis.graph_cache import export_graph, export_manifest_summary
    try:
        graph = export_graph(live_config(full_band_rate(None, network=args.network), network=args.network), args.out)
    except OSError as exc:
        raise TextureError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    manifest = export_manifest_summary(graph)
    log(f"wrote {graph} and {graph.parent / 'manifest.json'} (code {manifest['code_version']}, opset {manifest['opset']})")
    return 0


COMMANDS = {"play": cmd_play, "render": cmd_render, "transfer": cmd_transfer,
            "evaluate": cmd_evaluate, "bench": cmd_bench, "devices": cmd_devices, "export-onnx": cmd_export}


def run(args: argparse.Namespace, *, midi_starter: MidiStarter | None = None) -> int:
    """Dispatch a parsed command line whose values :func:`engine.cli.options.check_args` accepted
    (MIDI-free: main.py owns the MIDI commands and hands in ``midi_starter``)."""
    if args.command == "play":
        return cmd_play(args, midi_starter)
    return COMMANDS[args.command](args)
