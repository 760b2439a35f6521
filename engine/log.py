"""Messages for the user: one line each on stderr (the command line, the window's start-up, MIDI)."""
from __future__ import annotations

import sys


def log(message: str) -> None:
    """One line for the user on stderr."""
    print(message, file=sys.stderr, flush=True)
