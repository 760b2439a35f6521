"""Where the window remembers its state between runs (QSettings, INI format).

``$TEXTURE_CONFIG_DIR/gui.ini`` when that variable is set (tests point it at a temporary folder;
the MIDI map lives beside it), else the platform's user config location
(``~/.config/neural-texture/gui.ini`` on Linux).
"""
from __future__ import annotations

import os
from pathlib import Path

from PyQt6 import QtCore

ORGANIZATION = "neural-texture"
APPLICATION = "gui"


def settings_path() -> Path | None:
    """The INI file when ``TEXTURE_CONFIG_DIR`` is set, else None (Qt's user location)."""
    base = os.environ.get("TEXTURE_CONFIG_DIR")
    return Path(base) / "gui.ini" if base else None


def open_settings() -> QtCore.QSettings:
    """The QSettings of the window (see module doc)."""
    path = settings_path()
    if path is not None:
        return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                            ORGANIZATION, APPLICATION)
