"""The two scorers' networks as embedding functions for :mod:`lipsync_core.score.sync` (always float32).

:class:`SyncNetEmbedder` feeds ``syncnet_v2`` as the reference does (5 BGR frames, raw 0-255, 224x224;
raw MFCC windows); :class:`ExpertEmbedder` feeds Wav2Lip's ``syncnet_color`` as its training did (the lower
half of 96x96 face crops, 5 frames stacked on channels, BGR in [0, 1]; 80x16 mel windows).
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

SYNCNET_SIZE = 224
EXPERT_SIZE = 96


class SyncNetEmbedder:
    """``video(windows (B,5,H,W,3) uint8)`` and ``audio(mfcc (B,1,13,20))`` -> (B,1024) float32 embeddings."""

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        # Any: called through the network's own methods (forward_lip/embed_face...), which nn.Module's types hide
        self.model: Any = model.to(self.device, torch.float32).eval()

    @torch.inference_mode()
    def video(self, windows: np.ndarray) -> np.ndarray:
        if windows.shape[2:4] != (SYNCNET_SIZE, SYNCNET_SIZE):  # Wav2Lip's scorer resizes every frame
            windows = resize_windows(windows, SYNCNET_SIZE)
        x = torch.from_numpy(np.ascontiguousarray(windows)).to(self.device)
        x = x.permute(0, 4, 1, 2, 3).float()  # (B, 3, 5, H, W), BGR, 0..255
        return self.model.forward_lip(x).float().cpu().numpy()

    @torch.inference_mode()
    def audio(self, windows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(windows, np.float32)).to(self.device)
        return self.model.forward_aud(x).float().cpu().numpy()


class ExpertEmbedder:
    """``video(windows (B,5,96,96,3) uint8)`` and ``audio(mel (B,1,80,16))`` -> (B,512) unit embeddings."""

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        # Any: called through the network's own methods (forward_lip/embed_face...), which nn.Module's types hide
        self.model: Any = model.to(self.device, torch.float32).eval()

    @torch.inference_mode()
    def video(self, windows: np.ndarray) -> np.ndarray:
        if windows.shape[2:4] != (EXPERT_SIZE, EXPERT_SIZE):
            windows = resize_windows(windows, EXPERT_SIZE)
        x = torch.from_numpy(np.ascontiguousarray(windows[:, :, EXPERT_SIZE // 2:])).to(self.device)
        b, t, h, w, c = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(b, t * c, h, w).float() / 255.0  # channels f0 BGR, f1 BGR, ...
        return self.model.embed_face(x).float().cpu().numpy()

    @torch.inference_mode()
    def audio(self, windows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(windows, np.float32)).to(self.device)
        return self.model.embed_audio(x).float().cpu().numpy()


def resize_windows(windows: np.ndarray, size: int) -> np.ndarray:
    """Every frame of (B, T, H, W, 3) resized to ``size`` x ``size`` (cv2 INTER_LINEAR, as ``cv2.resize``'s default)."""
    b, t = windows.shape[:2]
    flat = [cv2.resize(f, (size, size)) for f in windows.reshape(b * t, *windows.shape[2:])]
    return np.stack(flat).reshape(b, t, size, size, 3)
