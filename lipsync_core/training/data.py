"""Training data: the original's preprocessed layout, its window sampling, and batches on the device.

Layout (the original ``preprocess.py`` output plus its filelists, under one folder)::

    DATASET/clips/<video>/<clip>/{0.jpg, 1.jpg, ..., audio.wav}   # numbered face crops at 25 fps, and the sound
    DATASET/filelists/train.txt, val.txt                          # one "<video>/<clip>" per line

so the original ``wav2lip_train.py --data_root DATASET/clips`` (run in DATASET) reads it too.

Sampling follows the original's ``Dataset.__getitem__`` (frame ``k``'s crop is ``k.jpg``; 25 fps, 80 mel rows/s):

* a clip is drawn uniformly among clips with more than ``3*T`` = 15 frames;
* the target window is ``T`` = 5 consecutive existing frames ``k .. k+4`` with ``k >= 1``;
* the expert's audio is mel rows ``int(80 * k / 25) ..+16``, the generator's per frame ``k+t`` rows
  ``int(80 * (k+t-1) / 25) ..+16`` (one video frame earlier, as the original: the pretrained model expects it);
  every window must lie inside the clip's mel;
* the reference window is another 5 consecutive existing frames of the same clip.

Changes from the original, on purpose:

* the reference window never overlaps the target window (the original only requires a different first
  frame, so up to 4 of the 5 reference frames can be target frames, showing the network the very mouth it must
  draw: a push towards copying the input, a failure reported when fine-tuning on one person);
* a batch always holds ``batch_size`` samples (the original's batch is capped by the number of clips, so one
  long video trains at batch size 1);
* each clip's mel is computed once, not from the whole WAV for every sample;
* the draws come from one seeded generator whose state is saved in checkpoints, so a resumed run sees the
  same data as an uninterrupted one.

Valid starts are enumerated instead of drawn and retried: the distribution is the same as the original's
rejection loop, and a clip with no valid window is left out instead of looping forever.
"""
from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..media import audio as audio_mod
from ..support.errors import LipsyncError
from .losses import MEL_STEP, T
from .step import Batch

FPS = 25.0
FACE_SIZE = 96
#: A clip is used only when it has more than this many frames (the original's ``len > 3 * syncnet_T``).
MIN_CLIP_FRAMES = 3 * T
CLIPS_DIR = "clips"
FILELISTS_DIR = "filelists"
SPLITS = ("train", "val")


def mel_start(frame: int | np.ndarray, fps: float = FPS) -> np.ndarray:
    """First mel row of the window of video frame ``frame``: the original's ``int(80. * (frame / fps))``."""
    return np.trunc(80.0 * (np.asarray(frame, dtype=np.float64) / fps)).astype(np.int64)


def indiv_mel_starts(frame: int | np.ndarray, fps: float = FPS) -> np.ndarray:
    """First mel rows of the generator's 5 per-frame windows for a window starting at ``frame`` (>= 1):
    ``mel_start(frame + t - 1)`` for t = 0..4, shape (..., 5)."""
    k = np.asarray(frame, dtype=np.int64)[..., None]
    return mel_start(k + np.arange(T) - 1, fps)


@dataclass
class Clip:
    """One clip folder: its frame numbers and (lazily) its mel spectrogram."""

    path: Path
    frames: np.ndarray  # sorted frame numbers that have a jpg
    n_mel: int  # mel rows of audio.wav
    _mel: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> Clip:
        path = Path(path)
        if not path.is_dir():
            raise LipsyncError(f"dataset clip {path} is missing: run `lipsync train prepare` again")
        ids = sorted(int(n[:-4]) for n in os.listdir(path) if n.endswith(".jpg") and n[:-4].isdigit())
        wav = path / "audio.wav"
        if not wav.is_file():
            raise LipsyncError(f"{wav} is missing: every clip folder needs its audio.wav")
        clip = cls(path, np.asarray(ids, dtype=np.int64), 0)
        n = _wav_samples_16k(wav)
        clip.n_mel = 1 + n // audio_mod.HOP if n is not None else clip.mel().shape[1]
        return clip

    def mel(self) -> np.ndarray:
        """(80, n_mel) float32, the original mel of ``audio.wav`` (resampled to 16 kHz mono if it is not)."""
        if self._mel is None:
            self._mel = audio_mod.melspectrogram(_read_wav(self.path / "audio.wav"))
        return self._mel

    def target_starts(self) -> np.ndarray:
        """First frames ``k`` of every window the generator can train on (frames, k >= 1 and mel all inside)."""
        starts = self.reference_starts()
        starts = starts[starts >= 1]
        last = np.maximum(mel_start(starts), indiv_mel_starts(starts)[:, -1]) + MEL_STEP
        return starts[last <= self.n_mel]

    def reference_starts(self) -> np.ndarray:
        """First frames of every run of 5 consecutive existing frames."""
        f = self.frames
        if len(f) < T:
            return f[:0]
        ok = f[T - 1:] - f[:len(f) - T + 1] == T - 1  # sorted and unique: k..k+4 all present
        return f[:len(f) - T + 1][ok]


@dataclass(frozen=True)
class SampleSpec:
    """Which windows make one sample: clip index, target window start, reference window start."""

    clip: int
    start: int
    reference: int


class WindowSampler:
    """Draws samples as described in the module docstring, from one seeded generator (state saveable)."""

    def __init__(self, clips: list[Clip], seed: int = 0) -> None:
        self.clips = clips
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._targets: list[np.ndarray] = []
        self._refs: list[np.ndarray] = []
        self.usable: list[int] = []
        for i, clip in enumerate(clips):
            targets, refs = clip.target_starts(), clip.reference_starts()
            if len(clip.frames) > MIN_CLIP_FRAMES and len(refs):  # targets with a non-overlapping reference
                targets = targets[(refs.min() <= targets - T) | (refs.max() >= targets + T)]
            else:
                targets = targets[:0]
            self._targets.append(targets)
            self._refs.append(refs)
            if len(targets):
                self.usable.append(i)
        if not self.usable:
            raise LipsyncError(f"none of the {len(clips)} clips has a usable window (more than {MIN_CLIP_FRAMES} "
                               "frames with a face and room for a non-overlapping reference): prepare more footage")

    def draw(self) -> SampleSpec:
        c = self.usable[int(self.rng.integers(len(self.usable)))]
        start = int(self.rng.choice(self._targets[c]))
        refs = self._refs[c]
        reference = int(self.rng.choice(refs[np.abs(refs - start) >= T]))
        return SampleSpec(c, start, reference)

    def draw_batch(self, n: int) -> list[SampleSpec]:
        return [self.draw() for _ in range(n)]

    @property
    def windows(self) -> int:
        """How many target windows there are in all (the dataset's size in samples)."""
        return sum(len(self._targets[c]) for c in self.usable)

    def state(self) -> dict:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


@dataclass
class HostBatch:
    """A batch as loaded from disk: uint8 BGR windows (B, 5, 96, 96, 3) and float32 mels."""

    window: np.ndarray
    reference: np.ndarray
    indiv_mels: np.ndarray  # (B, 5, 1, 80, 16)
    mel: np.ndarray  # (B, 1, 80, 16)


def load_window(clip: Clip, start: int) -> np.ndarray:
    """Frames ``start .. start+4`` of ``clip``, each resized to 96x96 (bilinear, aspect not kept): (5, 96, 96, 3)."""
    out = np.empty((T, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    for t in range(T):
        name = clip.path / f"{start + t}.jpg"
        img = cv2.imread(str(name))
        if img is None:
            raise LipsyncError(f"could not read {name}: the dataset is damaged; run `lipsync train prepare` again")
        out[t] = cv2.resize(img, (FACE_SIZE, FACE_SIZE))
    return out


def sample_mels(mel: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """The audio of the window starting at frame ``start``, from its clip's (80, T) mel: the generator's
    ``indiv_mels`` (5, 1, 80, 16) and the expert's ``mel`` (1, 80, 16)."""
    s = int(mel_start(start))
    indiv = np.stack([mel[:, m:m + MEL_STEP] for m in indiv_mel_starts(start)])[:, None]
    return indiv, mel[None, :, s:s + MEL_STEP]


def load_sample(clips: list[Clip], spec: SampleSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(window, reference window, indiv_mels (5, 1, 80, 16), mel (1, 80, 16)) of one sample."""
    clip = clips[spec.clip]
    indiv, mel = sample_mels(clip.mel(), spec.start)
    return load_window(clip, spec.start), load_window(clip, spec.reference), indiv, mel


def load_batch(clips: list[Clip], specs: list[SampleSpec]) -> HostBatch:
    parts = [load_sample(clips, s) for s in specs]
    return HostBatch(*(np.stack(p) for p in zip(*parts)))


def to_batch(host: HostBatch, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
    """The network inputs of :class:`~lipsync_core.training.step.Batch`, built on ``device`` as the original
    builds them: pixels / 255, lower half (rows 48-95) of the target zeroed, [masked target, reference] on
    channels, BGR. Computed in float32 (equal to the original's float64 division then cast) then cast to
    ``dtype``."""
    def frames(u8: np.ndarray) -> torch.Tensor:  # (B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float32
        t = torch.from_numpy(u8).to(device, non_blocking=True)
        return t.permute(0, 4, 1, 2, 3).float().div_(255.0)

    gt = frames(host.window)
    masked = gt.clone()
    masked[:, :, :, gt.size(3) // 2:] = 0.0
    x = torch.cat([masked, frames(host.reference)], dim=1)
    return Batch(x=x.to(dtype).contiguous(), indiv_mels=torch.from_numpy(host.indiv_mels).to(device, dtype),
                 mel=torch.from_numpy(host.mel).to(device, dtype), gt=gt.to(dtype).contiguous())


@dataclass
class Drawn:
    """A loaded batch and the sampler state right after its draw (what a checkpoint taken after it stores)."""

    host: HostBatch
    sampler_state: dict


class BatchStream:
    """Batches drawn in order from ``sampler`` and loaded ``prefetch`` ahead by ``workers`` threads.

    Drawing happens in the caller's thread, in order, so the data order depends only on the sampler's seed
    and state; each batch carries the state after its draw for checkpoints.
    """

    def __init__(self, sampler: WindowSampler, batch_size: int, *, workers: int = 2, prefetch: int = 2) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.prefetch = max(1, prefetch)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="lipsync-train-data")
        self._pending: list[tuple[Future, dict]] = []

    def _fill(self) -> None:
        while len(self._pending) < self.prefetch:
            specs = self.sampler.draw_batch(self.batch_size)
            state = self.sampler.state()
            self._pending.append((self._pool.submit(load_batch, self.sampler.clips, specs), state))

    def __iter__(self) -> Iterator[Drawn]:
        while True:
            self._fill()
            future, state = self._pending.pop(0)
            yield Drawn(future.result(), state)

    def close(self) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


@dataclass
class Dataset:
    """A prepared dataset: its root and its train / validation clips."""

    root: Path
    train: list[Clip]
    val: list[Clip]

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        root = Path(root)
        splits = {s: read_filelist(root, s) for s in SPLITS}
        if not splits["train"]:
            raise LipsyncError(f"{root} has no training clips ({root / FILELISTS_DIR / 'train.txt'} is missing or "
                               "empty): run `lipsync train prepare CLIPS... --out DATASET` first")
        clips = {s: [Clip.open(root / CLIPS_DIR / name) for name in names] for s, names in splits.items()}
        return cls(root, clips["train"], clips["val"])


def read_filelist(root: Path, split: str) -> list[str]:
    """The entries of ``filelists/<split>.txt`` (the first token of each non-empty line, as the original)."""
    path = root / FILELISTS_DIR / f"{split}.txt"
    if not path.is_file():
        return []
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _wav_samples_16k(path: Path) -> int | None:
    """Sample count of a 16 kHz mono PCM WAV from its header; None for any other WAV."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() == audio_mod.SAMPLE_RATE and w.getnchannels() == 1:
                return w.getnframes()
    except (wave.Error, EOFError):
        pass
    return None


def _read_wav(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples of ``path``: read directly for 16-bit 16 kHz mono PCM, else through ffmpeg."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (audio_mod.SAMPLE_RATE, 1, 2):
                return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    except (wave.Error, EOFError):
        pass
    return audio_mod.load_audio(path)
