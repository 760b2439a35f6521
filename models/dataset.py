"""A local, reproducible training set of instrument notes rendered with FluidSynth (no downloads).

``python -m models.dataset --out DIR`` renders every note of :data:`FAMILIES` with the FluidSynth
command-line synthesiser and a General MIDI soundfont from Debian, writes one mono 22050 Hz WAV per GM
program under ``DIR/audio/`` and an index ``DIR/notes.csv`` (one row per note: family, program,
pitch, velocity, duration, onset sample, train/test split) plus ``DIR/dataset.json`` (settings,
soundfont hash, FluidSynth version, render time). Rendering is deterministic: same soundfont and
FluidSynth give the same files.

Set-up (Debian/Ubuntu)::

    apt-get install -y --no-install-recommends fluidsynth timgm6mb-soundfont
    python -m models.dataset --out /tmp/gm_notes            # about 1 minute, ~300 MB of WAV

Classes are the 12 GM instrument families below (piano ... synth pad); each has 5-6 programs. The GM
programs of the project's listening corpus (8 Celesta, 40 Violin, 46 Orchestral Harp; sound effects
such as 122 Seashore) are left out on purpose, so that the style-transfer experiments on the corpus
never use a timbre the network was trained on.

Each program plays 12 pitches evenly spread over its family's range (the grid shifted by
``program % 3 − 1`` semitones, so that the programs of a family cover neighbouring pitches), at 2
velocities (60, 100) and 2 durations (0.4 s, 1.2 s): 48 notes, one after the other, each followed by
1.5 s of silence for the release. The split is by absolute pitch: every note whose MIDI pitch is
``1 mod 4`` (C#, F, A, C#, ...; about 25 %) is ``test`` for every program, so held-out accuracy is
measured on pitches the classifiers never saw for any instrument. (A first version held out the same
grid positions per family; then each family's test pitches appeared in training only for *other*
families, and a 1-nearest-neighbour mean-spectrum classifier scored 3 %, below chance: exact pitch
was a shortcut to the family. Holding out absolute pitches for all programs removes it.)

:func:`load_magnitudes` turns the set into training arrays: the first :data:`CLIP_FRAMES` STFT
frames (n_fft 1024, hop 256, as the engine) of every note, peak-normalised to -3 dBFS like the
corpus, as linear magnitudes (float16), cached in ``DIR/magnitudes.npy``. The training code applies
gain augmentation and ``log1p`` itself.

The project never needs this set at run time: only the weights trained on it are committed.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 256
#: Frames kept per note from its onset: 112 frames = 1.30 s (the long note and the start of its release).
CLIP_FRAMES = 112
#: Peak level each note is normalised to before analysis (-3 dBFS, the corpus level).
PEAK = 0.708
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"

#: Class name -> (GM programs, lowest MIDI pitch, highest MIDI pitch). Programs are 0-based GM numbers.
FAMILIES: dict[str, tuple[tuple[int, ...], int, int]] = {
    "piano": ((0, 1, 2, 4, 5, 6), 36, 96),
    "chromatic_percussion": ((9, 10, 11, 12, 13, 14), 60, 96),
    "organ": ((16, 17, 18, 19, 20, 21), 36, 84),
    "guitar": ((24, 25, 26, 27, 28, 29), 40, 76),
    "bass": ((32, 33, 34, 35, 36, 38), 28, 55),
    "strings": ((41, 42, 43, 44, 45), 43, 84),
    "ensemble": ((48, 49, 50, 51, 52, 53), 43, 84),
    "brass": ((56, 57, 58, 60, 61, 62), 41, 79),
    "reed": ((64, 65, 66, 67, 68, 71), 46, 84),
    "pipe": ((72, 73, 74, 75, 77, 79), 60, 96),
    "synth_lead": ((80, 81, 82, 83, 84, 85), 48, 84),
    "synth_pad": ((88, 89, 90, 91, 92, 95), 43, 79),
}
CLASSES: tuple[str, ...] = tuple(FAMILIES)
#: GM programs used by the listening corpus; never rendered into the training set.
EXCLUDED_PROGRAMS = (8, 40, 46, 122)
PITCHES_PER_PROGRAM = 12
#: Notes with ``pitch % TEST_PITCH_MODULUS == TEST_PITCH_RESIDUE`` form the held-out split.
TEST_PITCH_MODULUS = 4
TEST_PITCH_RESIDUE = 1
VELOCITIES = (60, 100)
DURATIONS_S = (0.4, 1.2)
GAP_S = 1.5
#: Notes whose peak (before normalisation) is below this are dropped (a soundfont with no sample there).
SILENT_PEAK = 1e-3

#: MIDI timing: 480 ticks per beat at 120 bpm = 960 ticks per second.
TICKS_PER_BEAT = 480
TEMPO_US = 500_000
TICKS_PER_S = TICKS_PER_BEAT * 1_000_000 // TEMPO_US


@dataclass(frozen=True)
class Note:
    """One rendered note of the set."""

    family: str
    label: int
    program: int
    pitch: int
    velocity: int
    duration_s: float
    onset: int
    split: str


def program_notes(program: int, family: str) -> list[tuple[int, int, float, str]]:
    """(pitch, velocity, duration, split) of every note one program plays, in playing order."""
    _, low, high = FAMILIES[family]
    grid = np.round(np.linspace(low, high, PITCHES_PER_PROGRAM)).astype(int) + (program % 3 - 1)
    pitches = np.clip(grid, low, high)
    notes = []
    for p in pitches:
        split = "test" if p % TEST_PITCH_MODULUS == TEST_PITCH_RESIDUE else "train"
        for v in VELOCITIES:
            for d in DURATIONS_S:
                notes.append((int(p), v, d, split))
    return notes


def _slot_ticks(duration_s: float) -> tuple[int, int]:
    return round(duration_s * TICKS_PER_S), round(GAP_S * TICKS_PER_S)


def write_midi(path: Path, program: int, notes: list[tuple[int, int, float, str]]) -> list[int]:
    """Write a one-channel MIDI file playing ``notes`` one after another; returns each onset in samples."""
    import mido

    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    # Half a second of lead-in so that the first onset is not at sample 0.
    wait, tick, onsets = TICKS_PER_S // 2, 0, []
    for pitch, velocity, duration, _ in notes:
        on, gap = _slot_ticks(duration)
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, channel=0, time=wait))
        tick += wait
        onsets.append(round(tick * SAMPLE_RATE / TICKS_PER_S))
        track.append(mido.Message("note_off", note=pitch, velocity=0, channel=0, time=on))
        tick += on
        wait = gap
    track.append(mido.MetaMessage("end_of_track", time=wait))
    mid.save(str(path))
    return onsets


def render_midi(midi: Path, wav: Path, soundfont: str) -> np.ndarray:
    """Render ``midi`` with the fluidsynth CLI at 22050 Hz; returns the mono (L+R)/2 float32 signal."""
    import soundfile as sf

    cmd = ["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", str(SAMPLE_RATE), "-g", "0.5", soundfont, str(midi)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wav.exists():
        raise RuntimeError(f"fluidsynth failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    y, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {sr} Hz, expected {SAMPLE_RATE}")
    return y.mean(axis=1)


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fluidsynth_version() -> str:
    out = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def render_dataset(out: Path, soundfont: str = DEFAULT_SOUNDFONT, log=print) -> dict:
    """Render the whole set into ``out`` (see module docstring); returns the summary written to dataset.json."""
    import soundfile as sf

    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth not found: apt-get install -y --no-install-recommends fluidsynth timgm6mb-soundfont")
    if not Path(soundfont).is_file():
        raise RuntimeError(f"soundfont not found: {soundfont}")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: list[Note] = []
    dropped = []
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, (family, (programs, _, _)) in enumerate(FAMILIES.items()):
            for program in programs:
                assert program not in EXCLUDED_PROGRAMS
                notes = program_notes(program, family)
                midi, stereo = Path(tmp) / f"p{program}.mid", Path(tmp) / f"p{program}.wav"
                onsets = write_midi(midi, program, notes)
                y = render_midi(midi, stereo, soundfont)
                sf.write(str(out / "audio" / f"program_{program:03d}.wav"), y, SAMPLE_RATE, subtype="PCM_16")
                seconds += len(y) / SAMPLE_RATE
                for (pitch, vel, dur, split), onset in zip(notes, onsets):
                    seg = y[onset:onset + round((dur + GAP_S) * SAMPLE_RATE)]
                    if seg.size == 0 or float(np.abs(seg).max()) < SILENT_PEAK:
                        dropped.append((program, pitch, vel, dur))
                        continue
                    rows.append(Note(family, label, program, pitch, vel, dur, onset, split))
                log(f"  {family:<21} program {program:3d}: {len(notes)} notes, {len(y) / SAMPLE_RATE:.0f} s")
    with open(out / "notes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(Note.__dataclass_fields__.keys())
        for r in rows:
            w.writerow([r.family, r.label, r.program, r.pitch, r.velocity, r.duration_s, r.onset, r.split])
    cache = out / "magnitudes.npy"
    if cache.exists():
        cache.unlink()
    summary = {
        "classes": list(CLASSES),
        "families": {k: {"programs": list(v[0]), "pitch_range": [v[1], v[2]]} for k, v in FAMILIES.items()},
        "excluded_programs": list(EXCLUDED_PROGRAMS),
        "pitches_per_program": PITCHES_PER_PROGRAM,
        "test_split": f"MIDI pitch % {TEST_PITCH_MODULUS} == {TEST_PITCH_RESIDUE}",
        "velocities": list(VELOCITIES), "durations_s": list(DURATIONS_S), "gap_s": GAP_S,
        "sample_rate": SAMPLE_RATE, "notes": len(rows),
        "notes_train": sum(r.split == "train" for r in rows), "notes_test": sum(r.split == "test" for r in rows),
        "dropped_silent": [list(d) for d in dropped],
        "audio_seconds": round(seconds, 1),
        "soundfont": soundfont, "soundfont_sha256": _sha256(soundfont),
        "fluidsynth": _fluidsynth_version(),
        "render_seconds": round(time.perf_counter() - t0, 1),
        "command": "python -m models.dataset --out DIR",
    }
    (out / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_notes(root: Path) -> list[Note]:
    """The rows of ``root/notes.csv``."""
    with open(root / "notes.csv", newline="") as f:
        return [Note(r["family"], int(r["label"]), int(r["program"]), int(r["pitch"]), int(r["velocity"]),
                     float(r["duration_s"]), int(r["onset"]), r["split"]) for r in csv.DictReader(f)]


def note_magnitude(y: np.ndarray, onset: int) -> np.ndarray:
    """``(513, CLIP_FRAMES)`` STFT magnitude of one note from its onset, peak-normalised to :data:`PEAK`."""
    from engine.analysis.spectral import stft

    n = (CLIP_FRAMES - 1) * HOP
    seg = y[onset:onset + n].astype(np.float64)
    if len(seg) < n:
        seg = np.pad(seg, (0, n - len(seg)))
    seg *= PEAK / max(float(np.abs(seg).max()), 1e-9)
    return np.abs(stft(seg, n_fft=N_FFT, hop=HOP))[:, :CLIP_FRAMES]


def load_magnitudes(root: str | Path, log=print) -> tuple[np.ndarray, list[Note]]:
    """``(notes, 513, CLIP_FRAMES)`` float16 magnitudes and the note rows; cached in ``root/magnitudes.npy``."""
    import soundfile as sf

    root = Path(root)
    notes = read_notes(root)
    cache = root / "magnitudes.npy"
    if cache.exists():
        mags = np.load(cache, mmap_mode="r")
        if mags.shape == (len(notes), N_FFT // 2 + 1, CLIP_FRAMES):
            return np.asarray(mags), notes
    t0 = time.perf_counter()
    mags = np.zeros((len(notes), N_FFT // 2 + 1, CLIP_FRAMES), dtype=np.float16)
    audio: dict[int, np.ndarray] = {}
    for i, note in enumerate(notes):
        if note.program not in audio:
            audio = {note.program: sf.read(str(root / "audio" / f"program_{note.program:03d}.wav"), dtype="float32")[0]}
        mags[i] = note_magnitude(audio[note.program], note.onset).astype(np.float16)
    np.save(cache, mags)
    log(f"analysed {len(notes)} notes in {time.perf_counter() - t0:.1f} s -> {cache}")
    return mags, notes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.dataset", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--soundfont", default=DEFAULT_SOUNDFONT, help=f"GM soundfont (default {DEFAULT_SOUNDFONT})")
    p.add_argument("--no-analyse", action="store_true", help="skip computing magnitudes.npy")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        summary = render_dataset(out, args.soundfont)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"rendered {summary['notes']} notes ({summary['notes_train']} train, {summary['notes_test']} test, "
          f"{len(summary['dropped_silent'])} silent dropped), {summary['audio_seconds'] / 60:.1f} min of audio "
          f"in {summary['render_seconds']:.1f} s -> {out}")
    if not args.no_analyse:
        load_magnitudes(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
