"""Synthesis: targets and parameter snapshots in, magnitude frames and then samples out.

``styles`` holds the loaded styles' targets for the live ``BlockConfig`` (``step_graph``);
``losses`` and ``step_graph`` define the optimiser step (exported to ONNX by ``graph_cache``, run by
``runtime``); ``block_synth`` runs it block by block on noise (``frame_noise``: new frames drawn from the
blend's copula; ``history_refresh``: when the step's statistics forget the engine's own output) and hands committed frames, each bin mapped to the blend's levels by ``level_map``, to ``phase``,
whose committed spectra ``stereo`` makes into two channels (mono ``(n,)`` or stereo ``(n, 2)`` samples out);
``offline`` does whole-file synthesis and style transfer.
"""
