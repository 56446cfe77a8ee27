"""The rendered check of a validation: a held-out clip lip-synced with the checkpoint through the real pipeline
(the original variant, as a user would run it) and scored by SyncNet (LSE-D, LSE-C, offset).

The held-out windows' sync loss (:meth:`~lipsync_core.training.trainer.Trainer.validate`) is the expert judging
the generator's 96x96 output directly; this check is what a user sees: the whole run (crop, resize, paste back,
encode) judged by the independent metric the papers report. The clip is a validation clip of the dataset turned
back into a video (its face crops at their median size, its audio); the face fills the frame, so it is given as a
fixed box. Each result also carries the clip's own LSE-C with its real footage (``ref_lse_c``): the level a
perfect generator would reach.
"""
from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..engine.options import RunOptions
from ..media.video import VideoWriter
from ..support.errors import LipsyncError
from .data import FPS, Clip

#: Seconds of the validation clip that are rendered (enough windows for a stable LSE-C, cheap on a GPU).
RENDER_SECONDS = 4.0


def validation_video(clip: Clip, out: Path, seconds: float = RENDER_SECONDS) -> Path:
    """``clip``'s first run of consecutive frames (at most ``seconds``) as an mp4 with its audio; ``out``."""
    frames = clip.frames
    if not len(frames):
        raise LipsyncError(f"{clip.path} has no frames")
    first = int(frames[0])
    n = 1
    while n < len(frames) and frames[n] == first + n and n < seconds * FPS:
        n += 1
    images = [_read_image(clip.path / f"{first + k}.jpg") for k in range(n)]
    h, w = (int(np.median([im.shape[i] for im in images])) // 2 * 2 for i in (0, 1))
    with wave.open(str(clip.path / "audio.wav"), "rb") as src:
        rate = src.getframerate()
        src.setpos(min(src.getnframes(), round(first * rate / FPS)))
        data = src.readframes(round(n * rate / FPS))
        params = src.getparams()
    out.parent.mkdir(parents=True, exist_ok=True)
    wav = out.with_suffix(".wav")
    with wave.open(str(wav), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(data)
    try:
        with VideoWriter(out, size=(w, h), fps=FPS, audio=wav, audio_duration=n / FPS, crf=15) as writer:
            for im in images:
                writer.write(cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA))
    finally:
        wav.unlink(missing_ok=True)
    return out


class RenderCheck:
    """``check(checkpoint, step)`` -> LSE-D, LSE-C and offset of ``video`` rendered with ``checkpoint``, and the
    clip's own LSE-C (``ref_lse_c``). ``run`` gives the device, caches and the SyncNet weights (role ``syncnet``)."""

    def __init__(self, video: Path, out_dir: Path, run: RunOptions) -> None:
        self.video = video
        self.out_dir = out_dir
        self.run = run

    def __call__(self, checkpoint: Path, step: int) -> dict[str, float]:
        from ..job import lipsync
        from ..score.session import report_path

        w, h = _size(self.video)
        out = self.out_dir / f"step{step:09d}.mp4"
        options: dict[str, Any] = {"box": (0, h, 0, w), "score": True, "scorer": "syncnet", "quiet": True,
                                   "device": self.run.device, "cache_dir": self.run.cache_dir,
                                   "syncnet_path": self.run.weights.get("syncnet")}
        lipsync(self.video, self.video, out, checkpoint_path=str(checkpoint), **options)
        report = json.loads(report_path(out).read_text(encoding="utf-8"))
        result: dict[str, float] = {}
        if report["overall"]:
            o = report["overall"]
            result.update(val_lse_d=o["lse_d"], val_lse_c=o["lse_c"], val_offset=float(o["offset_frames"]))
        if report.get("reference") and report["reference"]["overall"]:
            result["ref_lse_c"] = report["reference"]["overall"]["lse_c"]
        return result


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise LipsyncError(f"cannot read {path}")
    return image


def _size(video: Path) -> tuple[int, int]:
    from ..media.probe import probe

    size = probe(video).require_video().frame_size
    assert size is not None
    return size
