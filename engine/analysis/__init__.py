"""Analysis: style sounds in, their statistics out.

Audio files are read and resampled (``audio_io``), turned into log1p-magnitude spectrograms
(``spectral``), split into a slow trend and the residual under it (``trend``), and measured under the
feature network (``statistics``, ``targets``) into the per-style targets that the ``styles`` library
holds for synthesis.
"""
