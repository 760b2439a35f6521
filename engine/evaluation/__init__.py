"""Evaluation: sounds in, figures out.

``metrics`` (held-out Gram, mean spectrum, envelope statistics), ``novelty`` (copied share, distance
ratio, collage index) and the ``baselines`` a texture must beat (spectral noise, PaulStretch).
"""
