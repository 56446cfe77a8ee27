"""The bottom layer: errors, the environment variables honoured, paths, atomic files, locks, input/output safety.
Nothing here imports torch or any other layer."""
