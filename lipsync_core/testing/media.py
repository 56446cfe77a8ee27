"""Deterministic synthetic media for tests and benchmarks, all written through the resolved ffmpeg.

Every generator takes the output path and returns it; each finishes in well under a second for the defaults.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ..media.ffmpeg import FfmpegProcess, run_ffmpeg
from ..media.probe import fps_fraction
from ..media.video import VideoWriter


def speech_signal(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Speech-like float32 mono in [-1, 1]: voiced harmonics under formant-ish gains, syllable envelope ~4 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    pitch = 120.0 + 25.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    gains = {k: sum(np.exp(-((k * 120.0 - f) / 300.0) ** 2) for f in (500.0, 1500.0, 2500.0)) for k in range(1, 30)}
    voiced = sum(g * np.sin(k * phase) for k, g in gains.items() if g > 1e-3)
    sig = voiced / np.max(np.abs(voiced)) * speech_envelope(t, seed)
    sig += 0.01 * rng.standard_normal(len(t))  # breath noise, so no frame is digitally silent
    return (0.5 * sig / np.max(np.abs(sig))).astype(np.float32)


def speech_envelope(t: np.ndarray, seed: int = 0) -> np.ndarray:
    """Syllable loudness in [0, 1] at times ``t`` (seconds); drives the mouth of :func:`draw_face` too."""
    rng = np.random.default_rng(seed + 1)
    rates = rng.uniform(3.0, 5.0, 3)
    raw = sum(np.sin(2 * np.pi * r * t + p) for r, p in zip(rates, rng.uniform(0, 2 * np.pi, 3)))
    return np.clip(raw / 3.0 + 0.35, 0.0, 1.0)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int) -> Path:
    """Write float samples (``(n,)`` or ``(n, channels)``) as 16-bit PCM WAV."""
    samples = np.asarray(samples, np.float32)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    run_ffmpeg(["-y", "-f", "f32le", "-ar", str(sr), "-ac", str(channels), "-i", "pipe:0",
                "-c:a", "pcm_s16le", os.fspath(path)], what=f"write {path}", input=samples.tobytes())
    return Path(path)


def speech_wav(path: str | os.PathLike, seconds: float = 2.0, *, sr: int = 16000, channels: int = 1,
               seed: int = 0) -> Path:
    """A speech-like WAV (e.g. ``sr=44100, channels=2`` for the resampling/downmix path)."""
    mono = speech_signal(seconds, sr, seed)
    # Stereo channels differ slightly (a delay), so a downmix is a real average, not a copy.
    samples = mono if channels == 1 else np.stack([np.roll(mono, c * 3) for c in range(channels)], axis=1)
    return write_wav(path, samples, sr)


def draw_face(size: tuple[int, int], t: float, mouth_open: float) -> np.ndarray:
    """A cartoon face (BGR uint8) that sways with time ``t``; ``mouth_open`` in [0, 1] sets the mouth height."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (40 + 20 * np.sin(np.linspace(0, 3, w)))[None, :, None].astype(np.uint8)  # a gentle gradient
    s = min(w, h)
    cx = int(w / 2 + 0.06 * s * np.sin(2 * np.pi * 0.5 * t))
    cy = int(h / 2 + 0.03 * s * np.cos(2 * np.pi * 0.3 * t))
    ax, ay = int(0.30 * s), int(0.40 * s)
    cv2.ellipse(img, (cx, cy), (ax, ay), 0, 0, 360, (140, 170, 220), -1, cv2.LINE_AA)  # skin
    for dx in (-1, 1):
        eye = (cx + dx * int(0.12 * s), cy - int(0.12 * s))
        cv2.ellipse(img, eye, (int(0.05 * s), int(0.03 * s)), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(img, eye, max(1, int(0.02 * s)), (60, 40, 20), -1, cv2.LINE_AA)
    cv2.line(img, (cx, cy - int(0.05 * s)), (cx - int(0.02 * s), cy + int(0.08 * s)), (110, 130, 180),
             max(1, s // 64), cv2.LINE_AA)  # nose
    mouth = (cx, cy + int(0.2 * s))
    cv2.ellipse(img, mouth, (int(0.11 * s), max(1, int(0.01 * s + 0.08 * s * mouth_open))), 0, 0, 360,
                (40, 30, 120), -1, cv2.LINE_AA)
    if mouth_open > 0.3:  # teeth
        cv2.rectangle(img, (mouth[0] - int(0.06 * s), mouth[1] - int(0.02 * s) - int(0.04 * s * mouth_open)),
                      (mouth[0] + int(0.06 * s), mouth[1] - int(0.04 * s * mouth_open)), (235, 235, 235), -1)
    return img


def talking_head_video(path: str | os.PathLike, *, size: tuple[int, int] = (128, 128), fps: float = 25.0,
                       seconds: float = 2.0, audio: bool = True, crf: int = 23, seed: int = 0) -> Path:
    """A moving cartoon face whose mouth follows the speech envelope; with ``audio``, that speech (16 kHz)."""
    path = Path(path)
    n = max(1, round(seconds * fps))
    wav = None
    if audio:
        wav = speech_wav(path.with_name(f".{path.stem}.speech.wav"), seconds, seed=seed)
    try:
        env = speech_envelope(np.arange(n) / fps, seed)
        with VideoWriter(path, size=size, fps=fps, audio=wav, audio_duration=n / fps if wav else None,
                         crf=crf, preset="ultrafast") as writer:
            for k in range(n):
                writer.write(draw_face(size, k / fps, float(env[k])))
    finally:
        if wav is not None:
            wav.unlink(missing_ok=True)
    return path


def vfr_video(path: str | os.PathLike, *, size: tuple[int, int] = (96, 96), fps: float = 30.0,
              seconds: float = 2.0, drop_every: int = 3) -> Path:
    """A variable-frame-rate video: frames drawn at ``fps`` with every ``drop_every``-th dropped, timestamps kept
    (gaps of 1/fps and 2/fps, like a capture that skipped frames). Average rate ``fps * (1 - 1/drop_every)``.

    Encoded to Matroska, whose muxer keeps the gaps in every ffmpeg version (mp4's fills them in ffmpeg 4.x,
    and the option that says otherwise is ``-vsync`` before 5.1 and ``-fps_mode`` after 8), then remuxed.
    """
    path = Path(path)
    n = max(1, round(seconds * fps))
    frames = (draw_face(size, k / fps, 0.5 + 0.5 * np.sin(k / 3)) for k in range(n))
    select = ["-vf", f"select='not(eq(mod(n\\,{drop_every})\\,{drop_every - 1}))'"]
    if path.suffix.lower() == ".mkv":
        _encode(path, frames, size, fps, select)
        return path
    mkv = path.with_name(f".{path.stem}.vfr.mkv")
    try:
        _encode(mkv, frames, size, fps, select)
        run_ffmpeg(["-y", "-i", mkv, "-c", "copy", path], what=f"write {path}")
    finally:
        mkv.unlink(missing_ok=True)
    return path


def still_image(path: str | os.PathLike, *, size: tuple[int, int] = (128, 128)) -> Path:
    """A still face picture; the suffix picks the format (.png, .jpg, .bmp, ...)."""
    _encode(path, [draw_face(size, 0.0, 0.6)], size, 25.0, ["-frames:v", "1", "-update", "1"])
    return Path(path)


def flash_beep_clip(path: str | os.PathLike, *, seconds: float = 3.0, fps: float = 25.0,
                    size: tuple[int, int] = (64, 64), flash_at: float = 1.0, beep_at: float = 1.0,
                    beep_seconds: float = 0.12, beep_hz: float = 1000.0, sr: int = 16000) -> Path:
    """Black video with one white frame at ``flash_at`` and silence with a tone burst at ``beep_at``
    (both in seconds), for trim and sync tests. Frame ``round(flash_at * fps)`` is the white one."""
    path = Path(path)
    t = np.arange(int(round(seconds * sr))) / sr
    tone = 0.5 * np.sin(2 * np.pi * beep_hz * t) * ((t >= beep_at) & (t < beep_at + beep_seconds))
    wav = write_wav(path.with_name(f".{path.stem}.beep.wav"), tone.astype(np.float32), sr)
    n, flash = max(1, round(seconds * fps)), round(flash_at * fps)
    black, white = np.zeros((size[1], size[0], 3), np.uint8), np.full((size[1], size[0], 3), 255, np.uint8)
    try:
        with VideoWriter(path, size=size, fps=fps, audio=wav, audio_duration=seconds, crf=18,
                         preset="ultrafast") as writer:
            for k in range(n):
                writer.write(white if k == flash else black)
    finally:
        wav.unlink(missing_ok=True)
    return path


def _encode(path: str | os.PathLike, frames: Iterable[np.ndarray], size: tuple[int, int], fps: float,
            output_args: list[str]) -> None:
    """Pipe BGR frames into ffmpeg with custom output options (the suffix of ``path`` picks the format)."""
    w, h = size
    args = ["-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate", str(fps_fraction(fps)),
            "-i", "pipe:0", *output_args]
    if Path(path).suffix.lower() in (".mp4", ".mkv"):
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    with FfmpegProcess([*args, os.fspath(path)], what=f"write {path}", stdin=True) as proc:
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
