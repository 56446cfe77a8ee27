"""Pass 2: decode, sync, enhance, blend and encode in one stream, decode overlapped with compute.

What runs is read from the plan (stages, output scale); models come from the session. Nothing here names a
variant or a stage.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face.types import FaceTrack
from ..media import audio as audio_mod
from ..media.face_video import FaceVideo
from ..stages.base import Batch
from ..support.errors import LipsyncError
from .catalog import RenderInputs
from .options import OutputOptions, RenderOptions
from .plan import Plan
from .session import Session

#: Bytes of decoded frames in one render batch (one batch is computed while one is decoded ahead): bounded so
#: peak host memory does not depend on resolution or length. A GPU gets larger batches to stay busy.
RENDER_BATCH_BYTES = {"cpu": 32 * 2**20, "cuda": 256 * 2**20}


def render_batch_frames(wav2lip_batch_size: int, frame_bytes: int, device_type: str = "cpu") -> int:
    """Frames per render batch: ``--wav2lip_batch_size``, fewer for large frames (on CPU 48 at 360p, 5 at 1080p;
    on CUDA 43 at 1080p)."""
    budget = RENDER_BATCH_BYTES.get(device_type, RENDER_BATCH_BYTES["cpu"])
    return max(1, min(wav2lip_batch_size, budget // frame_bytes))


@dataclass(frozen=True)
class Speech:
    """The driving audio as the render pass needs it: the file (muxed into the output), its length, the mel
    spectrogram and the frames the silence gate mutes."""

    path: Path
    duration: float
    mel: np.ndarray
    quiet: np.ndarray | None
    n_samples: int

    @classmethod
    def load(cls, path: Path, render: RenderOptions, *, name: str | Path | None = None) -> Speech:
        wav = audio_mod.load_audio(path)
        if wav.size == 0:
            raise LipsyncError(f"{name or path} contains no audio samples")
        quiet = None if render.silence_gate_db is None else audio_mod.quiet_frames(wav, render.silence_gate_db)
        return cls(path=Path(path), duration=wav.size / audio_mod.SAMPLE_RATE, mel=audio_mod.melspectrogram(wav),
                   quiet=quiet, n_samples=wav.size)

    def frames(self, fps: float) -> int:
        """Output frames at ``fps``: as long as the audio."""
        return audio_mod.frames_for_audio(self.n_samples, fps)


def _batches(session: Session, plan: Plan, video: FaceVideo, track: FaceTrack, speech: Speech,
             n_out: int) -> Generator[Batch, None, None]:
    """Decoded batches of output frames with their boxes and mel windows (runs in a prefetch thread)."""
    render = plan.options.render
    w, h = video.frame_size
    bs = render_batch_frames(render.wav2lip_batch_size, w * h * 3, session.runtime.device.type)
    if session.runtime.device.type == "cpu" and plan.cpu_frames:
        bs = min(bs, plan.cpu_frames)  # slow stages: the progress bar moves every few seconds
    idx: list[int] = []
    srcs: list[int] = []
    frames: list[np.ndarray] = []
    landmarks = track.landmarks

    def make() -> Batch:
        return Batch(indices=list(idx), frames=list(frames), boxes=[track.boxes[s] for s in srcs],
                     mels=audio_mod.mel_windows(speech.mel, video.fps, idx, offset_ms=render.audio_offset_ms,
                                                quiet=speech.quiet),
                     landmarks=[landmarks[s] for s in srcs] if landmarks is not None else None, sources=list(srcs))

    for out_i, (src, frame) in enumerate(video.looped(n_out, track.n_frames)):
        idx.append(out_i)
        srcs.append(src)
        frames.append(frame)
        if len(idx) == bs:
            yield make()
            idx.clear()
            srcs.clear()
            frames.clear()
    if idx:
        yield make()


def _write_sidecars(stages: list, outfile: Path) -> None:
    """The files stages write beside a complete output (``<output stem><suffix>``, e.g. the cue file), atomically."""
    from ..support import files

    for stage in stages:
        for suffix, text in getattr(stage, "sidecars", {}).items():
            files.atomic_write_text(outfile.with_name(outfile.stem + suffix), text)


def render(session: Session, plan: Plan, video: FaceVideo, track: FaceTrack, speech: Speech, outfile: Path,
           output: OutputOptions) -> int:
    """Render ``video`` with ``track`` lip-synced to ``speech`` into ``outfile``; returns the frames written."""
    from ..media.video import VideoWriter

    stages = session.stages(RenderInputs(speech=speech.path, fps=video.fps, video=video, track=track))
    scale = plan.scale
    w, h = video.frame_size
    n_out = speech.frames(video.fps)
    prefetch: queue.Queue = queue.Queue(maxsize=1)  # one batch decoded ahead while one is computed
    stop = threading.Event()
    timings = session.timings

    def hand_over(item: object) -> bool:
        """Queue ``item`` for the consumer; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                prefetch.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def producer() -> None:
        batches = _batches(session, plan, video, track, speech, n_out)
        try:
            for b in batches:
                if not hand_over(b):
                    return
            hand_over(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            hand_over(exc)
        finally:
            batches.close()  # stops the frame reader's ffmpeg when we end early

    thread = threading.Thread(target=producer, name="lipsync-decode", daemon=True)
    thread.start()
    bar = session.bar(n_out, "render")
    try:
        with VideoWriter(outfile, size=(w * scale, h * scale), fps=video.fps, audio=speech.path,
                         audio_duration=speech.duration, crf=output.crf, preset=output.preset) as writer:
            while True:
                t0 = time.perf_counter()
                item = prefetch.get()
                timings.add("decode_wait", t0)
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                for stage in stages:
                    t0 = time.perf_counter()
                    stage(item)
                    timings.add(stage.name, t0)
                t0 = time.perf_counter()
                for frame in item.frames:
                    writer.write(frame)
                timings.add("encode", t0)
                bar.update(len(item.frames))
        _write_sidecars(stages, outfile)
        return writer.frames_written
    finally:
        bar.close()
        stop.set()  # on an error or Ctrl-C the producer stops within one decoded frame, not the whole video
        thread.join()
