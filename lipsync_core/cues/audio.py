"""Audio for recognition: any file ffmpeg reads -> 16 kHz mono int16, streamed in chunks, and cut into utterances.

Utterances are runs of speech (WebRTC voice activity, as PocketSphinx ships it) joined across short gaps, with a
little silence kept around them, and never longer than :data:`MAX_UTTERANCE` seconds: each is decoded on its own,
so memory stays bounded however long the file is.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..media.ffmpeg import FfmpegProcess
from ..media.probe import probe
from ..support.errors import LipsyncError
from ..support.times import parse_time

RATE = 16000
FRAME = RATE // 100  # samples per 10 ms step
CHUNK_SECONDS = 4.0
MAX_UTTERANCE = 40.0  # seconds; a longer run of speech is cut at its quietest step
JOIN_GAP = 0.5  # seconds of non-speech that still belong to the same utterance
PAD = 0.25  # seconds of context kept before and after each utterance


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech: its first 10 ms step in the whole (trimmed) audio and its int16 samples."""

    start: int  # centiseconds
    pcm: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.pcm) // FRAME


@dataclass(frozen=True)
class Source:
    """A readable audio input and the span of it to use (seconds; ``end`` None = to its end)."""

    path: str
    start: float = 0.0
    end: float | None = None
    duration: float = 0.0  # of the span, from the header (0 when unknown)

    @classmethod
    def open(cls, path: str | os.PathLike, start: float | str | None = None, end: float | str | None = None
             ) -> Source:
        """Check ``path`` has an audio stream; raises :class:`LipsyncError` (one line) when it is unusable."""
        info = probe(path).require_audio()
        s, end = parse_time(start, name="start") or 0.0, parse_time(end, name="end")
        if s < 0 or (end is not None and end <= s):
            raise LipsyncError(f"bad audio span: start {s:g} s, end {end:g} s (end must be after start)")
        stop = info.duration if end is None or (info.duration and end > info.duration) else float(end)
        if info.duration and s >= info.duration:
            raise LipsyncError(f"start {s:g} s is past the end of {info.path} ({info.duration:.2f} s)")
        return cls(str(info.path), s, None if end is None else float(end), max(0.0, (stop or 0.0) - s))

    def chunks(self) -> Iterator[np.ndarray]:
        """The span as int16 arrays of about :data:`CHUNK_SECONDS` each (ffmpeg mixes channels, resamples)."""
        args: list[str] = []
        if self.start:
            args += ["-ss", f"{self.start:.3f}"]
        if self.end is not None:
            args += ["-t", f"{self.end - self.start:.3f}"]
        args += ["-i", self.path, "-map", "0:a:0", "-vn", "-sn", "-ac", "1", "-ar", str(RATE),
                 "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
        size = int(CHUNK_SECONDS * RATE) * 2
        with FfmpegProcess(args, what=f"decode the audio of {self.path}", stdout=True) as proc:
            while True:
                data = proc.stdout.read(size)
                if not data:
                    break
                yield np.frombuffer(data[: len(data) // 2 * 2], np.int16)


def utterances(chunks: Iterator[np.ndarray], on_steps: Callable[[int], None] | None = None,
               longest_s: float = MAX_UTTERANCE) -> Iterator[Utterance]:
    """Cut a stream of int16 chunks into :class:`Utterance` s of at most ``longest_s`` seconds; ``on_steps(n)``
    reports progress in 10 ms steps."""
    from pocketsphinx import Vad

    vad = Vad(Vad.LOOSE, RATE, 0.01)
    join, pad, longest = int(JOIN_GAP * 100), int(PAD * 100), int(longest_s * 100)
    buf = np.zeros(0, np.int16)  # samples from step `base` on
    base = 0
    speech: list[bool] = []  # per step from `base`
    energy: list[float] = []
    for chunk in chunks:
        buf = np.concatenate([buf, chunk])
        done = len(speech)
        for k in range(done, len(buf) // FRAME):
            frame = buf[k * FRAME:(k + 1) * FRAME]
            speech.append(vad.is_speech(frame.tobytes()))
            energy.append(float(np.dot(frame.astype(np.float32), frame.astype(np.float32))))
        if on_steps:
            on_steps(len(speech) - done)
        while True:  # emit what can no longer grow
            cut = _closed(speech, join, pad, longest)
            if cut is None:
                break
            first, last = cut
            if last - first > longest:
                last = first + longest // 2 + int(np.argmin(energy[first + longest // 2:first + longest]))
            if first >= 0 and last > first:
                yield Utterance(base + first, buf[first * FRAME:last * FRAME].copy())
            buf, speech, energy, base = buf[last * FRAME:], speech[last:], energy[last:], base + last
    first, last = _span(speech, pad)
    if last > first:
        for a in range(first, last, longest):  # the tail: no more audio to wait for
            b = min(last, a + longest)
            yield Utterance(base + a, buf[a * FRAME:b * FRAME].copy())


def _span(speech: list[bool], pad: int) -> tuple[int, int]:
    """The padded span from the first to the last speech step (empty when there is none)."""
    idx = np.flatnonzero(speech) if speech else np.zeros(0, int)
    if not len(idx):
        return 0, 0
    return max(0, int(idx[0]) - pad), min(len(speech), int(idx[-1]) + 1 + pad)


def _closed(speech: list[bool], join: int, pad: int, longest: int) -> tuple[int, int] | None:
    """(first, end) steps of an utterance that is complete (followed by a long gap or too long), else None.

    With no speech at all in a long buffer, returns an empty span that drops the silence.
    """
    arr = np.asarray(speech, bool)
    idx = np.flatnonzero(arr)
    if not len(idx):
        return (-1, len(arr) - pad) if len(arr) > longest else None
    first = max(0, int(idx[0]) - pad)
    gaps = np.flatnonzero(np.diff(idx) > join)
    if len(gaps):
        return first, min(int(idx[gaps[0]]) + 1 + pad, int(idx[gaps[0] + 1]))
    if len(arr) - int(idx[-1]) > join:
        return first, min(len(arr), int(idx[-1]) + 1 + pad)
    if len(arr) - first > longest + join:
        return first, first + longest + 1  # caller cuts at the quietest step
    return None


