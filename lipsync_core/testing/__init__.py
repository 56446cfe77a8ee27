"""Helpers for tests, benchmarks and the notebooks' test mode: procedural checkpoints, media and training data."""
