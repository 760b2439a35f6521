"""Analysis: style sounds in, their statistics out.

Audio files are read and resampled (``audio_io``), turned into log1p-magnitude spectrograms
(``spectral``), split into a slow trend and the residual under it (``trend``), and measured under the
feature network it is given (``statistics``, ``targets``) into per-style targets, with each bin's
distribution and the bins' shared moves (``copula``) for the live engine's new frames and each bin's
percentiles (``levels``) for its committed ones; a stereo style's
per-band L/R coherence and level difference are its ``stereo`` image. It imports nothing
of the project above ``engine/params.py``, ``engine/log.py``, ``engine/jack_quiet.py`` and
``engine/errors.py`` (README, "Layout").
"""
