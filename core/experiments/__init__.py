"""Runs side by side: the comparison table, the recommendation of the best run, evaluating a run on a file,
and the reports people download. May import :mod:`core.training` and everything below it."""
