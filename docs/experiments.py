"""Produce the tables and spectrogram pictures of docs/EXPERIMENTS.md.

::

    python docs/experiments.py --corpus ../shared/corpus --work out/experiments            # everything
    python docs/experiments.py --corpus ../shared/corpus --work out/experiments --stage figures

Stages (each skips work whose output already exists, so a run can be resumed):

* ``renders`` — for every corpus WAV and every (network, frequency axis) of :data:`CONFIGS`:
  ``python main.py render --offline --seconds S --iterations N --network NET --frequency-axis AXIS``
  (one process at a time, ``OMP_NUM_THREADS=1``), plus the spectral-noise and PaulStretch baselines.
* ``transfers`` — Verma & Smith's two tasks with ``python main.py transfer``: speech → violin
  timbre, and harp content with celesta (struck, near-pure tone: the corpus's stand-in for the tuning
  fork) style; for each network of :data:`TRANSFER_NETWORKS`.
* ``tables`` — ``engine.evaluation.metrics.evaluate`` (what ``python main.py evaluate`` prints) of every output
  against its style (and, for transfers, against the content too); run times from ``--stats`` or the
  wall clock; written as Markdown to ``WORK/tables.md`` and as JSON to ``WORK/results.json``.
* ``live`` — milliseconds per gradient step on the live engine's window under each network.
* ``figures`` — spectrogram pictures ``docs/figures/*.png`` drawn with Qt (offscreen, no extra
  dependency): magnitude in dB (80 dB range under each panel's peak), 0 to 11 kHz linear, bottom to
  top; time left to right.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.analysis.audio_io import load_audio, save_audio  # noqa: E402
from engine.evaluation.baselines import paulstretch, spectral_noise  # noqa: E402
from engine.evaluation.metrics import METRIC_KEYS, evaluate  # noqa: E402
from engine.analysis.spectral import stft, stft_sizes  # noqa: E402

SR = 22050
#: (network, frequency axis) pairs rendered for every corpus file.
#: Cheap ones first, random2d (the slowest) last. trained1d needs the 513 linear bins (no CQT variant).
CONFIGS: tuple[tuple[str, str], ...] = (
    ("random1d", "linear"), ("random1d", "cqt"), ("trained1d", "linear"),
    ("trained2d", "linear"), ("trained2d", "cqt"), ("random2d", "linear"), ("random2d", "cqt"),
)
#: Verma & Smith's tasks: (name, content, style).
TRANSFERS = (("speech_to_violin", "speech_en.wav", "violin_g4.wav"),
             ("harp_to_celesta", "harp_arpeggio_c.wav", "celesta_a5.wav"))
TRANSFER_NETWORKS = ("trained2d", "trained1d", "random1d")
FIGURES = ("rain_ardentryst", "seashore_gm", "violin_g4")


def _run(cmd: list[str], log_path: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"failed ({rc}): {' '.join(cmd)}; see {log_path}")
    return wall


def stage_renders(corpus: Path, work: Path, seconds: float, iterations: int, configs=CONFIGS) -> None:
    out = work / "renders"
    out.mkdir(parents=True, exist_ok=True)
    for wav in sorted(corpus.glob("*.wav")):
        style = load_audio(wav, sample_rate=SR)
        for name, fn in (("spectral_noise", spectral_noise), ("paulstretch", paulstretch)):
            path = out / f"{wav.stem}__{name}.wav"
            if not path.exists():
                t0 = time.perf_counter()
                y = fn(style, seconds=seconds, sample_rate=SR, rng=np.random.default_rng(0))
                save_audio(path, y, sample_rate=SR)
                (out / f"{wav.stem}__{name}.json").write_text(json.dumps({"wall_seconds": time.perf_counter() - t0}))
        for net, axis in configs:
            stem = f"{wav.stem}__{net}_{axis}"
            path = out / f"{stem}.wav"
            if path.exists():
                continue
            cmd = [sys.executable, "main.py", "render", "--style", str(wav), "--offline", "--seconds", str(seconds),
                   "--iterations", str(iterations), "--network", net, "--frequency-axis", axis, "--seed", "0",
                   "--out", str(path), "--stats", str(out / f"{stem}.json")]
            wall = _run(cmd, out / f"{stem}.log")
            stats = json.loads((out / f"{stem}.json").read_text())
            stats["process_seconds"] = wall
            (out / f"{stem}.json").write_text(json.dumps(stats))
            print(f"{stem}: {stats['wall_seconds']:.1f} s (loss {stats['final_loss']:.3g})", flush=True)


def stage_transfers(corpus: Path, work: Path, iterations: int, networks=TRANSFER_NETWORKS) -> None:
    out = work / "transfers"
    out.mkdir(parents=True, exist_ok=True)
    for name, content, style in TRANSFERS:
        for net in networks:
            stem = f"{name}__{net}"
            path = out / f"{stem}.wav"
            if path.exists():
                continue
            cmd = [sys.executable, "main.py", "transfer", "--content", str(corpus / content), "--style",
                   str(corpus / style), "--out", str(path), "--network", net, "--iterations", str(iterations),
                   "--seed", "0"]
            wall = _run(cmd, out / f"{stem}.log")
            (out / f"{stem}.json").write_text(json.dumps({"wall_seconds": wall}))
            print(f"{stem}: {wall:.1f} s", flush=True)


def _fmt_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def stage_tables(corpus: Path, work: Path) -> dict:
    renders, transfers = work / "renders", work / "transfers"
    results: dict = {"renders": {}, "transfers": {}}
    lines = []
    methods = ["spectral_noise", "paulstretch", *(f"{n}_{a}" for n, a in CONFIGS)]
    per_method: dict[str, list[dict]] = {m: [] for m in methods}
    for wav in sorted(corpus.glob("*.wav")):
        ref = load_audio(wav, sample_rate=SR)
        present = [m for m in methods if (renders / f"{wav.stem}__{m}.wav").exists()]
        if not present:
            continue
        cands = [load_audio(renders / f"{wav.stem}__{m}.wav", sample_rate=SR) for m in present]
        rows = evaluate(ref, cands, sample_rate=SR)
        lines += [f"### {wav.name}", "", _fmt_row(["method", *METRIC_KEYS, "run time (s)"]),
                  _fmt_row(["---"] * (len(METRIC_KEYS) + 2))]
        for m, row in zip(present, rows):
            stats = json.loads((renders / f"{wav.stem}__{m}.json").read_text())
            row = dict(row, wall_seconds=stats.get("wall_seconds"), final_loss=stats.get("final_loss"),
                       spectral_convergence_db=stats.get("spectral_convergence_db"))
            results["renders"].setdefault(wav.stem, {})[m] = row
            per_method[m].append(row)
            lines.append(_fmt_row([m, *(f"{row[k]:.4g}" for k in METRIC_KEYS), f"{row['wall_seconds']:.1f}"]))
        lines.append("")
    # Summary: mean over files, and rank counts.
    lines += ["### Mean over the corpus files", "",
              _fmt_row(["method", *(f"mean {k}" for k in METRIC_KEYS), "mean run time (s)", "files"]),
              _fmt_row(["---"] * (len(METRIC_KEYS) + 3))]
    for m in methods:
        rows = per_method[m]
        if not rows:
            continue
        lines.append(_fmt_row([m, *(f"{np.mean([r[k] for r in rows]):.4g}" for k in METRIC_KEYS),
                               f"{np.mean([r['wall_seconds'] for r in rows]):.1f}", str(len(rows))]))
    lines.append("")
    # Pairwise: on how many files is the first method closer to the style than the second?
    pairs = [("random1d_linear", "random2d_linear"), ("trained1d_linear", "trained2d_linear"),
             ("random1d_linear", "trained1d_linear"), ("random2d_linear", "trained2d_linear"),
             ("random1d_linear", "random1d_cqt"), ("random2d_linear", "random2d_cqt"),
             ("trained2d_linear", "trained2d_cqt"),
             ("random1d_linear", "spectral_noise"), ("random1d_linear", "paulstretch")]
    lines += ["### Pairwise: files where A is closer to the style than B (lower distance)", "",
              _fmt_row(["A", "B", *METRIC_KEYS]), _fmt_row(["---"] * (len(METRIC_KEYS) + 2))]
    for a, b in pairs:
        common = [f for f in results["renders"] if a in results["renders"][f] and b in results["renders"][f]]
        if not common:
            continue
        wins = [sum(results["renders"][f][a][k] < results["renders"][f][b][k] for f in common) for k in METRIC_KEYS]
        lines.append(_fmt_row([a, b, *(f"{w}/{len(common)}" for w in wins)]))
    lines.append("")
    # Transfers.
    for name, content, style in TRANSFERS:
        outs = [n for n in TRANSFER_NETWORKS if (transfers / f"{name}__{n}.wav").exists()]
        if not outs:
            continue
        c_audio = load_audio(corpus / content, sample_rate=SR)
        s_audio = load_audio(corpus / style, sample_rate=SR)
        cands = [load_audio(transfers / f"{name}__{n}.wav", sample_rate=SR) for n in outs]
        vs_style = evaluate(s_audio, [c_audio, *cands], sample_rate=SR)
        vs_content = evaluate(c_audio, [s_audio, *cands], sample_rate=SR)
        lines += [f"### Transfer {name}: content {content}, style {style}", "",
                  _fmt_row(["output", *(f"{k} vs style" for k in METRIC_KEYS),
                            *(f"{k} vs content" for k in METRIC_KEYS), "run time (s)"]),
                  _fmt_row(["---"] * (2 * len(METRIC_KEYS) + 2))]
        lines.append(_fmt_row(["(content itself)", *(f"{vs_style[0][k]:.4g}" for k in METRIC_KEYS),
                               *("0" for _ in METRIC_KEYS), ""]))
        lines.append(_fmt_row(["(style itself)", *("0" for _ in METRIC_KEYS),
                               *(f"{vs_content[0][k]:.4g}" for k in METRIC_KEYS), ""]))
        for i, n in enumerate(outs):
            wall = json.loads((transfers / f"{name}__{n}.json").read_text())["wall_seconds"]
            rs, rc = vs_style[i + 1], vs_content[i + 1]
            results["transfers"].setdefault(name, {})[n] = {"vs_style": rs, "vs_content": rc, "wall_seconds": wall}
            lines.append(_fmt_row([n, *(f"{rs[k]:.4g}" for k in METRIC_KEYS), *(f"{rc[k]:.4g}" for k in METRIC_KEYS),
                                   f"{wall:.1f}"]))
        lines.append("")
    (work / "tables.md").write_text("\n".join(lines) + "\n")
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))
    return results


# --- pictures (Qt offscreen) -----------------------------------------------------------------------

_ANCHORS = np.array([(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122), (229, 80, 100),
                     (251, 135, 97), (254, 194, 135), (252, 253, 191)], dtype=np.float64)
N_COLOURS = 240
PANEL_W, PANEL_H, TITLE_H = 360, 150, 16


def _colour_table() -> list[int]:
    pos = np.linspace(0, len(_ANCHORS) - 1, N_COLOURS)
    rgb = np.stack([np.interp(pos, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1)
    table = [(0xFF << 24) | (int(r) << 16) | (int(g) << 8) | int(b) for r, g, b in rgb]
    table += [(0xFF << 24) | (v << 16) | (v << 8) | v for v in (int(x) for x in np.linspace(0, 255, 256 - N_COLOURS))]
    return table


def _panel(y: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """Colour indices ``(PANEL_H, PANEL_W)`` of ``y``'s spectrogram (first ``seconds``, 0 Hz to the
    Nyquist of ``sample_rate``), low frequencies at the bottom."""
    n_fft, hop = stft_sizes(sample_rate)
    y = np.asarray(y[:int(seconds * sample_rate)], dtype=np.float64)
    p = np.abs(stft(y, n_fft=n_fft, hop=hop)) ** 2
    frames = int(seconds * sample_rate) // hop + 1
    if p.shape[1] < frames:
        p = np.pad(p, ((0, 0), (0, frames - p.shape[1])))
    if p.shape[1] < PANEL_W:  # fewer frames than pixels: repeat columns instead of averaging empty ones
        p = p[:, np.arange(PANEL_W) * p.shape[1] // PANEL_W]
    f_edges = np.linspace(0, p.shape[0], PANEL_H + 1).astype(int)
    t_edges = np.linspace(0, p.shape[1], PANEL_W + 1).astype(int)
    img = np.add.reduceat(np.add.reduceat(p, f_edges[:-1], axis=0), t_edges[:-1], axis=1)
    img /= np.diff(f_edges)[:, None] * np.diff(t_edges)[None, :]
    db = 10 * np.log10(img + 1e-12)
    db = np.clip((db - (db.max() - 80.0)) / 80.0, 0, 1)
    return (db[::-1] * (N_COLOURS - 1)).astype(np.uint8)


def save_figure(path: Path, panels: list[tuple[str, np.ndarray]], *, columns: int = 2, seconds: float = 6.0,
                sample_rate: int = SR) -> None:
    """Grid of labelled spectrogram panels of mono signals at ``sample_rate`` Hz (each from 0 Hz to its
    Nyquist), written as an 8-bit palette PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (fonts need it)
    table = _colour_table()
    rows = (len(panels) + columns - 1) // columns
    cell_w, cell_h = PANEL_W + 6, PANEL_H + TITLE_H + 6
    canvas = np.full((rows * cell_h, columns * cell_w), 255, dtype=np.uint8)  # 255: white in the table
    for i, (_, y) in enumerate(panels):
        r, c = divmod(i, columns)
        canvas[r * cell_h + TITLE_H:r * cell_h + TITLE_H + PANEL_H, c * cell_w:c * cell_w + PANEL_W] = _panel(y, seconds, sample_rate)
    h, w = canvas.shape
    buf = np.ascontiguousarray(np.pad(canvas, ((0, 0), (0, (-w) % 4)), constant_values=255))
    img = QImage(buf.data, w, h, buf.shape[1], QImage.Format.Format_Indexed8)
    img.setColorTable(table)
    rgb = img.convertToFormat(QImage.Format.Format_RGB32)
    painter = QPainter(rgb)
    painter.setPen(QColor(0, 0, 0))
    font = QFont("DejaVu Sans")
    font.setPixelSize(11)
    painter.setFont(font)
    for i, (title, _) in enumerate(panels):
        r, c = divmod(i, columns)
        painter.drawText(c * cell_w + 2, r * cell_h + TITLE_H - 4, title)
    painter.end()
    out = rgb.convertToFormat(QImage.Format.Format_Indexed8, table, Qt.ImageConversionFlag.ThresholdDither)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not out.save(str(path), "PNG"):
        raise SystemExit(f"could not write {path}")
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def stage_figures(corpus: Path, work: Path, figures: Path, seconds: float = 6.0) -> None:
    renders, transfers = work / "renders", work / "transfers"
    for stem in FIGURES:
        panels = [(f"{stem}.wav (style, corpus)", load_audio(corpus / f"{stem}.wav", sample_rate=SR))]
        for m in ["spectral_noise", *(f"{n}_{a}" for n, a in CONFIGS)]:
            p = renders / f"{stem}__{m}.wav"
            if p.exists():
                panels.append((m, load_audio(p, sample_rate=SR)))
        save_figure(figures / f"textures_{stem}.png", panels, seconds=seconds)
    for name, content, style in TRANSFERS:
        panels = [(f"content: {content}", load_audio(corpus / content, sample_rate=SR)),
                  (f"style: {style}", load_audio(corpus / style, sample_rate=SR))]
        for n in TRANSFER_NETWORKS:
            p = transfers / f"{name}__{n}.wav"
            if p.exists():
                panels.append((f"transfer, {n}", load_audio(p, sample_rate=SR)))
        save_figure(figures / f"transfer_{name}.png", panels, seconds=6.5)


def stage_live(work: Path, repeats: int = 20) -> list[dict]:
    """Cost of one gradient step on a live-sized window (C=40 context + B=8 new frames, the streaming
    engine's default) under each network: torch autograd of :func:`engine.synthesis.losses.total_loss` on one thread,
    median of ``repeats``. The live engine itself runs a hand-written gradient (random1d or trained1d) on ORT."""
    import torch

    from engine.synthesis import losses
    from engine.synthesis.offline import OfflineSettings
    from engine.synthesis.step_graph import BlockConfig, receptive_field_weights
    from engine.analysis.targets import compute_target
    from models.random_banks import DEFAULT_BANKS, RandomBanks1D
    from tests.signals import bursts_and_drone

    torch.set_num_threads(1)
    config = BlockConfig()
    window = config.context_frames + config.block_frames
    style = bursts_and_drone(4.0, seed=0)
    log_style = np.log1p(np.abs(stft(style.astype(np.float64)))).astype(np.float32)
    fmap = torch.eye(513)
    nets = {"random1d (live banks 4x256, span <= 33)": RandomBanks1D(513, DEFAULT_BANKS, 0),
            "random1d (offline banks 5x256, span <= 65)": OfflineSettings(network="random1d").build_network(),
            "random2d": OfflineSettings(network="random2d").build_network(),
            "trained1d": OfflineSettings(network="trained1d").build_network(),
            "trained2d": OfflineSettings(network="trained2d").build_network()}
    rows = []
    for name, net in nets.items():
        if window < net.max_span + config.lags + 1:
            rows.append({"network": name, "ms_per_step": None, "note": f"needs {net.max_span + config.lags + 1} frames"})
            continue
        target = compute_target(log_style, net, fmap, lags=config.lags)
        bank_w = torch.from_numpy(receptive_field_weights(0.5, len(net.weights)))
        weights = losses.LossWeights(seam=1.0)
        context = torch.from_numpy(log_style[:, :config.context_frames].copy())
        new = torch.from_numpy(log_style[:, 100:100 + config.block_frames].copy())
        times = []
        for _ in range(repeats + 3):
            x = new.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss, _ = losses.total_loss(torch.cat([context, x], dim=1), net, fmap, target, weights, bank_w,
                                        seam_at=config.context_frames)
            torch.autograd.grad(loss, x)
            times.append(time.perf_counter() - t0)
        ms = 1000 * float(np.median(times[3:]))
        rows.append({"network": name, "ms_per_step": ms})
        print(f"{name}: {ms:.1f} ms per autograd step on a {window}-frame window", flush=True)
    block_ms = 1000 * config.block_frames * 256 / SR
    lines = [f"Window {window} frames (C={config.context_frames}, B={config.block_frames}); one block is "
             f"{block_ms:.0f} ms of audio.", "", _fmt_row(["network", "ms per step (torch autograd, 1 thread)",
                                                          "steps per block in real time"]),
             _fmt_row(["---"] * 3)]
    for r in rows:
        ms = r["ms_per_step"]
        lines.append(_fmt_row([r["network"], "n/a" if ms is None else f"{ms:.1f}",
                               r.get("note", "") if ms is None else f"{block_ms / ms:.1f}"]))
    work.mkdir(parents=True, exist_ok=True)
    (work / "live.md").write_text("\n".join(lines) + "\n")
    (work / "live.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    p.add_argument("--work", default=str(ROOT / "out" / "experiments"))
    p.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--stage", choices=("renders", "transfers", "tables", "figures", "live", "all"), default="all")
    p.add_argument("--only", help="comma-separated network_axis names to render (default: all of CONFIGS)")
    args = p.parse_args(argv)
    corpus, work = Path(args.corpus), Path(args.work)
    if args.stage in ("renders", "all"):
        configs = CONFIGS
        if args.only:
            keep = set(args.only.split(","))
            configs = tuple(c for c in CONFIGS if f"{c[0]}_{c[1]}" in keep)
        stage_renders(corpus, work, args.seconds, args.iterations, configs)
    if args.stage in ("transfers", "all"):
        stage_transfers(corpus, work, args.iterations)
    if args.stage in ("tables", "all"):
        stage_tables(corpus, work)
    if args.stage in ("figures", "all"):
        stage_figures(corpus, work, Path(args.figures))
    if args.stage in ("live", "all"):
        stage_live(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
