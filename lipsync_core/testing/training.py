"""Small stand-ins for training tests and the notebook's CI mode: tiny networks with the real ones' interfaces
and a synthetic dataset in the training layout. The training code runs on them unchanged, in seconds on a CPU.
"""
from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.disc_qual import fold_time
from .media import draw_face, speech_envelope, speech_signal


def _block(cin: int, cout: int, stride: int | tuple[int, int] = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())


class TinyGenerator(nn.Module):
    """Wav2Lip's interface (audio (N,1,80,16), face (N,6,96,96) -> (N,3,96,96) in [0,1]) and part names, ~30k
    parameters: a two-level U-Net whose bottleneck adds the audio embedding."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.face_encoder_blocks = nn.ModuleList([_block(6, w, 2), _block(w, 2 * w, 2)])  # 48, 24
        self.audio_encoder = nn.Sequential(_block(1, w, (3, 1)), _block(w, 2 * w, 3), nn.AdaptiveAvgPool2d(1))
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(4 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU()),  # 48
            nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU()),  # 96
        ])
        self.output_block = nn.Sequential(nn.Conv2d(w + 6, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        f1 = self.face_encoder_blocks[0](face)
        f2 = self.face_encoder_blocks[1](f1)
        a = self.audio_encoder(audio).expand(-1, -1, f2.size(2), f2.size(3))
        x = self.face_decoder_blocks[0](torch.cat([f2, a], 1))
        x = self.face_decoder_blocks[1](torch.cat([x, f1], 1))
        return self.output_block(torch.cat([x, face], 1))


class TinyExpert(nn.Module):
    """SyncNet_color's interface: (mel (B,1,80,16), faces (B,15,48,96)) -> two (B, 32) unit, non-negative
    embeddings."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.face_encoder = nn.Sequential(_block(15, width, 2), _block(width, 32, 2), nn.AdaptiveAvgPool2d(1))
        self.audio_encoder = nn.Sequential(_block(1, width, 2), _block(width, 32, 2), nn.AdaptiveAvgPool2d(1))

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (F.normalize(self.audio_encoder(audio).flatten(1), dim=1),
                F.normalize(self.face_encoder(face).flatten(1), dim=1))


class TinyDisc(nn.Module):
    """Wav2Lip_disc_qual's interface: (B,3,T,96,96) -> (B*T, 1) per-frame probabilities (lower halves)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.LeakyReLU(0.01),
                                                 nn.Conv2d(width, width, 3, 2, 1), nn.LeakyReLU(0.01),
                                                 nn.AdaptiveAvgPool2d(1))
        self.binary_pred = nn.Sequential(nn.Conv2d(width, 1, 1), nn.Sigmoid())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = fold_time(faces) if faces.dim() == 5 else faces
        x = self.face_encoder_blocks(x[:, :, x.size(2) // 2:])
        return self.binary_pred(x).view(len(x), -1)


def write_wav16(path: str | Path, samples: np.ndarray, sr: int = 16000) -> Path:
    """16-bit mono PCM WAV through Python's ``wave`` (no subprocess: fast for many small files)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return Path(path)


def synthetic_dataset(root: str | Path, *, clips: int = 4, frames: int = 40, val_clips: int = 1,
                      crop: int = 120, seed: int = 0) -> Path:
    """A dataset in the training layout (``clips/<video>/<clip>/{k.jpg, audio.wav}`` and filelists) of cartoon
    faces whose mouths follow speech-like audio at 25 fps; the last ``val_clips`` clips are the validation split."""
    root = Path(root)
    names = []
    for c in range(clips):
        name = f"synthetic/{c:05d}"
        folder = root / "clips" / name
        folder.mkdir(parents=True, exist_ok=True)
        t = np.arange(frames) / 25.0
        env = speech_envelope(t, seed + c)
        for k in range(frames):
            cv2.imwrite(str(folder / f"{k}.jpg"), draw_face((crop, crop), t[k], float(env[k])))
        write_wav16(folder / "audio.wav", speech_signal(frames / 25.0, seed=seed + c))
        names.append(name)
    (root / "filelists").mkdir(parents=True, exist_ok=True)
    split = len(names) - val_clips
    (root / "filelists" / "train.txt").write_text("".join(n + "\n" for n in names[:split]))
    (root / "filelists" / "val.txt").write_text("".join(n + "\n" for n in names[split:]))
    return root
