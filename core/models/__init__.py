"""The model kinds and what they are made of: the classifier interface, the baselines, sentence embeddings,
the transformer and its head, precision checks, explanations, the pre-trained model's location, metrics,
predictions and loading a saved model folder. May import :mod:`core.platform` and :mod:`core.presentation`."""
