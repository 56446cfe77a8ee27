"""The scoring arithmetic of SyncNet's ``evaluate`` (LSE-D, LSE-C, offset) and of the lip-sync expert.

Both scorers pair video window ``v`` (frames ``v .. v+4`` at 25 fps) with the audio window of the same 0.2 s
and compare every video window with the audio windows ``-vshift .. +vshift`` frames away:

* SyncNet (joonson/syncnet_python's ``SyncNetInstance.evaluate``): the Euclidean distance
  ``||lip[i] - aud[i+w-vshift] + 1e-6||``, audio windows outside the clip being zero vectors (the reference
  pads with zeros). ``mdist`` is the mean
  over windows per shift; **LSE-D** = ``min(mdist)``, **LSE-C** = ``median(mdist) - min(mdist)``.
* The expert (Wav2Lip's ``syncnet_color``): the cosine similarity of its unit embeddings, averaged over the
  windows whose shifted audio window exists; the metric is the best mean similarity.

**Offset sign** (the reference's): ``offset = vshift - argmin``; a positive offset means the audio *leads*
the video (it comes too early), a negative one that it lags. Audio delayed by 3 frames reports -3.

The windows are streamed (:class:`WindowStream`): frames go in one at a time, embeddings are computed in
batches and dropped once their row of the matrix is known, so memory does not grow with the clip's length
beyond one float row per window. The embedding functions are arguments, so tests can inject constructed ones.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..media import audio as audio_mod

FPS = 25.0  # SyncNet's clips are 25 fps (100 MFCC columns per second, 4 per frame)
WINDOW = 5  # frames per video window
VSHIFT = 15  # shifts tried either way (the reference's default): +-0.6 s
SAMPLES_PER_FRAME = audio_mod.SAMPLE_RATE // int(FPS)  # 640
MFCC_PER_FRAME = 4
MFCC_WINDOW = 20
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance's default, part of the reference's numbers

#: (B, 5, H, W, 3) uint8 frame windows -> (B, D) float32 embeddings
VideoEmbed = Callable[[np.ndarray], np.ndarray]
#: (B, ...) float32 audio feature windows -> (B, D) float32 embeddings
AudioEmbed = Callable[[np.ndarray], np.ndarray]


def n_windows(n_frames: int, n_samples: int) -> int:
    """How many windows the reference scores: ``min(frames, samples // 640) - 5`` (may be <= 0: none)."""
    return min(n_frames, n_samples // SAMPLES_PER_FRAME) - WINDOW


def mfcc_windows(mfcc: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """SyncNet's audio windows ``mfcc[:, 4v : 4v+20]`` of windows ``indices``: (B, 1, 13, 20) float32."""
    cols = np.asarray(indices)[:, None] * MFCC_PER_FRAME + np.arange(MFCC_WINDOW)
    return np.ascontiguousarray(mfcc[:, cols].transpose(1, 0, 2)[:, None], dtype=np.float32)


# ------------------------------------------------------------------------------------------------ matrices


def distance_rows(lip: torch.Tensor, aud_pad: torch.Tensor, start: int, vshift: int = VSHIFT) -> np.ndarray:
    """Rows ``start .. start+len(lip)-1`` of the distance matrix; ``aud_pad[j]`` is audio window ``j - vshift``
    relative to ``start`` (zeros outside the clip), so ``aud_pad`` has ``len(lip) + 2*vshift`` rows."""
    b, width = len(lip), 2 * vshift + 1
    cols = [F.pairwise_distance(lip, aud_pad[w:w + b], eps=PAIRWISE_EPS) for w in range(width)]
    return torch.stack(cols, 1).float().numpy()


def distance_matrix(lip: np.ndarray, aud: np.ndarray, vshift: int = VSHIFT) -> np.ndarray:
    """The reference's ``calc_pdist`` for whole streams of embeddings: (n, 2*vshift+1) float32."""
    lip_t, aud_t = torch.from_numpy(np.asarray(lip, np.float32)), torch.from_numpy(np.asarray(aud, np.float32))
    pad = torch.zeros(vshift, aud_t.shape[1])
    return distance_rows(lip_t, torch.cat([pad, aud_t, pad]), 0, vshift)


def similarity_rows(lip: torch.Tensor, aud_pad: torch.Tensor, valid: torch.Tensor, vshift: int = VSHIFT) -> np.ndarray:
    """Cosine similarities of unit embeddings, as :func:`distance_rows`; NaN where the audio window is missing
    (``valid`` flags the rows of ``aud_pad`` that are real windows)."""
    b = len(lip)
    cols = []
    for w in range(2 * vshift + 1):
        sim = (lip * aud_pad[w:w + b]).sum(1)
        cols.append(torch.where(valid[w:w + b], sim, torch.full_like(sim, float("nan"))))
    return torch.stack(cols, 1).float().numpy()


# ------------------------------------------------------------------------------------------------ results


def medfilt(x: np.ndarray, kernel: int) -> np.ndarray:
    """``scipy.signal.medfilt`` (zero padding at both ends, odd ``kernel``) in numpy."""
    half = kernel // 2
    padded = np.concatenate([np.zeros(half, x.dtype), x, np.zeros(half, x.dtype)])
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel), axis=1).astype(x.dtype)


@dataclass
class SyncResult:
    """SyncNet's scores of one clip (``evaluate``'s numbers), from its distance matrix."""

    dists: np.ndarray  # (n, 2*vshift+1) float32: window x shift
    vshift: int = VSHIFT

    def __post_init__(self) -> None:
        d = torch.from_numpy(np.ascontiguousarray(self.dists, dtype=np.float32))
        self.mdist = d.mean(0).numpy()  # (W,) mean over windows per shift
        m = torch.from_numpy(self.mdist)
        minval, minidx = torch.min(m, 0)
        self.min_index = int(minidx)  # the first minimum
        self.lse_d = float(minval)
        self.median = float(torch.median(m))
        self.lse_c = float(torch.median(m) - minval)
        self.fdist = self.dists[:, self.min_index].astype(np.float32)  # per window at the chosen shift
        self.fconf = (np.float32(self.median) - self.fdist).astype(np.float32)

    @property
    def offset(self) -> int:
        """Frames; positive: the audio leads the video."""
        return self.vshift - self.min_index

    @property
    def windows(self) -> int:
        return len(self.dists)

    @property
    def fconf_smoothed(self) -> np.ndarray:
        """The per-window confidence the reference prints ("Framewise conf"): ``medfilt(fconf, 9)``."""
        return medfilt(self.fconf, 9)


@dataclass
class ExpertResult:
    """The lip-sync expert's scores of one clip: mean cosine similarity per shift, best shift."""

    sims: np.ndarray  # (n, 2*vshift+1) float32, NaN where the shifted audio window is outside the clip
    vshift: int = VSHIFT

    def __post_init__(self) -> None:
        valid = ~np.isnan(self.sims)
        counts = valid.sum(0)
        totals = np.where(valid, self.sims, 0.0).astype(np.float64).sum(0)
        self.msim = np.where(counts > 0, totals / np.maximum(counts, 1), -np.inf)  # (W,)
        self.max_index = int(np.argmax(self.msim))
        self.similarity = float(self.msim[self.max_index])
        self.fsim = self.sims[:, self.max_index]

    @property
    def offset(self) -> int:
        """Frames; positive: the audio leads the video (the same convention as SyncNet's)."""
        return self.vshift - self.max_index

    @property
    def windows(self) -> int:
        return len(self.sims)


# ------------------------------------------------------------------------------------------------ streaming


class WindowStream:
    """Frames in, one matrix row per window out, without holding the clip.

    ``n`` windows are scored; frame ``v`` completes window ``v - 5`` (the reference's window ``v`` needs frame
    ``v + 5`` to exist). ``audio_embed(lo, hi)`` returns the audio embeddings of windows ``lo .. hi-1``;
    they are computed once each, in ranges, and kept only while a video batch within ``vshift`` needs them.
    """

    def __init__(self, n: int, video_embed: VideoEmbed, audio_embed: Callable[[int, int], np.ndarray], *,
                 metric: str = "distance", vshift: int = VSHIFT, batch_size: int = 20) -> None:
        if metric not in ("distance", "similarity"):
            raise ValueError(f"metric must be 'distance' or 'similarity', got {metric!r}")
        self.n, self.vshift, self.metric = max(0, n), vshift, metric
        self.batch_size = max(1, batch_size)
        self._video_embed, self._audio_embed = video_embed, audio_embed
        self._frames: list[np.ndarray] = []  # frames from index self._first on
        self._first = 0
        self._pushed = 0
        self._pending: list[int] = []  # windows whose frames are all in, not yet embedded
        self._audio: dict[int, np.ndarray] = {}
        self._rows: list[np.ndarray] = []

    def push(self, frame: np.ndarray) -> None:
        self._frames.append(frame)
        self._pushed += 1
        v = self._pushed - 1 - WINDOW  # frame v+5 arrived: window v is complete
        if 0 <= v < self.n:
            self._pending.append(v)
            if len(self._pending) == self.batch_size:
                self._flush()

    def extend(self, frames: Iterable[np.ndarray]) -> WindowStream:
        for frame in frames:
            self.push(frame)
        return self

    def finish(self) -> np.ndarray:
        """The (n, 2*vshift+1) matrix; raises if fewer frames than ``n + 5`` were pushed."""
        if self._pending:
            self._flush()
        if sum(len(r) for r in self._rows) != self.n:
            raise ValueError(f"{self.n} windows need {self.n + WINDOW} frames; got {self._pushed}")
        width = 2 * self.vshift + 1
        return np.concatenate(self._rows) if self._rows else np.zeros((0, width), np.float32)

    def _flush(self) -> None:
        lo, hi = self._pending[0], self._pending[-1] + 1
        windows = np.stack([np.stack(self._frames[v - self._first:v - self._first + WINDOW]) for v in range(lo, hi)])
        lip = torch.from_numpy(np.asarray(self._video_embed(windows), np.float32))
        a_lo, a_hi = max(0, lo - self.vshift), min(self.n, hi + self.vshift)
        missing = [j for j in range(a_lo, a_hi) if j not in self._audio]
        if missing:
            embs = np.asarray(self._audio_embed(missing[0], missing[-1] + 1), np.float32)
            self._audio.update(zip(range(missing[0], missing[-1] + 1), embs))
        dim = lip.shape[1]
        pad = torch.zeros(hi - lo + 2 * self.vshift, dim)
        valid = torch.zeros(len(pad), dtype=torch.bool)
        for j in range(a_lo, a_hi):
            pad[j - lo + self.vshift] = torch.from_numpy(self._audio[j])
            valid[j - lo + self.vshift] = True
        if self.metric == "distance":
            self._rows.append(distance_rows(lip, pad, lo, self.vshift))
        else:
            self._rows.append(similarity_rows(lip, pad, valid, self.vshift))
        self._pending.clear()
        for j in [j for j in self._audio if j < hi - self.vshift]:  # no later batch reaches these
            del self._audio[j]
        drop = hi - self._first  # frames before window hi are not needed any more
        del self._frames[:drop]
        self._first += drop


def syncnet_stream(samples: np.ndarray, video_embed: VideoEmbed, audio_embed: AudioEmbed, *, n_frames: int,
                   vshift: int = VSHIFT, batch_size: int = 20) -> WindowStream:
    """A :class:`WindowStream` of SyncNet distances for ``n_frames`` 25 fps face crops and their 16 kHz int16
    audio (``n_frames`` is known from the face track, so no row waits for the end of the stream)."""
    n = _require_windows(n_frames, samples)
    mf = audio_mod.mfcc(samples)

    def audio(lo: int, hi: int) -> np.ndarray:
        return audio_embed(mfcc_windows(mf, np.arange(lo, hi)))

    return WindowStream(n, video_embed, audio, vshift=vshift, batch_size=batch_size)


def expert_stream(samples: np.ndarray, video_embed: VideoEmbed, audio_embed: AudioEmbed, *, n_frames: int,
                  vshift: int = VSHIFT, batch_size: int = 20) -> WindowStream:
    """A :class:`WindowStream` of expert similarities: Wav2Lip's 80x16 mel window at each window's first frame."""
    n = _require_windows(n_frames, samples)
    mel = audio_mod.melspectrogram(np.asarray(samples, np.float32) / 32768.0)

    def audio(lo: int, hi: int) -> np.ndarray:
        return audio_embed(audio_mod.mel_windows(mel, FPS, np.arange(lo, hi))[:, None])

    return WindowStream(n, video_embed, audio, metric="similarity", vshift=vshift, batch_size=batch_size)


def score_syncnet(frames: Iterable[np.ndarray], samples: np.ndarray, video_embed: VideoEmbed,
                  audio_embed: AudioEmbed, *, n_frames: int, vshift: int = VSHIFT, batch_size: int = 20) -> SyncResult:
    """SyncNet's ``evaluate`` on ``n_frames`` 25 fps face crops and their 16 kHz int16 audio.

    Fewer than 6 frames, or less than 6 frames' worth of audio, leave no window: ``ValueError``.
    """
    stream = syncnet_stream(samples, video_embed, audio_embed, n_frames=n_frames, vshift=vshift,
                            batch_size=batch_size)
    return SyncResult(stream.extend(frames).finish(), vshift)


def score_expert(frames: Iterable[np.ndarray], samples: np.ndarray, video_embed: VideoEmbed,
                 audio_embed: AudioEmbed, *, n_frames: int, vshift: int = VSHIFT, batch_size: int = 20) -> ExpertResult:
    """The lip-sync expert on ``n_frames`` 25 fps face crops (see :func:`expert_stream`)."""
    stream = expert_stream(samples, video_embed, audio_embed, n_frames=n_frames, vshift=vshift,
                           batch_size=batch_size)
    return ExpertResult(stream.extend(frames).finish(), vshift)


def _require_windows(n_frames: int, samples: np.ndarray) -> int:
    n = n_windows(n_frames, len(samples))
    if n < 1:
        raise ValueError(f"a clip of {n_frames} frames and {len(samples)} samples has no complete window to score")
    return n
