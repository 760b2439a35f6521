"""Feature networks: random conv banks and CNNs (:mod:`models.random_banks`), trained classifiers (:mod:`models.trained`)."""

#: Every network ``--network`` names: random 1D banks, random 2D CNN, the trained 2D and 1D classifiers.
NETWORKS = ("random1d", "random2d", "trained2d", "trained1d")
#: The networks the streaming engine runs: stacks of 1D conv + ReLU layers, whose gradient
#: :class:`engine.synthesis.step_graph.AnalyticStep` writes out by hand. The 2D ones are offline only.
LIVE_NETWORKS = ("random1d", "trained1d")
