"""Fine-tuning Wav2Lip on one person's footage, faithful to the original training (``lipsync train``).

* :mod:`.prepare`: plain videos -> the original's dataset layout (face crops per clip, audio, filelists);
* :mod:`.data`: that layout, the original's window sampling, batches;
* :mod:`.losses` and :mod:`.step`: the original's losses and training step (float64 parity with two recorded
  steps of the original);
* :mod:`.trainer`: the loop, validation, checkpoints in the original's format, resume, early stopping;
* :mod:`.config`: the settings, and why the fine-tuning defaults are what they are.

This package sits at the pipeline layer: it uses models, media, face tracking and the pipeline, and only the
front ends (CLI, notebooks) use it. Importing it loads no model.
"""
from __future__ import annotations

from .config import TrainConfig

__all__ = ["TrainConfig"]
