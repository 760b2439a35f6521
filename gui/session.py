"""Sessions: the styles (by path), every live parameter and the MIDI map, as a readable JSON file.

Format (``version`` 1)::

    {
      "format": "neural-texture-session",
      "version": 1,
      "styles": [
        {"path": "/abs/rain.wav", "relative": "sounds/rain.wav", "weight": 1.0},
        {"default": true, "name": "default: rain on a drone", "weight": 0.5}
      ],
      "params": {"morph": 0.0, "receptive_field": 0.5, "iterations": 6, ...},
      "blend_mode": "weights",
      "midi_map": {"version": 1, "mappings": [...], ...}      (or null)
    }

Styles are listed in slot order with their blend weight. ``relative`` is the path relative to the
session file's folder, tried when the absolute path no longer exists (a moved project folder).
A MIDI program change ``n`` loads the ``n+1``-th session of the current session's folder
(:func:`session_for_program`). Files are written atomically: a temporary file in the same folder, flushed and fsynced, then
``os.replace`` — a crash leaves either the old session or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import TextureError

SESSION_FORMAT = "neural-texture-session"
SESSION_VERSION = 1
SESSION_SUFFIX = ".texture.json"


@dataclass(frozen=True)
class StyleEntry:
    """One style of a session: a file (``path``) or the embedded default (``path`` None)."""

    path: str | None
    weight: float = 1.0
    relative: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Session:
    """Everything a session file holds (see module doc)."""

    styles: tuple[StyleEntry, ...]
    params: dict = field(default_factory=dict)
    blend_mode: str = "weights"
    midi_map: dict | None = None

    def to_dict(self, folder: Path | None = None) -> dict:
        """The JSON object; ``folder`` (the session file's folder) adds the ``relative`` paths."""
        styles = []
        for s in self.styles:
            if s.path is None:
                styles.append({"default": True, "name": s.name, "weight": s.weight})
                continue
            entry = {"path": str(Path(s.path).resolve()), "weight": s.weight}
            if folder is not None:
                try:
                    entry["relative"] = os.path.relpath(Path(s.path).resolve(), folder.resolve())
                except ValueError:  # another drive on Windows
                    pass
            styles.append(entry)
        return {"format": SESSION_FORMAT, "version": SESSION_VERSION, "styles": styles,
                "params": dict(self.params), "blend_mode": self.blend_mode, "midi_map": self.midi_map}

    def resolved_paths(self, folder: Path) -> list[tuple[StyleEntry, Path | None]]:
        """Each style with the file to load: the absolute path if it exists, else the relative one
        if that exists, else the absolute path (loading it gives the 'no such file' message).
        ``None`` for the default style."""
        out = []
        for s in self.styles:
            if s.path is None:
                out.append((s, None))
                continue
            p = Path(s.path)
            if not p.exists() and s.relative:
                alt = folder / s.relative
                if alt.exists():
                    p = alt
            out.append((s, p))
        return out


def session_for_program(folder: Path, program: int) -> Path | None:
    """The session a MIDI program change selects: program ``n`` (0..127) is the ``n+1``-th
    ``*.texture.json`` of ``folder`` in name order (name them ``01 intro.texture.json``, ...);
    None when there are fewer."""
    try:
        files = sorted(p for p in Path(folder).glob(f"*{SESSION_SUFFIX}") if p.is_file())
    except OSError:
        return None
    return files[program] if 0 <= program < len(files) else None


def write_session(path: str | os.PathLike, session: Session) -> Path:
    """Write ``session`` to ``path`` atomically (module doc). Raises TextureError (one line)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(session.to_dict(p.parent), indent=2, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise TextureError(f"{p}: cannot save the session: {exc.strerror or exc}") from None
    except ValueError as exc:  # NaN or an object json cannot write
        raise TextureError(f"{p}: cannot save the session: {exc}") from None
    return p


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TextureError(f"{what} must be a number. Found: {value!r}")
    return float(value)


def read_session(path: str | os.PathLike) -> Session:
    """Read and check a session file.

    Raises
    ------
    TextureError
        Missing/unreadable file, not JSON, not a session, a newer version, a malformed style entry
        (one line naming the file). Parameter values and the MIDI map are checked when applied.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TextureError(f"{p}: no such session file") from None
    except OSError as exc:
        raise TextureError(f"{p}: cannot read the session: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TextureError(f"{p}: not a session file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        raise TextureError(f"{p}: not a session file (no \"format\": \"{SESSION_FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= SESSION_VERSION:
        raise TextureError(f"{p}: session version {version!r} is not supported (this program reads 1..{SESSION_VERSION})")
    styles = []
    entries = data.get("styles", [])
    if not isinstance(entries, list):
        raise TextureError(f"{p}: \"styles\" must be a list")
    try:
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise TextureError(f"style {i} must be an object. Found: {e!r}")
            weight = _number(e.get("weight", 1.0), f"style {i} weight")
            if e.get("default"):
                styles.append(StyleEntry(None, weight, name=e.get("name")))
            elif isinstance(e.get("path"), str):
                rel = e.get("relative")
                styles.append(StyleEntry(e["path"], weight, rel if isinstance(rel, str) else None))
            else:
                raise TextureError(f"style {i} needs a \"path\" (or \"default\": true)")
    except TextureError as exc:
        raise TextureError(f"{p}: {exc}") from None
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise TextureError(f"{p}: \"params\" must be an object")
    midi_map = data.get("midi_map")
    if midi_map is not None and not isinstance(midi_map, dict):
        raise TextureError(f"{p}: \"midi_map\" must be an object or null")
    mode = data.get("blend_mode", "weights")
    return Session(tuple(styles), params, mode if isinstance(mode, str) else "weights", midi_map)
