"""Temporal smoothing of per-frame boxes and points: the original's 5-frame window, and a centred one."""
from __future__ import annotations

import numpy as np


def smooth_boxes(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """The original's ``get_smoothened_boxes`` on an (n, 4) int array of one contiguous run.

    Row i becomes the mean of rows i..i+window-1, written into an int array (so truncated). The last
    window-1 rows take the mean of the final ``window`` rows as they stand at that point, i.e. partly smoothed
    already, exactly as the original updates its array in place. A run shorter than the window is averaged
    over itself (where the original would index from the end with a negative start).
    """
    out = np.asarray(boxes, dtype=np.int64).copy()
    n = len(out)
    full = n - window + 1  # rows with a complete forward window of unsmoothed rows
    if full > 0:
        c = np.concatenate([np.zeros((1, out.shape[1]), dtype=np.int64), np.cumsum(out, axis=0)])
        out[:full] = (c[window:] - c[:-window]) / window  # float -> int assignment truncates, as the original
    for i in range(max(full, 0), n):
        out[i] = np.mean(out[max(0, n - window):], axis=0)
    return out


def smooth_centred(values: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving mean over axis 0 (shrinking at the ends), in float32.

    Used for landmarks: they drive the alignment of face restoration on the *output* frame, so a centred
    window avoids the forward window's lead of ``window // 2`` frames while still removing detector jitter.
    """
    v = np.asarray(values, dtype=np.float64)
    n, half = len(v), window // 2
    c = np.concatenate([np.zeros((1,) + v.shape[1:]), np.cumsum(v, axis=0)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    shape = (n,) + (1,) * (v.ndim - 1)
    return ((c[hi] - c[lo]) / (hi - lo).reshape(shape)).astype(np.float32)
