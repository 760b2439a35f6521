"""Live output: parameter snapshots in, audio at the device out.

The parameter store GUI and MIDI write is ``engine.params``; ``stream`` is the producer loop (block synthesis,
``output_chain``, ``resample``) feeding a ``sinks`` output: the sound device through the device process
(``device_process``, ``device_child``, ``device_sink``, ``ringbuffer``), a file, or nothing.
"""
