"""Runs: the run directory and its files, one training run from data to a complete folder, the model card,
experiment trackers."""
