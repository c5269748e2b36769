"""Runs: the recipe that plans one, its record (the run's complete spec), the queue, the worker that trains
runs in the background, saving the model with its card, and the housekeeping of leftovers. May import
:mod:`core.evaluation` (to score the test split) and everything below it."""
