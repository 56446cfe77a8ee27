"""Lip-sync scoring: SyncNet's LSE-D / LSE-C and A/V offset, and the Wav2Lip expert's similarity.

:mod:`.sync` holds the reference arithmetic over streamed windows, :mod:`.embed` the two networks as
embedding functions, :mod:`.crop` the reference pipeline's face crop, :mod:`.video` the end-to-end scoring
of a file and its report, :mod:`.fix` the offset correction, :mod:`.session` scoring with a run's pipeline.
Importing this package loads nothing heavy.
"""
