"""The face detectors, one module each, behind :class:`lipsync_core.face.types.Detector`."""
