"""Control: MIDI messages in, parameter-store writes out.

``midi`` opens the ports and turns messages into writes through the ``midi_map``. Only this package,
``main.py`` and ``gui/`` import it, and it imports nothing of ``engine/live/`` (tested in
``tests/test_layout.py``).
"""
