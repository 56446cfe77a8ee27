"""Constructed clips whose sync is known, and embeddings that read it (instead of a trained SyncNet).

A clip's frames carry a random brightness per frame; its audio is noise whose loudness at frame t is the
brightness of frame ``t - delay``. The embeddings of a window are those two sequences (z-scored), so the
distance is smallest exactly at the clip's true shift.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lipsync_core.media.video import VideoWriter
from lipsync_core.score.sync import SAMPLES_PER_FRAME, WINDOW
from lipsync_core.testing.media import write_wav


def clip(n_frames: int, delay: int, seed: int = 0, size: int = 8, grey: tuple[int, int] = (0, 250)
         ) -> tuple[np.ndarray, np.ndarray]:
    """Frames (n, size, size, 3) uint8 and int16 audio whose loudness at frame t is frame t - delay's brightness
    (from ``grey[0]`` to ``grey[0] + grey[1]``)."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.05, 1.0, n_frames + 40)
    frames = np.repeat((grey[0] + levels[20:20 + n_frames] * grey[1]).astype(np.uint8), size * size * 3)
    loud = levels[20 - delay:20 - delay + n_frames]
    noise = rng.standard_normal(n_frames * SAMPLES_PER_FRAME)
    samples = (noise * np.repeat(loud, SAMPLES_PER_FRAME) * 8000).astype(np.int16)
    return frames.reshape(n_frames, size, size, 3), samples


def clip_file(path: Path, n_frames: int, delay: int, seed: int = 0) -> Path:
    """:func:`clip` as a 64x64 mp4 (H.264 + AAC); brightness steps stay under the tracker's cut threshold."""
    frames, samples = clip(n_frames, delay, seed, size=64, grey=(100, 14))
    wav = write_wav(path.with_suffix(".wav"), samples.astype(np.float32) / 32768.0, 16000)
    with VideoWriter(path, size=(64, 64), fps=25, audio=wav, crf=10, preset="ultrafast") as writer:
        for f in frames:
            writer.write(f)
    wav.unlink()
    return path


def z(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return (x / (x.std(axis=1, keepdims=True) + 1e-9)).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def video_embed(windows: np.ndarray) -> np.ndarray:
    return z(np.log(windows.reshape(len(windows), WINDOW, -1).mean(axis=2) + 1.0))


def mfcc_embed(windows: np.ndarray) -> np.ndarray:
    energy = windows[:, 0, 0, :]  # MFCC row 0: log frame energy, 4 columns per video frame
    return z(energy.reshape(len(windows), WINDOW, 4).mean(axis=2))


def unit_video_embed(windows: np.ndarray) -> np.ndarray:  # the expert's embeddings are unit vectors
    return unit(video_embed(windows))


def mel_embed(windows: np.ndarray) -> np.ndarray:  # (B, 1, 80, 16): 16 mel columns per 5 frames
    loud = windows[:, 0].mean(axis=1)
    return unit(z(np.stack([loud[:, round(i * 3.2):round((i + 1) * 3.2)].mean(axis=1) for i in range(WINDOW)], 1)))


class ConstructedEmbedder:
    """The SyncNet-shaped embedder of constructed clips (``video`` / ``audio`` as :class:`SyncNetEmbedder`)."""

    video = staticmethod(video_embed)
    audio = staticmethod(mfcc_embed)
