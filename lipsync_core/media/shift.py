"""Shift a video's audio against its picture by an exact amount, keeping the audio's length (ffmpeg, atomic).

Used to correct a measured A/V offset: the audio is decoded to PCM, padded with silence or trimmed at its
start by exactly ``round(ms * rate / 1000)`` samples, cut or padded at its end to its original sample count,
and muxed back with the video stream copied (not re-encoded). The output appears only when complete.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..support import files
from ..support.errors import LipsyncError
from .ffmpeg import run_ffmpeg
from .probe import MediaInfo, probe

#: Audio codec per output container (the video stream is always copied).
_AUDIO_CODEC = {".mp4": ["aac", "-b:a", "192k"], ".m4v": ["aac", "-b:a", "192k"], ".mov": ["aac", "-b:a", "192k"],
                ".mkv": ["aac", "-b:a", "192k"], ".avi": ["pcm_s16le"], ".webm": ["libopus", "-b:a", "160k"]}


def shift_audio(video: str | os.PathLike, delay_ms: float, out: str | os.PathLike | None = None) -> Path:
    """Write ``video`` with its first audio stream delayed by ``delay_ms`` (negative: advanced) to ``out``
    (default: replace ``video``). Returns the output path.

    A delay pads silence at the start and drops as much from the end; an advance drops the start and pads
    the end; either way the audio keeps its sample count, so its duration is unchanged.
    """
    info = probe(video).require_video("video").require_audio("video")
    dst = Path(out) if out is not None else info.path
    codec = _AUDIO_CODEC.get(dst.suffix.lower())
    if codec is None:
        raise LipsyncError(f"cannot write {dst}: use an .mp4, .mov, .mkv, .avi or .webm output")
    pcm, rate, channels = _decode(info)
    shifted = shift_samples(pcm, round(delay_ms * rate / 1000.0))
    dst.parent.mkdir(parents=True, exist_ok=True)
    return _write(dst, ["-i", info.path, *_pcm_input(rate, channels), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                        "-c:a", *codec], shifted)


def write_shifted_audio(source: str | os.PathLike, delay_ms: float, out: str | os.PathLike) -> Path:
    """The first audio stream of ``source`` delayed by ``delay_ms`` (negative: advanced), same length, as a
    float WAV at ``out`` (written atomically)."""
    info = probe(source).require_audio()
    pcm, rate, channels = _decode(info)
    shifted = shift_samples(pcm, round(delay_ms * rate / 1000.0))
    return _write(Path(out), [*_pcm_input(rate, channels), "-c:a", "pcm_f32le", "-f", "wav"], shifted)


def _pcm_input(rate: int, channels: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0"]


def _write(dst: Path, args: list, pcm: np.ndarray) -> Path:
    """ffmpeg ``args`` (reading ``pcm`` from stdin) into a run-tagged partial file, renamed to ``dst`` when done."""
    partial = files.partial_path(dst)
    try:
        run_ffmpeg(["-y", *args, partial], what=f"write {dst}", input=pcm.tobytes())
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)
    return dst


def _decode(info: MediaInfo) -> tuple[np.ndarray, int, int]:
    """(samples x channels float32 PCM, rate, channels) of the first audio stream, at its own rate and layout."""
    rate, channels = info.sample_rate or 48000, info.channels or 2
    proc = run_ffmpeg(["-i", info.path, "-map", "0:a:0", "-vn", "-sn", "-ac", str(channels), "-ar", str(rate),
                       "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
                      what=f"decode the audio of {info.path}", capture_stdout=True)
    pcm = np.frombuffer(proc.stdout, np.float32)
    return pcm[: len(pcm) // channels * channels].reshape(-1, channels), rate, channels


def shift_samples(pcm: np.ndarray, delay: int) -> np.ndarray:
    """``pcm`` (samples x channels) delayed by ``delay`` samples (negative: advanced), same length, zeros in."""
    out = np.zeros_like(pcm)
    n = len(pcm)
    if delay >= 0:
        out[delay:] = pcm[:max(0, n - delay)]
    else:
        out[:max(0, n + delay)] = pcm[-delay:]
    return out
