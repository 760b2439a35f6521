"""Live output: parameter snapshots in, audio at the device out.

``params`` is the store GUI and MIDI write; ``stream`` is the producer loop (block synthesis,
``output_chain``, ``resample``) feeding a ``sinks`` output: the sound device through the device process
(``device_process``, ``device_child``, ``device_sink``, ``ringbuffer``), a file, or nothing.
"""
