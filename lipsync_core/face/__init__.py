"""Face detection (S3FD, Haar, RetinaFace behind one protocol), tracking and the face-track cache.

Detectors live in their own modules (``face.s3fd``, ``face.haar``, ``face.retinaface``) and are imported
where used, so importing this package loads no model code.
"""
from __future__ import annotations

from .types import Box, Detection, Detector, FaceTrack

__all__ = ["Box", "Detection", "Detector", "FaceTrack"]
