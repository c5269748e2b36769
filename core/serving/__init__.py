"""The published model at work: publishing and restoring, the shared predictor and its review threshold, the
log of served predictions, feedback on predictions and the review queue. May import
:mod:`core.evaluation` and everything below it."""
