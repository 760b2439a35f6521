"""Control: MIDI messages in, parameter-store writes out.

``midi`` opens the ports and turns messages into writes through the ``midi_map``. Only this package,
``main.py`` and ``gui/`` import it (tested in ``tests/test_layout.py``).
"""
