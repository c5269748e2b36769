"""Labelled data from file to dataset version: reading uploads, validating, cleaning, splitting, saving
versions, finding suspicious labels and revising them. May import the models (to find suspicious labels and
count tokens), :mod:`core.accounts` and :mod:`core.platform`."""
