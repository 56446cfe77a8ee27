"""Front ends: the ``lipsync`` command line and the notebook helpers; thin layers over config and pipeline."""
