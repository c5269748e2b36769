"""Scoring a trained model on labelled texts: a split of a dataset version or an uploaded file, its metrics,
confusions and errors, saved beside the run. Training uses it to score the test split once it ends; comparing
runs lives in :mod:`core.experiments`. May import :mod:`core.data` and everything below it."""
