"""Synthesis: targets and parameter snapshots in, magnitude frames and then samples out.

``losses`` and ``step_graph`` define the optimiser step (exported to ONNX by ``graph_cache``, run by
``runtime``); ``block_synth`` runs it block by block on noise and hands committed frames to ``phase``;
``offline`` does whole-file synthesis and style transfer.
"""
