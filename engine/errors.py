"""The project's exceptions: one root, so the CLI and the GUI can catch what users cause.

Every message is one line that names the thing at fault (a file, a parameter) and the problem.
"""
from __future__ import annotations


class TextureError(Exception):
    """Root of every error this project raises on purpose (bad input, bad settings)."""


class AudioFileError(TextureError):
    """A sound file cannot be used: missing, unreadable, empty, corrupt, silent, non-finite, too short."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ParameterError(TextureError, ValueError):
    """A setting is out of range or malformed; the message quotes the value."""


class DeviceLost(TextureError):
    """The sound device stopped taking audio (unplugged, its server died or restarted, it hung).

    Raised by a real-time sink's waits instead of waiting for ever; the engine reports it in one
    line and reopens the device when it is back (:meth:`engine.live.sinks.Sink.reopen`).
    """
